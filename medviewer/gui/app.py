"""`medviewer [PATH...]`: start the Qt application and open the main window with PATHs loading."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from medviewer import __version__
from medviewer.gui.main_window import MainWindow
from medviewer.gui.settings import APPLICATION, ORGANISATION

ICON = Path(__file__).resolve().parents[2] / "resources" / "icons" / "medviewer.png"


def application() -> QApplication:
    """The one QApplication (a test's, when pytest-qt made it)."""
    existing = QApplication.instance()
    if existing is not None:
        return existing
    app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    if ICON.exists():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


def run_viewer(paths: list[Path]) -> int:
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)  # we report problems ourselves, in one line
    app = application()
    # Collect cyclic garbage only from the event loop, never inside a Qt call: a Qt object freed by a
    # collection that happens to run inside, say, QObject::disconnect deadlocks or crashes the viewer.
    collector = GarbageCollector(interval=1.0)  # noqa: F841 - kept alive for the life of the event loop
    window = MainWindow()
    window.show()
    app.aboutToQuit.connect(window.stop_jobs)
    window.open_paths(paths)
    return app.exec()
