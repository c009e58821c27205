"""Training data: a user's folders -> series split train/val/test -> frame pools -> random patch pairs.

Folders are read through `medviewer.io` (DICOM series, PNG/TIFF, NPY, recursively), values in their own units,
normalised per image as the degradation protocol says. The split is by series, so no series lends slices to
two splits (neighbouring slices are near copies; a test slice whose neighbour was trained on flatters the
figure). Frames are decoded once into float32 pools (memory-mapped files in the run folder), which worker
processes read without decoding; each patch is a pure function of (seed, index), so any worker, any number
of workers and a resumed run all draw the same patches in the same order.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from medviewer.enhance.degrade import Degradation, crop_to_multiple, degrade, normalise
from medviewer.errors import MedViewerError
from medviewer.io.atomic import write_atomically
from medviewer.io.study import Series, load_studies
from trainer.recipe import DegradationRange, Recipe

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Super-resolution patches are cut this many low-resolution pixels wider on each side and the margin is
# dropped after downscaling, so that the antialiasing filter sees real image, not the patch's edge.
SR_MARGIN = 2
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as for the viewer's colour images


class DataError(MedViewerError):
    """A data folder that is missing, holds no usable image, or cannot be paired."""


@dataclass
class SeriesRecord:
    """One series as the split sees it: a key that is stable across machines, and what it holds."""

    key: str
    domain: int  # which --data folder (0 or 1 for paired and unpaired data)
    files: list[str]  # relative to its folder
    frames: int
    rows: int
    columns: int
    modality: str
    source_format: str
    colour: bool
    series: Series | None = field(default=None, repr=False)
    partner: Series | None = field(default=None, repr=False)  # the full-dose twin for paired data


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.name


def scan_folder(folder: Path, domain: int) -> list[SeriesRecord]:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"data folder {folder} not found")
    if not folder.is_dir():
        raise DataError(f"data folder {folder} is not a folder")
    loaded = load_studies([folder])
    records = []
    for series in loaded.series:
        files = sorted({_relative(frame.path, folder) for frame in series.frames})
        rows, columns = series.shape
        records.append(
            SeriesRecord(
                # Relative file names, not the UID: the key must not carry identifiers out of the folder.
                key=hashlib.sha256("\n".join(files).encode()).hexdigest()[:16],
                domain=domain,
                files=files,
                frames=len(series),
                rows=rows,
                columns=columns,
                modality=series.modality or series.source_format,
                source_format=series.source_format,
                colour=series.is_colour,
                series=series,
            )
        )
    if not records:
        reasons = collections.Counter(skipped.reason for skipped in loaded.skipped)
        detail = f" ({len(loaded.skipped)} files skipped, e.g. {reasons.most_common(1)[0][0]})" if reasons else ""
        raise DataError(f"no usable image in {folder}{detail}")
    return records


def scan_data(recipe: Recipe, folders: Sequence[Path]) -> list[SeriesRecord]:
    """Every series of the folders the recipe's pairing needs (one or more; two for paired and unpaired)."""
    pairing = recipe.data.pairing
    if not folders:
        raise DataError("no data folder given (--data DIR)")
    if pairing in ("paired", "unpaired") and len(folders) != 2:
        what = "LOW HIGH (degraded and reference, matched by relative path)" if pairing == "paired" else "A B"
        raise DataError(f"{pairing} data needs exactly two folders: --data {what}")
    if pairing == "synthetic":
        return [record for folder in folders for record in scan_folder(folder, 0)]
    first, second = scan_folder(folders[0], 0), scan_folder(folders[1], 1)
    if pairing == "unpaired":
        return first + second
    return _pair(first, second, folders)


def _pair(low: list[SeriesRecord], high: list[SeriesRecord], folders: Sequence[Path]) -> list[SeriesRecord]:
    by_files = {tuple(record.files): record for record in high}
    paired = []
    for record in low:
        twin = by_files.get(tuple(record.files))
        if twin is None:
            continue
        if (twin.rows, twin.columns, twin.frames) != (record.rows, record.columns, record.frames):
            raise DataError(
                f"{record.files[0]}: {record.frames}x{record.rows}x{record.columns} in {folders[0]} but "
                f"{twin.frames}x{twin.rows}x{twin.columns} in {folders[1]}"
            )
        record.partner = twin.series
        paired.append(record)
    if not paired:
        raise DataError(f"no image in {folders[0]} has a twin at the same relative path in {folders[1]}")
    return paired


def split_series(records: list[SeriesRecord], recipe: Recipe) -> dict[str, list[SeriesRecord]]:
    """Deterministic by seed, by series; each domain split on its own so both keep all three splits."""
    splits: dict[str, list[SeriesRecord]] = {name: [] for name in SPLITS}
    for domain in sorted({record.domain for record in records}):
        members = sorted((record for record in records if record.domain == domain), key=lambda record: record.key)
        order = np.random.default_rng([recipe.run.seed, domain]).permutation(len(members))
        count = len(members)
        if count < 2:
            raise DataError(
                f"{'the data' if domain == 0 and len({r.domain for r in records}) == 1 else f'folder {domain + 1}'} "
                f"holds {count} series; at least 2 are needed (one to train on, one to validate on)"
            )
        validation = max(1, round(count * recipe.data.val_fraction))
        test = round(count * recipe.data.test_fraction) if count - validation >= 2 else 0
        test = min(test, count - validation - 1)
        for rank, index in enumerate(order):
            name = "val" if rank < validation else "test" if rank < validation + test else "train"
            splits[name].append(members[index])
    return splits


def split_summary(splits: dict[str, list[SeriesRecord]]) -> dict[str, Any]:
    """What split.json holds: per split, each series' key, folder and files (relative), never UIDs or names."""
    return {
        name: [{"key": record.key, "folder": record.domain, "files": record.files} for record in records]
        for name, records in splits.items()
    }


def data_summary(splits: dict[str, list[SeriesRecord]], folders: Sequence[Path]) -> dict[str, Any]:
    """Counts, modalities and sizes: what a model card may say about its data (no patient data)."""
    summary: dict[str, Any] = {"folders": len(folders), "splits": {}}
    for name, records in splits.items():
        summary["splits"][name] = {
            "series": len(records),
            "images": sum(record.frames for record in records),
            "modalities": dict(collections.Counter(record.modality for record in records)),
            "formats": dict(collections.Counter(record.source_format for record in records)),
            "sizes": sorted({f"{record.columns}x{record.rows}" for record in records}),
            "colour_series_as_luminance": sum(record.colour for record in records),
        }
    return summary


# --- frame pools ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePool:
    """Normalised float32 frames stored back to back in one file, opened read-only by whoever needs them."""

    path: Path
    shapes: tuple[tuple[int, int], ...]
    offsets: tuple[int, ...]  # in elements

    def __len__(self) -> int:
        return len(self.shapes)

    def open(self) -> np.memmap | np.ndarray:
        if not self.shapes:
            return np.zeros(0, np.float32)
        return np.memmap(self.path, dtype=np.float32, mode="r")

    def frame(self, storage: np.ndarray, index: int) -> np.ndarray:
        rows, columns = self.shapes[index]
        start = self.offsets[index]
        return storage[start : start + rows * columns].reshape(rows, columns)


def grey_values(series: Series, index: int) -> np.ndarray:
    values = np.asarray(series.values(index), np.float32)
    if values.ndim == 3:  # colour: luminance, the channel the networks enhance in the viewer too
        values = values[..., :3] @ _LUMA
    return values


def build_pools(
    records: list[SeriesRecord], folder: Path, name: str, *, paired: bool, min_side: int
) -> tuple[FramePool, FramePool | None, int]:
    """Decode every frame of `records` into `folder/name.f32` (and the paired references into
    `name-reference.f32`); frames narrower than `min_side` are left out. Returns the pools and how many
    frames were left out."""
    shapes: list[tuple[int, int]] = []
    left_out = 0
    folder.mkdir(parents=True, exist_ok=True)
    pool_path, reference_path = folder / f"{name}.f32", folder / f"{name}-reference.f32"

    def write(handle, values: np.ndarray) -> None:
        handle.write(np.ascontiguousarray(values, np.float32).tobytes())

    def fill(temporary: Path, reference_temporary: Path | None) -> None:
        nonlocal left_out
        with (
            open(temporary, "wb") as handle,
            open(reference_temporary, "wb") if reference_temporary else _NullFile() as reference_handle,
        ):
            for record in records:
                for index in range(record.frames):
                    if min(record.rows, record.columns) < min_side:
                        left_out += 1
                        continue
                    values = grey_values(record.series, index)
                    if paired:
                        reference = grey_values(record.partner, index)
                        frame = normalise(reference)  # both on the reference's scale, as `evaluation.paired`
                        span = (frame.high - frame.low) or 1.0
                        write(handle, (values - frame.low) / span)
                        write(reference_handle, frame.image)
                    else:
                        write(handle, normalise(values).image)
                    shapes.append((record.rows, record.columns))

    if paired:

        def fill_both(temporary: Path) -> None:
            write_atomically(reference_path, lambda reference_temporary: fill(temporary, reference_temporary))

        write_atomically(pool_path, fill_both)
    else:
        write_atomically(pool_path, lambda temporary: fill(temporary, None))
    offsets = tuple(int(value) for value in np.cumsum([0] + [rows * columns for rows, columns in shapes])[:-1])
    pool = FramePool(pool_path, tuple(shapes), offsets)
    reference_pool = FramePool(reference_path, tuple(shapes), offsets) if paired else None
    return pool, reference_pool, left_out


class _NullFile:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def write(self, data) -> None:
        return None


# --- patches -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchSettings:
    """What a patch draw needs, picklable for worker processes."""

    patch: int
    degradation: DegradationRange | None
    gamma: float
    contrast: float
    min_patch_std: float
    seed: int
    amount_exponent: float = 1.0  # the degradation amount is drawn at fraction u**amount_exponent of its range
    noise_maps: float = 0.0  # fraction of Gaussian-noise patches given a non-stationary sigma map


class PatchDataset(Dataset):
    """Item `index` -> one training example, the same for a given (seed, index) in any process.

    Synthetic pairs: {"input": degraded patch, "target": clean patch}. Paired data: the same crop of both
    images. Unpaired: {"a": patch of domain A, "b": patch of domain B}, drawn independently."""

    def __init__(self, pools: Sequence[FramePool], settings: PatchSettings, mode: str):
        if mode not in ("synthetic", "paired", "unpaired"):
            raise ValueError(f"unknown mode {mode}")
        self.pools = tuple(pools)
        self.settings = settings
        self.mode = mode
        self._storage: list[np.ndarray] | None = None

    def __len__(self) -> int:  # endless: the sampler decides how many are drawn
        return 2**62

    def _frames(self) -> list[np.ndarray]:
        if self._storage is None:  # opened lazily, once per worker process
            self._storage = [pool.open() for pool in self.pools]
        return self._storage

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.settings.seed, int(index)])
        storage = self._frames()
        if self.mode == "unpaired":
            first = self._crop(rng, [(self.pools[0], storage[0])])[0]
            second = self._crop(rng, [(self.pools[1], storage[1])])[0]
            return {"a": _tensor(self._intensity(rng, first)[0]), "b": _tensor(self._intensity(rng, second)[0])}
        if self.mode == "paired":
            low, high = self._crop(rng, [(self.pools[0], storage[0]), (self.pools[1], storage[1])])
            low, high = self._intensity(rng, low, high)
            return {"input": _tensor(low), "target": _tensor(high)}
        degradation = self.settings.degradation
        scale = degradation.scale if degradation is not None else 1
        margin = SR_MARGIN * scale if scale > 1 else 0
        (clean,) = self._crop(rng, [(self.pools[0], storage[0])], margin)
        (clean,) = self._intensity(rng, clean)
        fraction = float(rng.random()) ** self.settings.amount_exponent
        chosen = degradation.at(fraction) if degradation is not None else None
        noise_seed = int(rng.integers(2**63))
        # Drawn only when maps are asked for, so that recipes without them draw exactly the patches they did.
        if (
            chosen is not None
            and chosen.kind == "noise"
            and self.settings.noise_maps > 0
            and (float(rng.random()) < self.settings.noise_maps)
        ):
            noise_rng = np.random.default_rng(noise_seed)
            sigma = noise_sigma_map(clean, chosen.amount / 255.0, noise_rng)
            degraded = (clean + sigma * noise_rng.standard_normal(clean.shape)).astype(np.float32)
        else:
            degraded = clean if chosen is None else degrade(clean, chosen, seed=noise_seed)
        if margin and clean.shape[0] > self.settings.patch:
            low_margin = margin // scale
            clean = clean[margin:-margin, margin:-margin]
            degraded = degraded[low_margin:-low_margin, low_margin:-low_margin]
        return {"input": _tensor(degraded), "target": _tensor(clean)}

    def _crop(self, rng: np.random.Generator, sources, margin: int = 0) -> list[np.ndarray]:
        """The same random crop (and dihedral transform) of one frame of each source."""
        pool, storage = sources[0]
        size = self.settings.patch
        for attempt in range(5):
            frame_index = int(rng.integers(len(pool)))
            rows, columns = pool.shapes[frame_index]
            side = size + 2 * margin if min(rows, columns) >= size + 2 * margin else size
            top, left = int(rng.integers(rows - side + 1)), int(rng.integers(columns - side + 1))
            crops = [
                np.array(source_pool.frame(source_storage, frame_index)[top : top + side, left : left + side])
                for source_pool, source_storage in sources
            ]
            if self.settings.min_patch_std <= 0 or attempt == 4 or crops[-1].std() >= self.settings.min_patch_std:
                break
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        transformed = []
        for crop in crops:
            crop = np.rot90(crop, turns)
            transformed.append(np.ascontiguousarray(crop[:, ::-1] if flip else crop))
        return transformed

    def _intensity(self, rng: np.random.Generator, *images: np.ndarray) -> list[np.ndarray]:
        """Gamma and contrast changes, the same for every image of one example (a pair stays a pair)."""
        gamma = math.exp(float(rng.uniform(-1, 1)) * math.log(self.settings.gamma)) if self.settings.gamma > 1 else 1
        contrast = 1 - self.settings.contrast * float(rng.random())
        offset = float(rng.random()) * (1 - contrast)
        changed = []
        for image in images:
            if gamma != 1:
                image = np.power(np.clip(image, 0, None), gamma, dtype=np.float32)
            if contrast != 1:
                image = (image * contrast + offset).astype(np.float32)
            changed.append(image)
        return changed


def noise_sigma_map(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A per-pixel noise sigma over `clean` whose root mean square is `sigma`: half the time a smooth
    log-normal field (correlation length 1/8 to 1/2 of the patch, log-sigma spread 0.3-1.0: regions of
    different dose or coil sensitivity), otherwise signal-dependent, sqrt(offset + clean) with an offset of
    0.02-1 (photon noise with read noise; small offsets leave dark regions almost noise-free, as air is in CT)."""
    from scipy import ndimage

    if rng.random() < 0.5:
        length = rng.uniform(1 / 8, 1 / 2) * min(clean.shape)
        field = ndimage.gaussian_filter(rng.standard_normal(clean.shape), length, mode="wrap")
        # Centred before scaling: a long filter over a small patch leaves a mean many times the std, and
        # exp(mean / std) overflowed (a NaN patch that stops the run); the mean is a constant factor that the
        # root-mean-square normalisation below cancels anyway.
        field -= float(field.mean())
        field /= float(field.std()) + 1e-12
        shape = np.exp(rng.uniform(0.3, 1.0) * field)
    else:
        offset = float(np.exp(rng.uniform(np.log(0.02), 0.0)))
        shape = np.sqrt(np.clip(clean, 0.0, None) + offset)
    return (sigma * shape / np.sqrt(np.mean(shape**2))).astype(np.float32)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32))[None]


class StepBatchSampler(Sampler[list[int]]):
    """Batches of item indices for steps `start`..`stop-1`: step s takes global items [s*B, (s+1)*B), and each
    of `world` processes its own slice of them, so resuming at a step (or splitting the batch over processes)
    draws exactly the patches an uninterrupted single process would have."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        if batch % world:
            raise DataError(f"batch {batch} must be divisible by the {world} processes")
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        local = self.batch // self.world
        for step in range(self.start, self.stop):
            first = step * self.batch + self.rank * local
            yield list(range(first, first + local))


# --- validation images ---------------------------------------------------------------------------------------


@dataclass
class ValidationImage:
    """A whole held-out image and its fixed degraded versions (same seed every validation)."""

    name: str
    reference: np.ndarray
    inputs: dict[str, np.ndarray]  # degradation spec (or "paired") -> model input


def validation_images(
    records: list[SeriesRecord], recipe: Recipe, count: int, degradations: Sequence[Degradation]
) -> list[ValidationImage]:
    """Up to `count` frames spread over the validation series (the middle frame of each first)."""
    chosen: list[tuple[SeriesRecord, int]] = []
    queues = [_middle_out(record.frames) for record in records]
    while len(chosen) < count and any(queues):
        for record, queue in zip(records, queues, strict=True):
            if queue and len(chosen) < count:
                chosen.append((record, queue.pop(0)))
    scale = max([degradation.scale for degradation in degradations] + [1])
    images = []
    for number, (record, index) in enumerate(chosen):
        values = grey_values(record.series, index)
        name = f"{record.files[0]}#{index}"
        if recipe.data.pairing == "paired":
            frame = normalise(grey_values(record.partner, index))
            low = (values - frame.low) / ((frame.high - frame.low) or 1.0)
            images.append(ValidationImage(name, frame.image, {"paired": low.astype(np.float32)}))
            continue
        if min(values.shape) < 8 * scale:
            continue
        clean = normalise(crop_to_multiple(values, scale)).image
        inputs = {degradation.spec: degrade(clean, degradation, seed=number) for degradation in degradations}
        images.append(ValidationImage(name, clean, inputs))
    return images


def domain_images(records: list[SeriesRecord], count: int) -> list[np.ndarray]:
    """Whole normalised images of one domain, for CycleGAN's cycle-consistency validation."""
    chosen = []
    queues = [_middle_out(record.frames) for record in records]
    while len(chosen) < count and any(queues):
        for record, queue in zip(records, queues, strict=True):
            if queue and len(chosen) < count:
                chosen.append(normalise(grey_values(record.series, queue.pop(0))).image)
    return chosen


def _middle_out(frames: int) -> list[int]:
    middle = frames // 2
    order = sorted(range(frames), key=lambda index: (abs(index - middle), index))
    return order


def write_json(path: Path, record: Any) -> None:
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
