"""Pixels that are not finite (NaN, infinity) in an image to enhance: filled for the method, put back after.

Float images (NPY, float TIFF, DICOM Float Pixel Data) can mark missing or invalid measurements with NaN
or infinity. No method may see them: one NaN in a network's input becomes NaN over its whole receptive
field, and an infinite value breaks min-max normalisation. So each one is replaced by its nearest finite
neighbour while the method runs, and afterwards the output at that place (every output pixel it covers,
for super-resolution) gets the original non-finite value back: the result never invents a number where the
acquisition had none. Scores and noise estimates leave these pixels out (`medviewer.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medviewer.errors import NoFinitePixelsError


@dataclass(frozen=True)
class NonFinitePixels:
    """Where an image (H, W) or (H, W, C) is not finite, and what it held there."""

    mask: np.ndarray  # (H, W) bool: True where any channel is NaN or infinite
    values: np.ndarray  # the image's own values at those pixels, (count,) or (count, C)

    @property
    def count(self) -> int:
        return int(self.values.shape[0])


def find_non_finite(values: np.ndarray) -> NonFinitePixels | None:
    """The non-finite pixels of `values`, or None when every pixel is finite (integer images always are)."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        return None
    finite = np.isfinite(values)
    if finite.all():
        return None
    mask = ~finite if values.ndim == 2 else ~finite.all(axis=-1)
    if mask.all():
        raise NoFinitePixelsError(f"all {mask.size} pixels are NaN or infinite: there is nothing to enhance")
    return NonFinitePixels(mask=mask, values=values[mask].copy())


def fill_non_finite(values: np.ndarray, found: NonFinitePixels) -> np.ndarray:
    """A copy of `values` with each non-finite pixel replaced by its nearest finite one (Euclidean), which
    continues the anatomy instead of adding an edge the method would sharpen or denoise."""
    _, (rows, columns) = ndimage.distance_transform_edt(found.mask, return_indices=True)
    return np.asarray(values)[rows, columns]


def put_back(output: np.ndarray, found: NonFinitePixels, scale: int = 1) -> np.ndarray:
    """`output` (the method's result, `scale` times the size) with the original non-finite values restored
    at every output pixel that a non-finite input pixel covers; changed in place and returned."""
    if output.dtype.kind != "f":
        output = output.astype(np.float32)
    mask = found.mask
    if scale > 1:
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    # Each input pixel's value, repeated over the scale x scale output pixels it became.
    rows, columns = np.nonzero(mask)
    source_index = np.full(found.mask.shape, -1, dtype=np.int64)
    source_index[found.mask] = np.arange(found.count)
    output[rows, columns] = found.values[source_index[rows // scale, columns // scale]]
    return output
