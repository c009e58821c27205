"""Colour images through grey-level models: enhance the luminance, carry the chroma along.

Every model here is trained on single-channel images; running one on R, G and B separately shifts hues
where the channels respond differently, so colour is split into luma and chroma (ITU-R BT.601 YCbCr,
scikit-image's conversion), only the luma is enhanced, and the chroma is upscaled by bicubic when the
model changes the size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage.color import rgb2ycbcr, ycbcr2rgb

# BT.601 luma occupies 16..235 of the 0..255 scale; this maps it onto the [0, 1] the models expect.
_LUMA_OFFSET = 16.0
_LUMA_RANGE = 219.0


def enhance_luminance(
    rgb: np.ndarray,
    enhance_grey: Callable[[np.ndarray], np.ndarray],
    upscale_chroma: Callable[[np.ndarray, int], np.ndarray],
    scale: int,
) -> np.ndarray:
    """`rgb` is float (H, W, 3) in [0, 1]; returns float32 (H*scale, W*scale, 3) in [0, 1].

    `enhance_grey` maps an (H, W) image in [0, 1] to (H*scale, W*scale)."""
    ycbcr = rgb2ycbcr(np.clip(rgb, 0.0, 1.0))
    luma = (ycbcr[..., 0] - _LUMA_OFFSET) / _LUMA_RANGE
    enhanced_luma = enhance_grey(luma.astype(np.float32)).astype(np.float64)
    chroma = [ycbcr[..., channel].astype(np.float32) for channel in (1, 2)]
    if scale != 1:
        chroma = [upscale_chroma(plane, scale) for plane in chroma]
    merged = np.stack([enhanced_luma * _LUMA_RANGE + _LUMA_OFFSET, *chroma], axis=-1)
    return np.clip(ycbcr2rgb(merged), 0.0, 1.0).astype(np.float32)
