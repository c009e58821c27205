"""What a training run has reported so far: the trainer's JSON-lines events folded into curves, baselines and
sentences. Plain Python, no Qt: the dialog draws it, the tests read it.

The events are those of `trainer/events.py` (start, step, val, checkpoint, cancelled, done, export, error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def mean_baseline_psnr(baselines: dict[str, Any] | None, method: str) -> float | None:
    """The PSNR of a baseline ("input": the degraded image itself, "classical": the classical method), averaged
    over the validation degradations, as the trainer averages the run's own validation PSNR; None if absent."""
    values = []
    for scores in (baselines or {}).values():
        value = ((scores or {}).get(method) or {}).get("psnr")
        if isinstance(value, (int, float)) and math.isfinite(value):
            values.append(float(value))
    return sum(values) / len(values) if values else None


def format_duration(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 20 s', '12 s'; '' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _number(value: Any, digits: str) -> str:
    return format(value, digits) if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


@dataclass
class TrainingProgress:
    """The state of one run as its events tell it. `apply` takes one event and returns it in words."""

    run_folder: Path | None = None
    recipe: str = ""
    device: str = ""
    step: int = 0
    steps: int = 0
    eta_seconds: float | None = None
    loss_steps: list[int] = field(default_factory=list)
    loss_values: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_psnr: list[float] = field(default_factory=list)
    best_step: int | None = None
    best_psnr: float | None = None
    input_psnr: float | None = None
    classical_psnr: float | None = None
    classical_method: str = ""
    exported_files: list[Path] = field(default_factory=list)
    finished: bool = False  # the "done" event came: all steps trained
    cancelled: bool = False
    error_message: str | None = None

    @property
    def exported_cards(self) -> list[Path]:
        return [path for path in self.exported_files if path.suffix == ".json"]

    def apply(self, event: dict[str, Any]) -> str:
        kind = event.get("event")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        return handler(event) if handler is not None else f"{kind}: {event}"

    # --- one method per event ---------------------------------------------------------------------
    def _on_start(self, event: dict[str, Any]) -> str:
        if event.get("run"):
            self.run_folder = Path(event["run"])
        self.recipe = str(event.get("recipe", self.recipe))
        self.device = str(event.get("device", ""))
        self.step = int(event.get("step") or 0)
        self.steps = int(event.get("steps") or 0)
        self.eta_seconds = None
        self.finished = self.cancelled = False
        self.error_message = None
        # A resumed run goes back to its checkpoint: what was drawn after it is no longer this run's past.
        self._forget_after(self.step)
        self.input_psnr = mean_baseline_psnr(event.get("baselines"), "input")
        self.classical_psnr = mean_baseline_psnr(event.get("baselines"), "classical")
        self.classical_method = str(event.get("classical") or "")
        if event.get("resumed"):
            return f"Resumed {self.run_folder} at step {self.step} of {self.steps} on {self.device}"
        paradigm = event.get("paradigm", "")
        return f"Started {self.recipe} ({paradigm}) on {self.device}: {self.steps} steps, run {self.run_folder}"

    def _on_step(self, event: dict[str, Any]) -> str:
        self.step = int(event.get("step", self.step))
        self.steps = int(event.get("steps") or self.steps)
        self.eta_seconds = event.get("eta_seconds")
        losses = event.get("losses") or {}
        total = losses.get("loss")
        if isinstance(total, (int, float)) and math.isfinite(total):
            self.loss_steps.append(self.step)
            self.loss_values.append(float(total))
        named = ", ".join(f"{name} {_number(value, '.4g')}" for name, value in losses.items())
        rate = event.get("patches_per_second")
        return f"Step {self.step} / {self.steps}: {named}" + (f"; {rate:g} patches/s" if rate else "")

    def _on_val(self, event: dict[str, Any]) -> str:
        step = int(event.get("step", self.step))
        psnr = event.get("psnr")
        if isinstance(psnr, (int, float)) and math.isfinite(psnr):
            self.val_steps.append(step)
            self.val_psnr.append(float(psnr))
            if event.get("best_step") == step:
                self.best_step, self.best_psnr = step, float(psnr)
        if self.input_psnr is None and event.get("baselines"):
            self.input_psnr = mean_baseline_psnr(event["baselines"], "input")
            self.classical_psnr = mean_baseline_psnr(event["baselines"], "classical")
        return (
            f"Validation at step {step}: PSNR {_number(psnr, '.2f')} dB, SSIM {_number(event.get('ssim'), '.3f')}"
            f" (best so far at step {event.get('best_step', step)})"
        )

    def _on_checkpoint(self, event: dict[str, Any]) -> str:
        return f"Checkpoint saved at step {event.get('step')}"

    def _on_cancelled(self, event: dict[str, Any]) -> str:
        self.cancelled = True
        self.step = int(event.get("step", self.step))
        if event.get("run"):
            self.run_folder = Path(event["run"])
        return f"Stopped at step {self.step} of {self.steps} after saving a checkpoint"

    def _on_done(self, event: dict[str, Any]) -> str:
        self.finished = True
        self.step = int(event.get("step", self.step))
        self.eta_seconds = 0.0
        best = event.get("best_psnr")
        if isinstance(best, (int, float)) and math.isfinite(best):
            self.best_step, self.best_psnr = event.get("best_step"), float(best)
        best_step = event.get("best_step")
        return f"Finished {self.step} steps; best validation PSNR {_number(best, '.2f')} dB at step {best_step}"

    def _on_export(self, event: dict[str, Any]) -> str:
        self.exported_files = [Path(path) for path in event.get("files", [])]
        cards = self.exported_cards
        if not cards:
            return "Exported: " + ", ".join(str(path) for path in self.exported_files)
        names = ", ".join(card.stem for card in cards)
        return f"Exported model {names} to {cards[0].parent}"

    def _on_error(self, event: dict[str, Any]) -> str:
        self.error_message = str(event.get("message", ""))
        return f"Error: {self.error_message}"

    def _forget_after(self, step: int) -> None:
        keep = [index for index, at in enumerate(self.loss_steps) if at <= step]
        self.loss_steps = [self.loss_steps[index] for index in keep]
        self.loss_values = [self.loss_values[index] for index in keep]
        keep = [index for index, at in enumerate(self.val_steps) if at <= step]
        self.val_steps = [self.val_steps[index] for index in keep]
        self.val_psnr = [self.val_psnr[index] for index in keep]
