"""The training dialog and the Train menu: the trainer's JSON lines read however the pipe cuts them, a real tiny
run through the dialog's QProcess (curves, baselines, export, the new model in the Models panel), stop and
resume, and bad input, a failure and a killed process shown in the dialog while the viewer keeps running.

Expected values come from the trainer's own records (its recipe reader, the run's events.jsonl), never from
what the dialog showed before.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from medviewer.gui.training_process import (
    STDERR_TAIL_LINES,
    JsonLinesReader,
    TextTail,
    classify_exit,
    resume_arguments,
    run_arguments,
)
from medviewer.gui.training_progress import TrainingProgress, format_duration, mean_baseline_psnr
from medviewer.gui.training_recipes import read_recipe, recipe_for_model, shipped_recipes
from tests.trainer.phantoms import write_folder

# A tiny network and a short schedule: a real run of the msdenoiser recipe in a few seconds on two CPU cores.
TINY = [
    "log_every=3",
    "validate_every=6",
    "checkpoint_every=6",
    "data.batch=4",
    "data.workers=0",
    "data.val_images=1",
    "optimiser.warmup_steps=0",
    "model.arguments={widths=[8,16,32],blocks=[1,1,1]}",
]
RUN_TIMEOUT_MS = 120_000

START = {
    "event": "start",
    "run": "/runs/r1",
    "recipe": "msdenoiser",
    "paradigm": "supervised",
    "step": 0,
    "steps": 60,
    "device": "cpu (2 threads)",
    "baselines": {
        "noise:15": {"input": {"psnr": 24.6, "ssim": 0.43}, "classical": {"psnr": 34.9, "ssim": 0.95}},
        "noise:25": {"input": {"psnr": 20.2, "ssim": 0.28}, "classical": {"psnr": 31.8, "ssim": 0.92}},
        "noise:50": {"input": {"psnr": 14.1, "ssim": 0.16}, "classical": {"psnr": 26.5, "ssim": 0.79}},
    },
    "classical": "nlm",
    "resumed": False,
}
EVENTS = [
    START,
    {"event": "step", "step": 10, "steps": 60, "losses": {"loss": 0.1, "pixel": 0.1}, "eta_seconds": 20.0},
    {"event": "step", "step": 20, "steps": 60, "losses": {"loss": 0.09, "pixel": 0.09}, "eta_seconds": 11.0},
    {"event": "val", "step": 20, "steps": 60, "psnr": 19.3, "ssim": 0.28, "best_step": 20, "message": "σ ≥ 0 ✓"},
    {"event": "checkpoint", "step": 20, "path": "/runs/r1/checkpoints/step-00000020.pt", "best_step": 20},
    {"event": "cancelled", "step": 21, "steps": 60, "run": "/runs/r1"},
]


# ==============================================================================================
# reading the trainer's output (no display needed)
# ==============================================================================================
def _stream(events) -> bytes:
    return b"".join(json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n" for event in events)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 10_000])
def test_json_lines_come_out_whole_however_the_pipe_cuts_them(chunk):
    data = _stream(EVENTS)  # the val event holds multi-byte characters: some cuts fall inside one
    reader = JsonLinesReader()
    read = []
    for start in range(0, len(data), chunk):
        read += reader.feed(data[start : start + chunk])
    read += reader.finish()
    assert read == EVENTS


def test_a_line_that_is_not_an_event_is_text_and_a_last_line_without_newline_is_kept():
    reader = JsonLinesReader()
    assert reader.feed(b'{"event":"step","step":1}\r\nwarming up\n[1, 2]\n{"no_event": 1}\n\n{"event":"do') == [
        {"event": "step", "step": 1},
        "warming up",
        "[1, 2]",
        '{"no_event": 1}',
    ]
    assert reader.finish() == ['{"event":"do']  # a cut-off line is text for the log, not an event...
    reader.feed(b'{"event":"done","step":3}')
    assert reader.finish() == [{"event": "done", "step": 3}]  # ...but a complete one without "\n" is


def test_the_stderr_tail_keeps_the_last_lines_and_the_unfinished_one():
    tail = TextTail()
    text = "".join(f"line {number}\n" for number in range(50)) + "RuntimeError: bo"
    for start in range(0, len(text), 5):
        tail.feed(text[start : start + 5].encode())
    lines = tail.lines()
    assert len(lines) == STDERR_TAIL_LINES
    assert lines[0] == f"line {50 - STDERR_TAIL_LINES + 1}" and lines[-1] == "RuntimeError: bo"


@pytest.mark.parametrize(
    ("exit_code", "crashed", "cancel_requested", "kind", "message"),
    [
        (0, False, False, "done", "Done"),
        (130, False, True, "cancelled", "checkpoint"),
        (2, False, False, "bad-input", "data folder /nowhere not found"),
        (1, False, False, "failed", "exit code 1): ValueError: bad"),
        (None, True, False, "failed", "killed"),
        (None, True, True, "cancelled", "before the first training step"),
    ],
)
def test_exit_codes_are_classified_as_the_trainer_documents_them(exit_code, crashed, cancel_requested, kind, message):
    stderr = ["Traceback (most recent call last):", "ValueError: bad"]
    if exit_code == 2:
        stderr = ["medviewer-train: error: data folder /nowhere not found"]
    outcome = classify_exit(exit_code, crashed, cancel_requested, stderr)
    assert outcome.kind == kind
    assert message in outcome.message
    if kind == "bad-input":
        assert outcome.message == "data folder /nowhere not found"


def test_progress_folds_the_events_into_curves_and_averaged_baselines():
    progress = TrainingProgress()
    texts = [progress.apply(event) for event in EVENTS]
    assert progress.run_folder == Path("/runs/r1") and progress.steps == 60 and progress.step == 21
    assert (progress.loss_steps, progress.loss_values) == ([10, 20], [0.1, 0.09])
    assert (progress.val_steps, progress.val_psnr) == ([20], [19.3])
    # The run's "psnr" is the mean over the validation degradations; the baselines are averaged the same way.
    assert progress.input_psnr == pytest.approx(np.mean([24.6, 20.2, 14.1]))
    assert progress.classical_psnr == pytest.approx(np.mean([34.9, 31.8, 26.5]))
    assert progress.cancelled and not progress.finished
    assert texts[0].startswith("Started msdenoiser") and "PSNR 19.30 dB" in texts[3]
    assert "Stopped at step 21 of 60" in texts[-1]
    # Resume goes back to the checkpoint at step 20: what was drawn after it is no longer the run's past.
    progress.apply({**START, "step": 20, "resumed": True})
    progress.apply({"event": "step", "step": 30, "steps": 60, "losses": {"loss": 0.08}})
    assert progress.loss_steps == [10, 20, 30] and progress.val_steps == [20]
    progress.apply({"event": "done", "run": "/runs/r1", "step": 60, "best_step": 60, "best_psnr": 21.0})
    progress.apply({"event": "export", "files": ["/m/r1.safetensors", "/m/r1.json"], "run": "/runs/r1"})
    assert progress.finished and progress.exported_cards == [Path("/m/r1.json")]
    assert mean_baseline_psnr({"noise:25": {"input": {"psnr": None}}}, "input") is None
    assert [format_duration(value) for value in (None, 12.4, 200, 3900)] == ["", "12 s", "3 min 20 s", "1 h 05 min"]


def test_run_and_resume_arguments_are_the_trainers_command_line(tmp_path):
    arguments = run_arguments(
        "vdsr-x2", [tmp_path / "a"], 500, "cpu", tmp_path / "runs", "r", "my-model", ["data.batch=4"]
    )
    assert arguments == [
        "run", "vdsr-x2", "--data", str(tmp_path / "a"), "--set", "run.steps=500", "data.batch=4",
        "--device", "cpu", "--out", str(tmp_path / "runs"), "--name", "r", "--init", "my-model", "--export",
    ]  # fmt: skip
    from trainer.cli import build_parser  # the trainer's own parser reads them back

    parsed = build_parser().parse_args(arguments)
    assert (parsed.recipe, parsed.overrides, parsed.init, parsed.export) == (
        "vdsr-x2",
        ["run.steps=500", "data.batch=4"],
        "my-model",
        "",
    )
    parsed = build_parser().parse_args(resume_arguments(tmp_path / "runs" / "r"))
    assert (parsed.command, parsed.run_folder, parsed.export) == ("resume", tmp_path / "runs" / "r", "")


def test_recipe_summaries_agree_with_the_trainers_reading():
    from trainer.recipe import load_recipe
    from trainer.recipe import shipped_recipes as trainer_recipes

    summaries = shipped_recipes()
    assert [summary.name for summary in summaries] == list(trainer_recipes())
    for summary in summaries:
        recipe = load_recipe(summary.path)
        assert (summary.title, summary.description, summary.paradigm, summary.task) == (
            recipe.recipe.name,
            recipe.recipe.description,
            recipe.recipe.paradigm,
            recipe.recipe.task,
        )
        assert (summary.architecture, summary.pairing, summary.steps) == (
            recipe.model.architecture,
            recipe.data.pairing,
            recipe.run.steps,
        )
        assert len(summary.folder_labels) == (2 if recipe.data.pairing in ("paired", "unpaired") else 1)


def test_a_fine_tuning_recipe_matches_the_models_architecture_then_its_task(tmp_path):
    recipes = shipped_recipes()
    by_name = {recipe.name: recipe for recipe in recipes}

    def chosen(*arguments):
        recipe = recipe_for_model(recipes, *arguments)
        return None if recipe is None else recipe.name

    for name, recipe in by_name.items():
        if recipe.can_start_from_model:  # every recipe a model can start from is found for its own model
            found = by_name[chosen(recipe.architecture, recipe.task, recipe.scale, name)]
            assert found.name == name
    srcnn_x4 = chosen("srcnn", "super-resolution", 4)
    assert by_name[srcnn_x4].architecture == "srcnn" and by_name[srcnn_x4].scale == 4
    unknown = chosen("some-new-net", "denoise", 1)
    assert unknown == next(r.name for r in recipes if r.task == "denoise" and r.can_start_from_model)
    assert chosen("some-new-net", "contrast", 1) is None
    paired = tmp_path / "paired.toml"
    paired.write_text('[recipe]\nname = "P"\n[data]\npairing = "paired"\ndegradation = "none"\n')
    assert read_recipe(paired).folder_labels == ("LOW (input)", "HIGH (target)")


# ==============================================================================================
# the dialog
# ==============================================================================================
@pytest.fixture(scope="module")
def training_images(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("training") / "images", count=8, size=96, seed=0, kind="png")


@pytest.fixture
def models_folder(tmp_path, monkeypatch) -> Path:
    """The user models folder the trainer exports into and the registry reads (never the real one)."""
    folder = tmp_path / "models"
    monkeypatch.setenv("MEDVIEWER_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def dialog(qtbot, tmp_path, models_folder):
    from medviewer.gui.training_dialog import TrainingDialog

    widget = TrainingDialog(runs_folder=tmp_path / "runs", extra_overrides=TINY)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    if widget.running:
        widget.process.kill()
        widget.process.wait(10000)


def _finish(qtbot, dialog, start) -> object:
    with qtbot.waitSignal(dialog.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert start(), dialog.status_label.text()
    return finished.args[0]


def test_the_form_follows_the_recipe(dialog):
    dialog.set_recipe("cyclegan-xray-ct")  # unpaired: two folders, A and B; a cycle cannot start from a model
    assert [row.isVisibleTo(dialog) for row in dialog.data_rows] == [True, True]
    assert [label.text() for label in dialog.data_labels] == ["A (source)", "B (target)"]
    assert not dialog.start_model_combo.isEnabled()
    dialog.set_data_folders(["/a"])
    assert not dialog.start() and "B" in dialog.status_label.text() and not dialog.running
    dialog.set_recipe("msdenoiser")
    msdenoiser = next(recipe for recipe in dialog.recipes if recipe.name == "msdenoiser")
    assert [row.isVisibleTo(dialog) for row in dialog.data_rows] == [True, False]
    assert dialog.steps_spin.value() == msdenoiser.steps
    assert dialog.recipe_combo.itemData(dialog.recipe_combo.currentIndex(), 3) == msdenoiser.description  # tooltip
    assert dialog.start_model_combo.isEnabled() and dialog.start_model() is None
    assert not dialog.resume_button.isEnabled()


def test_a_real_run_draws_its_curves_exports_and_the_models_panel_lists_it(
    qtbot, isolated_settings, models_folder, training_images, tmp_path
):
    from medviewer.gui.main_window import MainWindow

    window = MainWindow(isolated_settings)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.modelsListed, timeout=60000):
        window.open_paths([])  # no study: only the models are listed
    window.actions_by_name["train_model"].trigger()
    dialog = window.training_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.extra_overrides = TINY
    dialog.runs_edit.setText(str(tmp_path / "runs"))
    dialog.set_recipe("msdenoiser")
    dialog.set_data_folders([training_images])
    dialog.steps_spin.setValue(12)
    dialog.device_combo.setCurrentText("cpu")
    dialog.name_edit.setText("gui-run")
    with qtbot.waitSignal(window.modelsListed, timeout=RUN_TIMEOUT_MS):  # listed again after the export
        outcome = _finish(qtbot, dialog, dialog.start)
    assert outcome.kind == "done", dialog.log.toPlainText()

    events = [json.loads(line) for line in (tmp_path / "runs" / "gui-run" / "events.jsonl").read_text().splitlines()]
    steps = [event["step"] for event in events if event["event"] == "step"]
    validations = [event for event in events if event["event"] == "val"]
    start = next(event for event in events if event["event"] == "start")
    loss_x, loss_y = dialog.loss_curve.getData()
    assert list(loss_x) == steps == [3, 6, 9, 12]
    np.testing.assert_allclose(loss_y, [event["losses"]["loss"] for event in events if event["event"] == "step"])
    psnr_x, psnr_y = dialog.psnr_curve.getData()
    assert list(psnr_x) == [event["step"] for event in validations] == [6, 12]
    np.testing.assert_allclose(psnr_y, [event["psnr"] for event in validations])
    baselines = (
        (dialog.input_line, dialog.input_label, "input", "degraded input"),
        (dialog.classical_line, dialog.classical_label, "classical", f"{start['classical'].upper()} (classical)"),
    )
    for line, label, method, name in baselines:  # the lines at the baselines' mean PSNR, labelled on the plot
        expected = np.mean([scores[method]["psnr"] for scores in start["baselines"].values()])
        np.testing.assert_allclose(line.getData()[1], [expected, expected])
        assert label.isVisible() and label.toPlainText() == f"{name} {expected:.2f} dB"
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum() == 12
    assert "gui-run" in dialog.status_label.text() and not dialog.resume_button.isEnabled()

    # The new model is in the Models panel without a restart, selected, its card shown like any other's.
    assert (models_folder / "gui-run.json").is_file()
    assert window.registry.get("gui-run").card_path == models_folder / "gui-run.json"
    assert window.model_panel.selected_entry().id == "gui-run"
    assert "gui-run" in window.model_panel.details_text() and "Architecture: msdenoiser" in (
        window.model_panel.details_text()
    )

    # Train > Fine-tune: the dialog starts from that model with the recipe it was trained with.
    assert window.actions_by_name["fine_tune"].isEnabled()
    window.actions_by_name["fine_tune"].trigger()
    assert dialog.current_recipe().name == "msdenoiser" and dialog.start_model() == "gui-run"
    arguments = dialog.run_arguments()
    assert arguments[arguments.index("--init") + 1] == "gui-run"
    window.model_panel.select_model("nlm")
    assert not window.actions_by_name["fine_tune"].isEnabled()


def test_stop_checkpoints_and_resume_finishes_the_run(qtbot, dialog, training_images, models_folder):
    dialog.set_recipe("msdenoiser")
    dialog.set_data_folders([training_images])
    dialog.steps_spin.setValue(24)
    dialog.name_edit.setText("stopped")
    dialog.extra_overrides = [*TINY, "log_every=1", "validate_every=12", "checkpoint_every=12"]
    with qtbot.waitSignal(dialog.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert dialog.start()
        qtbot.waitUntil(lambda: dialog.progress.step >= 1, timeout=RUN_TIMEOUT_MS)
        assert dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
        dialog.cancel()
    outcome = finished.args[0]
    assert (outcome.kind, outcome.exit_code) == ("cancelled", 130), dialog.log.toPlainText()
    stopped_at = dialog.progress.step
    assert 1 <= stopped_at < 24 and dialog.progress.cancelled
    assert "Resume continues" in dialog.status_label.text()
    assert dialog.resume_button.isEnabled() and not list(models_folder.glob("*.json"))

    outcome = _finish(qtbot, dialog, dialog.resume)
    assert outcome.kind == "done", dialog.log.toPlainText()
    assert dialog.progress.step == 24 and dialog.progress.finished
    assert dialog.progress.loss_steps == sorted(set(dialog.progress.loss_steps))  # no step drawn twice
    assert dialog.progress.loss_steps[-1] == 24
    assert (models_folder / "stopped.json").is_file() and not dialog.resume_button.isEnabled()


def test_bad_input_is_one_line_and_the_dialog_stays_usable(qtbot, dialog, tmp_path):
    dialog.set_recipe("msdenoiser")
    missing = tmp_path / "no-such-folder"
    dialog.set_data_folders([missing])
    outcome = _finish(qtbot, dialog, dialog.start)
    assert (outcome.kind, outcome.exit_code) == ("bad-input", 2)
    assert f"data folder {missing} not found" in dialog.status_label.text()
    assert "\n" not in dialog.status_label.text() and not dialog.error_panel.isVisibleTo(dialog)
    assert dialog.start_button.isEnabled() and dialog.settings_box.isEnabled() and not dialog.resume_button.isEnabled()


# Stand-ins for `python -m trainer` (the dialog's arguments land in their sys.argv, unread).
CRASHING_TRAINER = (
    "import json, sys\n"
    "print(json.dumps({'event': 'start', 'run': 'RUN', 'step': 0, 'steps': 10}), flush=True)\n"
    "for number in range(40): print('noise', number, file=sys.stderr)\n"
    "def train(): raise RuntimeError('simulated bug in the training loop')\n"
    "train()\n"
)
SLEEPING_TRAINER = (
    "import json, sys, time\n"
    "print(json.dumps({'event': 'start', 'run': 'RUN', 'step': 0, 'steps': 10}), flush=True)\n"
    "time.sleep(60)\n"
)


def _fake_trainer(dialog, program: str, run_folder: Path) -> None:
    dialog.process.command = [sys.executable, "-c", program.replace("RUN", str(run_folder))]
    dialog.set_recipe("msdenoiser")
    dialog.set_data_folders([run_folder])


def test_a_failing_trainer_shows_its_last_error_lines(qtbot, dialog, tmp_path):
    _fake_trainer(dialog, CRASHING_TRAINER, tmp_path / "run")
    outcome = _finish(qtbot, dialog, dialog.start)
    assert (outcome.kind, outcome.exit_code) == ("failed", 1)
    shown = dialog.error_text.toPlainText().splitlines()
    assert dialog.error_panel.isVisibleTo(dialog) and len(shown) == STDERR_TAIL_LINES
    assert shown[-1] == "RuntimeError: simulated bug in the training loop"
    assert any(line.startswith("Traceback") for line in shown)
    assert "exit code 1" in dialog.status_label.text() and "RuntimeError" in dialog.status_label.text()
    assert dialog.resume_button.isEnabled() and dialog.start_button.isEnabled()  # the run folder is known

    # A new run refused as bad input leaves the last run (its curves, its Resume) as it was.
    refusing = "import sys; print('medviewer-train: error: run folder exists', file=sys.stderr); sys.exit(2)"
    dialog.process.command = [sys.executable, "-c", refusing]
    outcome = _finish(qtbot, dialog, dialog.start)
    assert outcome.kind == "bad-input" and dialog.status_label.text() == "Not started: run folder exists"
    assert dialog.progress.run_folder == tmp_path / "run" and dialog.resume_button.isEnabled()


def test_a_killed_trainer_is_a_failure_and_not_the_viewers(qtbot, dialog, tmp_path):
    _fake_trainer(dialog, SLEEPING_TRAINER, tmp_path / "run")
    with qtbot.waitSignal(dialog.runFinished, timeout=RUN_TIMEOUT_MS) as finished:
        assert dialog.start()
        qtbot.waitUntil(lambda: dialog.progress.run_folder is not None, timeout=20000)
        os.kill(dialog.process.process_id, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    outcome = finished.args[0]
    assert (outcome.kind, outcome.exit_code) == ("failed", None)
    assert "killed" in dialog.status_label.text() and dialog.error_panel.isVisibleTo(dialog)
    assert dialog.start_button.isEnabled()


def test_the_model_panel_offers_fine_tuning_for_networks_only(qtbot, tmp_path):
    from medviewer.gui.model_panel import ModelPanel
    from medviewer.models.registry import discover_models
    from tests.models.model_folder import write_model

    write_model(tmp_path / "models", model_id="tiny-dncnn", architecture="dncnn",
                arguments={"depth": 3, "width": 8}, task="denoise", scale=1)  # fmt: skip
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.set_registry(discover_models(folders=[tmp_path / "models"]))
    panel.select_model("nlm")
    assert not panel._fine_tune.isEnabled()
    panel.select_model("tiny-dncnn")
    assert panel._fine_tune.isEnabled()
    with qtbot.waitSignal(panel.fineTuneRequested, timeout=1000) as requested:
        panel._fine_tune.click()
    assert requested.args == ["tiny-dncnn"]

    from medviewer.gui.training_dialog import TrainingDialog

    dialog = TrainingDialog(discover_models(folders=[tmp_path / "models"]).entries)
    qtbot.addWidget(dialog)
    assert dialog.prefill_for_model(panel.selected_entry())
    assert dialog.current_recipe().architecture == "dncnn" and dialog.start_model() == "tiny-dncnn"
