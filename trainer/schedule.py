"""Learning-rate schedules as a pure function of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

from trainer.recipe import OptimiserSection


def learning_rate_factor(settings: OptimiserSection, step: int, steps: int) -> float:
    """Multiplier of the base learning rate for (0-based) `step` of a `steps`-long run: linear warm-up over
    `warmup_steps`, then 'constant', 'cosine' (to `min_lr_ratio`, Loshchilov & Hutter 2017), 'step' (x step_factor
    at each milestone fraction) or 'linear-decay' (full until `decay_start`, then linearly to 0, as CycleGAN)."""
    warmup = settings.warmup_steps
    if warmup and step < warmup:
        return (step + 1) / warmup
    span = max(1, steps - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    if settings.schedule == "constant":
        return 1.0
    if settings.schedule == "cosine":
        low = settings.min_lr_ratio
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))
    if settings.schedule == "step":
        return settings.step_factor ** sum(progress >= milestone for milestone in settings.milestones)
    if settings.schedule == "linear-decay":
        if progress < settings.decay_start:
            return 1.0
        return max(0.0, 1 - (progress - settings.decay_start) / max(1e-9, 1 - settings.decay_start))
    raise ValueError(f"unknown schedule {settings.schedule!r}")
