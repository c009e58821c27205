"""The degradation protocol (noise, bicubic downscale, low dose) shared by the trainer, the viewer and benchmarks.

A degradation means the same thing everywhere: a clean image min-max normalised to [0, 1] (float32),
degraded by `degrade`, and scored against the clean image (see `medviewer.metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from medviewer.errors import MedViewerError, ShapeMismatchError, one_line

KINDS = ("noise", "sr", "lowdose")
MIN_SCALE = 2
MAX_SCALE = 8
# Super-resolution scores ignore this many pixels at each edge, where resampling sees past the image.
SR_SCORE_BORDER = 4

_ACCEPTED = (
    f"use noise:S (S>0 in 8-bit grey levels, i.e. sigma S/255), sr:F (integer F in {MIN_SCALE}..{MAX_SCALE}) "
    "or lowdose:P (P>0 photons at peak)"
)


class InvalidDegradationError(MedViewerError):
    """A degradation spec or input that the protocol does not define."""


@dataclass(frozen=True)
class Degradation:
    """One degradation of the protocol: `kind` ('noise', 'sr', 'lowdose') and its `amount` (S, F or P)."""

    kind: str
    amount: float

    def __post_init__(self) -> None:
        # Validated here, not only in parse_degradation, so a Degradation built in code is just as trustworthy.
        if self.kind not in KINDS:
            raise InvalidDegradationError(f"unknown degradation kind {one_line(repr(self.kind))}: {_ACCEPTED}")
        amount = float(self.amount)
        if not math.isfinite(amount) or amount <= 0:
            raise InvalidDegradationError(f"{self.kind} amount must be a finite number > 0: {_ACCEPTED}")
        if self.kind == "sr" and (amount != int(amount) or not MIN_SCALE <= amount <= MAX_SCALE):
            raise InvalidDegradationError(f"sr scale must be an integer in {MIN_SCALE}..{MAX_SCALE}: {_ACCEPTED}")
        object.__setattr__(self, "amount", amount)

    @property
    def spec(self) -> str:
        """The spec string this degradation parses from, e.g. 'noise:25'."""
        amount = str(int(self.amount)) if self.amount.is_integer() else repr(self.amount)
        return f"{self.kind}:{amount}"

    @property
    def scale(self) -> int:
        """The downscale factor F for super-resolution; 1 for degradations that keep the size."""
        return int(self.amount) if self.kind == "sr" else 1

    @property
    def border(self) -> int:
        """Pixels to ignore at each edge when scoring (4 for super-resolution, as the protocol says)."""
        return SR_SCORE_BORDER if self.kind == "sr" else 0


def parse_degradation(spec: str) -> Degradation:
    """A Degradation from 'noise:S', 'sr:F' or 'lowdose:P'; anything else raises InvalidDegradationError."""
    text = str(spec).strip()
    kind, separator, amount_text = text.partition(":")
    kind = kind.strip().lower()
    amount_text = amount_text.strip()
    if not separator or kind not in KINDS or not amount_text:
        raise InvalidDegradationError(f"invalid degradation {one_line(repr(text))}: {_ACCEPTED}")
    try:
        amount = int(amount_text) if kind == "sr" else float(amount_text)
    except ValueError:
        raise InvalidDegradationError(f"invalid degradation {one_line(repr(text))}: {_ACCEPTED}") from None
    return Degradation(kind, amount)


@dataclass(frozen=True)
class NormalisedImage:
    """An image min-max scaled to [0, 1] (float32) with the range needed to map results back to its units."""

    image: np.ndarray
    low: float
    high: float

    def restore(self, array: np.ndarray) -> np.ndarray:
        """`array` (in the normalised [0, 1] scale) back in the original units, float32."""
        scaled = np.asarray(array, dtype=np.float64) * (self.high - self.low) + self.low
        return scaled.astype(np.float32)


def normalise(values: np.ndarray) -> NormalisedImage:
    """Min-max scale over the whole image (all channels together, so colour balance is kept).

    A constant image becomes zeros; its restore gives the constant back. The range is taken over finite
    values so a stray NaN does not turn the whole image into NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return NormalisedImage(np.zeros(values.shape, dtype=np.float32), 0.0, 0.0)
    low, high = float(finite.min()), float(finite.max())
    if high == low:
        return NormalisedImage(np.zeros(values.shape, dtype=np.float32), low, high)
    return NormalisedImage(((values - low) / (high - low)).astype(np.float32), low, high)


def crop_to_multiple(image: np.ndarray, factor: int) -> np.ndarray:
    """The top-left part whose height and width are multiples of `factor` (super-resolution scores this crop)."""
    factor = int(factor)
    if factor < 1:
        raise InvalidDegradationError(f"crop factor must be >= 1, got {factor}")
    height, width = image.shape[:2]
    kept_height, kept_width = height - height % factor, width - width % factor
    if kept_height == 0 or kept_width == 0:
        raise InvalidDegradationError(f"a {height}x{width} image is smaller than the scale factor {factor}")
    return image[:kept_height, :kept_width]


def pillow_resize(image: np.ndarray, height: int, width: int, resample: Image.Resampling) -> np.ndarray:
    """Resize a float image through Pillow's mode-F path (float32), per channel for (H, W, C) images.

    Pillow's filters widen their support on downscaling, so they antialias; this one function is the
    protocol's bicubic for both the sr downscale and the baseline upscale.
    """
    values = np.asarray(image, dtype=np.float32)
    if values.ndim == 3:
        channels = [pillow_resize(values[..., channel], height, width, resample) for channel in range(values.shape[-1])]
        return np.stack(channels, axis=-1)
    if values.ndim != 2:
        raise ShapeMismatchError(f"expected a 2-D or (H, W, channels) image, got {values.ndim} dimensions")
    resized = Image.fromarray(np.ascontiguousarray(values), mode="F").resize((int(width), int(height)), resample)
    return np.asarray(resized, dtype=np.float32)


def degrade(clean: np.ndarray, degradation: Degradation, seed: int = 0) -> np.ndarray:
    """The degraded version of a clean [0, 1] image (float32), deterministic for a given seed.

    noise:S adds N(0, (S/255)^2), unclipped. sr:F shrinks by F with Pillow bicubic (input must be a multiple
    of F: see crop_to_multiple). lowdose:P draws Poisson counts with P photons at intensity 1, scales back by
    1/P and adds Gaussian read noise of one count (sigma 1/P); the clean image is clipped at 0 first because
    a negative expected count has no meaning.
    """
    values = np.asarray(clean, dtype=np.float64)
    if values.ndim not in (2, 3):
        raise InvalidDegradationError(f"can only degrade 2-D or (H, W, channels) images, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    if degradation.kind == "noise":
        sigma = degradation.amount / 255.0
        return (values + rng.normal(0.0, sigma, size=values.shape)).astype(np.float32)
    if degradation.kind == "sr":
        factor = degradation.scale
        height, width = values.shape[:2]
        if height % factor or width % factor:
            raise InvalidDegradationError(
                f"sr:{factor} needs height and width that are multiples of {factor}, got {height}x{width}; "
                "crop the image first (crop_to_multiple)"
            )
        return pillow_resize(values, height // factor, width // factor, Image.Resampling.BICUBIC)
    photons = degradation.amount
    counts = rng.poisson(np.clip(values, 0.0, None) * photons)
    read_noise = rng.normal(0.0, 1.0, size=values.shape)
    return ((counts + read_noise) / photons).astype(np.float32)


def degraded_baseline(degraded: np.ndarray, degradation: Degradation, shape: tuple[int, ...]) -> np.ndarray:
    """What a user sees without enhancement, at the reference's `shape`: for sr, Pillow bicubic upscaling."""
    if degradation.kind == "sr":
        return pillow_resize(degraded, shape[0], shape[1], Image.Resampling.BICUBIC)
    values = np.asarray(degraded, dtype=np.float32)
    if values.shape[:2] != tuple(shape[:2]):
        raise ShapeMismatchError(
            f"a {degradation.spec} image keeps its size, but it is {values.shape} and the reference is {tuple(shape)}"
        )
    return values
