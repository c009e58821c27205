"""The main window end to end, headless: open, scroll, window, enhance in the worker thread, compare, export.

Expected values come from the core run independently on the same input (the engine, the metrics), never
from what the window showed before.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.session import ReferenceChoice, evaluate
from medviewer.gui.metrics_panel import format_psnr, format_ssim
from medviewer.io.study import load_studies
from medviewer.io.window import CT_PRESETS, apply_window
from medviewer.metrics import psnr, ssim
from tests.conftest import SAMPLE_STUDY
from tests.models.model_folder import write_model


@pytest.fixture
def models_folder(tmp_path, monkeypatch) -> Path:
    """A user models folder with one small, untrained network (the engine treats it like any other)."""
    folder = tmp_path / "models"
    write_model(
        folder,
        model_id="tiny-denoiser",
        architecture="dncnn",
        arguments={"depth": 3, "width": 8},
        task="denoise",
        scale=1,
    )
    monkeypatch.setenv("MEDVIEWER_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def window(qtbot, isolated_settings, models_folder):
    from medviewer.gui.main_window import MainWindow

    main = MainWindow(isolated_settings)
    qtbot.addWidget(main)
    main.resize(1400, 800)
    main.show()
    with qtbot.waitSignal(main.sliceShown, timeout=20000):
        main.open_paths([SAMPLE_STUDY])
    qtbot.waitUntil(lambda: main.registry is not None and not main._load_jobs, timeout=60000)
    return main


def _finish(qtbot, job, timeout=60000):
    assert job is not None, "the window refused to start the job"
    qtbot.waitUntil(lambda: not job.running, timeout=timeout)
    qtbot.wait(20)  # let the queued result signals arrive


def _enhance_slice(qtbot, window, model_id: str, spec: str = "noise:25"):
    window.model_panel.select_model(model_id)
    window.model_panel.set_reference_mode("simulate")
    window.model_panel.set_degradation(spec)
    _finish(qtbot, window.enhance_slice())
    assert window.last_error is None, window.last_error
    return window.current_evaluation()


def test_opens_the_sample_study_in_the_background_and_shows_slice_one(window):
    series = load_studies([SAMPLE_STUDY]).series[0]
    assert [item.description for item in window.browser.series_list()] == [series.description]
    np.testing.assert_array_equal(window.grid.pane("original").values, series.values(0))
    np.testing.assert_array_equal(window.grid.pane("original").image_item.image, series.display(0))
    assert window.slice_label.text() == f"1 / {len(series)}"
    assert window.series.is_decoded(len(series) - 1)  # the rest decoded in the background
    assert window.grid.pane("original").scale_bar_text().endswith(("cm", "mm"))


def test_scrolling_by_wheel_keys_and_slider_shows_each_slice(qtbot, window):
    series = window.series
    window.grid.sliceWheel.emit(1)
    assert window.index == 1
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.index == 2
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.index == len(series) - 1
    qtbot.keyClick(window, Qt.Key.Key_PageDown)  # stays on the last slice
    assert window.index == len(series) - 1
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.index == 0
    window.slider.setValue(7)
    np.testing.assert_array_equal(window.grid.pane("original").values, series.values(7))


def test_cine_plays_through_the_slices(qtbot, window):
    window.cine_fps.setValue(50)
    window.cine_button.setChecked(True)
    qtbot.waitUntil(lambda: window.index >= 3, timeout=5000)
    window.cine_button.setChecked(False)
    stopped_at = window.index
    qtbot.wait(100)
    assert window.index == stopped_at


def test_window_presets_and_right_drag_apply_the_same_window_to_original_and_enhanced(qtbot, window):
    _enhance_slice(qtbot, window, "nlm")
    lung = next(preset for preset in CT_PRESETS if preset.name == "Lung")
    window.actions_by_name["preset_lung"].trigger()
    values = window.series.values(0)
    np.testing.assert_array_equal(window.grid.pane("original").image_item.image, apply_window(values, lung))
    enhanced = window.current_evaluation().enhanced
    np.testing.assert_array_equal(window.grid.pane("enhanced").image_item.image, apply_window(enhanced, lung))
    window.grid.windowDragged.emit(40.0, 0.0, False)  # drag right: a wider window
    window.grid.windowDragged.emit(80.0, 0.0, True)
    assert window.chosen_window.width > lung.width
    assert window.chosen_window.center == pytest.approx(lung.center)
    assert window.window_combo.currentText().startswith("Custom")
    np.testing.assert_array_equal(
        window.grid.pane("enhanced").image_item.image, apply_window(enhanced, window.chosen_window)
    )


def test_classical_model_in_the_worker_shows_the_engines_exact_output_and_metrics(qtbot, window):
    window.go_to_slice(5)
    evaluation = _enhance_slice(qtbot, window, "nlm", "noise:25")
    expected = evaluate(
        load_enhancer(window.registry.get("nlm")), window.series.values(5), ReferenceChoice.simulate("noise:25")
    )
    pane = window.grid.pane("enhanced")
    assert pane.values is evaluation.enhanced
    np.testing.assert_array_equal(pane.values, expected.enhanced)
    np.testing.assert_array_equal(window.grid.pane("input").values, expected.model_input)
    assert "not the acquired image" in pane.label_text()
    assert "Non-local means" in pane.label_text()
    # The metrics panel shows the core's numbers, recomputed here from the arrays.
    low, high = float(expected.reference.min()), float(expected.reference.max())
    scaled = [(image - low) / (high - low) for image in (expected.reference, expected.enhanced, expected.model_input)]
    assert window.metrics_panel.cell_text(0, 0) == format_psnr(psnr(scaled[0], scaled[1]))
    assert window.metrics_panel.cell_text(0, 1) == format_ssim(ssim(scaled[0], scaled[1]))
    assert window.metrics_panel.cell_text(1, 0) == format_psnr(psnr(scaled[0], scaled[2]))


def test_small_network_runs_in_the_worker(qtbot, window):
    evaluation = _enhance_slice(qtbot, window, "tiny-denoiser", "noise:15")
    expected = evaluate(
        load_enhancer(window.registry.get("tiny-denoiser"), "cpu"),
        window.series.values(0),
        ReferenceChoice.simulate("noise:15"),
    )
    np.testing.assert_allclose(window.grid.pane("enhanced").values, expected.enhanced, rtol=0, atol=1e-3)
    assert evaluation.enhanced_scores.psnr == pytest.approx(expected.enhanced_scores.psnr, abs=1e-4)
    assert window.results.device.startswith("cpu")


def test_none_mode_shows_no_psnr(qtbot, window):
    window.model_panel.select_model("nlm")
    window.model_panel.set_reference_mode("none")
    _finish(qtbot, window.enhance_slice())
    assert window.current_evaluation().enhanced_scores is None
    assert "PSNR" not in window.metrics_panel.summary_text().replace("PSNR/SSIM need", "")
    assert "no reference" in window.grid.pane("error").label_text()


def test_panes_zoom_and_pan_together(qtbot, window):
    """pyqtgraph's links: a pane of the same size shows the same range; the error pane, narrower by its colour
    bar, shows the same centre at the same zoom (image pixels per screen pixel)."""
    _enhance_slice(qtbot, window, "nlm")
    original = window.grid.pane("original")
    original.view_box.setRange(xRange=(40, 120), yRange=(60, 140), padding=0)
    qtbot.wait(20)
    (x0, x1), (y0, y1) = original.view_box.viewRange()
    assert (x1 - x0) < 150, "the zoom took effect"
    enhanced = window.grid.pane("enhanced").view_box.viewRange()
    assert enhanced[0] == pytest.approx([x0, x1], abs=0.5) and enhanced[1] == pytest.approx([y0, y1], abs=0.5)
    error = window.grid.pane("error")
    (ex0, ex1), (ey0, ey1) = error.view_box.viewRange()
    assert (ex0 + ex1) / 2 == pytest.approx((x0 + x1) / 2, abs=0.5)
    assert (ey0 + ey1) / 2 == pytest.approx((y0 + y1) / 2, abs=0.5)
    assert error.image_pixels_per_screen_pixel() == pytest.approx(original.image_pixels_per_screen_pixel(), rel=0.02)
    window.grid.pane("enhanced").view_box.translateBy(x=10, y=0)  # pan the enhanced pane: the original follows
    qtbot.wait(20)
    assert original.view_box.viewRange()[0][0] == pytest.approx(x0 + 10, abs=0.5)


def test_difference_overlay_and_swipe_view(qtbot, window):
    evaluation = _enhance_slice(qtbot, window, "nlm")
    window.actions_by_name["difference_overlay"].trigger()
    assert window.grid.pane("enhanced").overlay_visible()
    window.actions_by_name["difference_overlay"].trigger()
    assert not window.grid.pane("enhanced").overlay_visible()
    window.set_layout("swipe")
    assert window.stack.currentWidget() is window.swipe
    np.testing.assert_array_equal(
        window.swipe.enhanced_brightness, window.series.display_values(evaluation.enhanced, window.index)
    )
    window.go_to_slice(5)  # not enhanced: the swipe view must not keep showing slice 1's result
    assert window.swipe.enhanced_brightness is None
    assert "not enhanced" in window.swipe._original_label.text()
    window.go_to_slice(0)
    assert window.swipe.enhanced_brightness is not None
    window.set_layout("2x2")
    assert window.grid.pane("input").isVisible()


def test_cancel_stops_a_series_enhancement_and_keeps_what_was_shown(qtbot, window):
    window.model_panel.select_model("nlm")
    started = time.monotonic()
    job = window.enhance_series()
    qtbot.wait(100)
    window.cancel_button.click()
    _finish(qtbot, job)
    assert window.results is None
    assert "Cancelled" in window.status_text.text()
    assert time.monotonic() - started < 10
    assert not window.cancel_button.isVisible()


def test_event_loop_stays_responsive_while_the_series_is_enhanced(qtbot, window):
    from PySide6.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window.model_panel.select_model("nlm")
    timer.start(10)
    job = window.enhance_series()
    _finish(qtbot, job)
    timer.stop()
    assert len(window.results.evaluations) == len(window.series)
    gaps = np.diff(ticks)
    assert len(ticks) > 20
    assert gaps.max() < 0.3, f"the window froze for {gaps.max():.3f} s"
    print(f"longest event-loop stall while enhancing {len(window.series)} slices: {gaps.max() * 1000:.0f} ms")


def test_compare_models_fills_a_sortable_table_and_a_row_shows_its_result(qtbot, window):
    window.model_panel.set_reference_mode("simulate")
    window.model_panel.set_degradation("noise:25")
    window.model_panel.set_checked(["nlm", "unsharp", "tiny-denoiser", "bicubic-x2"])
    _finish(qtbot, window.compare_models())
    rows = window.compare_view.row_texts()
    assert len(rows) == 4
    results = window.compare_view.results()
    failed = [result for result in results if result.error]
    assert [result.entry.id for result in failed] == ["bicubic-x2"]  # x2 cannot undo noise:25: said, not hidden
    window.compare_view.sort_by("PSNR (dB)", descending=True)
    psnrs = [float(row[1]) for row in window.compare_view.row_texts() if row[1]]
    assert psnrs == sorted(psnrs, reverse=True)
    unsharp = next(result for result in results if result.entry.id == "unsharp")
    window.compare_view.resultChosen.emit(unsharp)
    assert window.grid.pane("enhanced").values is unsharp.evaluation.enhanced
    assert "Unsharp" in window.grid.pane("enhanced").label_text()


def test_bad_files_give_a_message_and_keep_what_was_loaded(qtbot, window, tmp_path):
    corrupt = tmp_path / "broken.dcm"
    corrupt.write_bytes(b"DICM" * 10)
    shown = window.series
    with qtbot.waitSignal(window.errorShown, timeout=20000):
        window.open_paths([corrupt])
    assert "broken.dcm" in window.last_error
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with qtbot.waitSignal(window.errorShown, timeout=20000):
        window.open_paths([empty])
    assert "Nothing readable" in window.last_error
    assert window.series is shown
    assert len(window.browser.series_list()) == 1


def test_a_model_that_fails_to_load_is_a_message(qtbot, window, models_folder):
    (models_folder / "tiny-denoiser.safetensors").write_bytes(b"damaged")
    window.model_panel.select_model("tiny-denoiser")
    job = window.enhance_slice()
    _finish(qtbot, job)
    assert window.last_error and "tiny-denoiser" in window.last_error
    assert window.isVisible() and window.series is not None


def test_drop_opens_files(qtbot, window, tmp_path):
    image = tmp_path / "drop.png"
    from PIL import Image

    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8)).save(image)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(image))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.browser.series_list()) == 2 and not window._load_jobs, timeout=20000)


def test_exports_write_new_files_and_never_touch_the_originals(qtbot, window, tmp_path):
    from medviewer.gui import exporting

    originals = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in SAMPLE_STUDY.iterdir()}
    _enhance_slice(qtbot, window, "nlm")
    evaluation = window.current_evaluation()
    np.testing.assert_array_equal(
        np.load(exporting.export_slice_to(window, tmp_path / "slice.npy")), evaluation.enhanced
    )
    derived = pydicom.dcmread(exporting.export_slice_to(window, tmp_path / "slice.dcm"))
    assert "DERIVED" in derived.ImageType
    assert exporting.export_figure_to(window, tmp_path / "figure.png").stat().st_size > 0
    csv_text = exporting.export_metrics_to(window, tmp_path / "metrics.csv").read_text()
    assert repr(evaluation.enhanced_scores.psnr) in csv_text
    with pytest.raises(Exception, match="overwrite"):
        exporting.export_slice_to(window, window.series.frames[0].path)
    with pytest.raises(Exception, match="Enhance series"):
        exporting.export_series_to(window, tmp_path / "series")
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in SAMPLE_STUDY.iterdir()} == originals


def test_recent_files_layout_and_size_survive_a_restart(qtbot, window, isolated_settings):
    from medviewer.gui.main_window import MainWindow

    window.set_layout("2x2")
    window.resize(760, 560)
    window.close()
    again = MainWindow(isolated_settings, models_job=False)
    qtbot.addWidget(again)
    assert again.layout_name == "2x2"
    assert again.size().width() == 760
    assert [action.text() for action in again.recent_menu.actions()] == [str(SAMPLE_STUDY.resolve())]
    assert isolated_settings.last_folder() == SAMPLE_STUDY


def test_help_lists_every_shortcut_and_about_names_versions(qtbot, window):
    from medviewer.gui.help import SHORTCUTS, AboutDialog, ShortcutsDialog

    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    listed = {dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())}
    assert {keys for _, keys, _ in SHORTCUTS} <= listed
    for name, keys, _ in SHORTCUTS:  # every listed shortcut is bound to the window's action of that name
        assert window.actions_by_name[name].shortcut().toString() == keys.replace("PgDown", "PgDown")
    about = AboutDialog("cpu (2 threads)", window)
    qtbot.addWidget(about)
    assert "PySide6" in about.label.text() and "pydicom" in about.label.text()
    assert "cpu (2 threads)" in about.label.text()


def test_an_enhanced_series_exports_as_one_derived_dicom_series(qtbot, window, tmp_path):
    from medviewer.gui import exporting

    window.model_panel.select_model("unsharp")
    window.model_panel.set_reference_mode("none")
    _finish(qtbot, window.enhance_series())
    written = exporting.export_series_to(window, tmp_path / "derived")
    assert len(written) == len(window.series)
    reread = load_studies([tmp_path / "derived"]).series
    assert len(reread) == 1 and len(reread[0]) == len(window.series)
    assert "Unsharp" in pydicom.dcmread(written[0]).SeriesDescription
    np.testing.assert_allclose(reread[0].values(3), window.results.evaluations[3].enhanced, atol=1.0)
    stack = exporting.export_series_to(window, tmp_path / "stack.npy")
    assert np.load(stack[0]).shape == (len(window.series), *window.series.shape)


def test_command_line_opens_the_window_or_refuses_a_missing_path(tmp_path, capsys):
    from medviewer.cli import main, wants_viewer

    assert wants_viewer([]) and wants_viewer(["scan.dcm"]) and wants_viewer([str(tmp_path)])
    assert not wants_viewer(["info", "scan.dcm"]) and not wants_viewer(["--version"])
    assert main([str(tmp_path / "missing.dcm")]) == 2
    assert capsys.readouterr().err.strip() == f"medviewer: error: {tmp_path / 'missing.dcm'}: file not found"


def test_a_slice_without_a_result_carries_no_enhanced_label(qtbot, window):
    _enhance_slice(qtbot, window, "nlm", "noise:25")
    assert "ENHANCED" in window.grid.pane("enhanced").label_text()
    window.go_to_slice(3)  # not enhanced
    assert window.grid.pane("enhanced").values is None
    assert window.grid.pane("enhanced").label_text() == ""


def test_a_translated_image_is_labelled_synthetic_and_shown_without_the_inputs_units(
    qtbot, window, models_folder, tmp_path
):
    from medviewer.gui import exporting

    write_model(
        models_folder,
        model_id="tiny-cyclegan",
        architecture="cyclegan-resnet",
        arguments={"width": 8, "blocks": 1},
        task="translation",
        scale=1,
    )
    window.refresh_models()
    qtbot.waitUntil(lambda: "tiny-cyclegan" in {entry.id for entry in window.registry.entries}, timeout=60000)
    window.model_panel.select_model("tiny-cyclegan")
    window.model_panel.set_reference_mode("none")
    _finish(qtbot, window.enhance_slice())
    assert window.last_error is None, window.last_error
    enhanced, error = window.grid.pane("enhanced"), window.grid.pane("error")
    assert enhanced.label_text().startswith("SYNTHETIC · ") and "not a measurement" in enhanced.label_text()
    assert "ENHANCED" not in enhanced.label_text()
    assert window.series.units == "HU" and enhanced.units == "" and error.units == ""
    assert error.label_text().startswith("DIFFERENCE: synthetic − input") and "not an error" in error.label_text()
    titles = [panel.title for panel in exporting.figure_panels(window)]
    assert "Synthetic: Test cyclegan-resnet (translated, not a measurement)" in titles


def test_an_image_with_nan_and_infinity_opens_enhances_and_says_how_many(qtbot, isolated_settings, tmp_path):
    from medviewer.gui.main_window import MainWindow

    rows, columns = np.mgrid[0:96, 0:96]
    image = (800 * np.exp(-((rows - 48) ** 2 + (columns - 48) ** 2) / 500.0)).astype(np.float32)
    image += np.random.default_rng(0).normal(0, 20, image.shape).astype(np.float32)
    image[10:14, 20:25] = np.nan
    image[60, 60] = np.inf
    np.save(tmp_path / "holed.npy", image)
    main = MainWindow(isolated_settings)
    qtbot.addWidget(main)
    main.show()
    with qtbot.waitSignal(main.sliceShown, timeout=20000):
        main.open_paths([tmp_path / "holed.npy"])
    qtbot.waitUntil(lambda: main.registry is not None and not main._load_jobs, timeout=60000)
    assert "21 pixels of this slice are NaN or infinite" in main.status_text.text()
    evaluation = _enhance_slice(qtbot, main, "nlm", "noise:25")
    assert evaluation.non_finite_pixels == 21
    assert np.isnan(main.grid.pane("enhanced").values[10:14, 20:25]).all()
    assert np.isposinf(main.grid.pane("enhanced").values[60, 60])
    assert main.metrics_panel.cell_text(0, 0).replace(".", "").isdigit()  # a PSNR over the finite pixels
    assert main.last_error is None


def test_self_ensemble_runs_in_the_worker_and_is_named_wherever_the_result_is_shown(qtbot, window, tmp_path):
    """The panel's x2 runs the network as the engine's x2 self-ensemble; the pane label, the metrics CSV and
    the comparison table name it, and its slices never merge with the single pass's."""
    single = _enhance_slice(qtbot, window, "tiny-denoiser", "noise:15")
    window.model_panel.set_self_ensemble(2)
    ensembled = _enhance_slice(qtbot, window, "tiny-denoiser", "noise:15")
    expected = evaluate(
        load_enhancer(window.registry.get("tiny-denoiser"), "cpu", ensemble=2),
        window.series.values(0),
        ReferenceChoice.simulate("noise:15"),
    )
    np.testing.assert_allclose(ensembled.enhanced, expected.enhanced, rtol=0, atol=1e-3)
    assert not np.allclose(ensembled.enhanced, single.enhanced, rtol=0, atol=1e-3)  # a real second pass
    assert "(self-ensemble x2)" in window.grid.pane("enhanced").label_text()
    assert window.results.name.endswith("(self-ensemble x2)") and window.results.evaluations == {0: ensembled}
    from medviewer.gui.exporting import export_metrics_to

    csv_text = export_metrics_to(window, tmp_path / "metrics.csv").read_text()
    assert "(self-ensemble x2)" in csv_text
    window.model_panel.set_checked(["nlm", "tiny-denoiser"])
    _finish(qtbot, window.compare_models())
    names = sorted(result.name for result in window.compare_view.results())
    assert names[1].endswith("(self-ensemble x2)") and "self-ensemble" not in names[0]  # classical: one pass
    window.model_panel.set_self_ensemble(1)
    assert window.model_panel.self_ensemble() == 1


def test_the_panels_default_runs_each_model_as_its_card_says(qtbot, window, models_folder):
    """ "Model's own" (the panel's default) runs a model whose card says `self_ensemble: 4` as x4, named so,
    and one pass when the user picks "off"."""
    write_model(
        models_folder,
        model_id="tiny-ensembled",
        architecture="dncnn",
        arguments={"depth": 3, "width": 8},
        task="denoise",
        scale=1,
        card_changes={"self_ensemble": 4},
    )
    window.refresh_models()
    qtbot.waitUntil(lambda: any(entry.id == "tiny-ensembled" for entry in window.registry.entries), timeout=60000)
    assert window.model_panel.self_ensemble() is None
    ensembled = _enhance_slice(qtbot, window, "tiny-ensembled", "noise:15")
    assert window.results.name.endswith("(self-ensemble x4)")
    assert "(self-ensemble x4)" in window.grid.pane("enhanced").label_text()
    expected = evaluate(
        load_enhancer(window.registry.get("tiny-ensembled"), "cpu", ensemble=4),
        window.series.values(0),
        ReferenceChoice.simulate("noise:15"),
    )
    np.testing.assert_allclose(ensembled.enhanced, expected.enhanced, rtol=0, atol=1e-3)
    window.model_panel.set_self_ensemble(1)
    _enhance_slice(qtbot, window, "tiny-ensembled", "noise:15")
    assert "self-ensemble" not in window.results.name
