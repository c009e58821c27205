"""ImagePane: exact data shown, original-pixel extent, readout, mouse gestures and overlays, driven by real events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import medviewer.gui  # noqa: F401  (row-major image axis order)
from medviewer.gui.panes import DIVERGING_COLOUR_MAP, ImagePane, format_readout

SIZE = 64
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def ramp(rows: int = SIZE, columns: int = SIZE) -> np.ndarray:
    """Values that differ at every pixel, so a readout names exactly one pixel."""
    return np.arange(rows * columns, dtype=np.float32).reshape(rows, columns) - 1000.0


def brightness_of(values: np.ndarray) -> np.ndarray:
    return (values - values.min()) / (values.max() - values.min())


def shown_pane(qtbot, role: str = "original", size: int = 400) -> ImagePane:
    pane = ImagePane(role, f"{role} title")
    qtbot.addWidget(pane)
    pane.resize(size, size)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def viewport_point(pane, row: float, col: float) -> QPoint:
    """Where original-image position (row, col) is on the pane's graphics viewport."""
    scene_point = pane.view_box.mapViewToScene(QPointF(col, row))
    return pane.layout_widget.mapFromScene(scene_point)


def hover(pane, row: float, col: float) -> None:
    QTest.qWait(15)  # pyqtgraph drops mouse moves closer than 10 ms (mouseRateLimit)
    QTest.mouseMove(pane.layout_widget.viewport(), viewport_point(pane, row, col))
    QApplication.processEvents()


def wheel(pane, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A real wheel event over the middle of the view: positive notches roll away from the user (up)."""
    viewport = pane.layout_widget.viewport()
    position = QPointF(viewport.width() / 2, viewport.height() / 2)
    event = QWheelEvent(
        position,
        QPointF(viewport.mapToGlobal(position.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def right_drag(pane, start: QPoint, moves: list[QPoint]) -> None:
    viewport = pane.layout_widget.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, start)
    for point in moves[:-1]:
        QTest.mouseMove(viewport, point)
        QTest.qWait(20)  # pyqtgraph rate-limits drag moves
    QTest.mouseRelease(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, moves[-1])


def double_click(pane, point: QPoint) -> None:
    """Press, release, double-click, release: what a window system sends (QTest.mouseDClick skips a release)."""
    viewport = pane.layout_widget.viewport()
    left, no_modifier = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(viewport, left, no_modifier, point)
    QTest.mouseRelease(viewport, left, no_modifier, point)
    global_point = QPointF(viewport.mapToGlobal(point))
    event = QMouseEvent(QEvent.Type.MouseButtonDblClick, QPointF(point), global_point, left, left, no_modifier)
    QApplication.sendEvent(viewport, event)
    QTest.mouseRelease(viewport, left, no_modifier, point)


def view_range(pane) -> np.ndarray:
    return np.array(pane.view_box.viewRange())


@pytest.mark.parametrize(
    ("value", "units", "expected"),
    [
        (40.0, "HU", "row 120  col 88  40.0 HU"),
        (np.float32(-1234.56), "HU", "row 120  col 88  -1234.6 HU"),
        (np.int16(-1000), "HU", "row 120  col 88  -1000 HU"),
        (7, "", "row 120  col 88  7"),
        (0.5, "", "row 120  col 88  0.500"),
        (np.float64(0.0123456), "", "row 120  col 88  0.0123"),
        (-3.14159, "mGy", "row 120  col 88  -3.14 mGy"),
        (np.array([255, 0, 12], dtype=np.uint8), "", "row 120  col 88  255,0,12"),
        (np.array([0.25, 1.0, 12.5], dtype=np.float32), "", "row 120  col 88  0.250,1.00,12.5"),
    ],
)
def test_format_readout(value, units, expected):
    assert format_readout(120, 88, value, units) == expected


def test_show_image_keeps_the_exact_values_and_shows_the_brightness(qtbot):
    pane = shown_pane(qtbot)
    values = ramp()
    brightness = brightness_of(values)
    pane.show_image(values, brightness, units="HU")
    assert pane.values is values
    assert np.array_equal(pane.image_item.image, brightness)
    assert tuple(pane.image_item.getLevels()) == (0.0, 1.0)


def test_a_scaled_image_spans_the_original_extent(qtbot):
    original, enhanced = shown_pane(qtbot, "original"), shown_pane(qtbot, "enhanced")
    original.show_image(ramp(), brightness_of(ramp()))
    twice = ramp(2 * SIZE, 2 * SIZE)
    enhanced.show_image(twice, brightness_of(twice), scale=2)
    for pane in (original, enhanced):
        rect = pane.image_item.mapRectToParent(pane.image_item.boundingRect())
        assert (rect.left(), rect.top(), rect.width(), rect.height()) == pytest.approx((0, 0, SIZE, SIZE))
    assert view_range(enhanced) == pytest.approx(view_range(original))


def test_scrolling_keeps_the_zoom_and_the_items(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    image_item = pane.image_item
    pane.view_box.setRange(xRange=(10, 20), yRange=(10, 20), padding=0)
    zoomed = view_range(pane)
    next_slice = ramp()[::-1].copy()
    pane.show_image(next_slice, brightness_of(next_slice))
    assert pane.image_item is image_item
    assert view_range(pane) == pytest.approx(zoomed)
    assert np.array_equal(pane.image_item.image, brightness_of(next_slice))


def test_a_new_extent_fits_the_new_image(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    pane.view_box.setRange(xRange=(10, 20), yRange=(10, 20), padding=0)
    larger = ramp(128, 128)
    pane.show_image(larger, brightness_of(larger))
    (left, right), (top, bottom) = view_range(pane)
    assert left <= 0 and right >= 128 and top <= 0 and bottom >= 128
    assert min(right - left, bottom - top) == pytest.approx(128)


def test_hovering_reads_out_the_value_and_reports_original_coordinates(qtbot):
    pane = shown_pane(qtbot)
    values = ramp()
    pane.show_image(values, brightness_of(values), units="HU")
    reported = []
    pane.cursorMoved.connect(reported.append)
    hover(pane, 10.5, 20.5)
    assert pane.readout_text() == f"row 10  col 20  {values[10, 20]:.1f} HU"
    row, col = reported[-1]
    assert (row, col) == pytest.approx((10.5, 20.5), abs=0.5)
    pane.view_box.setRange(xRange=(-SIZE, 2 * SIZE), yRange=(-SIZE, 2 * SIZE), padding=0)  # room around the image
    count = len(reported)
    hover(pane, -10, 30)  # in the view, above the image
    assert len(reported) == count + 1 and reported[-1] is None
    assert pane.readout_text() == ""


def test_a_scaled_pane_reads_out_its_own_pixels(qtbot):
    pane = shown_pane(qtbot, "enhanced")
    twice = ramp(2 * SIZE, 2 * SIZE)
    pane.show_image(twice, brightness_of(twice), units="HU", scale=2)
    pane.show_cursor((10.5, 20.75))  # original coordinates: pixel (21, 41) of the x2 image
    assert pane.readout_text() == f"row 21  col 41  {twice[21, 41]:.1f} HU"


def test_colour_values_read_out_as_rgb(qtbot):
    pane = shown_pane(qtbot)
    colour = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    colour[5, 6] = (200, 100, 7)
    pane.show_image(colour, colour / 255.0)
    pane.show_cursor((5.5, 6.5))
    assert pane.readout_text() == "row 5  col 6  200,100,7"


def test_show_cursor_draws_the_crosshair_and_none_hides_it(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    pane.show_cursor((12.5, 30.25))
    column_line, row_line = pane.crosshair
    assert column_line.isVisible() and row_line.isVisible()
    assert (column_line.value(), row_line.value()) == (30.25, 12.5)
    assert not column_line.movable and not row_line.movable
    pane.show_cursor(None)
    assert not column_line.isVisible() and not row_line.isVisible()
    assert pane.readout_text() == ""


def test_right_drag_emits_window_deltas_from_the_start_and_does_not_zoom(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    before = view_range(pane)
    drags = []
    pane.windowDragged.connect(lambda dx, dy, finished: drags.append((dx, dy, finished)))
    start = viewport_point(pane, 32, 32)
    right_drag(pane, start, [start + QPoint(10, 0), start + QPoint(25, -5), start + QPoint(40, -8)])
    assert drags[0][2] is False
    assert drags[-1] == (40.0, -8.0, True)
    assert all(not finished for *_, finished in drags[:-1])
    assert view_range(pane) == pytest.approx(before)


def test_left_drag_pans(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    before = view_range(pane)
    start = viewport_point(pane, 32, 32)
    viewport = pane.layout_widget.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(viewport, start + QPoint(20, 0))
    QTest.qWait(20)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + QPoint(50, 0))
    after = view_range(pane)
    assert after[0][0] < before[0][0]  # dragged right: the view moved to smaller columns
    assert after[0][1] - after[0][0] == pytest.approx(before[0][1] - before[0][0])  # same zoom


def test_wheel_steps_slices_without_zooming(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    before = view_range(pane)
    steps = []
    pane.sliceWheel.connect(steps.append)
    wheel(pane, -1)  # down: next slice
    wheel(pane, 1)
    wheel(pane, 2)
    assert steps == [1, -1, -1, -1]
    assert view_range(pane) == pytest.approx(before)


def test_ctrl_wheel_zooms_and_does_not_step(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    before_width = np.diff(view_range(pane)[0])[0]
    steps = []
    pane.sliceWheel.connect(steps.append)
    wheel(pane, 1, Qt.KeyboardModifier.ControlModifier)
    assert steps == []
    assert np.diff(view_range(pane)[0])[0] < before_width


def test_wheel_zooms_when_it_does_not_scroll_slices(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    pane.wheel_scrolls_slices = False
    before_width = np.diff(view_range(pane)[0])[0]
    wheel(pane, 1)
    assert np.diff(view_range(pane)[0])[0] < before_width


def test_double_click_resets_the_view(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    pane.view_box.setRange(xRange=(10, 20), yRange=(10, 20), padding=0)
    double_click(pane, viewport_point(pane, 15, 15))
    (left, right), (top, bottom) = view_range(pane)
    assert min(right - left, bottom - top) == pytest.approx(SIZE)


def test_view_box_has_no_context_menu_and_row_zero_on_top(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    assert not pane.view_box.menuEnabled()
    assert pane.view_box.yInverted()
    assert pane.view_box.state["aspectLocked"]
    assert viewport_point(pane, 0, 10).y() < viewport_point(pane, 60, 10).y()


def test_label_is_visible_and_fixed_to_the_pane(qtbot):
    pane = shown_pane(qtbot, "enhanced")
    pane.show_image(ramp(), brightness_of(ramp()))
    text = "ENHANCED — Fast denoiser — not the acquired image"
    pane.set_label(text, warning=True)
    assert pane.label_text() == text
    assert pane.label_is_warning()
    label = pane._label
    assert label.isVisible() and pane.rect().contains(label.geometry())
    where = label.geometry()
    pane.view_box.setRange(xRange=(40, 50), yRange=(40, 50), padding=0)  # zoomed and panned away
    assert label.isVisible() and label.geometry() == where
    pane.set_label("")
    assert pane.label_text() == ""


def test_title_is_shown(qtbot):
    pane = shown_pane(qtbot)
    pane.set_title("Original (acquired)")
    assert pane.title_text() == "Original (acquired)"
    assert pane._title.isVisible()


def test_orientation_letters_for_an_axial_image(qtbot):
    pane = shown_pane(qtbot)
    # Axial, rows along +x (patient left), columns along +y (posterior): the radiological convention.
    pane.show_image(ramp(), brightness_of(ramp()), orientation=AXIAL)
    assert pane.orientation_text() == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    marks = pane._orientation
    assert marks["left"].x() < marks["top"].x() < marks["right"].x()
    assert marks["top"].y() < marks["left"].y() < marks["bottom"].y()
    pane.set_orientation(None)
    assert pane.orientation_text() == {"left": "", "right": "", "top": "", "bottom": ""}


def test_scale_bar_follows_the_zoom(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()), pixel_spacing_mm=(0.5, 0.5))
    # 64 pixels of 0.5 mm across ~400 screen pixels: a quarter of the width is ~8 mm, so the bar is 5 mm.
    assert pane.scale_bar_text() == "5 mm"
    assert pane.image_pixels_per_screen_pixel() == pytest.approx(SIZE / pane.view_box.width(), rel=0.02)
    pane.view_box.setRange(xRange=(0, 16), yRange=(0, 16), padding=0)  # x4: a quarter is ~2 mm
    assert pane.scale_bar_text() == "2 mm"
    pane.show_image(ramp(), brightness_of(ramp()))
    assert pane.scale_bar_text() == ""


def test_error_pane_has_a_diverging_colour_map_and_a_labelled_colour_bar(qtbot):
    pane = shown_pane(qtbot, "error")
    grey = shown_pane(qtbot, "original")
    difference = np.zeros((SIZE, SIZE), dtype=np.float32)
    difference[:, : SIZE // 2] = -50.0
    difference[:, SIZE // 2 :] = 50.0
    pane.set_colour_map(DIVERGING_COLOUR_MAP, (-50.0, 50.0), "HU")
    pane.show_image(difference, difference, units="HU")
    grey.show_image(ramp(), brightness_of(ramp()))
    assert pane.colour_bar is not None and "HU" in pane.colour_bar_label()
    assert tuple(pane.image_item.getLevels()) == (-50.0, 50.0)
    assert grey.colour_bar is None
    # CET-D1 runs blue -> white -> red: the negative half is drawn blue, the positive half red.
    image = pane.grab().toImage()
    negative = image.pixelColor(viewport_point(pane, 32, 8))
    positive = image.pixelColor(viewport_point(pane, 32, 56))
    assert negative.blue() > negative.red() + 50
    assert positive.red() > positive.blue() + 50
    pane.set_colour_map(None)
    assert pane.colour_bar is None


def test_difference_overlay_toggles(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    difference = np.linspace(-1, 1, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    pane.set_overlay(difference, opacity=0.4)
    assert pane.overlay_visible()
    assert pane.overlay_item.opacity() == pytest.approx(0.4)
    assert tuple(pane.overlay_item.getLevels()) == pytest.approx((-1.0, 1.0))
    assert pane.overlay_item.zValue() > pane.image_item.zValue()
    rect = pane.overlay_item.mapRectToParent(pane.overlay_item.boundingRect())
    assert (rect.width(), rect.height()) == pytest.approx((SIZE, SIZE))
    pane.set_overlay(None)
    assert not pane.overlay_visible()


def test_clear_shows_the_message_and_forgets_the_image(qtbot):
    pane = shown_pane(qtbot, "enhanced")
    pane.show_image(ramp(), brightness_of(ramp()))
    pane.clear("Run a model to see the enhanced image")
    assert pane.values is None
    assert pane.message_text() == "Run a model to see the enhanced image"
    assert not pane.image_item.isVisible()
    pane.show_cursor((3.0, 3.0))
    assert pane.readout_text() == ""
    pane.show_image(ramp(), brightness_of(ramp()))
    assert pane.message_text() == ""


def test_a_touchpad_steps_once_per_notch_of_scrolling(qtbot):
    pane = shown_pane(qtbot)
    pane.show_image(ramp(), brightness_of(ramp()))
    steps = []
    pane.sliceWheel.connect(steps.append)
    for _ in range(3):
        send_wheel_delta(pane, -40)  # a third of a notch each
    assert steps == [1]
    send_wheel_delta(pane, -40)
    send_wheel_delta(pane, 120)
    assert steps == [1, -1]  # turning back forgets the third of a notch left over the other way


def send_wheel_delta(pane, angle_delta: int) -> None:
    viewport = pane.layout_widget.viewport()
    position = QPointF(viewport.width() / 2, viewport.height() / 2)
    event = QWheelEvent(
        position,
        QPointF(viewport.mapToGlobal(position.toPoint())),
        QPoint(0, 0),
        QPoint(0, angle_delta),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def test_in_a_narrow_pane_the_overlays_stay_inside_and_apart(qtbot):
    pane = ImagePane("enhanced", "Enhanced")
    qtbot.addWidget(pane)
    pane.resize(220, 300)
    pane.show()
    qtbot.waitExposed(pane)
    pane.show_image(ramp(), brightness_of(ramp()), units="HU", pixel_spacing_mm=(0.5, 0.5), orientation=AXIAL)
    pane.set_label("ENHANCED — Fast denoiser — not the acquired image", warning=True)
    pane.show_cursor((10.5, 20.5))
    overlays = [pane._title, pane._label, pane._readout, pane._scale_bar, *pane._orientation.values()]
    assert all(overlay.isVisible() for overlay in overlays)
    for index, overlay in enumerate(overlays):
        assert pane.rect().contains(overlay.geometry())
        for other in overlays[index + 1 :]:
            assert not overlay.geometry().intersects(other.geometry())
