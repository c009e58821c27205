"""The comparison view: several models' results on one slice as a sortable table and a strip of thumbnails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medviewer.gui.metrics_panel import format_gain, format_noise, format_psnr, format_seconds, format_ssim
from medviewer.gui.qimage import thumbnail_pixmap
from medviewer.io.window import Window, apply_window

if TYPE_CHECKING:  # these import torch, which the window must not wait for before the first slice
    from medviewer.enhance.session import ComparisonResult

COLUMNS = ("Model", "PSNR (dB)", "SSIM", "Gain (dB)", "Time (s)", "Device", "Error")
THUMBNAIL_SIZE = 96
_RESULT_ROLE = Qt.ItemDataRole.UserRole

SortKey = float | str | None


class SortableItem(QTableWidgetItem):
    """A cell that sorts by a key (numbers as numbers: 9.5 before 10.2) and keeps blanks last.

    Blanks (a failed model, no reference) stay at the bottom whichever way the column is sorted: Qt sorts
    descending by asking `right < left`, so the answer for a blank depends on the header's sort order.
    """

    def __init__(self, text: str, sort_key: SortKey):
        super().__init__(text)
        self.sort_key = sort_key
        self.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine = self.sort_key
        theirs = other.sort_key if isinstance(other, SortableItem) else other.text()
        if mine is None and theirs is None:
            return False
        if mine is None or theirs is None:
            number_first = mine is not None
            return number_first if self._ascending() else not number_first
        return mine < theirs

    def _ascending(self) -> bool:
        table = self.tableWidget()
        return table is None or table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder


def result_cells(result: ComparisonResult) -> list[tuple[str, SortKey]]:
    """(text, sort key) per column; a failed model shows its error and no numbers."""
    evaluation = result.evaluation
    model = (result.name, result.name.casefold())
    device = (result.device, result.device.casefold())
    if evaluation is None:
        error = result.error or "failed"
        return [model, ("", None), ("", None), ("", None), ("", None), device, (error, error.casefold())]
    scores, gain = evaluation.enhanced_scores, evaluation.gain_db
    return [
        model,
        (format_psnr(scores.psnr), scores.psnr) if scores is not None else ("", None),
        (format_ssim(scores.ssim), scores.ssim) if scores is not None else ("", None),
        (format_gain(gain), gain) if gain is not None else ("", None),
        (format_seconds(evaluation.seconds), evaluation.seconds),
        device,
        ("", None),
    ]


def result_brightness(result: ComparisonResult, window: Window) -> np.ndarray:
    """The enhanced image as the viewer shows it: windowed grey, or colour as stored (8-bit RGB)."""
    enhanced = result.evaluation.enhanced
    if enhanced.ndim == 3:
        top = float(np.iinfo(enhanced.dtype).max) if np.issubdtype(enhanced.dtype, np.integer) else 1.0
        return np.clip(enhanced.astype(np.float32) / top, 0.0, 1.0)
    return apply_window(enhanced, window)


class CompareView(QWidget):
    """Results of "Compare models". Clicking a row or a thumbnail emits `resultChosen` with that result."""

    resultChosen = Signal(object)  # ComparisonResult

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._results: list[ComparisonResult] = []
        self._table = QTableWidget(0, len(COLUMNS))
        self._table.setHorizontalHeaderLabels(list(COLUMNS))
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.verticalHeader().hide()
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._table.horizontalHeader().setStretchLastSection(True)
        self._table.setSortingEnabled(True)
        self._table.cellClicked.connect(lambda row, _column: self._choose(self._table.item(row, 0)))

        self._thumbnails = QListWidget()
        self._thumbnails.setViewMode(QListView.ViewMode.IconMode)
        self._thumbnails.setFlow(QListView.Flow.LeftToRight)
        self._thumbnails.setWrapping(False)
        self._thumbnails.setMovement(QListView.Movement.Static)
        self._thumbnails.setResizeMode(QListView.ResizeMode.Adjust)
        self._thumbnails.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        # One cell size for all, so long model names wrap instead of spreading the strip unevenly.
        self._thumbnails.setGridSize(QSize(THUMBNAIL_SIZE + 48, THUMBNAIL_SIZE + 40))
        self._thumbnails.setWordWrap(True)
        self._thumbnails.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._thumbnails.setFixedHeight(THUMBNAIL_SIZE + 56)
        self._thumbnails.itemClicked.connect(self._choose)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._table, 1)
        layout.addWidget(self._thumbnails)

    def set_results(self, results: Sequence[ComparisonResult], window: Window, units: str) -> None:
        """Show `results`; thumbnails use `window` (the viewer's current one) so all look alike;
        `units` label the noise estimates in the model cells' tooltips."""
        self._results = list(results)
        self._table.setSortingEnabled(False)  # or every inserted cell would re-sort the rows being filled
        self._table.clearContents()
        self._table.setRowCount(len(self._results))
        for row, result in enumerate(self._results):
            for column, (text, key) in enumerate(result_cells(result)):
                item = SortableItem(text, key)
                item.setData(_RESULT_ROLE, row)
                self._table.setItem(row, column, item)
            self._table.item(row, 0).setToolTip(_model_tooltip(result, units))
            if result.error:  # the cell elides a long message
                self._table.item(row, COLUMNS.index("Error")).setToolTip(result.error)
        self._table.setColumnHidden(COLUMNS.index("Error"), not any(r.evaluation is None for r in self._results))
        self._table.setSortingEnabled(True)
        self._fill_thumbnails(window)

    def clear(self) -> None:
        self._results = []
        self._table.setRowCount(0)
        self._thumbnails.clear()

    def results(self) -> list[ComparisonResult]:
        return list(self._results)

    def sort_by(self, column_name: str, descending: bool = False) -> None:
        """Sort as a click on the header would (blanks last either way)."""
        column = COLUMNS.index(column_name)
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        # The indicator first: the items read the order from it, and with sorting on this also sorts.
        self._table.horizontalHeader().setSortIndicator(column, order)
        self._table.sortItems(column, order)

    def row_texts(self) -> list[list[str]]:
        """Cell texts as shown, top to bottom."""
        return [
            [self._table.item(row, column).text() for column in range(len(COLUMNS))]
            for row in range(self._table.rowCount())
        ]

    def thumbnail_texts(self) -> list[str]:
        return [self._thumbnails.item(index).text() for index in range(self._thumbnails.count())]

    def _fill_thumbnails(self, window: Window) -> None:
        self._thumbnails.clear()
        for index, result in enumerate(self._results):
            if result.evaluation is None:
                continue
            item = QListWidgetItem(QIcon(thumbnail_pixmap(result_brightness(result, window), THUMBNAIL_SIZE)), "")
            item.setText(result.name)
            item.setToolTip(result.entry.description)
            item.setData(_RESULT_ROLE, index)
            self._thumbnails.addItem(item)

    def _choose(self, item: QTableWidgetItem | QListWidgetItem | None) -> None:
        index = item.data(_RESULT_ROLE) if item is not None else None
        if index is not None:
            self.resultChosen.emit(self._results[index])


def _model_tooltip(result: ComparisonResult, units: str) -> str:
    evaluation = result.evaluation
    lines = [f"{result.name} ({result.entry.id}, {result.entry.kind})"]
    if evaluation is not None:
        suffix = f" {units}" if units else ""
        lines.append(
            f"Noise σ: input {format_noise(evaluation.noise_sigma_input)}{suffix}, "
            f"enhanced {format_noise(evaluation.noise_sigma_enhanced)}{suffix}"
        )
        if evaluation.degradation:
            lines.append(f"Simulated degradation: {evaluation.degradation}")
    else:
        lines.append(f"Failed: {result.error}")
    return "\n".join(lines)
