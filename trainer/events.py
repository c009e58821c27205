"""Progress: JSON lines on stdout (what the viewer reads), a terminal progress bar, metrics.csv, TensorBoard.

Event types: start, step, val, checkpoint, export, done, error. Each is one JSON object per line with an
"event" field; numbers are plain JSON numbers. Only the process of rank 0 reports.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

METRICS_COLUMNS = ("step", "seconds", "split", "name", "value")


def emit(record: dict[str, Any], stream: TextIO | None = None) -> None:
    """One JSON line, flushed at once (the reader is another process waiting for it)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(_finite(record), separators=(",", ":")) + "\n")
    stream.flush()


def _finite(value: Any) -> Any:
    """JSON has no NaN: a non-finite float becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class Reporter:
    """Where a run's progress goes. Disabled (all no-ops) on ranks other than 0."""

    def __init__(self, run_folder: Path | None, total_steps: int, first_step: int, enabled: bool = True):
        self.enabled = enabled
        self.run_folder = run_folder
        self.total_steps = total_steps
        self.started = time.monotonic()
        self.first_step = first_step
        self.bar = None
        self.tensorboard = None
        self.metrics: TextIO | None = None
        if not enabled:
            return
        if run_folder is not None:
            self.metrics = open(run_folder / "metrics.csv", "a", newline="", encoding="utf-8")
            if self.metrics.tell() == 0:
                csv.writer(self.metrics).writerow(METRICS_COLUMNS)
            self.events_log = open(run_folder / "events.jsonl", "a", encoding="utf-8")
            self.tensorboard = _tensorboard_writer(run_folder)
        try:
            from tqdm import tqdm

            # On stderr, and only when that is a terminal: stdout carries the JSON lines.
            self.bar = tqdm(total=total_steps, initial=first_step, unit="step", file=sys.stderr, disable=None)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            self.bar = None

    def event(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": kind, "time": round(time.time(), 3), **fields}
        emit(record)
        if self.run_folder is not None:
            self.events_log.write(json.dumps(_finite(record), separators=(",", ":")) + "\n")
            self.events_log.flush()

    def progress(self, step: int, postfix: dict[str, float] | None = None) -> None:
        if self.bar is not None and self.enabled:
            self.bar.n = step
            if postfix:
                self.bar.set_postfix({key: f"{value:.4g}" for key, value in postfix.items()}, refresh=False)
            self.bar.refresh()

    def eta_seconds(self, step: int) -> float | None:
        done = step - self.first_step
        if done <= 0:
            return None
        return (time.monotonic() - self.started) / done * (self.total_steps - step)

    def metric_rows(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled or self.metrics is None:
            return
        seconds = round(time.monotonic() - self.started, 3)
        writer = csv.writer(self.metrics)
        for name, value in values.items():
            writer.writerow((step, seconds, split, name, f"{value:.7g}"))
            if self.tensorboard is not None:
                self.tensorboard.add_scalar(f"{split}/{name}", value, step)
        self.metrics.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.metrics is not None:
            self.metrics.close()
            self.events_log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _tensorboard_writer(run_folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.csv always has the same figures
        return None
    return SummaryWriter(log_dir=str(run_folder / "tensorboard"))


def truncate_metrics(run_folder: Path, after_step: int) -> None:
    """On resume, drop rows logged after the checkpoint the run goes back to, so that metrics.csv describes
    the run that produced the weights, with no steps counted twice."""
    path = run_folder / "metrics.csv"
    if not path.exists():
        return
    from medviewer.io.atomic import write_atomically

    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    kept = [row for row in rows[1:] if row and int(row[0]) <= after_step]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(METRICS_COLUMNS)
    writer.writerows(kept)
    write_atomically(path, lambda temporary: temporary.write_text(text.getvalue(), encoding="utf-8"))
