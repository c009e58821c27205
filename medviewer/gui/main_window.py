"""The main window: studies on the left, the linked panes in the middle, models and metrics on the right.

It wires widgets to the core and to background jobs; it computes no image itself (display brightness comes
from `Series.display_values`, evaluations from `medviewer.enhance.session`, files from `medviewer.io`).
torch is never imported on the way to the first slice: models are discovered once the first slice is up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from medviewer.errors import MedViewerError, one_line
from medviewer.gui import enhancement
from medviewer.gui.compare_view import CompareView
from medviewer.gui.help import AboutDialog, ShortcutsDialog, shortcut_for
from medviewer.gui.jobs import BackgroundJob, JobContext
from medviewer.gui.metrics_panel import MetricsPanel
from medviewer.gui.model_panel import ModelPanel
from medviewer.gui.pane_grid import PaneGrid
from medviewer.gui.settings import ViewerSettings
from medviewer.gui.study_browser import StudyBrowser
from medviewer.gui.swipe import SwipePane
from medviewer.io.study import LoadedStudies, Series, load_studies
from medviewer.io.window import CT_PRESETS, Window, auto_window, dragged_window

if TYPE_CHECKING:  # these import torch, which the window must not wait for before the first slice
    from medviewer.enhance.evaluation import Evaluation
    from medviewer.gui.training_dialog import TrainingDialog

log = logging.getLogger(__name__)

PANE_LAYOUTS = ("1x3", "2x2", "single", "swipe")
ERROR_COLOUR_MAP = "CET-D1"
THUMBNAIL_PIXELS = 128
DEFAULT_CINE_FPS = 10


def _thumbnail(series: Series) -> np.ndarray:
    """Slice 0 as displayed, subsampled to about THUMBNAIL_PIXELS: enough for a 64-pixel icon."""
    brightness = series.display(0)
    step = max(1, max(brightness.shape[:2]) // THUMBNAIL_PIXELS)
    return np.ascontiguousarray(brightness[::step, ::step])


def load_job(paths: list[Path]) -> Callable[[JobContext], LoadedStudies]:
    """Headers first, then the first series' first slice (published at once), thumbnails, then the rest."""

    def job(context: JobContext) -> LoadedStudies:
        loaded = load_studies(paths)
        context.publish(("studies", loaded))
        if not loaded.series:
            return loaded
        first = loaded.series[0]
        try:
            first.values(0)
        except MedViewerError as error:
            context.publish(("error", str(error)))
        else:
            context.publish(("first", first))
        for series in loaded.series:
            if context.should_cancel():
                return loaded
            try:
                context.publish(("thumbnail", series, _thumbnail(series)))
            except MedViewerError as error:  # one damaged series must not stop the others
                log.warning("no thumbnail for %s: %s", series.description, error)
        try:
            first.load_all(progress=context.progress, should_cancel=context.should_cancel)
        except MedViewerError as error:
            context.publish(("error", str(error)))
        return loaded

    return job


def discover_job(context: JobContext):
    from medviewer.models.registry import discover_models

    return discover_models()


class MainWindow(QMainWindow):
    sliceShown = Signal(int)  # after the panes show slice N (tests and the benchmark wait on it)
    errorShown = Signal(str)
    modelsListed = Signal(object)  # the ModelRegistry, each time the models are (re)discovered

    def __init__(self, settings: ViewerSettings | None = None, models_job: bool = True):
        super().__init__()
        self.setWindowTitle("MedViewer")
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.series: Series | None = None
        self.index = 0
        self.chosen_window: Window | None = None  # None: the series' own (file window or VOI LUT)
        self.results: enhancement.EnhancementResults | None = None
        self.registry = None
        self.device_text: str | None = None
        self.last_error: str | None = None
        self.enhancers = enhancement.EnhancerCache()
        self._drag_start_window: Window | None = None
        self._load_jobs: list[BackgroundJob] = []
        self._work_job: BackgroundJob | None = None
        self._want_models = models_job
        self._models_job: BackgroundJob | None = None
        self._list_models_again = False  # a refresh asked for while discovery was running
        self._select_after_listing: list[Path] = []  # cards a training run just exported
        self.training_dialog: TrainingDialog | None = None
        self._value_span_cache: tuple[str, int, float] | None = None
        self._build_widgets()
        self._build_actions()
        self._restore_settings()

    # ==========================================================================================
    # construction
    # ==========================================================================================
    def _build_widgets(self) -> None:
        self.grid = PaneGrid()
        self.swipe = SwipePane()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.swipe)
        for pane in self.grid.panes.values():
            pane.clear("")
        self.grid.pane("enhanced").clear("Choose a model and press Enhance")
        self.grid.pane("error").clear("The error map appears after enhancing")
        self.grid.pane("original").clear("Open a study: File > Open, or drop files here")
        self.grid.windowDragged.connect(self._on_window_dragged)
        self.swipe.windowDragged.connect(self._on_window_dragged)
        self.grid.sliceWheel.connect(self.step_slice)
        self.swipe.sliceWheel.connect(self.step_slice)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self.show_slice)
        self.slice_label = QLabel("no series")
        self.cine_button = QPushButton("Play")
        self.cine_button.setCheckable(True)
        self.cine_button.toggled.connect(self._set_cine)
        self.cine_fps = QSpinBox()
        self.cine_fps.setRange(1, 60)
        self.cine_fps.setSuffix(" fps")
        self.cine_fps.setValue(self.settings.cine_fps(DEFAULT_CINE_FPS))
        self.cine_fps.valueChanged.connect(self._cine_rate_changed)
        self.cine_timer = QTimer(self)
        self.cine_timer.timeout.connect(self._cine_step)
        slice_bar = QHBoxLayout()
        slice_bar.addWidget(QLabel("Slice"))
        slice_bar.addWidget(self.slider, 1)
        slice_bar.addWidget(self.slice_label)
        slice_bar.addWidget(self.cine_button)
        slice_bar.addWidget(self.cine_fps)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(2, 2, 2, 2)
        column.addWidget(self.stack, 1)
        column.addLayout(slice_bar)
        self.setCentralWidget(central)

        self.browser = StudyBrowser()
        self.browser.seriesSelected.connect(self.set_series)
        self.model_panel = ModelPanel()
        self.model_panel.set_busy(True)
        self.model_panel.enhanceSliceRequested.connect(self.enhance_slice)
        self.model_panel.enhanceSeriesRequested.connect(self.enhance_series)
        self.model_panel.compareRequested.connect(self.compare_models)
        self.model_panel.pairedReferenceRequested.connect(self._choose_paired_reference)
        self.model_panel.fineTuneRequested.connect(self.fine_tune_model)
        self.metrics_panel = MetricsPanel()
        self.compare_view = CompareView()
        self.compare_view.resultChosen.connect(self.show_comparison_result)
        self.browser_dock = self._dock("Studies", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.models_dock = self._dock("Models", self.model_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        metrics_scroll = QScrollArea()  # a short dock scrolls; it never squeezes a row of scores out of sight
        metrics_scroll.setWidgetResizable(True)
        metrics_scroll.setWidget(self.metrics_panel)
        self.metrics_dock = self._dock("Metrics", metrics_scroll, Qt.DockWidgetArea.RightDockWidgetArea)
        self.compare_dock = self._dock("Compare models", self.compare_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.compare_dock.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_work)
        self.status_text = QLabel("")
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, name: str, text: str, slot, *, checkable: bool = False, shortcut: bool = True) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut_for(name)))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        menu = self.menuBar()
        self.actions_by_name: dict[str, QAction] = {}

        def add(name, text, slot, **options):
            action = self._action(name, text, slot, **options)
            self.actions_by_name[name] = action
            return action

        file_menu = menu.addMenu("&File")
        file_menu.addAction(add("open_file", "Open file(s)…", self.choose_files))
        file_menu.addAction(add("open_folder", "Open folder…", self.choose_folder))
        self.recent_menu = file_menu.addMenu("Open recent")
        self._rebuild_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(add("export_slice", "Export enhanced slice…", self.export_slice))
        file_menu.addAction(add("export_series", "Export enhanced series…", self.export_series, shortcut=False))
        file_menu.addAction(add("export_figure", "Export side-by-side figure…", self.export_figure))
        file_menu.addAction(add("export_metrics", "Export metrics (CSV)…", self.export_metrics, shortcut=False))
        file_menu.addSeparator()
        file_menu.addAction(add("quit", "Quit", self.close))

        view_menu = menu.addMenu("&View")
        self.layout_group = QActionGroup(self)
        for layout in PANE_LAYOUTS:
            label = {"1x3": "Original | Enhanced | Error map", "2x2": "2 x 2 with degraded input",
                     "single": "Single pane", "swipe": "Swipe view"}[layout]  # fmt: skip
            action = add(f"layout_{layout}", label, lambda checked, name=layout: self._layout_toggled(name, checked),
                         checkable=True)  # fmt: skip
            self.layout_group.addAction(action)
            view_menu.addAction(action)
        view_menu.addSeparator()
        self.overlay_action = add("difference_overlay", "Difference overlay", self._set_overlay, checkable=True)
        view_menu.addAction(self.overlay_action)
        view_menu.addAction(add("reset_view", "Reset zoom and pan", self.reset_view))
        view_menu.addSeparator()
        window_menu = view_menu.addMenu("Window")
        for preset, name in zip(CT_PRESETS, ("soft_tissue", "lung", "liver", "bone", "brain"), strict=True):
            window_menu.addAction(
                add(
                    f"preset_{name}",
                    f"{preset.name} {preset.width:g}/{preset.center:g}",
                    lambda _=False, chosen=preset: self.set_window(chosen),
                )  # fmt: skip
            )
        window_menu.addAction(add("preset_file", "File window", lambda: self.set_window(None)))
        window_menu.addAction(add("preset_auto", "Auto (0.1-99.9 %)", self.set_auto_window))
        view_menu.addSeparator()
        view_menu.addAction(add("next_slice", "Next slice", lambda: self.step_slice(1)))
        view_menu.addAction(add("previous_slice", "Previous slice", lambda: self.step_slice(-1)))
        view_menu.addAction(add("first_slice", "First slice", lambda: self.go_to_slice(0)))
        view_menu.addAction(add("last_slice", "Last slice", lambda: self.go_to_slice(10**9)))
        view_menu.addAction(add("cine", "Play / pause cine", self.cine_button.toggle))
        view_menu.addSeparator()
        for dock in (self.browser_dock, self.models_dock, self.metrics_dock, self.compare_dock):
            view_menu.addAction(dock.toggleViewAction())

        enhance_menu = menu.addMenu("&Enhance")
        enhance_menu.addAction(add("enhance_slice", "Enhance slice", self.enhance_slice))
        enhance_menu.addAction(add("enhance_series", "Enhance series", self.enhance_series))
        enhance_menu.addAction(add("compare_models", "Compare checked models", self.compare_models))
        enhance_menu.addAction(add("cancel", "Cancel", self.cancel_work))

        train_menu = menu.addMenu("&Train")
        train_menu.addAction(add("train_model", "Train a model…", lambda: self.open_training_dialog()))
        fine_tune = add("fine_tune", "Fine-tune the selected model…", self._fine_tune_selected, shortcut=False)
        fine_tune.setEnabled(False)
        self.model_panel.selectedEntryChanged.connect(
            lambda entry: fine_tune.setEnabled(self.model_panel.can_fine_tune())
        )
        train_menu.addAction(fine_tune)

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(add("shortcuts", "Keyboard shortcuts", self.show_shortcuts))
        about = QAction("About MedViewer", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

        toolbar = QToolBar("View")
        toolbar.setObjectName("toolbar-view")
        self.addToolBar(toolbar)
        toolbar.addAction(self.actions_by_name["open_file"])
        toolbar.addAction(self.actions_by_name["open_folder"])
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Layout "))
        self.layout_combo = QComboBox()
        self.layout_combo.addItems(PANE_LAYOUTS)
        self.layout_combo.currentTextChanged.connect(self.set_layout)
        toolbar.addWidget(self.layout_combo)
        toolbar.addWidget(QLabel(" Window "))
        self.window_combo = QComboBox()
        self.window_combo.setMinimumContentsLength(22)
        self.window_combo.activated.connect(self._window_combo_chosen)
        toolbar.addWidget(self.window_combo)
        toolbar.addAction(self.overlay_action)
        toolbar.addAction(self.actions_by_name["reset_view"])

    # ==========================================================================================
    # settings
    # ==========================================================================================
    def _restore_settings(self) -> None:
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        else:  # first run: the models list and the metrics share the right column, metrics fully visible
            self.resizeDocks([self.models_dock, self.metrics_dock], [620, 280], Qt.Orientation.Vertical)
            self.resizeDocks([self.browser_dock, self.models_dock], [260, 330], Qt.Orientation.Horizontal)
        layout = self.settings.pane_layout("1x3")
        self.set_layout(layout if layout in PANE_LAYOUTS else "1x3")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.set_pane_layout(self.layout_name)
        self.settings.set_cine_fps(self.cine_fps.value())
        self.settings.sync()
        self.stop_jobs()
        if self.training_dialog is not None:
            self.training_dialog.close()
        super().closeEvent(event)

    def stop_jobs(self) -> None:
        """Cancel and wait for background work: a QThread destroyed while running aborts the process."""
        self.cine_timer.stop()
        for job in [*self._load_jobs, self._work_job, self._models_job]:
            if job is not None and job.running:
                job.cancel()
                job.wait(30000)
        if self.training_dialog is not None:  # a run stops with a checkpoint; Resume continues it next time
            self.training_dialog.stop_for_exit()

    # ==========================================================================================
    # messages and progress
    # ==========================================================================================
    def show_error(self, text: str) -> None:
        """A message in the window; never modal, so the user (and a test) goes on working."""
        text = one_line(text)
        self.last_error = text
        self.status_text.setText(text)
        box = QMessageBox(QMessageBox.Icon.Warning, "MedViewer", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.errorShown.emit(text)

    def show_status(self, text: str) -> None:
        self.status_text.setText(text)

    def _show_progress(self, running: bool, text: str = "") -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.progress.setValue(0)
        if text:
            self.show_status(text)

    # ==========================================================================================
    # opening
    # ==========================================================================================
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open images", str(self.settings.last_folder() or Path.home()),
            "Images (*.dcm *.DCM *.dicom *.ima *.png *.tif *.tiff *.jpg *.jpeg *.npy DICOMDIR);;All files (*)",
        )  # fmt: skip
        if paths:
            self.open_paths([Path(path) for path in paths])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", str(self.settings.last_folder() or Path.home()))
        if folder:
            self.open_paths([Path(folder)])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt's name)
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def open_paths(self, paths: list[Path]) -> BackgroundJob | None:
        """Load in the background; the first slice appears as soon as it is decoded."""
        paths = [Path(path) for path in paths]
        if not paths:
            self._start_model_discovery()
            return None
        folder = paths[0] if paths[0].is_dir() else paths[0].parent
        self.settings.set_last_folder(folder)
        job = BackgroundJob(load_job(paths), "load", self)
        job.published.connect(lambda item, paths=paths: self._on_load_published(paths, item))
        job.progressed.connect(lambda fraction: self.progress.setValue(int(fraction * 1000)))
        job.failed.connect(self.show_error)
        job.finished.connect(lambda job=job: self._on_load_finished(job))
        self._load_jobs.append(job)
        self._show_progress(True, f"Opening {', '.join(path.name for path in paths[:3])}…")
        job.start()
        return job

    def _on_load_published(self, paths: list[Path], item: tuple) -> None:
        kind = item[0]
        if kind == "studies":
            self._on_studies(paths, item[1])
        elif kind == "first":
            if self.series is None:
                self.browser.select_series(item[1])
                self.set_series(item[1])
        elif kind == "thumbnail":
            self.browser.set_thumbnail(item[1], item[2])
        elif kind == "error":
            self.show_error(item[1])

    def _on_studies(self, paths: list[Path], loaded: LoadedStudies) -> None:
        if loaded.missing_inputs:
            self.show_error(f"{loaded.missing_inputs[0]}: file not found")
        if not loaded.series:
            reasons = "; ".join(f"{skip.path.name}: {skip.reason}" for skip in loaded.skipped[:2])
            names = ", ".join(path.name for path in paths[:3])
            if not loaded.missing_inputs:
                self.show_error(f"Nothing readable in {names}" + (f" ({reasons})" if reasons else ""))
            return
        self.browser.add_studies(loaded)
        self.settings.add_recent(paths)
        self._rebuild_recent_menu()
        named = {path.resolve() for path in paths if path.is_file()}
        failures = [skip for skip in loaded.skipped if skip.path.resolve() in named]
        if failures:
            self.show_error(f"{failures[0].path.name}: {failures[0].reason}")
        elif loaded.skipped:
            self.show_status(f"{len(loaded.skipped)} files skipped (not images): e.g. {loaded.skipped[0].path.name}")

    def _on_load_finished(self, job: BackgroundJob) -> None:
        self._load_jobs.remove(job)
        if not self._load_jobs and (self._work_job is None or not self._work_job.running):
            self._show_progress(False)
        if self.series is not None:
            self.show_status(self._series_status())
        self._start_model_discovery()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_paths()
        for path in recent:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _=False, path=path: self._open_recent(path))
        self.recent_menu.setEnabled(bool(recent))

    def _open_recent(self, path: Path) -> None:
        if not path.exists():
            self.settings.remove_recent(path)
            self._rebuild_recent_menu()
            self.show_error(f"{path}: no longer exists; removed from the recent list")
            return
        self.open_paths([path])

    # ==========================================================================================
    # models
    # ==========================================================================================
    def _start_model_discovery(self) -> None:
        """After the first slice is on screen: discovering models imports torch, which takes seconds."""
        if not self._want_models or self._models_job is not None:
            return
        self._discover_models()

    def refresh_models(self) -> None:
        """List the models again (a training run exported one): the panel shows new cards without a restart."""
        if self._models_job is not None and self._models_job.running:
            self._list_models_again = True  # the running discovery may have read the folder before the export
            return
        self._discover_models()

    def _discover_models(self) -> None:
        job = BackgroundJob(discover_job, "models", self)
        job.succeeded.connect(self._on_registry)
        job.failed.connect(lambda text: self.show_error(f"models could not be listed: {text}"))
        job.finished.connect(self._on_discovery_finished)
        self._models_job = job
        job.start()

    def _on_discovery_finished(self) -> None:
        if self._list_models_again:
            self._list_models_again = False
            self._discover_models()

    def _on_registry(self, registry) -> None:
        self.registry = registry
        self.model_panel.set_registry(registry)
        self.model_panel.set_busy(self._work_job is not None and self._work_job.running)
        if self.training_dialog is not None:
            self.training_dialog.set_models(registry.entries)
        if registry.skipped:
            self.show_status(f"{len(registry.skipped)} model(s) not loaded: {registry.skipped[0].reason}")
        self._select_exported(registry)
        self.modelsListed.emit(registry)

    def _select_exported(self, registry) -> None:
        """Show the card of the model a training run just exported, so the user sees what was made."""
        wanted = {path.resolve() for path in self._select_after_listing}
        if not wanted:
            return
        for entry in registry.entries:
            if entry.card_path is not None and entry.card_path.resolve() in wanted:
                self._select_after_listing = []
                self.model_panel.select_model(entry.id)
                self.show_status(f"Trained model {entry.id} added to the Models panel")
                return

    # ==========================================================================================
    # training
    # ==========================================================================================
    def open_training_dialog(self, model_id: str | None = None) -> TrainingDialog:
        """Train > Train a model…: one non-modal dialog for the window's life (a run outlives closing it)."""
        if self.training_dialog is None:
            from medviewer.gui.training_dialog import TrainingDialog

            entries = self.registry.entries if self.registry is not None else ()
            self.training_dialog = TrainingDialog(entries, parent=self)
            self.training_dialog.modelsExported.connect(self._on_models_exported)
        dialog = self.training_dialog
        if model_id is not None and self.registry is not None:
            try:
                dialog.prefill_for_model(self.registry.get(model_id))
            except MedViewerError as error:
                self.show_error(str(error))
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def fine_tune_model(self, model_id: str) -> TrainingDialog:
        """The model panel's "Fine-tune this model…": the dialog set to start from that network."""
        return self.open_training_dialog(model_id)

    def _fine_tune_selected(self) -> None:
        entry = self.model_panel.selected_entry()
        if entry is not None and entry.kind == "network":
            self.fine_tune_model(entry.id)

    def _on_models_exported(self, files: list[Path]) -> None:
        self._select_after_listing = [Path(path) for path in files if Path(path).suffix == ".json"]
        self.refresh_models()

    def _choose_paired_reference(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose the reference image", str(self.settings.last_folder() or Path.home())
        )
        if path:
            self.model_panel.set_paired_reference(Path(path))

    # ==========================================================================================
    # series, slices and window
    # ==========================================================================================
    def set_series(self, series: Series) -> None:
        if series is self.series:
            return
        self.series = series
        self.results = None
        self.chosen_window = None
        self._value_span_cache = None
        self.metrics_panel.clear()
        self.compare_view.clear()
        self.compare_dock.hide()
        self._rebuild_window_combo()
        self.slider.blockSignals(True)
        self.slider.setMaximum(len(series) - 1)
        self.slider.setValue(0)
        self.slider.setEnabled(len(series) > 1)
        self.slider.blockSignals(False)
        self.index = -1
        self.show_slice(0)
        self.grid.reset_view()
        self.show_status(self._series_status())

    def _series_status(self) -> str:
        series = self.series
        rows, columns = series.shape
        spacing = series.pixel_spacing_mm
        spacing_text = f", pixel {spacing[1]:.3g} x {spacing[0]:.3g} mm" if spacing else ", no pixel spacing"
        warnings = list(series.notes)
        index = self.index
        if series.may_hold_non_finite and 0 <= index < len(series) and series.is_decoded(index):  # no decoding here
            count = int(np.count_nonzero(~np.isfinite(series.values(index))))
            if count:
                warnings.insert(0, f"{count} pixels of this slice are NaN or infinite (shown black, not measured)")
        warning_text = ""
        if warnings:
            more = f" (+{len(warnings) - 1} more in the series tooltip)" if len(warnings) > 1 else ""
            warning_text = f"; WARNING {warnings[0]}{more}"
        return (
            f"{series.modality or series.source_format} {series.description}: {columns} x {rows} x {len(series)}"
            f"{spacing_text}{', units ' + series.units if series.units else ''}{warning_text}"
        )

    def step_slice(self, step: int) -> None:
        if self.series is not None:
            self.go_to_slice(self.index + step)

    def go_to_slice(self, index: int) -> None:
        if self.series is not None:
            self.slider.setValue(max(0, min(len(self.series) - 1, index)))

    def show_slice(self, index: int) -> None:
        """Show slice `index` of the current series on every pane, through the current window."""
        if self.series is None:
            return
        self.index = index
        try:
            self._refresh_panes()
        except MedViewerError as error:  # a damaged slice: say so, keep the rest of the series
            self.grid.pane("original").clear(f"Slice {index + 1} cannot be shown: {one_line(str(error))}")
            self.show_error(str(error))
        self.slice_label.setText(f"{index + 1} / {len(self.series)}")
        self.sliceShown.emit(index)

    def _refresh_panes(self) -> None:
        series, index = self.series, self.index
        values = series.values(index)
        original = series.display_values(values, index, self.chosen_window)
        geometry = {"pixel_spacing_mm": series.pixel_spacing_mm, "orientation": series.orientation}
        self.grid.pane("original").show_image(values, original, units=series.units, scale=1, **geometry)
        self.grid.pane("original").set_label("ACQUIRED", warning=False)
        evaluation = self.results.get(index) if self.results is not None else None
        self._show_evaluation(evaluation, values.shape[:2], original, geometry)

    def _show_evaluation(self, evaluation: Evaluation | None, shape, original: np.ndarray, geometry: dict) -> None:
        series, index = self.series, self.index
        enhanced_pane, error_pane, input_pane = (self.grid.pane(role) for role in ("enhanced", "error", "input"))
        if evaluation is None:
            message = "Not enhanced yet: choose a model and press Enhance"
            if self.results is not None:
                message = f"Slice {index + 1} is not enhanced: press Enhance slice or Enhance series"
            enhanced_pane.clear(message)
            error_pane.clear("The error map appears after enhancing")
            input_pane.clear("The degraded input appears in simulate mode")
            self.swipe.clear(f"Slice {index + 1} is not enhanced: nothing to compare by swiping")
            self.metrics_panel.clear()
            return
        results = self.results
        # A translated image (CycleGAN) is synthetic: its values are no measurement in the input's units (HU).
        synthetic = results.entry.task == "translation"
        output_units = "" if synthetic else series.units
        scale = evaluation.enhanced.shape[1] / shape[1]
        enhanced = series.display_values(evaluation.enhanced, index, self.chosen_window)
        enhanced_pane.show_image(evaluation.enhanced, enhanced, units=output_units, scale=scale, **geometry)
        enhanced_pane.set_label(self._enhanced_label(results, evaluation), warning=True)
        limit = results.difference_limit()
        units = output_units or "grey levels"
        error_pane.set_colour_map(ERROR_COLOUR_MAP, (-limit, limit), units)
        error_scale = evaluation.difference.shape[1] / shape[1]
        error_pane.show_image(
            evaluation.difference, evaluation.difference, units=output_units, scale=error_scale, **geometry
        )
        against = "reference" if evaluation.reference is not None else "input (no reference)"
        if synthetic:
            error_pane.set_label(f"DIFFERENCE: synthetic − input, in {units} (not an error)", warning=False)
        else:
            error_pane.set_label(f"ERROR MAP: enhanced − {against}, in {units}", warning=False)
        if evaluation.mode == "simulate":
            degraded = series.display_values(evaluation.model_input, index, self.chosen_window)
            input_scale = evaluation.model_input.shape[1] / shape[1]
            input_pane.set_title("Degraded input (simulated)")
            input_pane.show_image(evaluation.model_input, degraded, units=series.units, scale=input_scale, **geometry)
            input_pane.set_label(f"SIMULATED {evaluation.degradation} · not the acquired image", warning=True)
        elif evaluation.mode == "paired":
            reference = series.display_values(evaluation.reference, index, self.chosen_window)
            input_pane.set_title("Paired reference")
            input_pane.show_image(
                evaluation.reference, reference, units=series.units,
                scale=evaluation.reference.shape[1] / shape[1], **geometry,
            )  # fmt: skip
            input_pane.set_label(f"REFERENCE · {results.choice.describe()}", warning=False)
        else:
            input_pane.clear("No reference in this mode: nothing to show here")
        self._set_overlay(self.overlay_action.isChecked())
        if self.stack.currentWidget() is self.swipe:  # hidden, it would crop two images per slice for nothing
            self.swipe.show_pair(original, enhanced, scale)
            self.swipe.set_label(self._enhanced_label(results, evaluation))
        self.metrics_panel.show_evaluation(evaluation, results.name, output_units, results.device)

    @staticmethod
    def _enhanced_label(results: enhancement.EnhancementResults, evaluation: Evaluation) -> str:
        if results.entry.task == "translation":
            return f"SYNTHETIC · {results.name} · translated by a network, not a measurement"
        source = f" · from simulated {evaluation.degradation}" if evaluation.mode == "simulate" else ""
        return f"ENHANCED · {results.name}{source} · not the acquired image"

    def _set_overlay(self, visible: bool) -> None:
        evaluation = self.current_evaluation()
        pane = self.grid.pane("enhanced")
        if visible and evaluation is not None:
            limit = self.results.difference_limit()
            pane.set_overlay(evaluation.difference, (-limit, limit), 0.5)
        else:
            pane.set_overlay(None)

    def current_evaluation(self) -> Evaluation | None:
        return self.results.get(self.index) if self.results is not None and self.series is not None else None

    def set_layout(self, name: str) -> None:
        if name not in PANE_LAYOUTS:
            return
        self.layout_name = name
        if name == "swipe":
            self.stack.setCurrentWidget(self.swipe)
            if self.series is not None:
                self.show_slice(self.index)  # the swipe pane is filled only while it is shown
        else:
            self.grid.set_layout(name)
            self.stack.setCurrentWidget(self.grid)
        self.actions_by_name[f"layout_{name}"].setChecked(True)
        if self.layout_combo.currentText() != name:
            self.layout_combo.setCurrentText(name)

    def _layout_toggled(self, name: str, checked: bool) -> None:
        # A slot, not `checked and self.set_layout(name)`: PySide6 mishandles a bool returned by a slot
        # and aborts at exit ("deallocating True or False").
        if checked:
            self.set_layout(name)

    def reset_view(self) -> None:
        self.grid.reset_view()
        self.swipe.reset_view()

    # --- window/level ---------------------------------------------------------------------------
    def _window_choices(self) -> list[tuple[str, Window | None | str]]:
        series = self.series
        if series is None or series.is_colour:
            return []
        choices: list[tuple[str, Window | None | str]] = []
        file_windows = series.file_windows
        if series.has_voi_lut:
            choices.append(("File VOI LUT", None))
        for number, window in enumerate(file_windows):
            name = f" ({window.name})" if window.name else ""
            choices.append((f"File{name} {window.width:g}/{window.center:g}", window if number else None))
        if not file_windows and not series.has_voi_lut:
            choices.append(("Default", None))
        if series.units == "HU" or series.modality == "CT":
            choices += [(f"{preset.name} {preset.width:g}/{preset.center:g}", preset) for preset in CT_PRESETS]
        choices.append(("Auto (0.1-99.9 %)", "auto"))
        return choices

    def _rebuild_window_combo(self) -> None:
        self._choices = self._window_choices()
        self.window_combo.blockSignals(True)
        self.window_combo.clear()
        self.window_combo.addItems([label for label, _ in self._choices])
        self.window_combo.setEnabled(bool(self._choices))
        self.window_combo.blockSignals(False)

    def _window_combo_chosen(self, row: int) -> None:
        if 0 <= row < len(self._choices):
            choice = self._choices[row][1]
            self.set_auto_window() if choice == "auto" else self.set_window(choice)

    def set_window(self, chosen: Window | None) -> None:
        """The same window on original, enhanced and degraded input, so that they compare fairly."""
        if self.series is None or self.series.is_colour:
            return
        self.chosen_window = chosen
        self._sync_window_combo()
        self.show_slice(self.index)

    def set_auto_window(self) -> None:
        if self.series is not None and not self.series.is_colour:
            self.set_window(auto_window(self.series.values(self.index)))

    def _sync_window_combo(self) -> None:
        chosen = self.chosen_window
        for row, (_, window) in enumerate(self._choices):
            if window == chosen or (window == "auto" and chosen is not None and chosen.name == "auto"):
                self.window_combo.setCurrentIndex(row)
                return
        label = "Custom"
        if chosen is not None:
            label = f"Custom {chosen.width:.6g}/{chosen.center:.6g}"
        if self.window_combo.findText(label) < 0:
            self.window_combo.addItem(label)
            self._choices.append((label, chosen))
        self.window_combo.setCurrentIndex(self.window_combo.findText(label))

    def _value_span(self) -> float:
        key = (self.series.uid, self.index)
        if self._value_span_cache is None or self._value_span_cache[:2] != key:
            values = self.series.values(self.index)
            finite = values[np.isfinite(values)]
            span = float(finite.max() - finite.min()) if finite.size else 1.0
            self._value_span_cache = (*key, span or 1.0)
        return self._value_span_cache[2]

    def _on_window_dragged(self, dx: float, dy: float, finished: bool) -> None:
        if self.series is None or self.series.is_colour:
            return
        if self._drag_start_window is None:
            self._drag_start_window = self.chosen_window or self.series.default_window(self.index)
        self.chosen_window = dragged_window(self._drag_start_window, dx, dy, self._value_span())
        self._sync_window_combo()
        self.show_slice(self.index)
        if finished:
            self._drag_start_window = None

    # --- cine -------------------------------------------------------------------------------------
    def _set_cine(self, playing: bool) -> None:
        self.cine_button.setText("Pause" if playing else "Play")
        if playing and self.series is not None and len(self.series) > 1:
            self.cine_timer.start(int(round(1000 / self.cine_fps.value())))
        else:
            self.cine_timer.stop()
            if playing:
                self.cine_button.setChecked(False)

    def _cine_rate_changed(self, fps: int) -> None:
        if self.cine_timer.isActive():
            self.cine_timer.start(int(round(1000 / fps)))

    def _cine_step(self) -> None:
        if self.series is not None:
            self.go_to_slice((self.index + 1) % len(self.series))

    # ==========================================================================================
    # enhancing
    # ==========================================================================================
    def _ready_to_enhance(self) -> tuple | None:
        if self.series is None:
            self.show_error("Open a study first")
            return None
        if self._work_job is not None and self._work_job.running:
            self.show_error("An enhancement is already running; cancel it first")
            return None
        try:
            choice = self.model_panel.reference_choice()
        except MedViewerError as error:
            self.show_error(str(error))
            return None
        return choice, self.series.values(self.index)

    def _selected_entry(self):
        entry = self.model_panel.selected_entry()
        if entry is None:
            self.show_error("Choose a model in the Models panel first")
        return entry

    def enhance_slice(self) -> BackgroundJob | None:
        entry = self._selected_entry()
        ready = self._ready_to_enhance() if entry is not None else None
        if ready is None:
            return None
        choice, values = ready
        series, index = self.series, self.index
        ensemble = self.model_panel.self_ensemble()
        job_function = enhancement.enhance_slice_job(
            self.enhancers, entry, values, choice, index, len(series), ensemble
        )

        def done(result, series=series, entry=entry, choice=choice):
            slice_index, evaluation, device, name = result
            self._store_results(series, entry, device, choice, {slice_index: evaluation}, name=name)

        return self._start_work(job_function, f"Enhancing slice {index + 1} with {entry.name}…", done)

    def enhance_series(self) -> BackgroundJob | None:
        entry = self._selected_entry()
        ready = self._ready_to_enhance() if entry is not None else None
        if ready is None:
            return None
        choice, _ = ready
        series = self.series
        job_function = enhancement.enhance_series_job(
            self.enhancers, entry, series, choice, self.model_panel.self_ensemble()
        )

        def done(result, series=series, entry=entry, choice=choice):
            evaluations, device, name = result
            self._store_results(series, entry, device, choice, evaluations, replace=True, name=name)

        return self._start_work(job_function, f"Enhancing {len(series)} slices with {entry.name}…", done)

    def compare_models(self) -> BackgroundJob | None:
        entries = self.model_panel.checked_entries()
        if len(entries) < 2:
            self.show_error("Tick at least two models in the Models panel to compare them")
            return None
        ready = self._ready_to_enhance()
        if ready is None:
            return None
        choice, values = ready
        series, index = self.series, self.index
        job_function = enhancement.compare_job(
            self.enhancers, entries, values, choice, index, len(series), self.model_panel.self_ensemble()
        )

        def done(results, series=series, index=index, choice=choice):
            self._comparison = (series, index, choice)
            window = self.chosen_window or series.default_window(index)
            self.compare_view.set_results(results, window, series.units)
            self.compare_view.sort_by("PSNR (dB)", descending=True)
            self.compare_dock.show()
            failures = [result for result in results if result.error]
            if failures:
                self.show_status(f"{len(failures)} of {len(results)} models failed: {failures[0].error}")
            finished = [result for result in results if result.evaluation is not None]
            if finished:  # the best by PSNR goes into the enhanced pane (the first one without a reference)
                scored = [result for result in finished if result.evaluation.enhanced_scores is not None]
                best = max(scored, key=lambda result: result.evaluation.enhanced_scores.psnr) if scored else None
                self.show_comparison_result(best or finished[0])

        return self._start_work(job_function, f"Comparing {len(entries)} models on slice {index + 1}…", done)

    def show_comparison_result(self, result) -> None:
        """A row of the comparison table chosen: its output goes into the enhanced pane."""
        comparison = getattr(self, "_comparison", None)
        if result.evaluation is None or comparison is None:
            if result.error:
                self.show_status(f"{result.name}: {result.error}")
            return
        series, index, choice = comparison
        if series is not self.series:
            return
        self._store_results(series, result.entry, result.device, choice, {index: result.evaluation}, name=result.name)
        self.go_to_slice(index)

    def _store_results(
        self, series, entry, device, choice, evaluations: dict, replace: bool = False, name: str = ""
    ) -> None:
        self.device_text = device if entry.kind != "classical" else self.device_text
        name = name or entry.name
        same = (  # a self-ensemble's slices never mix with single-pass ones: the name says which made them
            self.results is not None
            and self.results.series_uid == series.uid
            and self.results.entry.id == entry.id
            and self.results.name == name
            and self.results.choice == choice
        )
        if not same or replace:
            self.results = enhancement.EnhancementResults(series.uid, entry, device, choice, name=name)
        self.results.evaluations.update(evaluations)
        if series is self.series:
            self.show_slice(self.index)

    def _start_work(self, function, text: str, on_success) -> BackgroundJob:
        job = BackgroundJob(function, "enhance", self)
        job.progressed.connect(lambda fraction: self.progress.setValue(int(fraction * 1000)))
        job.succeeded.connect(on_success)
        job.failed.connect(self.show_error)
        job.cancelled.connect(lambda: self.show_status("Cancelled; nothing was changed"))
        job.finished.connect(self._on_work_finished)
        self._work_job = job
        self.last_error = None  # "Done" is reported unless this job fails
        self.model_panel.set_busy(True)
        self._show_progress(True, text)
        job.start()
        return job

    def _on_work_finished(self) -> None:
        self.model_panel.set_busy(False)
        if not self._load_jobs:
            self._show_progress(False)
        evaluation = self.current_evaluation()
        if evaluation is not None and self.last_error is None:
            self.show_status(f"Done in {evaluation.seconds:.2f} s on {self.results.device}")

    def cancel_work(self) -> None:
        if self._work_job is not None and self._work_job.running:
            self._work_job.cancel()
            self.show_status("Cancelling…")
        for job in self._load_jobs:
            job.cancel()

    # ==========================================================================================
    # export and help
    # ==========================================================================================
    def export_slice(self) -> None:
        from medviewer.gui.exporting import export_slice

        export_slice(self)

    def export_series(self) -> None:
        from medviewer.gui.exporting import export_series

        export_series(self)

    def export_figure(self) -> None:
        from medviewer.gui.exporting import export_figure

        export_figure(self)

    def export_metrics(self) -> None:
        from medviewer.gui.exporting import export_metrics

        export_metrics(self)

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def show_about(self) -> None:
        dialog = AboutDialog(self.device_text, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
