"""What the viewer's worker thread runs: one slice, many slices or many models, in a chosen reference mode.

Plain functions of arrays and core objects, with progress and cancel callbacks, so the GUI only moves
them to a thread and the same runs are testable without a display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from medviewer.enhance.device import choose_device, describe_device
from medviewer.enhance.engine import CancelCheck, EnhancementCancelled, Enhancer, Progress, load_enhancer
from medviewer.enhance.evaluation import Evaluation, check_simulation_fits, paired, simulate, without_reference

# Re-exported: callers of the session find the reference choice here too; it lives apart so the GUI can
# build one without importing torch.
from medviewer.enhance.reference import REFERENCE_MODES, InvalidReferenceError, ReferenceChoice  # noqa: F401
from medviewer.errors import FrameOutOfRangeError, MedViewerError, one_line
from medviewer.io.study import Series
from medviewer.io.volume_memory import too_large_for_memory
from medviewer.models.registry import ModelEntry

log = logging.getLogger(__name__)

CLASSICAL_DEVICE = "CPU (classical)"
# An Evaluation keeps the enhanced image, the model input, the reference, the baseline and the difference:
# about five float32 arrays of the output's size.
_ARRAYS_PER_EVALUATION = 5
_FLOAT32_BYTES = 4


class EvaluationTooLargeError(MedViewerError):
    """The evaluations asked for would not fit in memory."""


def evaluate(
    enhancer: Enhancer,
    values: np.ndarray,
    choice: ReferenceChoice,
    reference: np.ndarray | None = None,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> Evaluation:
    """Enhance one image and judge it as `choice` says; `reference` is needed (only) in paired mode."""
    if choice.mode == "simulate":
        return simulate(enhancer, values, choice.degradation, choice.seed, progress, should_cancel)
    if choice.mode == "paired":
        if reference is None:
            raise InvalidReferenceError("paired mode needs a reference image; open one or choose another mode")
        return paired(enhancer, values, reference, progress, should_cancel)
    return without_reference(enhancer, values, progress, should_cancel)


def evaluate_slices(
    enhancer: Enhancer,
    series: Series,
    indices: Sequence[int],
    choice: ReferenceChoice,
    reference_series: Series | None = None,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> dict[int, Evaluation]:
    """One evaluation per slice, keyed by slice index, in the order of `indices`.

    Simulate mode seeds slice i with `choice.seed + i`, so slices get different noise and a run repeats
    exactly; paired mode judges slice i against `reference_series.values(i)`. Progress runs once from 0
    to 1 over all slices; cancellation is checked between slices and inside each, and raises
    EnhancementCancelled. Everything is checked before the first slice runs: indices, the reference
    series, and that the results fit in memory.
    """
    indices = [int(index) for index in indices]
    for index in indices:
        if not 0 <= index < len(series):
            raise FrameOutOfRangeError(
                f"slice {index} is out of range: the series has {len(series)} slices (0..{len(series) - 1})"
            )
    if choice.mode == "paired":
        if reference_series is None:
            raise InvalidReferenceError("paired mode needs a reference series; open one or choose another mode")
        if len(reference_series) != len(series):
            raise InvalidReferenceError(
                f"the reference series has {len(reference_series)} slices but the series has {len(series)}; "
                "paired slices must correspond one to one"
            )
    _refuse_if_too_large(enhancer, series, len(indices), choice)
    evaluations: dict[int, Evaluation] = {}
    for done, index in enumerate(indices):
        _check_cancel(should_cancel)
        slice_choice = replace(choice, seed=choice.seed + index) if choice.mode == "simulate" else choice
        reference = reference_series.values(index) if choice.mode == "paired" else None
        evaluations[index] = evaluate(
            enhancer,
            series.values(index),
            slice_choice,
            reference,
            _share_of(progress, done, len(indices)),
            should_cancel,
        )
        if progress is not None:
            progress((done + 1) / len(indices))
    return evaluations


def _refuse_if_too_large(enhancer: Enhancer, series: Series, count: int, choice: ReferenceChoice) -> None:
    rows, columns = series.shape
    # Simulate mode scores at the reference's size; the others grow the image by the model's scale.
    scale = 1 if choice.mode == "simulate" else enhancer.scale
    channels = 3 if series.is_colour else 1
    size_bytes = count * _ARRAYS_PER_EVALUATION * rows * columns * scale * scale * channels * _FLOAT32_BYTES
    reason = too_large_for_memory(size_bytes)
    if reason:
        raise EvaluationTooLargeError(f"evaluating {count} slices: {reason}; choose fewer slices")


@dataclass
class ComparisonResult:
    """One model's outcome on the shared slice: its evaluation, or why it has none."""

    entry: ModelEntry
    evaluation: Evaluation | None
    error: str | None
    device: str  # readable, as reports print it: 'cuda (NVIDIA H100)', 'cpu (8 threads)', 'CPU (classical)'
    name: str = ""  # how the result was made, e.g. "... (self-ensemble x8)"; the entry's name when empty

    def __post_init__(self) -> None:
        self.name = self.name or self.entry.name


def compare_models(
    entries: Sequence[ModelEntry],
    values: np.ndarray,
    choice: ReferenceChoice,
    reference: np.ndarray | None = None,
    device: str | None = None,
    load: Callable[..., Enhancer] = load_enhancer,
    progress: Progress | None = None,
    should_cancel: CancelCheck | None = None,
) -> list[ComparisonResult]:
    """Run every model on the same image under the same reference choice, in the order given.

    A model that cannot be loaded or run (a user-facing MedViewerError, such as a scale that does not fit
    the degradation, a broken weights file or the device's memory) gets a result with `error` set and the
    others still run; cancelling raises EnhancementCancelled. Progress runs from 0 to 1 over all models.
    """
    results: list[ComparisonResult] = []
    for done, entry in enumerate(entries):
        _check_cancel(should_cancel)
        enhancer: Enhancer | None = None
        try:
            if choice.mode == "simulate":  # refused before any weight is loaded
                check_simulation_fits(entry.id, entry.task, entry.scale, choice.degradation)
            enhancer = load(entry, device)
            evaluation = evaluate(
                enhancer, values, choice, reference, _share_of(progress, done, len(entries)), should_cancel
            )
            label = device_label(entry, enhancer, device)
            results.append(ComparisonResult(entry, evaluation, None, label, enhancer.name))
        except EnhancementCancelled:
            raise
        except MedViewerError as error:
            log.info("model %s failed in the comparison: %s", entry.id, error)
            results.append(ComparisonResult(entry, None, one_line(str(error)), device_label(entry, enhancer, device)))
        del enhancer  # one network's weights on the device at a time
        if progress is not None:
            progress((done + 1) / len(entries))
    return results


def device_label(entry: ModelEntry, enhancer: Enhancer | None, requested: str | None) -> str:
    """The device as the CLI reports it (`describe_device`); classical methods always run on the CPU."""
    if entry.kind == "classical":
        return CLASSICAL_DEVICE
    if enhancer is not None:
        return describe_device(enhancer.device)
    try:  # the model never loaded: name the device it would have run on
        return describe_device(choose_device(requested))
    except MedViewerError:
        return requested or "auto"


def _share_of(progress: Progress | None, done: int, count: int) -> Progress | None:
    """Inner progress of item `done` of `count`, mapped into its share of the overall [0, 1]."""
    if progress is None:
        return None
    return lambda fraction: progress((done + min(max(float(fraction), 0.0), 1.0)) / count)


def _check_cancel(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise EnhancementCancelled()
