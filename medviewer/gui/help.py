"""Keyboard shortcuts (one table: the actions take their keys from it and Help lists it) and the About box."""

from __future__ import annotations

import platform
import sys

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

# (action name, key sequence, what it does). Qt writes the keys for the user's platform (Ctrl = Cmd on macOS).
SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("open_file", "Ctrl+O", "Open file(s)"),
    ("open_folder", "Ctrl+Shift+O", "Open folder"),
    ("next_slice", "PgDown", "Next slice (also the mouse wheel)"),
    ("previous_slice", "PgUp", "Previous slice (also the mouse wheel)"),
    ("first_slice", "Home", "First slice"),
    ("last_slice", "End", "Last slice"),
    ("cine", "Space", "Play / pause cine"),
    ("preset_soft_tissue", "1", "Window: CT soft tissue 400/40"),
    ("preset_lung", "2", "Window: CT lung 1500/-600"),
    ("preset_liver", "3", "Window: CT liver 150/90"),
    ("preset_bone", "4", "Window: CT bone 2500/480"),
    ("preset_brain", "5", "Window: CT brain 80/40"),
    ("preset_file", "0", "Window: the file's own"),
    ("preset_auto", "A", "Window: auto (0.1-99.9 percentiles)"),
    ("layout_1x3", "F2", "Layout: original | enhanced | error map"),
    ("layout_2x2", "F3", "Layout: 2 x 2 with the degraded input (or paired reference)"),
    ("layout_single", "F4", "Layout: one pane"),
    ("layout_swipe", "F6", "Swipe view: original and enhanced with a divider"),
    ("difference_overlay", "D", "Difference overlay on the enhanced image"),
    ("reset_view", "R", "Reset zoom and pan (also double-click)"),
    ("enhance_slice", "Ctrl+E", "Enhance this slice with the selected model"),
    ("enhance_series", "Ctrl+Shift+E", "Enhance the whole series"),
    ("compare_models", "Ctrl+M", "Compare the checked models on this slice"),
    ("cancel", "Esc", "Cancel the running enhancement or load"),
    ("train_model", "Ctrl+T", "Train a model (the training dialog)"),
    ("export_slice", "Ctrl+S", "Export the enhanced slice"),
    ("export_figure", "Ctrl+Shift+S", "Export a side-by-side figure"),
    ("shortcuts", "F1", "This list"),
    ("quit", "Ctrl+Q", "Quit"),
)
MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Right-drag", "Window/level: left-right = width, up-down = level"),
    ("Left-drag", "Pan (all panes together)"),
    ("Ctrl + wheel", "Zoom (all panes together)"),
    ("Wheel", "Previous / next slice"),
    ("Double-click", "Reset zoom and pan"),
)


def shortcut_for(action_name: str) -> str:
    for name, keys, _ in SHORTCUTS:
        if name == action_name:
            return keys
    raise KeyError(action_name)


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(keys, text) for _, keys, text in SHORTCUTS] + list(MOUSE_HELP)
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        for row, (keys, text) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(keys))
            self.table.setItem(row, 1, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, 640)


def version_lines(device: str | None) -> list[str]:
    """Versions a bug report needs. torch is named only if already imported (it takes seconds to import)."""
    import numpy
    import pydicom
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    from medviewer import __version__

    lines = [
        f"MedViewer {__version__}",
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"Qt {qVersion()}, PySide6 {PySide6.__version__}, pyqtgraph {pyqtgraph.__version__}",
        f"pydicom {pydicom.__version__}, numpy {numpy.__version__}",
    ]
    torch = sys.modules.get("torch")
    lines.append(f"PyTorch {torch.__version__}" if torch else "PyTorch: not loaded yet (loads with the first model)")
    lines.append(f"Device for networks: {device}" if device else "Device for networks: chosen when a model first runs")
    return lines


class AboutDialog(QDialog):
    def __init__(self, device: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About MedViewer")
        text = (
            "<h3>MedViewer</h3><p>Open medical studies, enhance them with deep-learning and classical methods, "
            "and compare with the acquired image. Enhanced images are derived images: they are labelled as such "
            "everywhere and are not for primary diagnosis.</p><p>" + "<br>".join(version_lines(device)) + "</p>"
        )
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
