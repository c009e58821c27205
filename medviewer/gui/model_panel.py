"""The model panel: which method to run (networks and classical methods by task), what it is, and against what
reference it is judged."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QRadioButton,
    QTextBrowser,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medviewer.enhance.degrade import InvalidDegradationError, parse_degradation
from medviewer.enhance.reference import REFERENCE_MODES, InvalidReferenceError, ReferenceChoice
from medviewer.enhance.self_ensemble import ENSEMBLE_SIZES
from medviewer.errors import UnknownModelError
from medviewer.gui.metrics_panel import format_psnr, format_ssim
from medviewer.models.card import TASKS

if TYPE_CHECKING:  # these import torch, which the window must not wait for before the first slice
    from medviewer.models.registry import ModelEntry, ModelRegistry

TASK_HEADINGS = {
    "denoise": "Denoising",
    "super-resolution": "Super-resolution",
    "translation": "Translation",
    "contrast": "Contrast",
}
DEGRADATION_CHOICES = ("noise:15", "noise:25", "noise:50", "sr:2", "sr:4", "lowdose:300")
SAME_SIZE_DEFAULT_SPEC = "noise:25"
_MODEL_ID_ROLE = Qt.ItemDataRole.UserRole


def task_heading(task: str) -> str:
    return TASK_HEADINGS.get(task, task.replace("-", " ").capitalize())


def model_item_text(entry: ModelEntry, is_default: bool = False) -> str:
    if entry.kind == "classical":
        return f"{entry.name} (classical)"
    return f"{entry.name} (default)" if is_default else entry.name


def fitting_spec(current_spec: str, scale: int) -> str:
    """The degradation spec to suggest when a model of `scale` is chosen in simulate mode.

    A super-resolution model can only be scored on sr:<its scale>, a same-size model on noise or low dose,
    so a spec of the wrong kind is replaced by one that fits; a spec that already fits, and text that is
    not a spec at all (the user is typing), are left alone.
    """
    try:
        degradation = parse_degradation(current_spec)
    except InvalidDegradationError:
        return current_spec
    if scale > 1 and degradation.scale != scale:
        return f"sr:{scale}"
    if scale == 1 and degradation.kind == "sr":
        return SAME_SIZE_DEFAULT_SPEC
    return current_spec


def entry_details(entry: ModelEntry) -> list[tuple[str, str]]:
    """What a user should know before trusting a method's output, as (label, value) lines."""
    lines = [
        ("Name", entry.name),
        ("ID", entry.id),
        ("Task", task_heading(entry.task)),
        ("Scale", f"x{entry.scale}" if entry.scale > 1 else "same size"),
        ("Kind", entry.kind),
    ]
    card = entry.card
    if card is None:
        return [*lines, ("Description", entry.description)]
    validation = card.validation
    return [
        *lines,
        ("Architecture", card.architecture),
        ("Parameters", f"{card.parameters:,}"),
        ("Training data", card.training_data),
        (
            "Validation",
            f"PSNR {format_psnr(validation.psnr)} dB, SSIM {format_ssim(validation.ssim)} "
            f"on {validation.degradation} ({validation.images})",
        ),
        ("Intended use", card.intended_use),
        ("Limits", card.limits),
        ("Date", card.date.isoformat()),
    ]


class _NoModelsYet:
    """Stands in for the registry until discovery (which imports torch) finishes in the background."""

    entries: tuple = ()
    skipped: tuple = ()
    defaults: dict = {}

    def by_task(self) -> dict:
        return {}

    def default_entry(self, task: str) -> None:
        return None

    def get(self, model_id: str):
        raise UnknownModelError(f"unknown model {model_id!r}: the models are still being listed")


class ModelPanel(QWidget):
    """Choose a method (the selected one) and methods to compare (the checked ones), and a reference mode.

    The panel only collects choices; the main window runs them (through `enhance.session`) when one of the
    request signals fires.
    """

    enhanceSliceRequested = Signal()
    enhanceSeriesRequested = Signal()
    compareRequested = Signal()
    pairedReferenceRequested = Signal()
    selectedEntryChanged = Signal(object)  # ModelEntry or None
    fineTuneRequested = Signal(str)  # the id of a network to train further (Train > the training dialog)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._registry: ModelRegistry | _NoModelsYet = _NoModelsYet()
        self._items: dict[str, QTreeWidgetItem] = {}
        self._paired_path: Path | None = None

        self._tree = QTreeWidget()
        self._tree.setHeaderHidden(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._tree.itemSelectionChanged.connect(self._on_selection_changed)
        self._tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._tree.customContextMenuRequested.connect(self._show_context_menu)

        self._skipped_toggle = QToolButton()
        self._skipped_toggle.setCheckable(True)
        self._skipped_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._skipped_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self._skipped_toggle.setAutoRaise(True)
        self._skipped_toggle.toggled.connect(self._show_skipped)
        self._skipped_list = QLabel()
        self._skipped_list.setWordWrap(True)
        self._skipped_list.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._details = QTextBrowser()
        self._details.setOpenExternalLinks(False)
        self._fine_tune = QPushButton("Fine-tune this model…")
        self._fine_tune.setToolTip("Train this network further on your images (opens the training dialog)")
        self._fine_tune.clicked.connect(self._request_fine_tune)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._tree, 3)
        layout.addWidget(self._skipped_toggle)
        layout.addWidget(self._skipped_list)
        layout.addWidget(self._details, 2)
        layout.addWidget(self._fine_tune, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self._build_reference_box())
        layout.addLayout(self._build_ensemble_row())
        layout.addLayout(self._build_buttons())
        self.set_registry(self._registry)
        self.set_reference_mode("simulate")

    # --- models -------------------------------------------------------------------------------
    def set_registry(self, registry: ModelRegistry) -> None:
        """List `registry`'s models by task; the selection and checks survive for ids still listed."""
        selected = self.selected_entry()
        checked = [entry.id for entry in self.checked_entries()]
        self._registry = registry
        self._items.clear()
        self._tree.blockSignals(True)
        self._tree.clear()
        grouped = registry.by_task()
        ordered_tasks = [task for task in TASKS if task in grouped] + sorted(set(grouped) - set(TASKS))
        for task in ordered_tasks:
            heading = QTreeWidgetItem([task_heading(task)])
            # A heading checks or unchecks its whole group for "Compare models"; it is not a model to run.
            heading.setFlags(
                Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate
            )
            heading.setCheckState(0, Qt.CheckState.Unchecked)
            self._tree.addTopLevelItem(heading)
            for entry in grouped[task]:
                item = QTreeWidgetItem([model_item_text(entry, registry.defaults.get(task) == entry.id)])
                item.setData(0, _MODEL_ID_ROLE, entry.id)
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
                )
                item.setCheckState(0, Qt.CheckState.Unchecked)
                item.setToolTip(0, entry.description)
                heading.addChild(item)
                self._items[entry.id] = item
            heading.setExpanded(True)
        self._tree.blockSignals(False)
        self.set_checked(checked)
        self._set_skipped(registry)
        # Keep the user's choice; with none yet, preselect the default denoiser (a card's "default": true).
        kept = selected is not None and selected.id in self._items
        preselect = selected if kept else registry.default_entry("denoise")
        if preselect is not None:
            self.select_model(preselect.id)
        else:
            self._on_selection_changed()

    def selected_entry(self) -> ModelEntry | None:
        items = self._tree.selectedItems()
        return self._entry_of(items[0]) if items else None

    def select_model(self, model_id: str) -> None:
        """Make `model_id` the current model (UnknownModelError if the registry has no such id)."""
        self._registry.get(model_id)  # the registry's error names close ids
        self._tree.setCurrentItem(self._items[model_id])

    def checked_entries(self) -> list[ModelEntry]:
        """The models ticked for "Compare models", in the tree's order."""
        return [
            self._registry.get(item.data(0, _MODEL_ID_ROLE))
            for item in self._model_items()
            if item.checkState(0) == Qt.CheckState.Checked
        ]

    def set_checked(self, model_ids: Iterable[str]) -> None:
        """Tick exactly these models (ids not listed are ignored: a saved choice may outlive a model)."""
        wanted = set(model_ids)
        for item in self._model_items():
            state = Qt.CheckState.Checked if item.data(0, _MODEL_ID_ROLE) in wanted else Qt.CheckState.Unchecked
            item.setCheckState(0, state)

    def can_fine_tune(self) -> bool:
        """Only a network can be trained further; a classical method has no weights."""
        entry = self.selected_entry()
        return entry is not None and entry.kind == "network"

    def details_text(self) -> str:
        return self._details.toPlainText()

    def skipped_text(self) -> str:
        """The "Not loaded" list as plain text: one 'file: reason' per line."""
        return "\n".join(f"{skipped.path.name}: {skipped.reason}" for skipped in self._registry.skipped)

    # --- reference mode -----------------------------------------------------------------------
    def reference_choice(self) -> ReferenceChoice:
        """The chosen reference; a bad spec raises InvalidDegradationError, paired without a file
        InvalidReferenceError (both one-line MedViewerErrors for a message box)."""
        mode = self.reference_mode()
        if mode == "simulate":
            return ReferenceChoice.simulate(self._degradation.currentText())
        if mode == "paired":
            if self._paired_path is None:
                raise InvalidReferenceError("choose the paired reference image first (Paired reference: Choose…)")
            return ReferenceChoice.paired(self._paired_path)
        return ReferenceChoice.none()

    def reference_mode(self) -> str:
        return REFERENCE_MODES[self._modes.checkedId()]

    def set_reference_mode(self, mode: str) -> None:
        if mode not in REFERENCE_MODES:
            raise ValueError(f"unknown reference mode {mode!r}; one of {', '.join(REFERENCE_MODES)}")
        self._modes.button(REFERENCE_MODES.index(mode)).setChecked(True)
        self._on_mode_changed()

    def degradation_spec(self) -> str:
        return self._degradation.currentText()

    def set_degradation(self, spec: str) -> None:
        self._degradation.setCurrentText(spec)

    def set_paired_reference(self, path: Path | None) -> None:
        """The file the main window loaded as the paired reference (None: forget it)."""
        self._paired_path = None if path is None else Path(path)
        self._paired_label.setText(self._paired_path.name if self._paired_path else "no file chosen")
        self._paired_label.setToolTip(str(self._paired_path) if self._paired_path else "")
        if self._paired_path is not None:
            self.set_reference_mode("paired")

    # --- self-ensemble ------------------------------------------------------------------------
    def self_ensemble(self) -> int | None:
        """How many rotated/flipped copies each network averages (1: a single pass; None: as many as each
        model's card says, the way its figures were measured)."""
        size = int(self._ensemble.currentData())
        return size or None

    def set_self_ensemble(self, size: int | None) -> None:
        index = self._ensemble.findData(int(size or 0))
        if index < 0:
            raise ValueError(f"self-ensemble size must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {size}")
        self._ensemble.setCurrentIndex(index)

    # --- jobs ---------------------------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        """While a job runs, its buttons are off: a second job would race the first for the device."""
        for button in (self._enhance_slice, self._enhance_series, self._compare):
            button.setEnabled(not busy)

    # --- building -----------------------------------------------------------------------------
    def _build_reference_box(self) -> QGroupBox:
        box = QGroupBox("Reference")
        self._modes = QButtonGroup(self)
        simulate = QRadioButton("Simulate")
        simulate.setToolTip("Degrade a copy of the image and score the model against the original")
        paired = QRadioButton("Paired reference")
        paired.setToolTip("Score against a second image of the same anatomy (e.g. the full-dose scan)")
        none = QRadioButton("None (clinical)")
        none.setToolTip("No ground truth: show what the model changed and noise estimates, no scores")
        for index, button in enumerate((simulate, paired, none)):
            self._modes.addButton(button, index)
        simulate.setChecked(True)
        self._modes.idToggled.connect(self._on_mode_toggled)

        self._degradation = QComboBox()
        self._degradation.setEditable(True)
        self._degradation.addItems(list(DEGRADATION_CHOICES))
        self._degradation.setCurrentText(SAME_SIZE_DEFAULT_SPEC)
        self._degradation.setToolTip("noise:S (sigma S/255), sr:F (downscale by F) or lowdose:P (P photons at peak)")
        self._choose_paired = QPushButton("Choose…")
        self._choose_paired.clicked.connect(self.pairedReferenceRequested)
        self._paired_label = QLabel("no file chosen")

        layout = QVBoxLayout(box)
        simulate_row = QHBoxLayout()
        simulate_row.addWidget(simulate)
        simulate_row.addWidget(self._degradation, 1)
        paired_row = QHBoxLayout()
        paired_row.addWidget(paired)
        paired_row.addWidget(self._choose_paired)
        paired_row.addWidget(self._paired_label, 1)
        layout.addLayout(simulate_row)
        layout.addLayout(paired_row)
        layout.addWidget(none)
        return box

    def _build_ensemble_row(self) -> QHBoxLayout:
        self._ensemble = QComboBox()
        self._ensemble.addItem("model's own (x4 for the default denoiser, else off)", 0)
        for size in ENSEMBLE_SIZES:
            self._ensemble.addItem("off (one pass)" if size == 1 else f"x{size} ({size} passes)", size)
        self._ensemble.setToolTip(
            "Networks only: average the model's output over rotated and flipped copies of the image: better "
            "(the default denoiser: about +0.1 dB at x2 and +0.2 dB at x8 over one pass), N times slower. "
            '"Model\'s own" runs each model as its card says (the default denoiser as x4, the way its figures '
            "were measured). The result's label says which was used."
        )
        label = QLabel("Self-ensemble:")
        label.setBuddy(self._ensemble)
        row = QHBoxLayout()
        row.addWidget(label)
        row.addWidget(self._ensemble, 1)
        return row

    def _build_buttons(self) -> QHBoxLayout:
        self._enhance_slice = QPushButton("Enhance slice")
        self._enhance_series = QPushButton("Enhance series")
        self._compare = QPushButton("Compare models")
        self._compare.setToolTip("Run every ticked model on the current slice")
        self._enhance_slice.clicked.connect(self.enhanceSliceRequested)
        self._enhance_series.clicked.connect(self.enhanceSeriesRequested)
        self._compare.clicked.connect(self.compareRequested)
        row = QHBoxLayout()
        for button in (self._enhance_slice, self._enhance_series, self._compare):
            row.addWidget(button)
        return row

    # --- reactions ----------------------------------------------------------------------------
    def _on_selection_changed(self) -> None:
        entry = self.selected_entry()
        self._show_details(entry)
        self._fine_tune.setEnabled(self.can_fine_tune())
        self._fit_degradation(entry)
        self.selectedEntryChanged.emit(entry)

    def _request_fine_tune(self) -> None:
        if self.can_fine_tune():
            self.fineTuneRequested.emit(self.selected_entry().id)

    def _show_context_menu(self, position: QPoint) -> None:
        item = self._tree.itemAt(position)
        if item is None or item.data(0, _MODEL_ID_ROLE) is None:
            return
        self._tree.setCurrentItem(item)
        menu = QMenu(self)
        action = menu.addAction("Fine-tune this model…", self._request_fine_tune)
        action.setEnabled(self.can_fine_tune())
        menu.exec(self._tree.viewport().mapToGlobal(position))
        menu.deleteLater()

    def _on_mode_toggled(self, _id: int, on: bool) -> None:
        # Not a lambda returning `on and ...`: PySide6 mishandles a bool returned by a slot (abort at exit).
        if on:
            self._on_mode_changed()

    def _on_mode_changed(self) -> None:
        self._degradation.setEnabled(self.reference_mode() == "simulate")
        self._fit_degradation(self.selected_entry())

    def _fit_degradation(self, entry: ModelEntry | None) -> None:
        if entry is None or self.reference_mode() != "simulate":
            return
        suggested = fitting_spec(self._degradation.currentText(), entry.scale)
        if suggested != self._degradation.currentText():
            self._degradation.setCurrentText(suggested)

    def _show_details(self, entry: ModelEntry | None) -> None:
        if entry is None:
            self._details.setPlainText("Choose a model to see what it is and what it was trained for.")
            return
        rows = "".join(
            f"<b>{html.escape(label)}:</b> {html.escape(value)}<br>" for label, value in entry_details(entry)
        )
        self._details.setHtml(rows)

    def _set_skipped(self, registry: ModelRegistry) -> None:
        count = len(registry.skipped)
        self._skipped_toggle.setVisible(count > 0)
        self._skipped_toggle.setText(f"Not loaded: {count} model file{'s' if count != 1 else ''}")
        text = self.skipped_text()
        self._skipped_toggle.setToolTip(text)
        self._skipped_list.setText(text)
        self._show_skipped(self._skipped_toggle.isChecked() and count > 0)

    def _show_skipped(self, shown: bool) -> None:
        self._skipped_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self._skipped_list.setVisible(shown)

    def _model_items(self) -> list[QTreeWidgetItem]:
        return list(self._items.values())

    def _entry_of(self, item: QTreeWidgetItem) -> ModelEntry | None:
        model_id = item.data(0, _MODEL_ID_ROLE)
        return None if model_id is None else self._registry.get(model_id)
