"""The metrics panel shows the core's numbers, formatted, under the right labels, and no scores without a reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PySide6.QtWidgets import QAbstractButton, QLabel, QTableWidget, QTextEdit, QWidget

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.evaluation import Evaluation, paired, simulate, without_reference
from medviewer.gui.metrics_panel import (
    NO_REFERENCE_NOTE,
    MetricsPanel,
    format_gain,
    format_noise,
    format_psnr,
    format_seconds,
    format_ssim,
)
from medviewer.io.study import load_studies
from medviewer.metrics import estimate_noise_sigma, psnr, ssim
from medviewer.models.registry import discover_models
from tests.conftest import SAMPLE_STUDY

DEVICE = "CPU (classical)"


@dataclass
class Case:
    evaluation: Evaluation
    baseline_row: str
    gain_phrase: str
    border: int


@pytest.fixture(scope="module")
def slice_values() -> np.ndarray:
    return load_studies([SAMPLE_STUDY]).series[0].values(12)


@pytest.fixture(scope="module")
def registry():
    return discover_models(folders=[])


@pytest.fixture(scope="module")
def cases(slice_values, registry) -> dict[str, Case]:
    nlm = load_enhancer(registry.get("nlm"))
    lanczos = load_enhancer(registry.get("lanczos-x2"))
    noisy = slice_values + np.random.default_rng(1).normal(0, 40, slice_values.shape).astype(np.float32)
    return {
        "simulate": Case(
            simulate(nlm, slice_values, parse_degradation("noise:25")),
            "Degraded input",
            "dB over the degraded input",
            0,
        ),
        "simulate-sr": Case(
            simulate(lanczos, slice_values, parse_degradation("sr:2")),
            "Degraded input (bicubic)",
            "dB over the degraded input (bicubic)",
            4,
        ),
        "paired": Case(paired(nlm, noisy, slice_values), "Input", "dB over the input", 0),
        "paired-sr": Case(
            paired(lanczos, slice_values[::2, ::2], slice_values), "Input (bicubic)", "dB over the input (bicubic)", 4
        ),
    }


@pytest.fixture(scope="module")
def clinical(slice_values, registry) -> Evaluation:
    return without_reference(load_enhancer(registry.get("nlm")), slice_values)


@pytest.fixture
def panel(qtbot) -> MetricsPanel:
    widget = MetricsPanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def all_texts(widget: QWidget) -> list[str]:
    """Every text the panel holds, shown or hidden: labels, buttons, tables (cells and headers), tooltips."""
    texts = []
    for child in [widget, *widget.findChildren(QWidget)]:
        texts.append(child.toolTip())
        if isinstance(child, (QLabel, QAbstractButton)):
            texts.append(child.text())
        elif isinstance(child, QTextEdit):
            texts.append(child.toPlainText())
        elif isinstance(child, QTableWidget):
            for column in range(child.columnCount()):
                header = child.horizontalHeaderItem(column)
                texts.append(header.text() if header else "")
            for row in range(child.rowCount()):
                header = child.verticalHeaderItem(row)
                texts.append(header.text() if header else "")
                texts.extend(child.item(row, c).text() for c in range(child.columnCount()) if child.item(row, c))
    return [text for text in texts if text]


def test_formats_round_as_documented():
    assert format_psnr(34.166329) == "34.17"
    assert format_psnr(float("inf")) == "∞"
    assert format_ssim(0.89217219) == "0.8922"
    assert format_gain(13.98949) == "+13.99"
    assert format_gain(-6.22425) == "-6.22"
    assert format_noise(25.1262) == "25.13"
    assert format_noise(0.0123456) == "0.012"  # two significant digits below 1
    assert format_noise(0.5) == "0.50"
    assert format_noise(0.0) == "0.00"
    assert format_seconds(0.140312) == "0.14"


@pytest.mark.parametrize("name", ["simulate", "simulate-sr", "paired", "paired-sr"])
def test_scores_are_the_core_measures_of_the_shown_arrays(panel, cases, name):
    case = cases[name]
    evaluation = case.evaluation
    panel.show_evaluation(evaluation, "Non-local means", "HU", DEVICE)
    reference = evaluation.reference.astype(np.float64)
    # The protocol scores on the reference's own min-max scale (SSIM is not offset-invariant, so it matters).
    low, span = reference.min(), reference.max() - reference.min()

    def on_scale(image: np.ndarray) -> np.ndarray:
        return (np.asarray(image, np.float64) - low) / span

    measured = {
        row: (
            psnr(on_scale(reference), on_scale(image), data_range=1.0, border=case.border),
            ssim(on_scale(reference), on_scale(image), data_range=1.0, border=case.border),
        )
        for row, image in ((0, evaluation.enhanced), (1, evaluation.baseline))
    }
    assert panel.row_labels() == ["Enhanced", case.baseline_row]
    for row, (expected_psnr, expected_ssim) in measured.items():
        assert float(panel.cell_text(row, 0)) == pytest.approx(expected_psnr, abs=0.006)
        assert float(panel.cell_text(row, 1)) == pytest.approx(expected_ssim, abs=0.00006)
        assert len(panel.cell_text(row, 0).split(".")[1]) == 2
        assert len(panel.cell_text(row, 1).split(".")[1]) == 4
    gain = measured[0][0] - measured[1][0]
    summary = panel.summary_text()
    gain_line = next(line for line in summary.splitlines() if case.gain_phrase in line)
    shown_gain = gain_line.split(" dB")[0]
    assert shown_gain.startswith("+" if gain >= 0 else "-")
    assert float(shown_gain) == pytest.approx(gain, abs=0.006)


def test_summary_gives_noise_time_device_and_mode(panel, cases):
    evaluation = cases["simulate"].evaluation
    panel.show_evaluation(evaluation, "Non-local means", "HU", DEVICE)
    summary = panel.summary_text()
    sigma_input = estimate_noise_sigma(evaluation.model_input)
    sigma_enhanced = estimate_noise_sigma(evaluation.enhanced)
    assert f"input {format_noise(sigma_input)} HU" in summary
    assert f"enhanced {format_noise(sigma_enhanced)} HU" in summary
    assert f"{evaluation.seconds:.2f} s on {DEVICE}" in summary
    assert "noise:25" in summary and "simulate" in summary
    assert "Non-local means" in summary


def test_without_reference_no_score_is_shown_anywhere(panel, cases, clinical):
    simulated = cases["simulate"].evaluation
    panel.show_evaluation(simulated, "Non-local means", "HU", DEVICE)  # stale scores must go
    panel.show_evaluation(clinical, "Non-local means", "HU", DEVICE)
    texts = all_texts(panel)
    assert NO_REFERENCE_NOTE in texts
    rest = "\n".join(text for text in texts if text != NO_REFERENCE_NOTE)
    assert "PSNR" not in rest and "SSIM" not in rest and "dB" not in rest
    assert format_psnr(simulated.enhanced_scores.psnr) not in rest
    assert panel.cell_text(0, 0) == ""
    assert f"input {format_noise(estimate_noise_sigma(clinical.model_input))} HU" in panel.summary_text()
    assert "none (clinical)" in panel.summary_text()


def test_clear_leaves_nothing_to_misread(panel, cases):
    panel.show_evaluation(cases["paired"].evaluation, "Non-local means", "", DEVICE)
    assert "PSNR (dB)" in all_texts(panel)
    panel.clear()
    assert all_texts(panel) == []
