"""One image pane: an image in a pyqtgraph view box with its readout, labels, orientation, scale bar and colour bar.

Every pane lays its image over the ORIGINAL image's pixel extent (a x2 super-resolution output spans the same
rectangle as the acquired image), so linked panes line up in original-pixel coordinates and a cursor position
means the same anatomy everywhere. The pane computes no image: brightness, differences and limits come from
the core; the pane only shows them.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from medviewer.io.geometry import edge_labels, scale_bar

# A diverging map that is white at zero: a symmetric signed difference shows where the enhanced image is brighter
# (red) or darker (blue) than the reference, and unchanged tissue fades out.
DIVERGING_COLOUR_MAP = "CET-D1"
# The scale bar may take this much of the pane's width.
SCALE_BAR_WIDTH_FRACTION = 0.25
# One notch of a standard mouse wheel (Qt's angle delta unit is 1/8 degree; a notch is 15 degrees).
WHEEL_NOTCH = 120
# Gap between the overlays and the view's edges, in screen pixels.
MARGIN = 6

_PLAIN_LABEL_STYLE = "color: white; background-color: rgba(0, 0, 0, 150); padding: 2px 5px; border-radius: 3px;"
# High contrast for anything that must not be missed: the enhanced image is not the acquired one.
WARNING_LABEL_STYLE = (
    "color: white; background-color: rgb(170, 20, 0); border: 2px solid rgb(255, 170, 0);"
    " padding: 3px 6px; border-radius: 3px; font-weight: bold;"
)
_ORIENTATION_STYLE = "color: rgb(255, 220, 80); background-color: rgba(0, 0, 0, 110); padding: 1px 3px;"
_MESSAGE_STYLE = "color: rgb(190, 190, 190); background-color: transparent; padding: 8px;"


def format_readout(row: int, col: int, value, units: str) -> str:
    """'row 120  col 88  40.0 HU': the pixel under the cursor and its value in real units (R,G,B for colour)."""
    if np.ndim(value) > 0:
        shown = ",".join(_format_value(channel) for channel in np.ravel(value))
    else:
        shown = _format_value(value)
    text = f"row {int(row)}  col {int(col)}  {shown}"
    return f"{text} {units}" if units else text


def _format_value(value) -> str:
    """Integers as stored; floats to 0.1 from 10 upwards and to 3 significant digits below (0.500, 0.0123)."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10:
        return f"{value:.1f}"
    if value == 0:
        return "0.000"
    # '#' keeps trailing zeros, so 0.5 reads 0.500 and is not mistaken for an integer value.
    return f"{value:#.3g}"


def overlay_label(parent: QWidget, style: str = _PLAIN_LABEL_STYLE) -> QLabel:
    """A label drawn over the image, fixed to the pane (not to the data), that lets the mouse through."""
    label = QLabel(parent)
    label.setStyleSheet(style)
    label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    label.hide()
    return label


def _fit_width(label: QLabel, room: int) -> None:
    """The label's natural size, or wrapped onto more lines when it is wider than `room`: it must stay readable."""
    label.setWordWrap(False)
    label.adjustSize()
    if label.width() > room:
        label.setWordWrap(True)
        label.resize(room, label.heightForWidth(room))


class ImageViewBox(pg.ViewBox):
    """A view box for images: right-drag is window/level and the wheel scrolls slices, not zoom.

    Radiologists expect right-drag to change the window and the wheel to step through slices; pyqtgraph's
    defaults (right-drag and wheel zoom) stay reachable through left-drag (pan) and Ctrl+wheel (zoom).
    """

    windowDragged = Signal(float, float, bool)  # dx, dy in screen pixels since the drag started; finished
    sliceWheel = Signal(int)  # +1 next slice (wheel down), -1 previous
    doubleClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent, lockAspect=True, invertY=True, enableMenu=False)
        self.wheel_scrolls_slices = True
        self._wheel_remainder = 0

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() != Qt.MouseButton.RightButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        moved = ev.screenPos() - ev.buttonDownScreenPos(Qt.MouseButton.RightButton)
        self.windowDragged.emit(float(moved.x()), float(moved.y()), bool(ev.isFinish()))

    def wheelEvent(self, ev, axis=None):
        if not self.wheel_scrolls_slices or ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        # Touchpads send many small deltas: step once per notch's worth so a swipe does not fly through the series.
        if ev.delta() * self._wheel_remainder < 0:
            self._wheel_remainder = 0  # turned back: a leftover part-notch the other way must not eat the first step
        self._wheel_remainder += ev.delta()
        while abs(self._wheel_remainder) >= WHEEL_NOTCH:
            towards_user = self._wheel_remainder < 0  # wheel down: the next slice
            self._wheel_remainder += WHEEL_NOTCH if towards_user else -WHEEL_NOTCH
            self.sliceWheel.emit(1 if towards_user else -1)

    def linkedViewChanged(self, view, axis):
        """Follow a linked view's centre and zoom (data units per screen pixel) instead of copying its range.

        pyqtgraph copies the range; with locked aspect and views of different sizes (a colour bar beside one
        pane, a pixel of rounding in the grid) each view then widens its range to keep square pixels and hands
        the wider range back, and every resize zooms all panes further out. The same centre and scale in every
        view has no such feedback: each view's range already fits its own size and aspect.
        """
        if self.linksBlocked or view is None:
            return
        own_pixels = self.width() if axis == pg.ViewBox.XAxis else self.height()
        source_pixels = view.width() if axis == pg.ViewBox.XAxis else view.height()
        if own_pixels <= 0 or source_pixels <= 0:
            return  # not laid out yet: nothing sensible to follow
        low, high = view.viewRange()[axis]
        half = 0.5 * own_pixels * (high - low) / source_pixels
        centre = 0.5 * (low + high)
        view.blockLink(True)  # as pyqtgraph does: our change must not echo back to the view that moved
        try:
            self.enableAutoRange(axis, False)
            if axis == pg.ViewBox.XAxis:
                self.setXRange(centre - half, centre + half, padding=0)
            else:
                self.setYRange(centre - half, centre + half, padding=0)
        finally:
            view.blockLink(False)

    def mouseClickEvent(self, ev):
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.doubleClicked.emit()
            return
        super().mouseClickEvent(ev)


class ScaleBarOverlay(QWidget):
    """A white bar with end ticks and its length, painted over the image's bottom-right corner."""

    _TICK = 6
    _TEXT_GAP = 2

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.bar_pixels = 0.0
        self.text = ""
        font = QFont(self.font())
        font.setBold(True)
        self.setFont(font)
        self.hide()

    def set_bar(self, length_pixels: float, text: str) -> None:
        self.bar_pixels, self.text = float(length_pixels), text
        metrics = self.fontMetrics()
        width = max(math.ceil(length_pixels), metrics.horizontalAdvance(text)) + 2 * self._TICK
        self.resize(width, metrics.height() + self._TEXT_GAP + self._TICK + 4)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        bar_y = self.height() - 3
        right = self.width() - self._TICK
        left = right - self.bar_pixels
        # A dark halo keeps the white bar readable over bright bone or a white background.
        for colour, width in ((QColor(0, 0, 0, 160), 4), (QColor("white"), 2)):
            painter.setPen(QPen(colour, width))
            painter.drawLine(QPointF(left, bar_y), QPointF(right, bar_y))
            painter.drawLine(QPointF(left, bar_y), QPointF(left, bar_y - self._TICK))
            painter.drawLine(QPointF(right, bar_y), QPointF(right, bar_y - self._TICK))
        text_rect = QRectF(0, 0, self.width(), bar_y - self._TICK - self._TEXT_GAP)
        bottom_right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom
        painter.setPen(QColor(0, 0, 0, 200))
        painter.drawText(text_rect.translated(1, 1), bottom_right, self.text)
        painter.setPen(QColor("white"))
        painter.drawText(text_rect, bottom_right, self.text)
        painter.end()


class _LeaveWatcher(QObject):
    """Tells the pane when the mouse leaves its view, which pyqtgraph's scene does not report."""

    def __init__(self, on_leave, parent: QObject):
        super().__init__(parent)
        self._on_leave = on_leave

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._on_leave()
        return False


class ImagePane(QWidget):
    """A pane showing one role's image ("original", "input", "enhanced", "error") with its overlays."""

    cursorMoved = Signal(object)  # (row, col) in original-image coordinates, or None outside the image
    windowDragged = Signal(float, float, bool)
    sliceWheel = Signal(int)

    def __init__(self, role: str, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.role = role
        self.values: np.ndarray | None = None
        self.units = ""
        self.scale = 1
        self.pixel_spacing_mm: tuple[float, float] | None = None
        self._extent: tuple[float, float] | None = None  # (rows, columns) of the original image
        self._image_shape: tuple[int, ...] | None = None
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._colour_map_name: str | None = None
        self._cursor: tuple[float, float] | None = None
        self._hover_inside = False

        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("k")
        self.layout_widget.ci.setContentsMargins(0, 0, 0, 0)
        self.layout_widget.ci.setSpacing(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget)

        self.view_box = ImageViewBox()
        self.layout_widget.addItem(self.view_box, row=0, col=0)
        self.image_item = pg.ImageItem()
        self.view_box.addItem(self.image_item)
        self.overlay_item = pg.ImageItem()
        self.overlay_item.setZValue(10)
        self.overlay_item.hide()
        self.view_box.addItem(self.overlay_item, ignoreBounds=True)
        crosshair_pen = pg.mkPen(QColor(255, 255, 0, 160), width=1)
        self.crosshair = (
            pg.InfiniteLine(angle=90, movable=False, pen=crosshair_pen),  # the column
            pg.InfiniteLine(angle=0, movable=False, pen=crosshair_pen),  # the row
        )
        for line in self.crosshair:
            line.setZValue(20)
            line.hide()
            self.view_box.addItem(line, ignoreBounds=True)
        self._colour_bar: pg.ColorBarItem | None = None

        self._title = overlay_label(self)
        self._label = overlay_label(self)
        self._label_is_warning = False
        self._readout = overlay_label(self)
        self._message = overlay_label(self, _MESSAGE_STYLE)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        edges = ("left", "right", "top", "bottom")
        self._orientation = {edge: overlay_label(self, _ORIENTATION_STYLE) for edge in edges}
        self._scale_bar = ScaleBarOverlay(self)
        self.set_title(title)

        self.view_box.windowDragged.connect(self.windowDragged)
        self.view_box.sliceWheel.connect(self.sliceWheel)
        self.view_box.doubleClicked.connect(self.reset_view)
        self.view_box.sigRangeChanged.connect(self._update_scale_bar)
        self.view_box.sigResized.connect(self._on_view_resized)
        self.layout_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._leave_watcher = _LeaveWatcher(self._on_mouse_left, self)
        self.layout_widget.viewport().installEventFilter(self._leave_watcher)

    # --- wheel behaviour -------------------------------------------------------------------------------------

    @property
    def wheel_scrolls_slices(self) -> bool:
        """True: the wheel steps through slices (sliceWheel) and Ctrl+wheel zooms; False: the wheel zooms."""
        return self.view_box.wheel_scrolls_slices

    @wheel_scrolls_slices.setter
    def wheel_scrolls_slices(self, enabled: bool) -> None:
        self.view_box.wheel_scrolls_slices = bool(enabled)

    # --- the image -------------------------------------------------------------------------------------------

    def show_image(
        self,
        values: np.ndarray,
        brightness: np.ndarray,
        *,
        units: str = "",
        scale: int = 1,
        pixel_spacing_mm: tuple[float, float] | None = None,
        orientation: tuple[float, ...] | None = None,
    ) -> None:
        """Show `brightness` ([0, 1], or values under a colour map) and keep `values` for the readout.

        Called for every slice while scrolling, so it only swaps the data: items are reused and the view keeps
        its zoom unless the image's extent changes.
        """
        self.values = values
        self.units = units
        self.pixel_spacing_mm = pixel_spacing_mm
        self.image_item.setImage(brightness, autoLevels=False, levels=self._levels)
        self.image_item.show()
        self._message.hide()
        shape = brightness.shape[:2]
        extent = (shape[0] / scale, shape[1] / scale)
        if (shape, scale) != (self._image_shape, self.scale):
            self._image_shape, self.scale = shape, scale
            self.image_item.setRect(QRectF(0, 0, extent[1], extent[0]))
        if extent != self._extent:
            self._extent = extent
            self.reset_view()
        self.set_orientation(orientation)
        self._update_scale_bar()
        if self._cursor is not None:
            self._update_readout(self._cursor)  # the value under a resting cursor changes with the slice

    def clear(self, message: str = "") -> None:
        """No image; `message` (e.g. "Run a model to see the enhanced image") in the middle of the pane."""
        self.values = None
        self.image_item.clear()
        self.image_item.hide()
        self.set_overlay(None)
        self.set_orientation(None)
        self.pixel_spacing_mm = None
        self._scale_bar.hide()
        self._readout.hide()
        self._message.setText(message)
        self._message.setVisible(bool(message))
        self.set_label("")  # a label names the image shown; with none, an "ENHANCED" label would name nothing

    def has_image(self) -> bool:
        return self.values is not None

    def reset_view(self) -> None:
        """Fit the whole image in the pane (linked panes follow)."""
        if self._extent is None:
            return
        rows, columns = self._extent
        self.view_box.setRange(QRectF(0, 0, columns, rows), padding=0)

    def image_pixels_per_screen_pixel(self) -> float:
        """Original-image pixels under one screen pixel (2.0 when the image is shown at half size)."""
        if self.view_box.width() <= 0:
            return 0.0
        # From the range, not viewPixelSize(): pyqtgraph updates its transform lazily (at paint), so during
        # sigRangeChanged viewPixelSize() still describes the previous range and caches that stale value.
        (left, right), _ = self.view_box.viewRange()
        return float(right - left) / float(self.view_box.width())

    # --- labels ----------------------------------------------------------------------------------------------

    def set_title(self, text: str) -> None:
        self._title.setText(text)
        self._title.setVisible(bool(text))
        self._place_overlays()

    def title_text(self) -> str:
        return self._title.text()

    def set_label(self, text: str, warning: bool = False) -> None:
        """A label over the image whatever the zoom; `warning` gives it a high-contrast style."""
        self._label_is_warning = warning
        self._label.setStyleSheet(WARNING_LABEL_STYLE if warning else _PLAIN_LABEL_STYLE)
        self._label.setText(text)
        self._label.setVisible(bool(text))
        self._place_overlays()

    def label_text(self) -> str:
        return self._label.text() if self._label.isVisibleTo(self) else ""

    def label_is_warning(self) -> bool:
        return self._label_is_warning

    def set_orientation(self, orientation: tuple[float, ...] | None) -> None:
        """Patient-direction letters at the middle of each edge, from ImageOrientationPatient; hidden without."""
        letters = edge_labels(orientation)
        changed = False
        for edge, label in self._orientation.items():
            text = getattr(letters, edge) if letters is not None else ""
            if label.text() != text or label.isVisibleTo(self) != bool(text):
                label.setText(text)
                label.adjustSize()
                label.setVisible(bool(text))
                changed = True
        if changed:  # called for every slice: leave the layout alone when the letters stay
            self._place_overlays()

    def orientation_text(self) -> dict[str, str]:
        """The letter shown on each edge ("" when hidden)."""
        return {edge: (label.text() if label.isVisibleTo(self) else "") for edge, label in self._orientation.items()}

    def scale_bar_text(self) -> str:
        return self._scale_bar.text if self._scale_bar.isVisibleTo(self) else ""

    def message_text(self) -> str:
        return self._message.text() if self._message.isVisibleTo(self) else ""

    # --- cursor ----------------------------------------------------------------------------------------------

    def show_cursor(self, position: tuple[float, float] | None) -> None:
        """Draw the shared crosshair at (row, col) in original coordinates and show this pane's value there."""
        self._cursor = position
        if position is None or self.values is None:
            for line in self.crosshair:
                line.hide()
            self._readout.hide()
            return
        row, col = position
        column_line, row_line = self.crosshair
        column_line.setValue(col)
        row_line.setValue(row)
        column_line.show()
        row_line.show()
        self._update_readout(position)

    def readout_text(self) -> str:
        return self._readout.text() if self._readout.isVisibleTo(self) else ""

    def _update_readout(self, position: tuple[float, float]) -> None:
        pixel = self._pixel_at(position)
        if pixel is None:
            self._readout.hide()
            return
        row, col = pixel
        self._readout.setText(format_readout(row, col, self.values[row, col], self.units))
        self._readout.adjustSize()
        self._readout.show()
        self._place_overlays()

    def _pixel_at(self, position: tuple[float, float]) -> tuple[int, int] | None:
        """This pane's pixel (its own resolution: original coordinates x scale) at an original-image position."""
        if self.values is None:
            return None
        row = math.floor(position[0] * self.scale)
        col = math.floor(position[1] * self.scale)
        rows, columns = self.values.shape[:2]
        if 0 <= row < rows and 0 <= col < columns:
            return row, col
        return None

    def _on_mouse_moved(self, scene_position: QPointF) -> None:
        position = None
        if self._extent is not None and self.view_box.sceneBoundingRect().contains(scene_position):
            point = self.view_box.mapSceneToView(scene_position)
            row, col = float(point.y()), float(point.x())
            if 0 <= row < self._extent[0] and 0 <= col < self._extent[1]:
                position = (row, col)
        if position is None and not self._hover_inside:
            return  # still outside: nothing new to tell
        self._hover_inside = position is not None
        self.show_cursor(position)  # a pane on its own still reads out; a grid then shares it with the others
        self.cursorMoved.emit(position)

    def _on_mouse_left(self) -> None:
        if self._hover_inside:
            self._hover_inside = False
            self.show_cursor(None)
            self.cursorMoved.emit(None)

    # --- colour --------------------------------------------------------------------------------------------------

    def set_colour_map(
        self, name: str | None, limits: tuple[float, float] = (0.0, 1.0), units: str = "", quantity: str = "difference"
    ) -> None:
        """Show the VALUES given to show_image through colour map `name` over `limits`, with a labelled colour bar.

        None returns to grey brightness in [0, 1] without a bar.
        """
        if name is None:
            self._colour_map_name = None
            self._levels = (0.0, 1.0)
            self.image_item.setLookupTable(None)
            self.image_item.setLevels(self._levels)
            if self._colour_bar is not None and self._colour_bar.scene() is not None:
                self.layout_widget.removeItem(self._colour_bar)
            return
        label = f"{quantity} ({units})" if units else quantity
        levels = (float(limits[0]), float(limits[1]))
        unchanged = (name, levels, label) == (self._colour_map_name, self._levels, getattr(self, "_bar_label", None))
        if unchanged and self._colour_bar is not None and self._colour_bar.scene() is not None:
            return  # scrolling: the bar's axis would be laid out and repainted again for nothing
        self._bar_label = label
        self._colour_map_name = name
        self._levels = levels
        self.image_item.setColorMap(name)
        self.image_item.setLevels(self._levels)
        if self._colour_bar is None:
            self._colour_bar = pg.ColorBarItem(
                values=self._levels, colorMap=name, label=label, interactive=False, colorMapMenu=False, width=15
            )
            self._colour_bar.setContentsMargins(0, 10, 4, 10)  # room for the end labels, which centre on the ends
        else:
            self._colour_bar.setColorMap(name)
            self._colour_bar.setLevels(self._levels)
            self._colour_bar.getAxis("left").setLabel(label)
        if self._colour_bar.scene() is None:
            self.layout_widget.addItem(self._colour_bar, row=0, col=1)

    @property
    def colour_bar(self) -> pg.ColorBarItem | None:
        """The colour bar beside the view, or None for a grey pane."""
        if self._colour_bar is None or self._colour_bar.scene() is None:
            return None
        return self._colour_bar

    def colour_bar_label(self) -> str:
        bar = self.colour_bar
        return "" if bar is None else bar.getAxis("left").labelText

    def colour_map_name(self) -> str | None:
        return self._colour_map_name

    def set_overlay(
        self,
        values: np.ndarray | None,
        limits: tuple[float, float] | None = None,
        opacity: float = 0.5,
        colour_map: str = DIVERGING_COLOUR_MAP,
    ) -> None:
        """Lay `values` (e.g. a signed difference) semi-transparently over the image; None removes it.

        Limits default to symmetric around zero, so a diverging map keeps zero at its neutral colour.
        """
        if values is None:
            self.overlay_item.clear()
            self.overlay_item.hide()
            return
        if limits is None:
            finite = np.abs(values[np.isfinite(values)])
            largest = float(finite.max()) if finite.size else 0.0
            limits = (-largest, largest) if largest > 0 else (-1.0, 1.0)
        self.overlay_item.setColorMap(colour_map)
        self.overlay_item.setImage(values, autoLevels=False, levels=limits)
        self.overlay_item.setOpacity(opacity)
        rows, columns = self._extent if self._extent is not None else values.shape[:2]
        self.overlay_item.setRect(QRectF(0, 0, columns, rows))
        self.overlay_item.show()

    def overlay_visible(self) -> bool:
        return self.overlay_item.isVisible() and self.overlay_item.image is not None

    # --- overlay placement -----------------------------------------------------------------------------------

    def view_rect(self) -> QRect:
        """The image area (the view box, without a colour bar) in this widget's coordinates."""
        scene_rect = self.view_box.sceneBoundingRect()
        rect = self.layout_widget.mapFromScene(scene_rect).boundingRect()
        rect.translate(self.layout_widget.pos())
        if rect.width() <= 1 or rect.height() <= 1:
            return self.rect()
        return rect

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_overlays()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._place_overlays()

    def _on_view_resized(self) -> None:
        self._place_overlays()
        self._update_scale_bar()

    def _place_overlays(self) -> None:
        """Title and label top-left, readout bottom-left, scale bar bottom-right, letters mid-edge: none overlap."""
        area = self.view_rect()
        left, top, right, bottom = area.left(), area.top(), area.right(), area.bottom()
        room = max(area.width() - 2 * MARGIN, 40)
        header_bottom = top + MARGIN
        for label in (self._title, self._label):
            if label.isVisibleTo(self):
                _fit_width(label, room)
                label.move(left + MARGIN, header_bottom)
                header_bottom += label.height() + 2
        footer = []
        footer_top = bottom - MARGIN
        if self._readout.isVisibleTo(self):
            self._readout.move(left + MARGIN, bottom - MARGIN - self._readout.height())
            footer.append(self._readout)
            footer_top = self._readout.y()
        if self._scale_bar.isVisibleTo(self):
            bar = self._scale_bar
            bar.move(right - MARGIN - bar.width(), bottom - MARGIN - bar.height())
            if footer and bar.geometry().left() <= self._readout.geometry().right() + MARGIN:
                bar.move(bar.x(), footer_top - bar.height() - 2)  # a narrow pane: stack it above the readout
            footer.append(bar)
            footer_top = min(footer_top, bar.y())
        centre_x, centre_y = (left + right) // 2, (top + bottom) // 2
        marks = self._orientation
        top_mark, bottom_mark = marks["top"], marks["bottom"]
        top_mark.move(centre_x - top_mark.width() // 2, top + MARGIN)
        if any(
            top_mark.geometry().adjusted(-MARGIN, 0, MARGIN, 0).intersects(label.geometry())
            for label in (self._title, self._label)
            if label.isVisibleTo(self)
        ):
            top_mark.move(top_mark.x(), header_bottom)  # a long title or warning label reaches the middle
        bottom_mark.move(centre_x - bottom_mark.width() // 2, bottom - MARGIN - bottom_mark.height())
        if any(bottom_mark.geometry().adjusted(-MARGIN, 0, MARGIN, 0).intersects(item.geometry()) for item in footer):
            bottom_mark.move(bottom_mark.x(), footer_top - bottom_mark.height() - 2)
        marks["left"].move(left + MARGIN, centre_y - marks["left"].height() // 2)
        marks["right"].move(right - MARGIN - marks["right"].width(), centre_y - marks["right"].height() // 2)
        if self._message.isVisibleTo(self):
            self._message.setFixedWidth(room)
            self._message.adjustSize()
            self._message.move(left + MARGIN, centre_y - self._message.height() // 2)
        for overlay in (self._message, *marks.values(), self._readout, self._scale_bar, self._label, self._title):
            overlay.raise_()

    def _update_scale_bar(self, *_) -> None:
        if self.pixel_spacing_mm is None or self.values is None:
            self._scale_bar.hide()
            return
        bar = scale_bar(
            self.pixel_spacing_mm,
            self.image_pixels_per_screen_pixel(),
            SCALE_BAR_WIDTH_FRACTION * self.view_rect().width(),
        )
        if bar is None:
            self._scale_bar.hide()
            return
        if (bar.length_pixels, bar.label) == (self._scale_bar.bar_pixels, self._scale_bar.text) and (
            self._scale_bar.isVisibleTo(self)
        ):
            return  # called for every slice and every range change: only a new bar needs a new layout
        self._scale_bar.set_bar(bar.length_pixels, bar.label)
        self._scale_bar.show()
        self._place_overlays()
