"""Swipe comparison: the original left of a draggable divider and the enhanced image right of it, in one view."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from medviewer.gui.panes import MARGIN, WARNING_LABEL_STYLE, ImageViewBox, overlay_label

NOT_ACQUIRED = "not the acquired image"
DEFAULT_ENHANCED_LABEL = f"ENHANCED — {NOT_ACQUIRED}"


class SwipePane(QWidget):
    """Original and enhanced in one pane, split by a vertical divider the user drags.

    Each image is cropped to its side of the divider (no mask, no blending), so every screen pixel shows exactly
    one of the two images. The divider snaps to whole original pixels, which are also whole enhanced pixels at
    any integer scale, so the crop is exact.
    """

    windowDragged = Signal(float, float, bool)
    sliceWheel = Signal(int)
    dividerMoved = Signal(float)  # the new fraction of the width

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("k")
        self.layout_widget.ci.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget)
        self.view_box = ImageViewBox()
        self.layout_widget.addItem(self.view_box, row=0, col=0)
        self.original_item = pg.ImageItem()
        self.enhanced_item = pg.ImageItem()
        self.enhanced_item.setZValue(1)
        self.view_box.addItem(self.original_item)
        self.view_box.addItem(self.enhanced_item)
        self.divider = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(QColor(255, 255, 255), width=2))
        self.divider.setHoverPen(pg.mkPen(QColor(255, 200, 0), width=3))
        self.divider.setZValue(10)
        self.view_box.addItem(self.divider, ignoreBounds=True)
        self.divider.sigPositionChanged.connect(self._on_divider_moved)

        self.original_brightness: np.ndarray | None = None
        self.enhanced_brightness: np.ndarray | None = None
        self.scale = 1
        self._extent: tuple[int, int] | None = None  # (rows, columns) of the original
        self._fraction = 0.5
        self._snapping = False
        self._column = 0  # the divider, in original columns: left of it the original, from it on the enhanced

        self._original_label = overlay_label(self)
        self._original_label.setText("Original")
        self._original_label.show()
        self._enhanced_label = overlay_label(self, WARNING_LABEL_STYLE)
        self.set_label(DEFAULT_ENHANCED_LABEL)

        self.view_box.windowDragged.connect(self.windowDragged)
        self.view_box.sliceWheel.connect(self.sliceWheel)
        self.view_box.doubleClicked.connect(self.reset_view)
        self.view_box.sigResized.connect(self._place_labels)

    @property
    def wheel_scrolls_slices(self) -> bool:
        return self.view_box.wheel_scrolls_slices

    @wheel_scrolls_slices.setter
    def wheel_scrolls_slices(self, enabled: bool) -> None:
        self.view_box.wheel_scrolls_slices = bool(enabled)

    def show_pair(self, original_brightness: np.ndarray, enhanced_brightness: np.ndarray, scale: int) -> None:
        """Show the two brightness images ([0, 1]); the enhanced one is `scale` times the original's size."""
        self.original_brightness = original_brightness
        self.enhanced_brightness = enhanced_brightness
        self.scale = int(scale)
        self.divider.show()
        self._original_label.setText("Original")
        extent = tuple(original_brightness.shape[:2])
        first = extent != self._extent
        self._extent = extent
        self.divider.setBounds((0, extent[1]))
        self._apply_divider(round(self._fraction * extent[1]))
        if first:
            self.reset_view()

    def clear(self, message: str = "") -> None:
        """No pair to compare (nothing enhanced on this slice): never leave another slice's result on screen."""
        self.original_item.clear()
        self.enhanced_item.clear()
        self.original_brightness = self.enhanced_brightness = None
        self._extent = None
        self.divider.hide()
        self._enhanced_label.hide()
        self._original_label.setText(message or "Nothing to compare")
        self._place_labels()

    def set_divider(self, fraction: float) -> None:
        """Put the divider at `fraction` of the image's width (0: all enhanced, 1: all original)."""
        self._fraction = min(max(float(fraction), 0.0), 1.0)
        if self._extent is not None:
            self._apply_divider(round(self._fraction * self._extent[1]))

    def divider_fraction(self) -> float:
        if self._extent is None:
            return self._fraction
        return self._column / self._extent[1]

    def set_label(self, text: str) -> None:
        """The enhanced side's label; it always says the image is not the acquired one."""
        if NOT_ACQUIRED not in text.lower():
            text = f"{text} — {NOT_ACQUIRED}"
        self._enhanced_label.setText(text)
        self._enhanced_label.show()
        self._place_labels()

    def label_text(self) -> str:
        return self._enhanced_label.text()

    def reset_view(self) -> None:
        if self._extent is not None:
            rows, columns = self._extent
            self.view_box.setRange(QRectF(0, 0, columns, rows), padding=0)

    def _on_divider_moved(self) -> None:
        if self._extent is None or self._snapping:
            return
        column = round(self.divider.value())
        self._apply_divider(column)
        self._fraction = self._column / self._extent[1]
        self.dividerMoved.emit(self._fraction)

    def _apply_divider(self, column: int) -> None:
        """Crop each image to its side of original column `column` and snap the line onto that boundary."""
        rows, columns = self._extent
        column = min(max(int(column), 0), columns)
        self._column = column
        if self.divider.value() != column:
            self._snapping = True  # setValue re-enters _on_divider_moved: this call already does its work
            try:
                self.divider.setValue(column)
            finally:
                self._snapping = False
        self._show_part(self.original_item, self.original_brightness[:, :column], 0, column, rows)
        enhanced_part = self.enhanced_brightness[:, column * self.scale :]
        self._show_part(self.enhanced_item, enhanced_part, column, columns - column, rows)

    @staticmethod
    def _show_part(item: pg.ImageItem, part: np.ndarray, left: float, width: float, rows: int) -> None:
        if part.shape[1] == 0:
            item.hide()  # an empty image cannot be drawn: the divider is at the edge
            return
        item.setImage(part, autoLevels=False, levels=(0.0, 1.0))
        item.setRect(QRectF(left, 0, width, rows))
        item.show()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_labels()

    def _place_labels(self) -> None:
        rect = self.layout_widget.mapFromScene(self.view_box.sceneBoundingRect()).boundingRect()
        rect.translate(self.layout_widget.pos())
        if rect.width() <= 1:
            rect = self.rect()
        for label in (self._original_label, self._enhanced_label):
            label.adjustSize()
            label.raise_()
        self._original_label.move(rect.left() + MARGIN, rect.top() + MARGIN)
        enhanced_left = rect.right() - MARGIN - self._enhanced_label.width()
        enhanced_top = rect.top() + MARGIN
        if enhanced_left <= self._original_label.geometry().right() + MARGIN:
            enhanced_top += self._original_label.height() + 2  # too narrow for both on one line: never cover one
        self._enhanced_label.move(enhanced_left, enhanced_top)
