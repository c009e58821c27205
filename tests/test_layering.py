"""The core never imports Qt: everything but display must run headless, from the CLI and the trainer."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "medviewer.io.study",
    "medviewer.io.export",
    "medviewer.io.derived_dicom",
    "medviewer.models.registry",
    "medviewer.enhance.engine",
    "medviewer.enhance.evaluation",
    "medviewer.metrics",
    "medviewer.cli",
    "medviewer.cli_enhance",
    "medviewer.io.geometry",
    "medviewer.enhance.session",
    "medviewer.enhance.report",
    "medviewer.io.figure",
]


def test_core_modules_import_no_qt():
    program = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in CORE_MODULES)
        + "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', "
        "'pyqtgraph', 'shiboken6'))\n"
        "print(','.join(loaded))\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == ""


def test_info_and_export_do_not_import_torch():
    """`medviewer info` must start fast: torch is imported only by `models` and `enhance`."""
    program = "import sys, medviewer.cli; print('torch' in sys.modules)"
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "False"


def test_the_viewer_window_starts_without_torch():
    """The first slice must be on screen within 2 s of launch: torch (seconds to import) loads in the
    background once models are listed, never on the way to the window."""
    program = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import medviewer.gui.app, medviewer.gui.main_window\n"
        "print('torch' in sys.modules)\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "False"


TRAINER_MODULES = [
    "trainer.cli",
    "trainer.run",
    "trainer.data",
    "trainer.export",
    "trainer.evaluate",
    "trainer.onnx_export",
    "trainer.distributed",
]


def test_the_trainer_imports_the_core_never_the_gui():
    program = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in TRAINER_MODULES)
        + "print(','.join(sorted(name for name in sys.modules if name.startswith('medviewer.gui') or "
        "name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))))\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == ""


def test_the_viewer_never_imports_the_trainer():
    """Training runs as a separate process (`python -m trainer`), so the GUI never imports the package."""
    program = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import medviewer.gui.app, medviewer.gui.main_window, medviewer.gui.training_dialog\n"
        "print(any(name == 'trainer' or name.startswith('trainer.') for name in sys.modules))\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stdout.strip() == "False"
