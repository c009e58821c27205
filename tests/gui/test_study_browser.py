"""The study browser lists studies and series as pydicom reads them, and reports the chosen series;
also the brightness -> QImage conversion its thumbnails use."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from medviewer.gui.qimage import brightness_to_qimage, thumbnail_pixmap
from medviewer.gui.study_browser import StudyBrowser
from medviewer.io.study import load_studies
from tests.conftest import REPO_ROOT, SAMPLE_STUDY

SAMPLE_PNG = REPO_ROOT / "resources" / "sample.png"


@pytest.fixture(scope="module")
def sample_header() -> tuple[pydicom.Dataset, int]:
    files = sorted(SAMPLE_STUDY.glob("*.dcm"))
    return pydicom.dcmread(files[0], stop_before_pixels=True), len(files)


@pytest.fixture
def browser(qtbot) -> StudyBrowser:
    widget = StudyBrowser()
    qtbot.addWidget(widget)
    widget.resize(500, 400)
    widget.show()
    return widget


def click_item(qtbot, browser: StudyBrowser, item) -> None:
    rect = browser.visualItemRect(item)
    qtbot.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# --- qimage ---------------------------------------------------------------------------------------
def test_grey_brightness_becomes_8bit_levels_rounded_to_nearest():
    # Random values (no exact .5 ties), some outside [0, 1]; an odd width, so QImage pads its rows.
    brightness = np.random.default_rng(3).uniform(-0.1, 1.1, size=(5, 7))
    image = brightness_to_qimage(brightness)
    expected = np.floor(np.clip(brightness, 0, 1) * 255 + 0.5).astype(int)
    assert (image.width(), image.height()) == (7, 5)
    assert image.format() == QImage.Format.Format_Grayscale8
    # The stored levels themselves: QImage.pixel() converts grey to RGB through a colour transform.
    rows = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(5, image.bytesPerLine())
    shown = rows[:, :7]
    np.testing.assert_array_equal(shown, expected)


def test_colour_brightness_keeps_channels_and_the_image_owns_its_pixels():
    brightness = np.zeros((3, 4, 3), np.float32)
    brightness[1, 2] = (1.0, 0.5, 0.2)
    image = brightness_to_qimage(brightness)
    brightness[:] = 0.7  # a QImage that borrowed the buffer would change too
    colour = QColor(image.pixel(2, 1))
    assert (colour.red(), colour.green(), colour.blue()) == (255, round(0.5 * 255), round(0.2 * 255))
    assert QColor(image.pixel(0, 0)).red() == 0


def test_thumbnail_keeps_the_aspect_ratio(qapp):
    pixmap = thumbnail_pixmap(np.ones((50, 100), np.float32), size=96)
    assert (pixmap.width(), pixmap.height()) == (96, 48)


def test_brightness_of_another_shape_is_refused():
    with pytest.raises(ValueError):
        brightness_to_qimage(np.zeros((2, 2, 2), np.float32))


# --- browser --------------------------------------------------------------------------------------
def test_sample_series_is_listed_with_pydicom_size_and_modality(browser, sample_header):
    header, frame_count = sample_header
    browser.add_studies(load_studies([SAMPLE_STUDY]))
    assert browser.topLevelItemCount() == 1
    study_item = browser.topLevelItem(0)
    assert "Phantom, Sample" in study_item.text(0)  # PN "Phantom^Sample" read as "family, given"
    assert header.StudyDescription in study_item.text(0)
    assert "2024-01-15" in study_item.text(0) and header.StudyDate == "20240115"
    assert study_item.childCount() == 1
    series_item = study_item.child(0)
    assert series_item.text(0) == header.SeriesDescription
    assert series_item.text(1) == header.Modality == "CT"
    assert series_item.text(2) == f"{header.Columns} x {header.Rows} x {frame_count}" == "256 x 256 x 24"


def test_series_tooltip_names_syntax_units_spacing_and_frames(browser, sample_header):
    header, frame_count = sample_header
    browser.add_studies(load_studies([SAMPLE_STUDY]))
    tooltip = browser.topLevelItem(0).child(0).toolTip(0)
    assert header.file_meta.TransferSyntaxUID.name in tooltip
    assert "Units: HU" in tooltip
    row_spacing, column_spacing = (float(value) for value in header.PixelSpacing)
    assert f"{row_spacing:g} x {column_spacing:g} mm" in tooltip
    assert f"Frames: {frame_count}" in tooltip


def test_opening_again_accumulates_without_duplicates(browser):
    browser.add_studies(load_studies([SAMPLE_STUDY]))
    browser.add_studies(load_studies([SAMPLE_PNG]))
    browser.add_studies(load_studies([SAMPLE_STUDY]))  # new Series objects, same series
    listed = browser.series_list()
    assert [series.description for series in listed] == ["Head 5 mm (synthetic)", "sample.png"]
    assert browser.topLevelItemCount() == 2
    png_item = browser.topLevelItem(1).child(0)
    assert png_item.text(1) == "PNG" and png_item.text(2) == "256 x 256 x 1"
    browser.clear_studies()
    assert browser.series_list() == [] and browser.topLevelItemCount() == 0


def test_clicking_a_series_emits_it_and_clicking_a_study_does_not(qtbot, browser):
    loaded = load_studies([SAMPLE_STUDY, SAMPLE_PNG])
    browser.add_studies(loaded)
    png_series = loaded.series[1]
    with qtbot.assertNotEmitted(browser.seriesSelected, wait=50):
        click_item(qtbot, browser, browser.topLevelItem(0))
    with qtbot.waitSignal(browser.seriesSelected, timeout=1000) as blocker:
        click_item(qtbot, browser, browser.topLevelItem(1).child(0))
    assert blocker.args[0] is png_series
    with qtbot.waitSignal(browser.seriesSelected, timeout=1000) as blocker:
        browser.select_series(loaded.series[0])
    assert blocker.args[0] is loaded.series[0]
    assert browser.selected_series() is loaded.series[0]


def test_thumbnail_becomes_the_series_icon(browser):
    loaded = load_studies([SAMPLE_STUDY])
    browser.add_studies(loaded)
    item = browser.topLevelItem(0).child(0)
    assert item.icon(0).isNull()
    series = loaded.series[0]
    browser.set_thumbnail(series, series.display(12))
    icon = item.icon(0)
    assert not icon.isNull()
    size = icon.availableSizes()[0]
    assert max(size.width(), size.height()) == 64
