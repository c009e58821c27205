"""The two unpaired domains the shipped CycleGAN (X-ray to CT-like) learns between, and their held-out images.

Domain A, radiograph-like: simulated projection radiographs (`training_pool.simulated_radiograph`) and
digitally reconstructed radiographs (DRRs) of our synthetic head CT, seen from angles around its long axis.
Domain B, CT/MR slices: the synthetic head CT at brain, subdural and bone windows, and the CT and MR frames
in pydicom's test data except the held-out CT_small and MR_small. Nothing else is allowed (DEVELOPERS.md):
most of both domains is simulated, which the model's card says. The held-out images of both domains, never
trained on, give the cycle-consistency figure: radiographs of other seeds, DRRs from angles between the
training ones, and pydicom's CT_small and MR_small.

`write_translation_domains(folder)` writes `A/` and `B/` (16-bit PNGs, one series per file) and `held-out/A`,
`held-out/B`, for `medviewer-train run cyclegan-xray-ct --data folder/A folder/B`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from medviewer.io.atomic import write_atomically
from trainer.training_pool import dicom_images, held_out_images, normalised, simulated_radiograph

# Water's linear attenuation near 70 keV, per mm, and the head phantom's field of view: a DRR is the line
# integral of attenuation, as a processed radiograph's log-transmission shows it (bone bright).
_WATER_PER_MM = 0.019
_FIELD_MM = 220.0
TRAINING_ANGLES = tuple(range(0, 180, 15))  # degrees about the head's long axis: 0 is frontal, 90 lateral
HELD_OUT_ANGLES = (22.5, 67.5, 112.5)  # between the training ones: a view never seen
_RADIOGRAPH_SEEDS = range(40_000, 40_096)
_HELD_OUT_RADIOGRAPH_SEEDS = range(49_000, 49_008)


def head_ct_volume(slices: int = 96, size: int = 128) -> np.ndarray:
    """The synthetic head CT (Hounsfield units, no noise) the DRRs project and domain B slices."""
    from medviewer.io.synthetic import head_phantom_hu

    return head_phantom_hu(slices, size, noise_hu=0.0)


def digitally_reconstructed_radiograph(volume_hu: np.ndarray, angle_degrees: float) -> np.ndarray:
    """A DRR of an axial (slices, rows, columns) HU volume, viewed at `angle_degrees` about its long axis:
    the line integral of attenuation (air 0, water 1, bone ~2 x water's), head at the top."""
    from scipy import ndimage

    attenuation = np.clip(1.0 + volume_hu.astype(np.float32) / 1000.0, 0.0, None)
    rotated = ndimage.rotate(attenuation, angle_degrees, axes=(1, 2), reshape=False, order=1, cval=0.0)
    pixel_mm = _FIELD_MM / volume_hu.shape[-1]
    path = rotated.sum(axis=1) * pixel_mm * _WATER_PER_MM  # through the rows: anterior to posterior
    return path[::-1].astype(np.float32)  # slices run from the bottom up; a radiograph shows the top first


def radiograph_domain(volume_hu: np.ndarray | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Domain A for training: simulated radiographs and DRRs from the training angles."""
    for seed in _RADIOGRAPH_SEEDS:
        yield f"radiograph/simulated-{seed}", simulated_radiograph(256, seed)
    volume = head_ct_volume() if volume_hu is None else volume_hu
    for angle in TRAINING_ANGLES:
        yield f"drr/head-{angle:05.1f}", digitally_reconstructed_radiograph(volume, angle)


def ct_mr_domain(volume_hu: np.ndarray | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Domain B for training: head CT slices at three windows, and pydicom's CT and MR frames (not held out)."""
    volume = head_ct_volume() if volume_hu is None else volume_hu
    windows = {"brain": (40, 80), "subdural": (75, 215), "bone": (600, 2800)}
    for index in range(4, len(volume) - 4, 4):
        for window_name, (centre, width) in windows.items():
            yield (
                f"head-ct/slice{index:03d}-{window_name}",
                np.clip(volume[index], centre - width / 2, centre + width / 2),
            )
    yield from dicom_images(frozenset({"CT", "MR"}))


def held_out_domains(volume_hu: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{"A": radiographs of unseen seeds and DRRs from unseen angles, "B": CT_small and MR_small}."""
    volume = head_ct_volume() if volume_hu is None else volume_hu
    radiographs = {
        f"radiograph/simulated-{seed}": simulated_radiograph(256, seed) for seed in _HELD_OUT_RADIOGRAPH_SEEDS
    }
    drrs = {f"drr/head-{angle:05.1f}": digitally_reconstructed_radiograph(volume, angle) for angle in HELD_OUT_ANGLES}
    slices = {name: image for name, image in held_out_images().items() if name in ("CT_small.dcm", "MR_small.dcm")}
    return {"A": {**radiographs, **drrs}, "B": slices}


def write_translation_domains(folder: Path) -> dict[str, list[Path]]:
    """Write A/, B/, held-out/A/ and held-out/B/ under `folder` as 16-bit PNGs, atomically per file."""
    from PIL import Image

    volume = head_ct_volume()
    groups = {
        "A": dict(radiograph_domain(volume)),
        "B": dict(ct_mr_domain(volume)),
        **{f"held-out/{domain}": images for domain, images in held_out_domains(volume).items()},
    }
    written: dict[str, list[Path]] = {}
    for group, images in groups.items():
        for name, image in images.items():
            path = Path(folder) / group / f"{name.replace('.dcm', '')}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.round(normalised(image) * 65535).astype(np.uint16)
            write_atomically(
                path, lambda temporary, pixels=pixels: Image.fromarray(pixels).save(temporary, format="PNG")
            )
            written.setdefault(group, []).append(path)
    return written
