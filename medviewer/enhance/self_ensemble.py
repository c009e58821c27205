"""Geometric self-ensemble: run a network on rotated and flipped copies of an image and average the results.

Convolutional networks are not exactly equivariant to rotations and flips; their errors on the eight
dihedral copies of an image are partly independent, so the average is better than any one of them
(Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW, the
"+" models; Zhang et al. 2021, DRUNet, report it for denoising). It costs one network pass per copy and
changes no weights, so it is a speed-for-quality choice left to the user: x1 (off), x2 (the image and its
transpose), x4 (the subgroup {identity, transpose, rotation by 180 degrees, anti-transpose}) or x8 (all eight).
Every transform here maps an upscaled output exactly as it maps the input, so the same holds for
super-resolution networks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medviewer.errors import MedViewerError

ENSEMBLE_SIZES = (1, 2, 4, 8)

# (quarter turns, then transpose?) per copy; each list is a subgroup of the dihedral group, so that the
# ensemble of an image and of its transpose are the same set of copies (no orientation is favoured).
_TRANSFORMS: dict[int, tuple[tuple[int, bool], ...]] = {
    1: ((0, False),),
    2: ((0, False), (0, True)),
    4: ((0, False), (0, True), (2, False), (2, True)),
    8: tuple((turns, transpose) for transpose in (False, True) for turns in range(4)),
}


def check_ensemble_size(size: object) -> int:
    """`size` as an int from ENSEMBLE_SIZES, or a one-line error naming the choices."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) not in ENSEMBLE_SIZES:
        choices = ", ".join(str(choice) for choice in ENSEMBLE_SIZES)
        raise MedViewerError(f"self-ensemble size must be one of {choices}, got {size!r}")
    return int(size)


def _forward(images: np.ndarray, turns: int, transpose: bool) -> np.ndarray:
    """Transform a stack (N, H, W): rotate by `turns` quarter turns, then transpose each image."""
    moved = np.rot90(images, turns, axes=(1, 2))
    return moved.transpose(0, 2, 1) if transpose else moved


def _inverse(images: np.ndarray, turns: int, transpose: bool) -> np.ndarray:
    moved = images.transpose(0, 2, 1) if transpose else images
    return np.rot90(moved, -turns, axes=(1, 2))


def run_self_ensemble(run: Callable[[np.ndarray, int, int], np.ndarray], images: np.ndarray, size: int) -> np.ndarray:
    """The mean of `run` over `size` dihedral copies of the stack `images` (N, H, W), mapped back.

    `run(copy, index, size)` enhances one transformed copy (a contiguous array); `index` lets the caller
    report progress across the copies. The result is float32, accumulated in place (one extra output)."""
    size = check_ensemble_size(size)
    total: np.ndarray | None = None
    for index, (turns, transpose) in enumerate(_TRANSFORMS[size]):
        copy = np.ascontiguousarray(_forward(images, turns, transpose))
        result = _inverse(run(copy, index, size), turns, transpose)
        if total is None:
            total = np.array(result, np.float32)  # a copy: `result` may be a view of the runner's buffer
        else:
            total += result
    assert total is not None
    if size > 1:
        total /= size
    return total
