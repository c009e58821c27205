"""The metrics panel: one Evaluation's scores, gain, noise estimates and timing, worded for its reference mode.

The numbers are the core's (`medviewer.enhance.evaluation`); this module only formats and lays them out.
The `format_*` functions are shared with the comparison table so one number always reads the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:  # these import torch, which the window must not wait for before the first slice
    from medviewer.enhance.evaluation import Evaluation


NO_REFERENCE_NOTE = "No reference: PSNR/SSIM need a ground truth (choose Simulate or Paired)"
SCORE_COLUMNS = ("PSNR (dB)", "SSIM")


def format_psnr(value: float) -> str:
    """dB to 2 decimals; identical images have an infinite PSNR."""
    return "∞" if math.isinf(value) and value > 0 else f"{value:.2f}"


def format_ssim(value: float) -> str:
    return f"{value:.4f}"


def format_gain(value: float) -> str:
    """A signed dB difference: a loss must read as a loss."""
    return "+∞" if math.isinf(value) and value > 0 else f"{value:+.2f}"


def format_noise(value: float) -> str:
    """2 decimals, more below 1 so that 2 significant digits remain (a sigma of 0.012 on a [0, 1] image
    must not read 0.01, nor 0.00)."""
    if value == 0 or not math.isfinite(value) or abs(value) >= 1:
        return f"{value:.2f}"
    decimals = max(2, 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def format_seconds(value: float) -> str:
    return f"{value:.2f}"


def is_upscaled(evaluation: Evaluation) -> bool:
    """The model changed the size (super-resolution): its input is compared after bicubic upscaling."""
    return evaluation.enhanced.shape[0] > evaluation.model_input.shape[0]


def baseline_label(evaluation: Evaluation) -> str:
    """What the baseline row is: the degraded copy (simulate) or the user's own input (paired)."""
    label = "Degraded input" if evaluation.mode == "simulate" else "Input"
    return f"{label} (bicubic)" if is_upscaled(evaluation) else label


def _with_units(value: float, units: str) -> str:
    return f"{format_noise(value)} {units}" if units else format_noise(value)


class MetricsPanel(QWidget):
    """Scores of the current enhancement. In 'none' mode it shows no PSNR or SSIM at all: against the noisy
    input they would reward a model for changing nothing."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._title = QLabel()
        self._title.setWordWrap(True)
        self._table = QTableWidget(0, 0)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._gain = QLabel()
        self._noise = QLabel()
        self._timing = QLabel()
        self._reference = QLabel()
        self._note = QLabel()
        for label in (self._gain, self._noise, self._timing, self._reference, self._note):
            label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self._title, self._table, self._gain, self._noise, self._timing, self._reference, self._note):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.clear()

    def show_evaluation(self, evaluation: Evaluation, model_name: str, units: str, device: str) -> None:
        """Lay out `evaluation`; `units` are the image's (e.g. 'HU') for the noise estimates."""
        self.clear()
        self._title.setText(model_name)
        self._noise.setText(
            f"Noise σ: input {_with_units(evaluation.noise_sigma_input, units)}, "
            f"enhanced {_with_units(evaluation.noise_sigma_enhanced, units)}"
        )
        self._timing.setText(f"Time: {format_seconds(evaluation.seconds)} s on {device}")
        self._reference.setText(_reference_text(evaluation))
        scores, baseline = evaluation.enhanced_scores, evaluation.baseline_scores
        if evaluation.mode == "none" or scores is None or baseline is None:
            self._note.setText(NO_REFERENCE_NOTE)
        else:
            self._fill_scores(evaluation)
        for label in (self._title, self._gain, self._noise, self._timing, self._reference, self._note):
            label.setVisible(bool(label.text()))

    def _fit_table_height(self) -> None:
        """Exactly as tall as its rows: a squeezed dock must never hide the degraded input's row."""
        self._table.resizeRowsToContents()
        height = self._table.horizontalHeader().height() + 2 * self._table.frameWidth()
        height += sum(self._table.rowHeight(row) for row in range(self._table.rowCount()))
        self._table.setFixedHeight(height)

    def clear(self) -> None:
        """No evaluation: nothing shown, not even headers, so no stale number can be misread as current."""
        self._table.clear()
        self._table.setRowCount(0)
        self._table.setColumnCount(0)
        self._table.hide()
        for label in (self._title, self._gain, self._noise, self._timing, self._reference, self._note):
            label.clear()
            label.hide()

    # --- for tests and the main window ---------------------------------------------------------
    def cell_text(self, row: int, column: int) -> str:
        item = self._table.item(row, column)
        return item.text() if item is not None else ""

    def row_labels(self) -> list[str]:
        return [self._table.verticalHeaderItem(row).text() for row in range(self._table.rowCount())]

    def summary_text(self) -> str:
        """The lines below the table, as shown, one per line."""
        labels = (self._title, self._gain, self._noise, self._timing, self._reference, self._note)
        return "\n".join(label.text() for label in labels if label.text())

    # --- layout ---------------------------------------------------------------------------------
    def _fill_scores(self, evaluation: Evaluation) -> None:
        rows = (
            ("Enhanced", evaluation.enhanced_scores),
            (baseline_label(evaluation), evaluation.baseline_scores),
        )
        self._table.setColumnCount(len(SCORE_COLUMNS))
        self._table.setHorizontalHeaderLabels(list(SCORE_COLUMNS))
        self._table.setRowCount(len(rows))
        self._table.setVerticalHeaderLabels([label for label, _ in rows])
        for row, (_, scores) in enumerate(rows):
            self._table.setItem(row, 0, QTableWidgetItem(format_psnr(scores.psnr)))
            self._table.setItem(row, 1, QTableWidgetItem(format_ssim(scores.ssim)))
        header_height = self._table.horizontalHeader().sizeHint().height()
        self._table.setFixedHeight(header_height + sum(self._table.rowHeight(r) for r in range(len(rows))) + 4)
        self._table.show()
        self._fit_table_height()
        gain = evaluation.gain_db
        if gain is not None:
            self._gain.setText(f"{format_gain(gain)} dB over the {baseline_label(evaluation).lower()}")


def _reference_text(evaluation: Evaluation) -> str:
    if evaluation.mode == "simulate":
        return f"Reference: the image itself, degraded by {evaluation.degradation} (simulate)"
    if evaluation.mode == "paired":
        return "Reference: a paired image"
    return "Reference: none (clinical)"
