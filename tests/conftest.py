"""Shared test set-up: headless Qt, pydicom's bundled files, generated series."""

import gc
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STUDY = REPO_ROOT / "resources" / "sample_study"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def garbage_collected_at_a_safe_point(request):
    """Python's cyclic collector may run at any allocation, including one inside a Qt call; a Qt object it
    frees there is destroyed in the middle of that call (seen: a window's QMenu freed inside
    QObject::disconnect deadlocked on Qt's connection mutex; one freed during a paint crashed). So, as in the
    app (pyqtgraph's GarbageCollector, `medviewer.gui.app`), a test that uses Qt runs with automatic
    collection off and ends with a collection outside any Qt call. What survives it is frozen (`gc.freeze`),
    so that the next collection looks only at what is new: a full one per test would cost minutes."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()
