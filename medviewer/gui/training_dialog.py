"""The training dialog (Train > Train a model…): choose a recipe, data folders and length, run `python -m trainer`
as its own process, and watch the loss and the validation PSNR against the baselines while it trains.

The dialog holds no training logic: the command is built by `training_process`, the events are read into a
`TrainingProgress`, and this module only draws them. It never imports torch or the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from medviewer.errors import one_line
from medviewer.gui.training_process import RunOutcome, TrainingProcess, command_text, resume_arguments, run_arguments
from medviewer.gui.training_progress import TrainingProgress, format_duration
from medviewer.gui.training_recipes import RecipeSummary, recipe_for_model, shipped_recipes

if TYPE_CHECKING:  # the registry imports torch
    from medviewer.models.registry import ModelEntry

DEVICES = ("auto", "cpu", "cuda", "mps")
NO_MODEL = ""  # the start-model combo's data for "from scratch" (a QVariant cannot be found back as None)
LOG_LINES = 2000
MAX_STEPS = 10_000_000
ERROR_COLOUR = "#b00020"
# Curves on a white plot: the run in strong colours, the baselines dashed, so the eye reads "above the dashes".
RUN_PEN = pg.mkPen(QColor(31, 119, 180), width=2)
INPUT_PEN = pg.mkPen(QColor(110, 110, 110), width=2, style=Qt.PenStyle.DashLine)
CLASSICAL_PEN = pg.mkPen(QColor(230, 120, 20), width=2, style=Qt.PenStyle.DashLine)


def default_runs_folder() -> Path:
    """Where runs go unless the user says otherwise: the trainer's own default (`medviewer-train run --out`)."""
    return platformdirs.user_data_path("MedViewer", appauthor=False) / "runs"


def _plot(title: str, left: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setBackground("w")
    item = plot.getPlotItem()
    item.setTitle(title, color="k", size="11pt")
    item.showGrid(x=True, y=True, alpha=0.25)
    for side, label in (("left", left), ("bottom", "step")):
        axis = item.getAxis(side)
        axis.enableAutoSIPrefix(False)  # "loss (x0.001)" over ticks of 30..130 reads worse than 0.03..0.13
        axis.setPen(pg.mkPen("k"))
        axis.setTextPen(pg.mkPen("k"))
        item.setLabel(side, label, color="k")
    item.setMenuEnabled(False)
    plot.setMinimumSize(320, 220)
    return plot


class TrainingDialog(QDialog):
    """Non-modal: the viewer stays usable while a run trains; closing the dialog hides it, the run goes on.

    `extra_overrides` are `--set KEY=VALUE` items added to every new run (tests make tiny runs with them).
    """

    modelsExported = Signal(list)  # [Path]: the files a finished run exported (cards and weights)
    runFinished = Signal(object)  # RunOutcome, once per started process

    def __init__(
        self,
        models: Sequence[ModelEntry] = (),
        recipes: Sequence[RecipeSummary] | None = None,
        parent: QWidget | None = None,
        *,
        runs_folder: Path | None = None,
        extra_overrides: Sequence[str] = (),
        trainer_command: Sequence[str] | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self.setModal(False)
        self.recipes = list(shipped_recipes() if recipes is None else recipes)
        self.extra_overrides = list(extra_overrides)
        self.progress = TrainingProgress()
        self._earlier_progress: TrainingProgress | None = None  # the run shown before Start, until this one starts
        self.outcome: RunOutcome | None = None
        self._models: list[ModelEntry] = []
        self.process = TrainingProcess(self, trainer_command)
        self.process.eventReceived.connect(self._on_event)
        self.process.textReceived.connect(self._log)
        self.process.finished.connect(self._on_finished)
        self._build(runs_folder or default_runs_folder())
        self.set_models(models)
        self._on_recipe_changed()
        self._set_running(False)
        if not self.recipes:
            self._say("No training recipes found: is the trainer installed (pip install -e .)?", error=True)
        self.resize(1180, 760)

    # ==========================================================================================
    # what the dialog is set to
    # ==========================================================================================
    @property
    def running(self) -> bool:
        return self.process.running

    def current_recipe(self) -> RecipeSummary | None:
        index = self.recipe_combo.currentIndex()
        return self.recipes[index] if 0 <= index < len(self.recipes) else None

    def set_recipe(self, name: str) -> None:
        names = [recipe.name for recipe in self.recipes]
        if name not in names:
            raise ValueError(f"unknown recipe {name!r}; one of {', '.join(names)}")
        self.recipe_combo.setCurrentIndex(names.index(name))

    def set_data_folders(self, folders: Sequence[Path | str]) -> None:
        for edit, folder in zip(self.data_edits, [*folders, "", ""], strict=False):
            edit.setText(str(folder))

    def set_models(self, entries: Sequence[ModelEntry]) -> None:
        """The networks a run may start from (the registry's; classical methods are left out)."""
        self._models = [entry for entry in entries if entry.kind == "network"]
        self._fill_start_models()

    def start_model(self) -> str | None:
        return self.start_model_combo.currentData() or None

    def set_start_model(self, model_id: str | None) -> bool:
        """Choose the network to start from (None: from scratch); False if the current recipe cannot use it."""
        index = self.start_model_combo.findData(model_id or NO_MODEL)
        if index < 0:
            return False
        self.start_model_combo.setCurrentIndex(index)
        return True

    def prefill_for_model(self, entry: ModelEntry) -> bool:
        """Fine-tune `entry`: the recipe it was trained with if shipped, else one for its architecture and task."""
        if self.running:
            self._say("A run is in progress: stop it before setting up another", error=True)
            return False
        card = entry.card
        if card is None:
            self._say(f"{entry.name} is a classical method: there is nothing to fine-tune", error=True)
            return False
        trained_with = (card.extra.get("training") or {}).get("recipe_file") if card.extra else None
        recipe = recipe_for_model(self.recipes, card.architecture, entry.task, entry.scale, trained_with)
        if recipe is None:
            self._say(f"No shipped recipe trains a {entry.task} model like {entry.name}", error=True)
            return False
        self.set_recipe(recipe.name)
        if not self.set_start_model(entry.id):
            self._say(f"The {recipe.title} recipe cannot start from {entry.name}", error=True)
            return False
        self._say(f"Fine-tune {entry.name} with the {recipe.title} recipe: choose the images and press Start")
        return True

    def run_arguments(self) -> list[str]:
        """The `trainer run` arguments for the form as it is; ValueError (a sentence) if something is missing."""
        recipe = self.current_recipe()
        if recipe is None:
            raise ValueError("Choose a recipe")
        folders = []
        for label, edit in zip(recipe.folder_labels, self.data_edits, strict=False):
            text = edit.text().strip()
            if not text:
                raise ValueError(f"Choose the {label.split(' ')[0]} folder of training images")
            folders.append(Path(text).expanduser().absolute())
        runs_text = self.runs_edit.text().strip()
        runs_folder = Path(runs_text).expanduser().absolute() if runs_text else default_runs_folder()
        return run_arguments(
            recipe.name,
            folders,
            self.steps_spin.value(),
            self.device_combo.currentText(),
            runs_folder,
            name=self.name_edit.text().strip(),
            init=self.start_model() if recipe.can_start_from_model else None,
            overrides=self.extra_overrides,
        )

    # ==========================================================================================
    # running
    # ==========================================================================================
    def start(self) -> bool:
        """Start a new run with the form's settings; False (and a message) if it cannot start."""
        if self.running:
            return False
        try:
            arguments = self.run_arguments()
        except ValueError as error:
            self._say(str(error), error=True)
            return False
        self._earlier_progress, self.progress = self.progress, TrainingProgress()
        self._draw_progress()
        self._launch(arguments, f"Starting {self.current_recipe().title} (loading PyTorch and reading the data)…")
        return True

    def cancel(self) -> None:
        """Ask the trainer to stop: it saves a checkpoint after the current step and exits; Resume goes on."""
        if self.running:
            self.process.cancel()
            self.cancel_button.setEnabled(False)
            self._say("Stopping: the trainer saves a checkpoint after the current step…")

    def resume(self) -> bool:
        """Continue the last run from its last checkpoint (and export it when done)."""
        folder = self.progress.run_folder
        if self.running or folder is None:
            return False
        self._launch(resume_arguments(folder), f"Resuming {folder.name} from its last checkpoint…")
        return True

    def stop_for_exit(self, milliseconds: int = 30000) -> None:
        """The viewer is closing: stop the run with a checkpoint (Resume continues it later); kill it if it
        does not stop in time, rather than leave a trainer running with nobody watching."""
        if not self.running:
            return
        self.process.cancel()
        if not self.process.wait(milliseconds):
            self.process.kill()
            self.process.wait(5000)

    def _launch(self, arguments: list[str], text: str) -> None:
        self.outcome = None
        self.error_panel.hide()
        self.process.start(arguments)
        self._log("$ " + command_text(self.process.last_command))
        self._set_running(True)
        self._say(text)

    def _on_event(self, event: dict) -> None:
        text = one_line(self.progress.apply(event))
        self._log(text)
        kind = event.get("event")
        if kind == "error":
            self._say(text, error=True)
        elif kind != "checkpoint":
            self._say(text)
        if kind == "start":
            self._earlier_progress = None
            self._relabel_baselines()
        self._draw_progress()
        if kind == "export" and self.progress.exported_files:
            self.modelsExported.emit(list(self.progress.exported_files))

    def _on_finished(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        progress = self.progress
        self._set_running(False)
        if outcome.kind == "done":
            best = f"{progress.best_psnr:.2f} dB at step {progress.best_step}" if progress.best_psnr else "n/a"
            names = ", ".join(card.stem for card in progress.exported_cards)
            exported = f"; model {names} exported and listed in the Models panel" if names else ""
            self._say(f"Done: {progress.step} steps, best validation PSNR {best}{exported}")
        elif outcome.kind == "cancelled":
            if progress.run_folder is not None and outcome.exit_code is not None:
                self._say(
                    f"Stopped at step {progress.step} of {progress.steps}; a checkpoint was saved. "
                    "Resume continues from it."
                )
            else:
                self._say(outcome.message)
        elif outcome.kind == "bad-input":
            if self._earlier_progress is not None and progress.run_folder is None:
                # Nothing was started: the run shown before (and its Resume) is still the last one.
                self.progress, self._earlier_progress = self._earlier_progress, None
                self._relabel_baselines()
                self._set_running(False)
            self._say(f"Not started: {outcome.message}", error=True)
        else:
            more = " Resume continues from the last checkpoint." if progress.run_folder is not None else ""
            self._say(outcome.message + more, error=True)
            self.error_text.setPlainText("\n".join(outcome.stderr_tail) or "(the trainer wrote nothing to stderr)")
            self.error_panel.show()
        self._log(
            f"[{outcome.kind}] {outcome.message}"
            + ("" if outcome.exit_code is None else f" (exit code {outcome.exit_code})")
        )
        self.runFinished.emit(outcome)

    # ==========================================================================================
    # drawing
    # ==========================================================================================
    def _draw_progress(self) -> None:
        progress = self.progress
        self.progress_bar.setRange(0, max(progress.steps, 1))
        self.progress_bar.setValue(min(progress.step, max(progress.steps, 1)))
        if progress.finished:
            self.eta_label.setText("finished")
        elif self.running and progress.eta_seconds is not None:
            self.eta_label.setText(f"about {format_duration(progress.eta_seconds)} left")
        else:
            self.eta_label.setText("")
        self.loss_curve.setData(progress.loss_steps, progress.loss_values)
        self.psnr_curve.setData(progress.val_steps, progress.val_psnr)
        span = [0, max(progress.steps, 1)]
        for line, value in ((self.input_line, progress.input_psnr), (self.classical_line, progress.classical_psnr)):
            if value is None:
                line.setData([], [])
            else:
                line.setData(span, [value, value])
        for plot in (self.loss_plot, self.psnr_plot):
            plot.setXRange(0, span[1], padding=0.02)
        self._place_baseline_labels(span[1])

    def _relabel_baselines(self) -> None:
        """Name each dashed line after what it is and its value, written on the line itself (a legend box
        would hide part of the curves)."""
        progress = self.progress
        method = (progress.classical_method or "classical").upper()
        texts = (
            (self.input_label, progress.input_psnr, "degraded input", INPUT_PEN),
            (self.classical_label, progress.classical_psnr, f"{method} (classical)", CLASSICAL_PEN),
        )
        for label, value, name, pen in texts:
            label.setVisible(value is not None)
            if value is not None:
                label.setHtml(
                    f'<span style="color: {pen.color().name()}; font-weight: 600;">{name} {value:.2f} dB</span>'
                )

    def _place_baseline_labels(self, right_end: float) -> None:
        """At the lines' right ends, inside the band between them: the upper label under its line, the lower
        label above its line, where the run's curve is least likely to be at the end of training."""
        placed = [
            (value, label)
            for value, label in (
                (self.progress.input_psnr, self.input_label),
                (self.progress.classical_psnr, self.classical_label),
            )
            if value is not None
        ]
        placed.sort(key=lambda pair: pair[0])
        for index, (value, label) in enumerate(placed):
            upper = index == len(placed) - 1 and len(placed) > 1
            label.setAnchor((1, 0) if upper else (1, 1))
            label.setPos(right_end, value)

    def _say(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(f"color: {ERROR_COLOUR};" if error else "")

    def _log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def _set_running(self, running: bool) -> None:
        self.settings_box.setEnabled(not running)
        self.start_button.setEnabled(not running and bool(self.recipes))
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(
            not running and self.progress.run_folder is not None and not self.progress.finished
        )
        if not running:
            self._draw_progress()

    # ==========================================================================================
    # building
    # ==========================================================================================
    def _build(self, runs_folder: Path) -> None:
        self.settings_box = QGroupBox("Run")
        form = QFormLayout(self.settings_box)
        self._form = form
        self.recipe_combo = QComboBox()
        for index, recipe in enumerate(self.recipes):
            self.recipe_combo.addItem(f"{recipe.title}  [{recipe.name}]", recipe.name)
            self.recipe_combo.setItemData(index, recipe.description, Qt.ItemDataRole.ToolTipRole)
        self.recipe_combo.currentIndexChanged.connect(self._on_recipe_changed)
        self.recipe_details = QLabel()
        self.recipe_details.setWordWrap(True)
        self.recipe_details.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("Recipe", self.recipe_combo)
        form.addRow("", self.recipe_details)

        self.data_labels: list[QLabel] = []
        self.data_edits: list[QLineEdit] = []
        self.data_rows: list[QWidget] = []
        for _ in range(2):
            label, row, edit = QLabel(), QWidget(), QLineEdit()
            edit.setPlaceholderText("folder of images (DICOM, PNG, TIFF, NPY)")
            browse = QPushButton("Browse…")
            browse.clicked.connect(lambda _=False, edit=edit: self._choose_folder(edit, "Training images"))
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(edit, 1)
            line.addWidget(browse)
            form.addRow(label, row)
            self.data_labels.append(label)
            self.data_edits.append(edit)
            self.data_rows.append(row)

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MAX_STEPS)
        self.steps_spin.setSingleStep(100)
        self.steps_spin.setGroupSeparatorShown(True)
        self.steps_spin.setToolTip("Training steps (passed as --set run.steps=N); the recipe's default is set")
        form.addRow("Steps", self.steps_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(list(DEVICES))
        self.device_combo.setToolTip("auto: CUDA if present, else Apple MPS, else the CPU")
        form.addRow("Device", self.device_combo)
        self.start_model_combo = QComboBox()
        self.start_model_combo.setToolTip("Fine-tune a network of the Models panel instead of training from scratch")
        form.addRow("Start from model", self.start_model_combo)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("automatic: recipe-date-time")
        self.name_edit.setToolTip("The run's folder name, and the id of the model it exports")
        form.addRow("Run name", self.name_edit)
        runs_row = QWidget()
        self.runs_edit = QLineEdit(str(runs_folder))
        browse_runs = QPushButton("Browse…")
        browse_runs.clicked.connect(lambda: self._choose_folder(self.runs_edit, "Runs folder"))
        line = QHBoxLayout(runs_row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.runs_edit, 1)
        line.addWidget(browse_runs)
        form.addRow("Runs folder", runs_row)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop after the current step, saving a checkpoint (Resume continues)")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the last run from its last checkpoint")
        self.resume_button.clicked.connect(self.resume)
        close_button = QPushButton("Close")
        close_button.setToolTip("Hide this window; a run goes on (Train > Train a model… shows it again)")
        close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("step %v / %m")
        self.eta_label = QLabel()
        self.eta_label.setMinimumWidth(150)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.eta_label)
        self.status_label = QLabel("Choose a recipe and the training images, then Start.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.loss_plot = _plot("Training loss", "loss")
        self.loss_curve = self.loss_plot.plot([], [], pen=RUN_PEN, name="loss")
        self.psnr_plot = _plot("Validation PSNR", "PSNR (dB)")
        self.input_line = self.psnr_plot.plot([], [], pen=INPUT_PEN)
        self.classical_line = self.psnr_plot.plot([], [], pen=CLASSICAL_PEN)
        self.psnr_curve = self.psnr_plot.plot(
            [], [], pen=RUN_PEN, symbol="o", symbolSize=7, symbolBrush=RUN_PEN.color(), symbolPen=None
        )
        self.input_label = pg.TextItem(fill=pg.mkBrush(255, 255, 255, 190))
        self.classical_label = pg.TextItem(fill=pg.mkBrush(255, 255, 255, 190))
        for label in (self.input_label, self.classical_label):
            self.psnr_plot.addItem(label, ignoreBounds=True)  # the lines set the range, not their labels
        self._relabel_baselines()
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.psnr_plot)

        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.error_panel = QWidget()
        self.error_text = QPlainTextEdit()
        self.error_text.setReadOnly(True)
        self.error_text.setFont(fixed)
        self.error_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        error_layout = QVBoxLayout(self.error_panel)
        error_layout.setContentsMargins(0, 0, 0, 0)
        error_layout.addWidget(QLabel("The trainer's last lines of error output:"))
        error_layout.addWidget(self.error_text)
        self.error_panel.hide()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setFont(fixed)
        self.log.setPlaceholderText("What the trainer reports appears here.")

        left = QVBoxLayout()
        left.addWidget(self.settings_box)
        left.addLayout(buttons)
        left.addWidget(self.log, 1)
        right = QVBoxLayout()
        right.addLayout(progress_row)
        right.addWidget(self.status_label)
        right.addLayout(plots, 2)
        right.addWidget(self.error_panel, 1)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 0)
        layout.addLayout(right, 1)
        self.settings_box.setMinimumWidth(400)

    def _choose_folder(self, edit: QLineEdit, title: str) -> None:
        start = edit.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, title, start)
        if folder:
            edit.setText(folder)

    # --- reactions ----------------------------------------------------------------------------
    def _on_recipe_changed(self) -> None:
        recipe = self.current_recipe()
        if recipe is None:
            return
        self.steps_spin.setValue(recipe.steps)
        details = [recipe.description, f"{recipe.paradigm}, {recipe.task}, model {recipe.architecture}"]
        if recipe.pairing == "synthetic":
            details.append(f"trains on clean images degraded by {recipe.degradation}")
        self.recipe_details.setText("\n".join(part for part in details if part))
        labels, hints = recipe.folder_labels, recipe.folder_hints
        for index, (label, edit) in enumerate(zip(self.data_labels, self.data_edits, strict=True)):
            needed = index < len(labels)
            self._form.setRowVisible(self.data_rows[index], needed)
            if needed:
                label.setText(labels[index])
                edit.setToolTip(hints[index])
        self._fill_start_models()

    def _fill_start_models(self) -> None:
        recipe = self.current_recipe()
        kept = self.start_model_combo.currentData()
        self.start_model_combo.blockSignals(True)
        self.start_model_combo.clear()
        self.start_model_combo.addItem("none (train the recipe's network from scratch)", NO_MODEL)
        for entry in self._models:
            if recipe is None or (entry.task == recipe.task and entry.scale == recipe.scale):
                self.start_model_combo.addItem(f"{entry.name}  [{entry.id}]", entry.id)
        self.start_model_combo.setCurrentIndex(max(0, self.start_model_combo.findData(kept)))
        self.start_model_combo.blockSignals(False)
        usable = recipe is None or recipe.can_start_from_model
        self.start_model_combo.setEnabled(usable)
        if not usable:
            self.start_model_combo.setCurrentIndex(0)
            self.start_model_combo.setToolTip("A cycle recipe trains two generators: it always starts from scratch")
        else:
            self.start_model_combo.setToolTip(
                "Fine-tune a network of the Models panel (same task and scale as the recipe) instead of starting "
                "from scratch; its architecture replaces the recipe's"
            )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        if self.running:
            self._say("Still training: this window is hidden, the run goes on (Train > Train a model… shows it)")
        super().closeEvent(event)
