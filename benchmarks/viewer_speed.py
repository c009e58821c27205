"""Viewer speed: time from launch to the first slice on screen, and the slice-scroll rate on a 512x512 series.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/viewer_speed.py [--slices 200] [--launches 5]
(or under xvfb-run for an X server). Targets (issue 5): first slice < 2 s from launch; scrolling >= 30 fps.

Launch: a fresh Python process per launch does what `medviewer PATH` does (QApplication, MainWindow,
show, open the folder) and reports when the window's `sliceShown` fires for the first time after the
panes were painted; the time is measured from just before the process is spawned, so it includes
the interpreter, the imports and Qt's start. The median of `--launches` runs is reported (the first is
a warm-up for the page cache and is dropped).

Scroll: in one process, with the series decoded, step through the slices and let Qt paint each one
(`QApplication.processEvents` after every step, the window's widgets repainted). Reported for the
original pane only (nothing enhanced) and for all three panes showing an enhanced series (original,
enhanced, error map), because that is what a user scrolls through after Enhance series.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LAUNCH_PROGRAM = r"""
import sys, time, json
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from medviewer.gui.app import application
from medviewer.gui.main_window import MainWindow
from medviewer.gui.settings import ViewerSettings

app = application()
window = MainWindow(ViewerSettings(QSettings(sys.argv[2], QSettings.Format.IniFormat)))
window.show()
app.aboutToQuit.connect(window.stop_jobs)

def first(index):
    window.grid.pane("original").repaint()  # the slice is on screen: painted, not just queued
    print(json.dumps({"first_slice_wall": time.time()}), flush=True)
    QTimer.singleShot(0, app.quit)

window.sliceShown.connect(first)
window.open_paths([Path(sys.argv[1])])
app.exec()
"""


def generate(folder: Path, slices: int, size: int) -> Path:
    from medviewer.io.synthetic import head_phantom_hu, write_ct_series

    if len(list(folder.glob("*.dcm"))) != slices:
        for path in folder.glob("*.dcm"):
            path.unlink()
        write_ct_series(folder, head_phantom_hu(slices, size, seed=1), pixel_spacing_mm=(0.5, 0.5))
    return folder


def launch_seconds(folder: Path, settings_file: Path) -> float:
    started = time.time()
    finished = subprocess.run(
        [sys.executable, "-c", LAUNCH_PROGRAM, str(folder), str(settings_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in finished.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)["first_slice_wall"] - started
    raise RuntimeError(f"the viewer never showed a slice: {finished.stderr[-2000:]}")


def scroll_rates(folder: Path, steps: int) -> dict[str, float]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from medviewer.gui.app import application
    from medviewer.gui.enhancement import EnhancementResults
    from medviewer.gui.main_window import MainWindow
    from medviewer.gui.settings import ViewerSettings

    app = application()
    settings = ViewerSettings(QSettings(str(folder / "scroll-settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, models_job=False)
    window.resize(1600, 900)
    window.show()
    job = window.open_paths([folder])
    while job.running:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    series = window.series
    series.load_all()

    def rate() -> float:
        window.go_to_slice(0)
        app.processEvents()
        started = time.perf_counter()
        for _ in range(steps):
            window.step_slice(1) if window.index < len(series) - 1 else window.go_to_slice(0)
            window.centralWidget().repaint()
            QApplication.processEvents()
        return steps / (time.perf_counter() - started)

    original_only = rate()
    # An enhanced series, as Enhance series leaves it: a cheap classical method so the set-up is quick.
    from medviewer.enhance.engine import load_enhancer
    from medviewer.enhance.session import ReferenceChoice, evaluate_slices
    from medviewer.models.registry import discover_models

    entry = discover_models(folders=[]).get("unsharp")
    choice = ReferenceChoice.none()
    evaluations = evaluate_slices(load_enhancer(entry), series, range(len(series)), choice)
    window.results = EnhancementResults(series.uid, entry, "CPU (classical)", choice, evaluations)
    three_panes = rate()
    window.close()
    return {"original_pane_fps": original_only, "three_panes_fps": three_panes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=None, help="keep the generated series here")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = arguments.folder or Path(scratch) / "series"
        folder.mkdir(parents=True, exist_ok=True)
        generate(folder, arguments.slices, arguments.size)
        settings_file = Path(scratch) / "launch-settings.ini"
        launches = [launch_seconds(folder, settings_file) for _ in range(arguments.launches + 1)][1:]
        rates = scroll_rates(folder, arguments.steps)
    report = {
        "series": f"{arguments.slices} slices of {arguments.size}x{arguments.size} CT",
        "platform": os.environ.get("QT_QPA_PLATFORM", ""),
        "launch_to_first_slice_s": {"median": statistics.median(launches), "max": max(launches), "runs": launches},
        **rates,
    }
    print(json.dumps(report, indent=2))
    print(
        f"\n| measure | result | target |\n| --- | ---: | ---: |\n"
        f"| launch to first slice ({report['series']}), median of {arguments.launches} | "
        f"{report['launch_to_first_slice_s']['median']:.2f} s | < 2 s |\n"
        f"| scroll, original pane | {rates['original_pane_fps']:.0f} fps | >= 30 fps |\n"
        f"| scroll, original + enhanced + error map | {rates['three_panes_fps']:.0f} fps | >= 30 fps |"
    )


if __name__ == "__main__":
    main()
