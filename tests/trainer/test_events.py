"""Progress reporting: strict JSON lines, metrics.csv, TensorBoard event files when tensorboard is installed."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tests.trainer.conftest import FAST
from trainer import run as runs
from trainer.events import emit
from trainer.recipe import shipped_recipes


def test_json_lines_are_strict_json():
    stream = io.StringIO()
    emit({"event": "step", "losses": {"loss": float("nan")}, "values": [float("inf"), 1.5]}, stream)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}")) == {
        "event": "step",
        "losses": {"loss": None},
        "values": [None, 1.5],
    }


def test_tensorboard_event_files_hold_the_metrics(tmp_path, phantom_folder):
    pytest.importorskip("tensorboard")  # a test dependency; optional for users
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = runs.prepare_run(
        shipped_recipes()["msdenoiser"],
        [
            *FAST,
            "steps=20",
            "validate_every=10",
            "checkpoint_every=20",
            "model.arguments={widths=[8,16,32],blocks=[1,1,1]}",
        ],
        [phantom_folder],
        tmp_path / "runs",
        "logged",
        "cpu",
        None,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        runs.train(folder)
    accumulator = EventAccumulator(str(folder / "tensorboard"))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert {"train/loss", "val/psnr", "val/psnr@noise:25"} <= set(tags)
    assert [event.step for event in accumulator.Scalars("val/psnr")] == [10, 20]
    rows = [line.split(",") for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
    csv_psnr = [float(row[4]) for row in rows if row[2] == "val" and row[3] == "psnr"]
    assert [event.value for event in accumulator.Scalars("val/psnr")] == pytest.approx(csv_psnr, rel=1e-5)
