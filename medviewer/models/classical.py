"""Classical enhancement methods (interpolation, contrast, denoising) behind the same image-in, image-out interface.

These are the baselines the source projects compared their networks against. Each takes a normalised
float32 image (values about [0, 1], possibly a little outside) and returns float32; (H, W, channels)
images are processed channel by channel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage import exposure, filters, restoration

from medviewer.enhance.degrade import pillow_resize
from medviewer.errors import UnknownModelError, one_line
from medviewer.metrics import estimate_noise_sigma

CLAHE_CLIP_LIMIT = 0.01
NLM_PATCH_SIZE = 5
NLM_PATCH_DISTANCE = 6
# h = 0.8 sigma is scikit-image's suggestion for fast_mode with a known sigma.
NLM_H_PER_SIGMA = 0.8
UNSHARP_RADIUS = 2.0
UNSHARP_AMOUNT = 1.0


def _per_channel(grey_function: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    """Apply a grey-image method to a 2-D image, or to each channel of an (H, W, channels) one; float32 out."""
    values = np.asarray(image, dtype=np.float32)
    if values.ndim == 3:
        return np.stack([_per_channel(grey_function, values[..., c]) for c in range(values.shape[-1])], axis=-1)
    return np.asarray(grey_function(values), dtype=np.float32)


def _upscale(image: np.ndarray, scale: int, resample: Image.Resampling) -> np.ndarray:
    if int(scale) != scale or scale < 1:
        raise ValueError(f"upscaling factor must be a positive integer, got {scale!r}")
    scale = int(scale)
    height, width = np.shape(image)[:2]
    return pillow_resize(image, height * scale, width * scale, resample)


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Pillow bicubic (mode F) enlargement by `scale`: the protocol's super-resolution baseline, same code path."""
    return _upscale(image, scale, Image.Resampling.BICUBIC)


def lanczos_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Pillow Lanczos (mode F) enlargement by `scale`: sharper than bicubic, with more ringing."""
    return _upscale(image, scale, Image.Resampling.LANCZOS)


def histogram_equalisation(image: np.ndarray) -> np.ndarray:
    """Global histogram equalisation (scikit-image `equalize_hist`, 256 bins); output in [0, 1]."""
    return _per_channel(exposure.equalize_hist, image)


def clahe(image: np.ndarray, clip_limit: float = CLAHE_CLIP_LIMIT) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (scikit-image `equalize_adapthist`); output in [0, 1]."""

    def grey_clahe(grey: np.ndarray) -> np.ndarray:
        # equalize_adapthist converts to 16-bit integers first and refuses floats outside [-1, 1]; the
        # protocol's slight overshoot (noise) carries no contrast information, so clip it away.
        return exposure.equalize_adapthist(np.clip(grey, 0.0, 1.0), clip_limit=clip_limit)

    return _per_channel(grey_clahe, image)


def non_local_means(image: np.ndarray) -> np.ndarray:
    """Non-local means (scikit-image, fast mode, 5x5 patches, 13x13 search area), h = 0.8 sigma.

    sigma is estimated blindly (Immerkaer, `metrics.estimate_noise_sigma`) so the user need not know it.
    """

    def grey_nlm(grey: np.ndarray) -> np.ndarray:
        sigma = estimate_noise_sigma(grey)
        if sigma == 0.0:
            # A noise-free (e.g. constant) image: h = 0 would divide by zero in the patch weights.
            return grey.copy()
        return restoration.denoise_nl_means(
            grey,
            h=NLM_H_PER_SIGMA * sigma,
            sigma=sigma,
            fast_mode=True,
            patch_size=NLM_PATCH_SIZE,
            patch_distance=NLM_PATCH_DISTANCE,
        )

    return _per_channel(grey_nlm, image)


def unsharp_mask(image: np.ndarray) -> np.ndarray:
    """Unsharp masking (scikit-image, radius 2, amount 1), values kept in the input's range convention."""

    def grey_unsharp(grey: np.ndarray) -> np.ndarray:
        return filters.unsharp_mask(grey, radius=UNSHARP_RADIUS, amount=UNSHARP_AMOUNT, preserve_range=True)

    return _per_channel(grey_unsharp, image)


@dataclass(frozen=True)
class ClassicalMethod:
    """A classical method as the viewer lists it beside the networks."""

    id: str
    name: str
    task: str  # 'denoise', 'super-resolution' or 'contrast'
    scale: int
    function: Callable[[np.ndarray], np.ndarray]
    description: str


def _upscaler(kind: str, scale: int) -> ClassicalMethod:
    if kind == "bicubic":
        return ClassicalMethod(
            id=f"bicubic-x{scale}",
            name=f"Bicubic x{scale}",
            task="super-resolution",
            scale=scale,
            function=functools.partial(bicubic_upscale, scale=scale),
            description=(
                f"Enlarges {scale}x by bicubic interpolation (the protocol's baseline); it adds no detail, "
                "so edges look soft."
            ),
        )
    return ClassicalMethod(
        id=f"lanczos-x{scale}",
        name=f"Lanczos x{scale}",
        task="super-resolution",
        scale=scale,
        function=functools.partial(lanczos_upscale, scale=scale),
        description=(
            f"Enlarges {scale}x by Lanczos interpolation, a little sharper than bicubic; it adds no detail "
            "and can ring at strong edges."
        ),
    )


CLASSICAL_METHODS: tuple[ClassicalMethod, ...] = (
    *(_upscaler("bicubic", scale) for scale in (2, 3, 4)),
    *(_upscaler("lanczos", scale) for scale in (2, 3, 4)),
    ClassicalMethod(
        id="histeq",
        name="Histogram equalisation",
        task="contrast",
        scale=1,
        function=histogram_equalisation,
        description=(
            "Spreads grey levels evenly over the whole image to raise global contrast; it also amplifies "
            "noise and changes values, so measurements in real units no longer hold."
        ),
    ),
    ClassicalMethod(
        id="clahe",
        name="CLAHE",
        task="contrast",
        scale=1,
        function=clahe,
        description=(
            "Equalises contrast tile by tile with a clip limit, bringing out local detail; it can amplify "
            "noise in flat regions and does not preserve values."
        ),
    ),
    ClassicalMethod(
        id="nlm",
        name="Non-local means",
        task="denoise",
        scale=1,
        function=non_local_means,
        description=(
            "Averages similar patches to remove noise while keeping edges, with the noise level estimated "
            "from the image; fine texture and low-contrast detail can be smoothed away."
        ),
    ),
    ClassicalMethod(
        id="unsharp",
        name="Unsharp mask / edge enhancement",
        task="contrast",
        scale=1,
        function=unsharp_mask,
        description=(
            "Sharpens by adding back the difference from a blurred copy; it amplifies noise and draws halos "
            "beside strong edges."
        ),
    ),
)


def classical_method(method_id: str) -> ClassicalMethod:
    """The classical method with this id, or UnknownModelError naming the ids that exist."""
    for method in CLASSICAL_METHODS:
        if method.id == method_id:
            return method
    known = ", ".join(method.id for method in CLASSICAL_METHODS)
    raise UnknownModelError(f"unknown classical method {one_line(repr(method_id))}; known: {known}")
