"""SwipePane: original left of the divider, enhanced right of it, checked on the rendered pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from medviewer.gui.swipe import SwipePane
from tests.gui.test_panes import right_drag, wheel

SIZE = 64


@pytest.fixture
def swipe(qtbot) -> SwipePane:
    pane = SwipePane()
    qtbot.addWidget(pane)
    pane.resize(400, 400)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def widget_x(pane: SwipePane, column: float) -> int:
    """The x of original column `column` in the pane widget's own pixels."""
    scene_point = pane.view_box.mapViewToScene(QPointF(column, SIZE / 2))
    return pane.layout_widget.mapTo(pane, pane.layout_widget.mapFromScene(scene_point)).x()


def grey_at(image, x: int, y: int) -> int:
    return image.pixelColor(x, y).red()


def test_left_of_the_divider_is_the_original_and_right_the_enhanced(swipe):
    swipe.show_pair(np.zeros((SIZE, SIZE), np.float32), np.ones((2 * SIZE, 2 * SIZE), np.float32), scale=2)
    for fraction in (0.5, 0.25):
        swipe.set_divider(fraction)
        image = swipe.grab().toImage()
        divider = widget_x(swipe, fraction * SIZE)
        y = swipe.height() // 2
        assert grey_at(image, divider - 10, y) == 0  # the original, black
        assert grey_at(image, divider + 10, y) == 255  # the enhanced, white
        assert grey_at(image, widget_x(swipe, 1), y) == 0
        assert grey_at(image, widget_x(swipe, SIZE - 1), y) == 255


def test_the_crop_is_exact_at_whole_pixels(swipe):
    rng = np.random.default_rng(1)
    original = rng.random((SIZE, SIZE), dtype=np.float32)
    enhanced = rng.random((2 * SIZE, 2 * SIZE), dtype=np.float32)
    swipe.show_pair(original, enhanced, scale=2)
    swipe.set_divider(0.3)  # 19.2 columns: snaps to column 19
    assert swipe.divider_fraction() == pytest.approx(19 / SIZE)
    assert swipe.divider.value() == 19
    assert np.array_equal(swipe.original_item.image, original[:, :19])
    assert np.array_equal(swipe.enhanced_item.image, enhanced[:, 38:])
    for item, left, width in ((swipe.original_item, 0, 19), (swipe.enhanced_item, 19, SIZE - 19)):
        rect = item.mapRectToParent(item.boundingRect())
        assert (rect.left(), rect.top(), rect.width(), rect.height()) == pytest.approx((left, 0, width, SIZE))


def test_divider_at_the_edges_shows_one_image(swipe):
    original = np.zeros((SIZE, SIZE), np.float32)
    swipe.show_pair(original, np.ones((SIZE, SIZE), np.float32), scale=1)
    swipe.set_divider(0.0)
    assert not swipe.original_item.isVisible() and swipe.enhanced_item.isVisible()
    swipe.set_divider(1.0)
    assert swipe.original_item.isVisible() and not swipe.enhanced_item.isVisible()
    assert np.array_equal(swipe.original_item.image, original)


def test_dragging_the_divider_moves_the_split(swipe):
    swipe.show_pair(np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32), scale=1)
    viewport = swipe.layout_widget.viewport()
    start = swipe.layout_widget.mapFromScene(swipe.view_box.mapViewToScene(QPointF(SIZE / 2, SIZE / 2)))
    end = swipe.layout_widget.mapFromScene(swipe.view_box.mapViewToScene(QPointF(SIZE / 4, SIZE / 2)))
    moved = []
    swipe.dividerMoved.connect(moved.append)
    QTest.mouseMove(viewport, start)
    QTest.qWait(20)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(viewport, start + QPoint(-5, 0))
    QTest.qWait(20)
    QTest.mouseMove(viewport, end)
    QTest.qWait(20)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    assert swipe.divider_fraction() == pytest.approx(0.25, abs=1.5 / SIZE)
    assert moved and moved[-1] == swipe.divider_fraction()
    assert swipe.original_item.image.shape[1] == round(swipe.divider_fraction() * SIZE)


def test_both_sides_are_labelled_and_the_enhanced_side_says_it_is_not_acquired(swipe):
    swipe.show_pair(np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32), scale=1)
    assert swipe._original_label.text() == "Original" and swipe._original_label.isVisible()
    assert "not the acquired image" in swipe.label_text()
    swipe.set_label("ENHANCED — Fast denoiser")
    assert swipe.label_text() == "ENHANCED — Fast denoiser — not the acquired image"
    swipe.set_label("ENHANCED — Fast denoiser — not the acquired image")
    assert swipe.label_text() == "ENHANCED — Fast denoiser — not the acquired image"
    assert swipe._enhanced_label.isVisible()
    assert not swipe._original_label.geometry().intersects(swipe._enhanced_label.geometry())
    assert swipe.rect().contains(swipe._enhanced_label.geometry())


def test_right_drag_and_wheel_behave_as_in_the_panes(swipe):
    swipe.show_pair(np.zeros((SIZE, SIZE), np.float32), np.ones((SIZE, SIZE), np.float32), scale=1)
    before = np.array(swipe.view_box.viewRange())
    steps, drags = [], []
    swipe.sliceWheel.connect(steps.append)
    swipe.windowDragged.connect(lambda dx, dy, finished: drags.append((dx, dy, finished)))
    wheel(swipe, -1)
    wheel(swipe, 1)
    start = swipe.layout_widget.mapFromScene(swipe.view_box.mapViewToScene(QPointF(SIZE / 4, SIZE / 4)))
    right_drag(swipe, start, [start + QPoint(8, 8), start + QPoint(20, 6)])
    assert steps == [1, -1]
    assert drags[-1] == (20.0, 6.0, True)
    assert np.array(swipe.view_box.viewRange()) == pytest.approx(before)
    wheel(swipe, 1, Qt.KeyboardModifier.ControlModifier)
    assert np.diff(swipe.view_box.viewRange()[0])[0] < np.diff(before[0])[0]
