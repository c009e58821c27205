"""The comparison view shows each model's numbers, sorts them as numbers with failures last, and reports the
result a user clicks, from the table or from the thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from medviewer.enhance.session import ComparisonResult, ReferenceChoice, compare_models
from medviewer.gui.compare_view import COLUMNS, CompareView
from medviewer.io.study import load_studies
from medviewer.io.window import Window, apply_window
from medviewer.models.registry import discover_models
from tests.conftest import SAMPLE_STUDY

# noise:50 puts some PSNRs below 10 dB: as text "9.85" would sort after "27.45".
MODEL_IDS = ("nlm", "unsharp", "histeq", "clahe", "bicubic-x2")
BRAIN_WINDOW = Window(40.0, 80.0)
PSNR, GAIN, MODEL = COLUMNS.index("PSNR (dB)"), COLUMNS.index("Gain (dB)"), COLUMNS.index("Model")


@pytest.fixture(scope="module")
def slice_values() -> np.ndarray:
    return load_studies([SAMPLE_STUDY]).series[0].values(12)


@pytest.fixture(scope="module")
def registry():
    return discover_models(folders=[])


@pytest.fixture(scope="module")
def results(slice_values, registry) -> list[ComparisonResult]:
    entries = [registry.get(model_id) for model_id in MODEL_IDS]
    return compare_models(entries, slice_values, ReferenceChoice.simulate("noise:50"))


@pytest.fixture
def view(qtbot, results) -> CompareView:
    widget = CompareView()
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.set_results(results, BRAIN_WINDOW, "HU")
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def by_name(results: list[ComparisonResult]) -> dict[str, ComparisonResult]:
    return {result.entry.name: result for result in results}


def test_rows_show_each_models_numbers_and_failures_their_error(view, results):
    assert results[-1].evaluation is None and results[-1].error  # bicubic-x2 cannot undo noise
    rows = {row[MODEL]: row for row in view.row_texts()}
    assert set(rows) == {result.entry.name for result in results}
    for name, result in by_name(results).items():
        row = rows[name]
        assert row[COLUMNS.index("Device")] == result.device
        if result.evaluation is None:
            assert row[1:5] == ["", "", "", ""]
            assert row[COLUMNS.index("Error")] == result.error
            continue
        evaluation = result.evaluation
        assert row[PSNR] == f"{evaluation.enhanced_scores.psnr:.2f}"
        assert row[COLUMNS.index("SSIM")] == f"{evaluation.enhanced_scores.ssim:.4f}"
        assert row[GAIN] == f"{evaluation.enhanced_scores.psnr - evaluation.baseline_scores.psnr:+.2f}"
        assert row[COLUMNS.index("Time (s)")] == f"{evaluation.seconds:.2f}"
        assert row[COLUMNS.index("Error")] == ""


@pytest.mark.parametrize("column_name", ["PSNR (dB)", "Gain (dB)"])
@pytest.mark.parametrize("descending", [False, True])
def test_sorting_is_numeric_with_failures_last(view, results, column_name, descending):
    column = COLUMNS.index(column_name)
    view.sort_by(column_name, descending)
    rows = view.row_texts()
    assert rows[-1][MODEL] == results[-1].entry.name  # the failed model, whichever the direction
    shown = [float(row[column]) for row in rows[:-1]]
    assert shown == sorted(shown, reverse=descending)
    # The check must be able to fail: sorted as text, these columns come out in another order.
    texts = [row[column] for row in rows[:-1]]
    assert sorted(texts, reverse=descending) != texts


def test_clicking_a_header_sorts_by_it(qtbot, view):
    header = view._table.horizontalHeader()
    position = header.sectionViewportPosition(GAIN) + header.sectionSize(GAIN) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(position, header.height() // 2))
    gains = [float(row[GAIN]) for row in view.row_texts()[:-1]]
    assert gains == sorted(gains) or gains == sorted(gains, reverse=True)
    assert view.row_texts()[-1][GAIN] == ""


def test_clicking_a_row_emits_its_result_after_sorting(qtbot, view, results):
    view.sort_by("PSNR (dB)", descending=True)
    table = view._table
    for row in (0, 3, 4):
        name = table.item(row, MODEL).text()
        rect = table.visualItemRect(table.item(row, PSNR))
        with qtbot.waitSignal(view.resultChosen, timeout=1000) as blocker:
            qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert blocker.args[0] is by_name(results)[name]


def test_thumbnails_show_each_successful_result_and_clicking_one_emits_it(qtbot, view, results):
    succeeded = [result for result in results if result.evaluation is not None]
    assert view.thumbnail_texts() == [result.entry.name for result in succeeded]
    strip = view._thumbnails
    for index, result in enumerate(succeeded):
        item = strip.item(index)
        image = item.icon().pixmap(96, 96).toImage().convertToFormat(QImage.Format.Format_Grayscale8)
        levels = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(image.height(), -1)
        shown_mean = levels[:, : image.width()].mean() / 255
        # A smooth downscale keeps the mean brightness of the windowed enhanced image.
        assert shown_mean == pytest.approx(apply_window(result.evaluation.enhanced, BRAIN_WINDOW).mean(), abs=0.02)
    histeq = next(index for index, result in enumerate(succeeded) if result.entry.id == "histeq")
    strip.scrollToItem(strip.item(histeq))
    rect = strip.visualItemRect(strip.item(histeq))
    with qtbot.waitSignal(view.resultChosen, timeout=1000) as blocker:
        qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args[0] is succeeded[histeq]


def test_without_reference_there_are_no_scores_only_times(qtbot, slice_values, registry):
    entries = [registry.get("nlm"), registry.get("clahe")]
    results = compare_models(entries, slice_values, ReferenceChoice.none())
    view = CompareView()
    qtbot.addWidget(view)
    view.set_results(results, BRAIN_WINDOW, "HU")
    view.sort_by("PSNR (dB)", descending=False)
    for row in view.row_texts():
        assert row[PSNR] == row[COLUMNS.index("SSIM")] == row[GAIN] == ""
        assert row[COLUMNS.index("Time (s)")] != ""
    assert len(view.thumbnail_texts()) == 2
