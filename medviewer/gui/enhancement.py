"""The enhancement results the window shows, and the background jobs that make them.

The jobs call `medviewer.enhance.session` (Qt-free); this module only decides what runs in which thread
and keeps the results per series. Loaded networks are cached, so a second slice does not reload weights.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medviewer.errors import MedViewerError
from medviewer.gui.jobs import JobContext
from medviewer.io.study import Series, load_studies

if TYPE_CHECKING:  # these import torch, which the window must not wait for before the first slice
    from medviewer.enhance.evaluation import Evaluation
    from medviewer.models.registry import ModelEntry


@dataclass
class EnhancementResults:
    """What one model made of (some slices of) one series under one reference choice."""

    series_uid: str
    entry: ModelEntry
    device: str
    choice: object  # medviewer.enhance.session.ReferenceChoice (imported lazily: it imports torch)
    evaluations: dict[int, Evaluation] = field(default_factory=dict)
    name: str = ""  # how the images were made ("... (self-ensemble x8)"); the entry's name when empty
    _limit: float = field(default=1.0, repr=False)
    _limit_for: int = field(default=-1, repr=False)  # how many evaluations the limit was computed over

    def __post_init__(self) -> None:
        self.name = self.name or self.entry.name

    def difference_limit(self) -> float:
        """One +/- colour scale for the error map of every slice, so that colours compare across slices as
        grey levels do under one window: the largest of the slices' limits."""
        from medviewer.metrics import symmetric_display_limit

        if self._limit_for != len(self.evaluations):
            self._limit = max(symmetric_display_limit(item.difference) for item in self.evaluations.values())
            self._limit_for = len(self.evaluations)
        return self._limit

    def get(self, index: int) -> Evaluation | None:
        return self.evaluations.get(index)


class EnhancerCache:
    """Loaded enhancers by model id, weights file and self-ensemble size; used from worker threads, one job
    at a time."""

    def __init__(self, device: str | None = None):
        self.device = device
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, Path | None], object] = {}

    def get(self, entry: ModelEntry, ensemble: int | None = None):
        from medviewer.enhance.engine import load_enhancer

        key = (entry.id, entry.weights_path, ensemble)
        with self._lock:
            if key not in self._loaded:
                if len(self._loaded) >= 2:  # keep at most two networks' weights resident
                    self._loaded.pop(next(iter(self._loaded)))
                self._loaded[key] = load_enhancer(entry, self.device, ensemble=ensemble)
            return self._loaded[key]


def load_reference_series(path: Path) -> Series:
    """The paired reference: the first series the file or folder holds."""
    loaded = load_studies([path])
    if not loaded.series:
        reason = loaded.skipped[0].reason if loaded.skipped else "no images found"
        raise MedViewerError(f"{path.name}: cannot be used as a reference: {reason}")
    return loaded.series[0]


def reference_slice(reference: Series, index: int, series_length: int) -> np.ndarray:
    """Slice `index` of a reference series of the same length, or the single image of a one-frame one."""
    if len(reference) == series_length:
        return reference.values(index)
    if len(reference) == 1:
        return reference.values(0)
    raise MedViewerError(
        f"the reference has {len(reference)} slices but the series has {series_length}; choose a reference "
        "with one image or one per slice"
    )


def paired_reference_slice(choice, index: int, series_length: int) -> np.ndarray | None:
    """The reference for slice `index` in paired mode, read from the chosen file; None in the other modes."""
    if choice.mode != "paired":
        return None
    return reference_slice(load_reference_series(choice.reference_path), index, series_length)


def enhance_slice_job(
    cache: EnhancerCache,
    entry: ModelEntry,
    values: np.ndarray,
    choice,
    index: int,
    series_length: int,
    ensemble: int | None = None,
):
    """A job: enhance one slice and judge it; returns (index, evaluation, device label, method name)."""

    def job(context: JobContext):
        from medviewer.enhance.session import device_label, evaluate

        reference = paired_reference_slice(choice, index, series_length)
        enhancer = cache.get(entry, ensemble)
        evaluation = evaluate(enhancer, values, choice, reference, context.progress, context.should_cancel)
        return index, evaluation, device_label(entry, enhancer, None), enhancer.name

    return job


def enhance_series_job(cache: EnhancerCache, entry: ModelEntry, series: Series, choice, ensemble: int | None = None):
    """A job: enhance every slice of the series; returns (evaluations by slice, device label, method name)."""

    def job(context: JobContext):
        from medviewer.enhance.session import device_label, evaluate_slices

        reference = load_reference_series(choice.reference_path) if choice.mode == "paired" else None
        enhancer = cache.get(entry, ensemble)
        evaluations = evaluate_slices(
            enhancer, series, range(len(series)), choice, reference, context.progress, context.should_cancel
        )
        return evaluations, device_label(entry, enhancer, None), enhancer.name

    return job


def compare_job(
    cache: EnhancerCache,
    entries: list[ModelEntry],
    values: np.ndarray,
    choice,
    index: int,
    series_length: int,
    ensemble: int | None = None,
):
    """A job: every checked model on the same slice (networks as self-ensembles of `ensemble` copies, or
    each as its card says when None); returns the ComparisonResults."""

    def job(context: JobContext):
        from medviewer.enhance.session import compare_models

        reference = paired_reference_slice(choice, index, series_length)
        return compare_models(
            entries,
            values,
            choice,
            reference,
            load=lambda entry, _device: cache.get(entry, ensemble),
            progress=context.progress,
            should_cancel=context.should_cancel,
        )

    return job
