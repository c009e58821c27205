"""Metrics CSV: every number read back equals the Evaluation's, empty where a score does not exist."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import ClassicalEnhancer
from medviewer.enhance.evaluation import simulate, without_reference
from medviewer.enhance.report import METRICS_COLUMNS, metrics_rows, write_metrics_csv
from medviewer.errors import OutputError
from medviewer.models.classical import classical_method


def _slice(seed: int) -> np.ndarray:
    """A smooth 48x48 CT-like slice in HU with some structure for the scores to see."""
    rows, columns = np.mgrid[0:48, 0:48]
    return (np.sin(rows / 5.0 + seed) * np.cos(columns / 7.0) * 800.0 - 200.0).astype(np.float32)


@pytest.fixture(scope="module")
def simulated():
    enhancer = ClassicalEnhancer(classical_method("unsharp"))
    return {index: simulate(enhancer, _slice(index), parse_degradation("noise:10"), seed=index) for index in (3, 7)}


def _read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_simulated_metrics_read_back_exactly(tmp_path, simulated):
    rows = metrics_rows(simulated, "unsharp", "Unsharp mask", units="HU", device="CPU (classical)")
    written = write_metrics_csv(rows, tmp_path / "metrics.csv")
    header, read = _read(written)
    assert tuple(header) == METRICS_COLUMNS
    for row, (index, evaluation) in zip(read, simulated.items(), strict=True):
        assert row["slice"] == str(index)
        assert (row["model_id"], row["model_name"], row["mode"], row["degradation"]) == (
            "unsharp",
            "Unsharp mask",
            "simulate",
            "noise:10",
        )
        assert float(row["psnr_enhanced_db"]) == evaluation.enhanced_scores.psnr  # full precision, not rounded
        assert float(row["ssim_enhanced"]) == evaluation.enhanced_scores.ssim
        assert float(row["psnr_input_db"]) == evaluation.baseline_scores.psnr
        assert float(row["ssim_input"]) == evaluation.baseline_scores.ssim
        assert float(row["gain_db"]) == evaluation.enhanced_scores.psnr - evaluation.baseline_scores.psnr
        assert float(row["noise_sigma_input"]) == evaluation.noise_sigma_input
        assert float(row["noise_sigma_enhanced"]) == evaluation.noise_sigma_enhanced
        assert float(row["seconds"]) == evaluation.seconds
        assert (row["units"], row["device"]) == ("HU", "CPU (classical)")


def test_no_reference_leaves_scores_empty_never_zero(tmp_path):
    evaluation = without_reference(ClassicalEnhancer(classical_method("unsharp")), _slice(0))
    rows = metrics_rows([(5, evaluation)], "unsharp", "Unsharp mask", units="HU", device="CPU (classical)")
    _, read = _read(write_metrics_csv(rows, tmp_path / "none.csv"))
    (row,) = read
    assert row["mode"] == "none" and row["degradation"] == "" and row["slice"] == "5"
    for column in ("psnr_enhanced_db", "ssim_enhanced", "psnr_input_db", "ssim_input", "gain_db"):
        assert row[column] == ""
    assert float(row["noise_sigma_input"]) == evaluation.noise_sigma_input


def test_an_identical_image_has_an_infinite_psnr_that_reads_back(tmp_path, simulated):
    evaluation = simulated[3]
    perfect = type(evaluation.enhanced_scores)(psnr=math.inf, ssim=1.0)
    evaluation = type(evaluation)(**{**evaluation.__dict__, "enhanced_scores": perfect})
    rows = metrics_rows({3: evaluation}, "m", "M", units="", device="cpu")
    _, read = _read(write_metrics_csv(rows, tmp_path / "inf.csv"))
    assert float(read[0]["psnr_enhanced_db"]) == math.inf


def test_inputs_are_never_overwritten(tmp_path, simulated):
    source = tmp_path / "study.csv"
    source.write_text("original")
    rows = metrics_rows(simulated, "unsharp", "Unsharp mask", units="HU", device="cpu")
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_metrics_csv(rows, source, protected=[source])
    assert source.read_text() == "original"


def test_extra_columns_follow_the_standard_ones(tmp_path, simulated):
    rows = metrics_rows(simulated, "unsharp", "Unsharp mask", units="HU", device="cpu")
    rows = [{**row, "series": "Head CT"} for row in rows]
    header, read = _read(write_metrics_csv(rows, tmp_path / "extra.csv"))
    assert tuple(header) == (*METRICS_COLUMNS, "series") and read[0]["series"] == "Head CT"
