"""Take the README's screenshots of the real window: `xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python
scripts/screenshots.py` (apt-get install -y xvfb). Writes docs/screenshots/*.png.

1. viewer.png: the sample study, slice 12, enhanced with the preselected default denoiser (the bundled
   msdenoiser, run as its card says: an x4 self-ensemble) against a simulated noise:25 degradation, in the
   1x3 layout (original, enhanced, error map) with the metrics panel.
2. compare.png: the compare-models table after running the shipped denoisers (supervised and GAN) and the
   classical filters on that slice.
3. swipe.png: the swipe view with the difference overlay off.
4. self_ensemble.png: the same slice enhanced by the default denoiser as an x8 self-ensemble, named so in
   the pane's label and the metrics panel.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer

from medviewer.gui.app import application
from medviewer.gui.main_window import MainWindow
from medviewer.gui.settings import ViewerSettings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    app = application()
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    window.resize(1600, 960)
    window.show()
    app.aboutToQuit.connect(window.stop_jobs)
    window.open_paths([ROOT / "resources" / "sample_study"])
    steps = iter(_steps(window))

    def advance() -> None:
        try:
            wait_for = next(steps)
        except StopIteration:
            app.quit()
            return
        QTimer.singleShot(int(wait_for * 1000), advance)

    QTimer.singleShot(500, advance)
    app.exec()
    print("\n".join(str(path) for path in sorted(OUT.glob("*.png"))))
    return 0


def _wait_until(condition, then_seconds: float = 0.3):
    """Generator helper: poll every 0.2 s until `condition()` holds."""
    while not condition():
        yield 0.2
    yield then_seconds


def _steps(window: MainWindow):
    yield from _wait_until(lambda: window.registry is not None and not window._load_jobs)
    window.go_to_slice(12)
    window.actions_by_name["preset_soft_tissue"].trigger()
    assert window.model_panel.self_ensemble() is None  # each model as its card says
    preselected = window.model_panel.selected_entry()
    assert preselected is not None and preselected is window.registry.default_entry("denoise"), preselected
    window.model_panel.set_reference_mode("simulate")
    window.model_panel.set_degradation("noise:25")
    job = window.enhance_slice()
    yield from _wait_until(lambda: not job.running, 0.8)
    window.grid.pane("original").cursorMoved.emit((118.0, 150.0))  # as if hovering: every pane reads out
    window.grab().save(str(OUT / "viewer.png"))

    window.model_panel.set_checked(
        [preselected.id, "lowdose-denoiser", "dagan-denoiser", "pix2pix-denoiser", "nlm", "unsharp", "clahe", "histeq"]
    )
    job = window.compare_models()
    yield from _wait_until(lambda: not job.running, 0.8)
    window.compare_dock.raise_()
    window.grab().save(str(OUT / "compare.png"))

    window.set_layout("swipe")
    yield 0.5
    window.grab().save(str(OUT / "swipe.png"))
    window.set_layout("1x3")
    yield 0.2

    window.model_panel.select_model(preselected.id)
    window.model_panel.set_self_ensemble(8)
    job = window.enhance_slice()
    yield from _wait_until(lambda: not job.running, 0.8)
    window.grab().save(str(OUT / "self_ensemble.png"))
    window.model_panel.set_self_ensemble(None)  # back to each model's own
    yield 0.2


if __name__ == "__main__":
    sys.exit(main())
