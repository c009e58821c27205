"""Metrics of enhancement runs as CSV rows: one row per model and slice, for spreadsheets and papers."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from medviewer.enhance.evaluation import Evaluation
from medviewer.io.atomic import write_atomically
from medviewer.io.export import refuse_overwriting_inputs

METRICS_COLUMNS: tuple[str, ...] = (
    "model_id",
    "model_name",
    "mode",
    "degradation",
    "slice",
    "psnr_enhanced_db",
    "ssim_enhanced",
    "psnr_input_db",  # the model's input at the output's size (the degraded copy in simulate mode)
    "ssim_input",
    "gain_db",
    "noise_sigma_input",
    "noise_sigma_enhanced",
    "units",  # of the noise estimates (HU for CT); PSNR and SSIM are on the protocol's [0, 1] scale
    "seconds",
    "device",
)


def metrics_rows(
    evaluations: Mapping[int, Evaluation] | Sequence[tuple[int, Evaluation]],
    model_id: str,
    model_name: str,
    units: str,
    device: str,
) -> list[dict[str, str]]:
    """One row per slice, keyed by `METRICS_COLUMNS`, in the order given.

    Numbers keep full precision (`repr` of the float, so a re-read gives the same float); a score that does
    not exist is an empty cell, never 0: without a reference there is no PSNR, and a 0 would read as a
    very bad one.
    """
    pairs = evaluations.items() if isinstance(evaluations, Mapping) else evaluations
    rows = []
    for index, evaluation in pairs:
        enhanced, baseline = evaluation.enhanced_scores, evaluation.baseline_scores
        rows.append(
            {
                "model_id": model_id,
                "model_name": model_name,
                "mode": evaluation.mode,
                "degradation": evaluation.degradation or "",
                "slice": str(int(index)),
                "psnr_enhanced_db": _number(None if enhanced is None else enhanced.psnr),
                "ssim_enhanced": _number(None if enhanced is None else enhanced.ssim),
                "psnr_input_db": _number(None if baseline is None else baseline.psnr),
                "ssim_input": _number(None if baseline is None else baseline.ssim),
                "gain_db": _number(evaluation.gain_db),
                "noise_sigma_input": _number(evaluation.noise_sigma_input),
                "noise_sigma_enhanced": _number(evaluation.noise_sigma_enhanced),
                "units": units,
                "seconds": _number(evaluation.seconds),
                "device": device,
            }
        )
    return rows


def write_metrics_csv(rows: Sequence[Mapping[str, str]], destination: Path, protected: Iterable[Path] = ()) -> Path:
    """Write `rows` as CSV (header first: `METRICS_COLUMNS`, then any other keys the rows carry), atomically
    and never over one of the `protected` input files."""
    destination = Path(destination)
    refuse_overwriting_inputs(destination, protected)
    columns = list(METRICS_COLUMNS)
    for row in rows:
        columns.extend(key for key in row if key not in columns)

    def write(path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    return write_atomically(destination, write)


def _number(value: float | None) -> str:
    # repr round-trips through float(): 'inf' for an image identical to its reference, which float() reads back.
    return "" if value is None else repr(float(value))
