"""Study -> Series -> frame: grouping by UIDs, slice order along the normal, and lazy pixel access."""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medviewer.errors import FrameOutOfRangeError, MedViewerError, UnreadableFileError
from medviewer.io.dicom import (
    DicomFile,
    decode_frame,
    has_voi_lut,
    modality_values,
    read_dicom_header,
    voi_lut_brightness,
)
from medviewer.io.discover import Skipped, discover_files
from medviewer.io.raster import RasterImage, is_raster_path, read_raster
from medviewer.io.volume_memory import allocate_volume, too_large_for_memory
from medviewer.io.window import Window, apply_window, auto_window

log = logging.getLogger(__name__)

Progress = Callable[[float], None]
ShouldCancel = Callable[[], bool]


@dataclass(frozen=True)
class DicomFrame:
    """One frame of one DICOM file."""

    header: DicomFile
    index_in_file: int = 0

    @property
    def position(self) -> tuple[float, float, float] | None:
        return self.header.positions[self.index_in_file] if self.header.positions else None

    @property
    def path(self) -> Path:
        return self.header.path

    def decode(self, out: np.ndarray | None = None) -> np.ndarray:
        return decode_frame(self.header, self.index_in_file, out)

    def values(self, stored: np.ndarray) -> np.ndarray:
        return modality_values(self.header, stored)


@dataclass(frozen=True)
class RasterFrame:
    """One frame (page) of a PNG/JPEG/TIFF/NPY image."""

    image: RasterImage
    index_in_file: int = 0
    position = None

    @property
    def path(self) -> Path:
        return self.image.path

    def decode(self, out: np.ndarray | None = None) -> np.ndarray:
        frame = self.image.pixels[self.index_in_file]
        if out is None:
            return frame
        out[...] = frame
        return out

    def values(self, stored: np.ndarray) -> np.ndarray:
        return stored if self.image.is_colour else stored.astype(np.float32)


Frame = DicomFrame | RasterFrame


class Series:
    """An ordered stack of same-sized frames; pixels are decoded on first use and kept.

    Monochrome series decode into one preallocated volume of the stored dtype (int16 for most CT),
    so a fully loaded series costs 1x its stored pixels; values in real units are computed per frame.
    """

    def __init__(self, frames: list[Frame], description: str, number: int | None = None):
        if not frames:
            raise ValueError("a series needs at least one frame")
        self.frames = frames
        self.description = description
        self.number = number
        self.study: Study | None = None
        self._lock = threading.Lock()
        self._decoded = np.zeros(len(frames), dtype=bool)
        self._volume: np.ndarray | None = None
        self._frame_cache: dict[int, np.ndarray] = {}
        self._volume_dtype = self._common_stored_dtype()

    # --- what the series is -------------------------------------------------------------------
    @property
    def first(self) -> Frame:
        return self.frames[0]

    @property
    def uid(self) -> str:
        first = self.first
        return first.header.series_uid if isinstance(first, DicomFrame) else f"file:{first.image.path}"

    @property
    def source_format(self) -> str:
        return "DICOM" if isinstance(self.first, DicomFrame) else self.first.image.format

    @property
    def modality(self) -> str:
        return self.first.header.modality if isinstance(self.first, DicomFrame) else ""

    @property
    def shape(self) -> tuple[int, int]:
        first = self.first
        return (first.header.rows, first.header.columns) if isinstance(first, DicomFrame) else first.image.shape

    @property
    def is_colour(self) -> bool:
        first = self.first
        return first.header.is_colour if isinstance(first, DicomFrame) else first.image.is_colour

    @property
    def invert_display(self) -> bool:
        """MONOCHROME1: low values are displayed bright; the values themselves are kept."""
        return isinstance(self.first, DicomFrame) and self.first.header.photometric == "MONOCHROME1"

    @property
    def units(self) -> str:
        return self.first.header.units if isinstance(self.first, DicomFrame) else ""

    @property
    def transfer_syntax(self) -> str:
        return self.first.header.transfer_syntax_name if isinstance(self.first, DicomFrame) else self.source_format

    @property
    def pixel_spacing_mm(self) -> tuple[float, float] | None:
        return self.first.header.pixel_spacing_mm if isinstance(self.first, DicomFrame) else None

    @property
    def orientation(self) -> tuple[float, ...] | None:
        return self.first.header.orientation if isinstance(self.first, DicomFrame) else None

    @property
    def file_windows(self) -> tuple[Window, ...]:
        return self.first.header.windows if isinstance(self.first, DicomFrame) else ()

    def _steps_along_normal(self) -> np.ndarray | None:
        """Distances between neighbouring slices along the normal; None without full geometry."""
        normal = slice_normal(self.orientation)
        positions = [frame.position for frame in self.frames]
        if normal is None or len(positions) < 2 or any(p is None for p in positions):
            return None
        return np.abs(np.diff([np.dot(p, normal) for p in positions]))

    @property
    def slice_spacing_mm(self) -> float | None:
        """Median distance between neighbouring slices along the normal, when positions are known."""
        steps = self._steps_along_normal()
        return float(np.median(steps)) if steps is not None else None

    def uneven_spacing(self, tolerance: float = 0.1) -> list[int]:
        """Frames after which the step to the next differs from the median by more than `tolerance`
        (relative): a missing slice, or several frames at one position (phases, echoes, a repeat)."""
        steps = self._steps_along_normal()
        if steps is None:
            return []
        median = float(np.median(steps))
        return [int(i) for i in np.flatnonzero(np.abs(steps - median) > tolerance * max(median, 1e-6))]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def notes(self) -> list[str]:
        """What was wrong with the files but did not stop them loading (a frame count that lied, a spacing of
        0 ignored), once per distinct note, naming the file or how many files share it."""
        files_by_note: dict[str, list[Path]] = {}
        seen: set[int] = set()
        for frame in self.frames:
            if not isinstance(frame, DicomFrame) or id(frame.header) in seen:
                continue
            seen.add(id(frame.header))
            for note in dict.fromkeys(frame.header.notes):  # once per file, however many frames repeat it
                files_by_note.setdefault(note, []).append(frame.path)
        notes = []
        for note, paths in files_by_note.items():
            where = paths[0].name if len(paths) == 1 else f"{len(paths)} files, e.g. {paths[0].name}"
            notes.append(f"{note} ({where})")
        return notes

    @property
    def may_hold_non_finite(self) -> bool:
        """Float storage (NPY, float TIFF, DICOM Float Pixel Data) can hold NaN and infinity; integers
        cannot, and the loader refuses a rescale that would overflow them (`header_values.rescale`)."""
        first = self.first
        if isinstance(first, DicomFrame):
            return first.header.float_pixels
        return first.image.pixels.dtype.kind == "f"

    def non_finite_pixels(self) -> int:
        """How many pixels of the whole series are NaN or infinite (decodes every frame of a float series)."""
        if not self.may_hold_non_finite:
            return 0
        return sum(int(np.count_nonzero(~np.isfinite(self.values(index)))) for index in range(len(self)))

    # --- pixels -------------------------------------------------------------------------------
    def stored(self, index: int) -> np.ndarray:
        """Stored values of frame `index` (decoded on first use, then cached)."""
        self._check_index(index)
        if self._decoded[index]:
            volume = self._volume
            if volume is not None:
                return volume[index]
            cached = self._frame_cache.get(index)
            return cached if cached is not None else self._volume[index]  # moved into the volume meanwhile
        if self._volume is not None:
            self.frames[index].decode(out=self._volume[index])
            self._decoded[index] = True
            return self._volume[index]
        # Before a full load, a frame lives on its own: allocating the volume would delay the first slice.
        decoded = self.frames[index].decode()
        with self._lock:
            if self._volume is not None:  # load_all started meanwhile: keep the one copy
                self._volume[index] = decoded
                self._decoded[index] = True
                return self._volume[index]
            self._frame_cache[index] = decoded
            self._decoded[index] = True
        return decoded

    def values(self, index: int) -> np.ndarray:
        """Frame `index` in real units: float32 (HU for CT) for grayscale, uint8 RGB for colour."""
        stored = self.stored(index)  # checks the index
        return self.frames[index].values(stored)

    def is_decoded(self, index: int) -> bool:
        return bool(self._decoded[index])

    def load_all(
        self, progress: Progress | None = None, should_cancel: ShouldCancel | None = None, workers: int | None = None
    ) -> bool:
        """Decode every frame not yet decoded; False if cancelled. Threads overlap file reads and decoders."""
        self._allocate_volume()
        pending = [index for index in range(len(self.frames)) if not self._decoded[index]]
        if not pending:
            if progress:
                progress(1.0)
            return True
        workers = workers or min(8, 2 * (os.cpu_count() or 2))
        done = len(self.frames) - len(pending)
        cancelled = False
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # Submit in bounded chunks so that cancellation stops the work soon, not after the queue drains.
            for start in range(0, len(pending), workers * 4):
                if should_cancel and should_cancel():
                    cancelled = True
                    break
                chunk = pending[start : start + workers * 4]
                for _ in pool.map(self.stored, chunk):
                    done += 1
                    if progress:
                        progress(done / len(self.frames))
        return not cancelled

    def _allocate_volume(self) -> None:
        """Give a monochrome series its volume and move frames decoded so far into it."""
        if self._volume_dtype is None or self._volume is not None:
            return
        rows, columns = self.shape
        reason = too_large_for_memory(len(self.frames) * rows * columns * self._volume_dtype.itemsize)
        if reason:
            raise MedViewerError(f"series {self.description!r}: {reason}; browse it slice by slice instead")
        volume = allocate_volume((len(self.frames), rows, columns), self._volume_dtype)
        with self._lock:
            for index, frame in self._frame_cache.items():
                volume[index] = frame
            self._volume = volume  # before the cache is cleared, so readers always find the frame
            self._frame_cache.clear()

    def stored_volume(self) -> np.ndarray:
        """All stored values as one (frames, rows, columns) array; decodes what is missing."""
        self.load_all()
        if self._volume is not None:
            return self._volume
        return np.stack([self._frame_cache[index] for index in range(len(self.frames))])

    @property
    def has_voi_lut(self) -> bool:
        """The file carries a VOI LUT Sequence: a non-linear display mapping chosen by the modality."""
        return isinstance(self.first, DicomFrame) and has_voi_lut(self.first.header)

    def display(self, index: int, chosen_window: Window | None = None) -> np.ndarray:
        """Frame `index` as a viewer shows it: brightness in [0, 1] (H x W, or H x W x 3 for colour).

        Grayscale uses `chosen_window`, else the file's VOI LUT Sequence, else its first window, else an
        automatic one; MONOCHROME1 is inverted. Colour is shown as stored.
        """
        return self.display_values(self.values(index), index, chosen_window)

    def display_values(self, values: np.ndarray, index: int = 0, chosen_window: Window | None = None) -> np.ndarray:
        """`display` for other values in this series' units, e.g. an enhanced copy of frame `index`: the
        same window, VOI LUT and inversion, so that original and enhanced are compared fairly."""
        if values.ndim == 3:
            return values.astype(np.float32) / 255.0
        frame = self.frames[index]
        if chosen_window is None and isinstance(frame, DicomFrame) and has_voi_lut(frame.header):
            brightness = voi_lut_brightness(frame.header, values)
            return 1.0 - brightness if self.invert_display else brightness
        return apply_window(values, chosen_window or self.default_window(index), invert=self.invert_display)

    def default_window(self, index: int = 0) -> Window:
        """The file's first window (DICOM says the first is the default), else auto from the values."""
        if self.file_windows:
            return self.file_windows[0]
        if isinstance(self.first, RasterFrame) and self.first.image.pixels.dtype == np.uint8:
            return Window(127.5, 255.0, "LINEAR_EXACT", "full range")
        return auto_window(self.values(index))

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.frames):
            raise FrameOutOfRangeError(
                f"frame {index} is out of range: the series has {len(self.frames)} frame"
                f"{'s' if len(self.frames) != 1 else ''} (0..{len(self.frames) - 1})"
            )

    def _common_stored_dtype(self) -> np.dtype | None:
        dtypes = set()
        for frame in self.frames:
            if isinstance(frame, DicomFrame):
                dtype = frame.header.stored_dtype if frame.header.uses_fast_pixels else None
            else:
                dtype = None
            dtypes.add(dtype)
        return dtypes.pop() if len(dtypes) == 1 else None


@dataclass
class Study:
    uid: str
    description: str = ""
    date: str = ""
    patient_name: str = ""
    patient_id: str = ""
    series: list[Series] = field(default_factory=list)


@dataclass
class LoadedStudies:
    """Everything a set of paths holds: studies with their series, and what was skipped and why."""

    studies: list[Study] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing_inputs: list[Path] = field(default_factory=list)

    @property
    def series(self) -> list[Series]:
        return [series for study in self.studies for series in study.series]


def load_studies(paths: Iterable[Path | str]) -> LoadedStudies:
    """Read headers of everything the paths name and assemble studies; pixels stay on disk until asked."""
    discovered = discover_files(paths)
    result = LoadedStudies(skipped=list(discovered.skipped), missing_inputs=discovered.missing_inputs)
    dicom_files: list[DicomFile] = []
    raster_images: list[RasterImage] = []
    for path in discovered.files:
        try:
            if is_raster_path(path):
                raster_images.append(read_raster(path))
            else:
                dicom_files.append(read_dicom_header(path))
        except UnreadableFileError as error:
            result.skipped.append(Skipped(error.path, error.reason))
    result.studies = _assemble_dicom(dicom_files, result.skipped) + [_raster_study(image) for image in raster_images]
    return result


def slice_normal(orientation: tuple[float, ...] | None) -> np.ndarray | None:
    """Unit normal of the image plane: row direction cosines x column direction cosines."""
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(np.asarray(orientation[:3], dtype=float), np.asarray(orientation[3:], dtype=float))
    length = np.linalg.norm(normal)
    return normal / length if length > 1e-6 else None


def order_frames(frames: list[DicomFrame]) -> list[DicomFrame]:
    """Slices in order of position along the slice normal (works with gantry tilt), else by InstanceNumber."""
    normal = slice_normal(frames[0].header.orientation)
    by_instance = lambda f: (  # noqa: E731 - a sort key, read in one line
        f.header.instance_number if f.header.instance_number is not None else 1 << 62,
        str(f.path),
        f.index_in_file,
    )
    if normal is not None and all(f.position is not None for f in frames):
        return sorted(frames, key=lambda f: (round(float(np.dot(f.position, normal)), 4), *by_instance(f)))
    return sorted(frames, key=by_instance)


def _geometry_key(header: DicomFile) -> tuple:
    orientation = tuple(round(value, 3) for value in header.orientation) if header.orientation else None
    return (header.rows, header.columns, header.is_colour, orientation)


def _assemble_dicom(files: list[DicomFile], skipped: list[Skipped]) -> list[Study]:
    by_series: dict[tuple, list[DicomFrame]] = defaultdict(list)
    seen_instances: dict[str, Path] = {}
    for header in files:
        if header.sop_instance_uid and header.sop_instance_uid in seen_instances:
            skipped.append(
                Skipped(header.path, f"duplicate of {seen_instances[header.sop_instance_uid]} (same SOP Instance UID)")
            )
            continue
        if header.sop_instance_uid:
            seen_instances[header.sop_instance_uid] = header.path
        # A file without UIDs still deserves to be seen: it forms a series of its own.
        series_uid = header.series_uid or f"file:{header.path}"
        study_uid = header.study_uid or series_uid
        key = (study_uid, series_uid, _geometry_key(header))
        by_series[key].extend(DicomFrame(header, index) for index in range(header.number_of_frames))

    stacks_per_series = defaultdict(int)
    for study_uid, series_uid, _ in by_series:
        stacks_per_series[(study_uid, series_uid)] += 1

    studies: dict[str, Study] = {}
    for (study_uid, series_uid, _geometry), frames in by_series.items():
        first = frames[0].header
        description = first.series_description or (first.modality + " series" if first.modality else "series")
        if stacks_per_series[(study_uid, series_uid)] > 1:
            # One Series UID holding several stacks (a localizer beside the axials): show each on its own.
            description += (
                f" [{first.rows}x{first.columns}{' ' + _plane_name(first.orientation) if first.orientation else ''}]"
            )
        series = Series(order_frames(frames), description, first.series_number)
        study = studies.get(study_uid)
        if study is None:
            study = studies[study_uid] = Study(
                uid=study_uid,
                description=first.study_description,
                date=first.study_date,
                patient_name=first.patient_name,
                patient_id=first.patient_id,
            )
        series.study = study
        study.series.append(series)
    for study in studies.values():
        study.series.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.description))
    return sorted(studies.values(), key=lambda s: (s.date, s.description, s.uid))


def _plane_name(orientation: tuple[float, ...]) -> str:
    normal = slice_normal(orientation)
    if normal is None:
        return ""
    axis = int(np.argmax(np.abs(normal)))
    return ("sagittal", "coronal", "axial")[axis]


def _raster_study(image: RasterImage) -> Study:
    frames = [RasterFrame(image, index) for index in range(image.frame_count)]
    series = Series(frames, image.path.name)
    study = Study(uid=f"file:{image.path}", description=image.path.name, series=[series])
    series.study = study
    return study
