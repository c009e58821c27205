"""One module per training paradigm, each a `build` of its networks and a `step(state, batch)` -> losses."""

from __future__ import annotations

from types import ModuleType

from trainer.loops import adversarial, cycle, supervised

PARADIGM_MODULES: dict[str, ModuleType] = {"supervised": supervised, "adversarial": adversarial, "cycle": cycle}
