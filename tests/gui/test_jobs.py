"""Background jobs: results, one-line errors and cancellation arrive as signals; the event loop stays free."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medviewer.errors import MedViewerError
from medviewer.gui.jobs import BackgroundJob


def _run(qtbot, function):
    job = BackgroundJob(function)
    outcome = {}
    job.succeeded.connect(lambda result: outcome.setdefault("result", result))
    job.failed.connect(lambda text: outcome.setdefault("failed", text))
    job.cancelled.connect(lambda: outcome.setdefault("cancelled", True))
    job.published.connect(lambda item: outcome.setdefault("published", []).append(item))
    job.progressed.connect(lambda fraction: outcome.setdefault("progress", []).append(fraction))
    with qtbot.waitSignal(job.finished, timeout=20000):
        job.start()
    return job, outcome


def test_result_progress_and_published_items_arrive_in_the_gui_thread(qtbot):
    def work(context):
        context.publish("first slice")
        for step in range(1, 5):
            context.progress(step / 4)
        return 42

    job, outcome = _run(qtbot, work)
    assert outcome["result"] == 42
    assert outcome["published"] == ["first slice"]
    assert outcome["progress"][-1] == 1.0  # the final progress is never dropped by the rate limit
    assert not job.running


def test_a_user_error_is_one_line_and_a_bug_is_named(qtbot):
    def bad_input(context):
        raise MedViewerError("scan.dcm: truncated\nsecond line")

    _, outcome = _run(qtbot, bad_input)
    assert outcome["failed"] == "scan.dcm: truncated?second line"

    def bug(context):
        raise ZeroDivisionError("division by zero")

    _, outcome = _run(qtbot, bug)
    assert outcome["failed"].startswith("unexpected error: ZeroDivisionError")


def test_cancel_stops_a_running_job(qtbot):
    from medviewer.enhance.engine import EnhancementCancelled

    def slow(context):
        for _ in range(1000):
            if context.should_cancel():
                raise EnhancementCancelled()
            time.sleep(0.01)
        return "finished"

    job = BackgroundJob(slow)
    seen = []
    job.cancelled.connect(lambda: seen.append("cancelled"))
    job.succeeded.connect(lambda _: seen.append("succeeded"))
    started = time.monotonic()
    with qtbot.waitSignal(job.finished, timeout=5000):
        job.start()
        qtbot.wait(50)
        job.cancel()
    assert seen == ["cancelled"]
    assert time.monotonic() - started < 2.0


def test_event_loop_stays_responsive_during_a_long_enhancement(qtbot):
    """A real enhancement (non-local means on 24 CT-sized slices, a few seconds) runs in the thread while a
    10 ms timer ticks in the GUI thread: the longest gap between ticks must stay far below a second."""
    from PySide6.QtCore import QTimer

    from medviewer.enhance.engine import load_enhancer
    from medviewer.models.registry import discover_models

    enhancer = load_enhancer(discover_models(folders=[]).get("nlm"))
    rng = np.random.default_rng(0)
    volume = rng.normal(0.5, 0.1, (12, 256, 256)).astype(np.float32)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def work(context):
        return enhancer.enhance_volume(volume, context.progress, context.should_cancel)

    job = BackgroundJob(work)
    results = []
    job.succeeded.connect(results.append)
    timer.start(10)
    started = time.perf_counter()
    with qtbot.waitSignal(job.finished, timeout=60000):
        job.start()
    elapsed = time.perf_counter() - started
    timer.stop()
    assert results and results[0].shape == volume.shape
    assert elapsed > 0.5, "the job must be long enough to measure anything"
    gaps = np.diff(ticks)
    assert len(ticks) > elapsed / 0.05  # the timer kept firing throughout
    assert gaps.max() < 0.25, f"the event loop stalled for {gaps.max():.3f} s"


@pytest.mark.parametrize("error", [MemoryError()])
def test_out_of_memory_is_a_message(qtbot, error):
    def work(context):
        raise error

    _, outcome = _run(qtbot, work)
    assert "not enough memory" in outcome["failed"]
