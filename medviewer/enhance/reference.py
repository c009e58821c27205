"""Against what an enhancement is judged: the reference modes, as a record the GUI builds without torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medviewer.enhance.degrade import Degradation, parse_degradation
from medviewer.errors import MedViewerError, one_line

REFERENCE_MODES = ("simulate", "paired", "none")


class InvalidReferenceError(MedViewerError):
    """A reference mode that does not exist, or a paired run without a usable reference."""


@dataclass(frozen=True)
class ReferenceChoice:
    """Against what an enhancement is judged (see `medviewer.enhance.evaluation` for the three modes)."""

    mode: str
    degradation: Degradation | None = None
    reference_path: Path | None = None  # for paired: where the reference came from, for reports
    seed: int = 0  # for simulate: the noise draw, so a run can be repeated exactly

    def __post_init__(self) -> None:
        if self.mode not in REFERENCE_MODES:
            raise InvalidReferenceError(
                f"unknown reference mode {one_line(repr(self.mode))}; choose {', '.join(REFERENCE_MODES)}"
            )
        if self.mode == "simulate" and self.degradation is None:
            raise InvalidReferenceError("simulate mode needs a degradation, e.g. noise:25")
        if self.mode != "simulate" and self.degradation is not None:
            raise InvalidReferenceError(f"a degradation only applies to simulate mode, not {self.mode}")

    @classmethod
    def simulate(cls, spec: str, seed: int = 0) -> ReferenceChoice:
        """Degrade a copy of the image per `spec` ('noise:25', 'sr:2', 'lowdose:200'); a bad spec raises
        InvalidDegradationError."""
        return cls(mode="simulate", degradation=parse_degradation(spec), seed=int(seed))

    @classmethod
    def paired(cls, path: Path | None) -> ReferenceChoice:
        return cls(mode="paired", reference_path=None if path is None else Path(path))

    @classmethod
    def none(cls) -> ReferenceChoice:
        return cls(mode="none")

    def describe(self) -> str:
        """One phrase for status bars and reports: 'simulate noise:25', 'paired with full_dose.dcm'."""
        if self.mode == "simulate":
            return f"simulate {self.degradation.spec}"
        if self.mode == "paired":
            return f"paired with {self.reference_path.name}" if self.reference_path is not None else "paired"
        return "no reference"
