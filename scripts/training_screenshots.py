"""Take the README's screenshots of the training dialog during a real (short, small) run: `xvfb-run -s "-screen 0
1600x1000x24" .venv/bin/python scripts/training_screenshots.py` (apt-get install -y xvfb). Writes
docs/screenshots/training_dialog.png (mid-run: curves, baselines, ETA), training_done.png (the finished run) and
training_new_model.png (the viewer with the exported model selected in the Models panel).

The run trains the msdenoiser recipe, made small (narrow network, short schedule) so that it finishes in a minute
or two on a CPU, on generated phantoms; the models and runs go to a temporary folder, never the user's.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
WORK = Path(tempfile.mkdtemp(prefix="medviewer-training-shots-"))
os.environ["MEDVIEWER_MODELS_DIR"] = str(WORK / "models")  # before the registry or the trainer reads it
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402

from medviewer.gui.app import application  # noqa: E402
from medviewer.gui.main_window import MainWindow  # noqa: E402
from medviewer.gui.settings import ViewerSettings  # noqa: E402
from tests.trainer.phantoms import write_folder  # noqa: E402

STEPS = 300
SMALL = [
    "log_every=5",
    "validate_every=20",
    "checkpoint_every=100",
    "data.batch=8",
    "data.workers=0",
    "data.val_images=2",
    "optimiser.warmup_steps=0",
    "model.arguments={widths=[16,32,64],blocks=[1,1,1]}",
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    images = write_folder(WORK / "images", count=10, size=128, seed=0, kind="png")
    app = application()
    window = MainWindow(ViewerSettings(QSettings(str(WORK / "settings.ini"), QSettings.Format.IniFormat)))
    window.resize(1600, 960)
    window.show()
    app.aboutToQuit.connect(window.stop_jobs)
    window.open_paths([ROOT / "resources" / "sample_study"])
    steps = iter(_steps(window, images))

    def advance() -> None:
        try:
            wait_for = next(steps)
        except StopIteration:
            app.quit()
            return
        QTimer.singleShot(int(wait_for * 1000), advance)

    QTimer.singleShot(500, advance)
    app.exec()
    print("\n".join(str(OUT / name) for name in ("training_dialog.png", "training_done.png", "training_new_model.png")))
    return 0


def _wait_until(condition, then_seconds: float = 0.3):
    while not condition():
        yield 0.2
    yield then_seconds


def _steps(window: MainWindow, images: Path):
    yield from _wait_until(lambda: window.registry is not None and not window._load_jobs)
    window.actions_by_name["train_model"].trigger()
    dialog = window.training_dialog
    dialog.move(window.x() + 120, window.y() + 80)
    dialog.extra_overrides = SMALL
    dialog.set_recipe("msdenoiser")
    dialog.set_data_folders([images])
    dialog.steps_spin.setValue(STEPS)
    dialog.device_combo.setCurrentText("cpu")
    dialog.name_edit.setText("phantom-denoiser")
    dialog.runs_edit.setText(str(WORK / "runs"))
    dialog.start()
    yield from _wait_until(lambda: dialog.progress.step >= STEPS * 0.55 and len(dialog.progress.val_steps) >= 5)
    dialog.grab().save(str(OUT / "training_dialog.png"))
    yield from _wait_until(lambda: not dialog.running and window.model_panel.selected_entry() is not None, 1.0)
    dialog.grab().save(str(OUT / "training_done.png"))
    window.grab().save(str(OUT / "training_new_model.png"))


if __name__ == "__main__":
    sys.exit(main())
