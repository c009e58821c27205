"""The three reference modes: how good an enhancement is, and against what.

- simulate: the loaded image is the reference; a copy degraded per the protocol is enhanced and scored
  against it, beside the degraded copy itself, so the gain is visible.
- paired: a second image of the same anatomy (e.g. the full-dose scan) is the reference.
- none: clinical use, no ground truth; the difference map and noise estimates, never a PSNR, because a
  PSNR against the noisy input would reward doing nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medviewer.enhance.degrade import Degradation, crop_to_multiple, degrade, degraded_baseline, normalise
from medviewer.enhance.finite import NonFinitePixels, fill_non_finite, find_non_finite, put_back
from medviewer.errors import MedViewerError
from medviewer.metrics import Scores, estimate_noise_sigma, score, signed_difference_map
from medviewer.models.classical import bicubic_upscale

if TYPE_CHECKING:  # the engine imports torch; scoring and the viewer's start-up must not need it
    from medviewer.enhance.engine import CancelCheck, Enhancer, Progress

SUPER_RESOLUTION_BORDER = 4


class WrongScaleError(MedViewerError):
    """A model whose scale does not fit the degradation or the reference."""


@dataclass
class Evaluation:
    """Everything a report or the viewer shows for one enhanced image. Arrays are in the image's units."""

    mode: str  # "simulate", "paired" or "none"
    enhanced: np.ndarray
    model_input: np.ndarray  # what the model was given: the degraded copy in simulate mode
    reference: np.ndarray | None
    baseline: np.ndarray | None  # the model input at the output's size (bicubic for super-resolution)
    enhanced_scores: Scores | None
    baseline_scores: Scores | None
    difference: np.ndarray  # enhanced minus reference, or minus the baseline when there is no reference
    noise_sigma_input: float
    noise_sigma_enhanced: float
    seconds: float
    degradation: str | None = None
    # Pixels of the input that were NaN or infinite: kept as they were in `enhanced`, left out of every score.
    non_finite_pixels: int = 0

    @property
    def gain_db(self) -> float | None:
        if self.enhanced_scores is None or self.baseline_scores is None:
            return None
        return self.enhanced_scores.psnr - self.baseline_scores.psnr


def simulate(
    enhancer: Enhancer,
    values: np.ndarray,
    degradation: Degradation,
    seed: int = 0,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> Evaluation:
    """Degrade a copy of `values` (the reference), enhance it, score both against the reference."""
    check_simulation_fits(enhancer.id, enhancer.task, enhancer.scale, degradation)
    reference = crop_to_multiple(np.asarray(values), degradation.scale)
    found = find_non_finite(reference)
    # The protocol runs on a finite image; non-finite pixels are marked NaN in the scored reference (so
    # every score leaves them out) and get their own values back in what is shown.
    clean = normalise(fill_non_finite(reference, found) if found is not None else reference)
    scored_reference = _marked(clean.image, found)
    degraded = degrade(clean.image, degradation, seed=seed)
    started = time.perf_counter()
    enhanced = enhancer.enhance_normalised_image(degraded, progress, should_cancel)
    seconds = time.perf_counter() - started
    baseline = degraded_baseline(degraded, degradation, clean.image.shape[:2])
    border = degradation.border
    shown_enhanced = _kept(_restore(clean, enhanced, reference), found)
    shown_input = _restore(clean, degraded, reference)
    if found is not None:
        shown_input = _marked(shown_input, _shrunk(found, degradation.scale))
    return Evaluation(
        mode="simulate",
        enhanced=shown_enhanced,
        model_input=shown_input,
        reference=reference,
        baseline=_kept(_restore(clean, baseline, reference), found),
        enhanced_scores=score(scored_reference, enhanced, border=border),
        baseline_scores=score(scored_reference, baseline, border=border),
        difference=_restore_difference(clean, signed_difference_map(scored_reference, enhanced)),
        noise_sigma_input=_sigma(shown_input),
        noise_sigma_enhanced=_sigma(shown_enhanced),
        seconds=seconds,
        degradation=degradation.spec,
        non_finite_pixels=found.count if found is not None else 0,
    )


def check_simulation_fits(method_id: str, task: str, scale: int, degradation: Degradation) -> None:
    """A method can be scored on a degradation only if it undoes that kind of loss at that scale; callers
    check this before loading weights, `simulate` checks it again."""
    if task == "translation":
        raise WrongScaleError(f"{method_id} translates between modalities; there is no reference to simulate")
    if scale != degradation.scale:
        needs = f"a x{degradation.scale} model" if degradation.scale > 1 else "a same-size model"
        raise WrongScaleError(f"{method_id} changes the size by x{scale}; {degradation.spec} needs {needs}")


def paired(
    enhancer: Enhancer,
    values: np.ndarray,
    reference: np.ndarray,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> Evaluation:
    """Enhance `values` and score against `reference`, both scaled by the reference's own range."""
    values, reference = np.asarray(values), np.asarray(reference)
    expected = (values.shape[0] * enhancer.scale, values.shape[1] * enhancer.scale)
    if reference.shape[:2] != expected:
        raise WrongScaleError(
            f"{enhancer.id} turns {values.shape[1]}x{values.shape[0]} into {expected[1]}x{expected[0]}, "
            f"but the reference is {reference.shape[1]}x{reference.shape[0]}"
        )
    if reference.ndim != values.ndim:
        raise MedViewerError("the reference and the image must both be grey or both be colour")
    started = time.perf_counter()
    enhanced = enhancer.enhance(values, progress, should_cancel)
    seconds = time.perf_counter() - started
    baseline = _at_output_size(values, enhancer.scale)
    frame = normalise(reference)  # one scale for all three, so data range 1 means the reference's range
    border = SUPER_RESOLUTION_BORDER if enhancer.scale > 1 else 0
    return Evaluation(
        mode="paired",
        enhanced=enhanced,
        model_input=values,
        reference=reference,
        baseline=baseline,
        enhanced_scores=score(frame.image, _in_frame(frame, enhanced), border=border),
        baseline_scores=score(frame.image, _in_frame(frame, baseline), border=border),
        difference=signed_difference_map(reference.astype(np.float32), enhanced.astype(np.float32)),
        noise_sigma_input=_sigma(values),
        noise_sigma_enhanced=_sigma(enhanced),
        seconds=seconds,
        non_finite_pixels=_count_non_finite(values),
    )


def without_reference(
    enhancer: Enhancer,
    values: np.ndarray,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> Evaluation:
    """Clinical use: what the model changed (enhanced minus input) and noise estimates; no scores."""
    values = np.asarray(values)
    started = time.perf_counter()
    enhanced = enhancer.enhance(values, progress, should_cancel)
    seconds = time.perf_counter() - started
    baseline = _at_output_size(values, enhancer.scale)
    return Evaluation(
        mode="none",
        enhanced=enhanced,
        model_input=values,
        reference=None,
        baseline=baseline,
        enhanced_scores=None,
        baseline_scores=None,
        difference=signed_difference_map(baseline.astype(np.float32), enhanced.astype(np.float32)),
        noise_sigma_input=_sigma(values),
        noise_sigma_enhanced=_sigma(enhanced),
        seconds=seconds,
        non_finite_pixels=_count_non_finite(values),
    )


def _at_output_size(values: np.ndarray, scale: int) -> np.ndarray:
    """The input as a user would see it without the model: bicubic-upscaled for super-resolution."""
    if scale == 1:
        return values
    if values.ndim == 3:
        return np.stack([_at_output_size(values[..., channel], scale) for channel in range(values.shape[-1])], -1)
    found = find_non_finite(values)
    frame = normalise(fill_non_finite(values, found) if found is not None else values)
    return _kept(frame.restore(bicubic_upscale(frame.image, scale)), found, scale)


def _count_non_finite(values: np.ndarray) -> int:
    found = find_non_finite(values)
    return found.count if found is not None else 0


def _kept(image: np.ndarray, found: NonFinitePixels | None, scale: int = 1) -> np.ndarray:
    """`image` with the input's own non-finite values back where the input had them."""
    return image if found is None else put_back(image, found, scale)


def _marked(image: np.ndarray, found: NonFinitePixels | None) -> np.ndarray:
    """A copy of `image` with NaN where the input was not finite: left out of scores and noise estimates."""
    if found is None:
        return image
    marked = np.array(image, dtype=np.float32)
    marked[found.mask] = np.nan
    return marked


def _shrunk(found: NonFinitePixels, factor: int) -> NonFinitePixels:
    """The low-resolution pixels whose factor x factor block held a non-finite pixel."""
    if factor == 1:
        return found
    height, width = found.mask.shape
    mask = found.mask.reshape(height // factor, factor, width // factor, factor).any(axis=(1, 3))
    return NonFinitePixels(mask=mask, values=np.full(int(mask.sum()), np.nan, np.float32))


def _restore(frame, image: np.ndarray, like: np.ndarray) -> np.ndarray:
    restored = frame.restore(image)
    if np.issubdtype(like.dtype, np.integer) and like.ndim == 3:  # colour shown as it came: 8-bit RGB
        return np.clip(np.rint(restored), 0, np.iinfo(like.dtype).max).astype(like.dtype)
    return restored


def _restore_difference(frame, difference: np.ndarray) -> np.ndarray:
    """A difference of normalised images back in units: scaled by the range, without the offset."""
    return (difference * np.float32(frame.high - frame.low)).astype(np.float32)


def _in_frame(frame, values: np.ndarray) -> np.ndarray:
    span = frame.high - frame.low
    return ((values.astype(np.float64) - frame.low) / (span if span > 0 else 1.0)).astype(np.float32)


def _sigma(values: np.ndarray) -> float:
    values = np.asarray(values, np.float32)
    if values.ndim == 3:
        return float(np.mean([estimate_noise_sigma(values[..., channel]) for channel in range(values.shape[-1])]))
    return float(estimate_noise_sigma(values))
