"""Small generated training folders: piecewise-smooth phantoms (ellipses of random intensity on a gradient,
with a little texture), written as 16-bit PNG, float32 NPY or a DICOM CT series, one series per file or
volume, so the trainer's split-by-series has something to split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def phantom(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size] / size
    image = 0.2 + 0.2 * rows * rng.uniform(-1, 1) + 0.1 * columns * rng.uniform(-1, 1)
    for _ in range(int(rng.integers(4, 9))):
        centre = rng.uniform(0.15, 0.85, 2)
        axes = rng.uniform(0.05, 0.3, 2)
        angle = rng.uniform(0, np.pi)
        cosine, sine = np.cos(angle), np.sin(angle)
        u = ((rows - centre[0]) * cosine + (columns - centre[1]) * sine) / axes[0]
        v = (-(rows - centre[0]) * sine + (columns - centre[1]) * cosine) / axes[1]
        image = np.where(u**2 + v**2 <= 1, rng.uniform(0.0, 1.0), image)
    image += 0.02 * np.sin(rows * rng.uniform(20, 60)) * np.cos(columns * rng.uniform(20, 60))
    return np.clip(image, 0, 1).astype(np.float32)


def write_folder(folder: Path, count: int = 6, size: int = 96, seed: int = 0, kind: str = "png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = phantom(size, seed * 1000 + index)
        path = folder / f"series_{index:02d}"
        if kind == "png":
            Image.fromarray((image * 65535).astype(np.uint16)).save(path.with_suffix(".png"))
        else:
            np.save(path.with_suffix(".npy"), image * 1000 - 200)  # values in their own units, not [0, 1]
    return folder
