"""A run killed with kill -9 resumes from its last checkpoint and, on the CPU, ends with exactly the weights
of a run that was never interrupted (patches come from (seed, index), the schedule from the step, and every
random generator is checkpointed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import torch

from tests.trainer.conftest import FAST, REPO_ROOT, run_trainer, trainer_command, trainer_environment
from trainer.checkpoint import checkpoints, load_checkpoint

# Two DataLoader workers and an image pool's random draws are exactly what could break a resume.
SETTINGS = [
    *[item for item in FAST if item != "data.workers=0"],
    "data.workers=2",
    "optimiser.ema_decay=0.99",
    "steps=60",
    "checkpoint_every=10",
    "validate_every=30",
    "keep_checkpoints=2",
]


def _final_state(run_folder):
    found = checkpoints(run_folder / "checkpoints")
    step, path = found[-1]
    return step, load_checkpoint(path)


def _assert_same_tensors(first, second, where=""):
    if isinstance(first, torch.Tensor):
        assert torch.equal(first, second), where
    elif isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            _assert_same_tensors(first[key], second[key], f"{where}/{key}")
    elif isinstance(first, (list, tuple)):
        assert len(first) == len(second), where
        for index, (mine, theirs) in enumerate(zip(first, second, strict=True)):
            _assert_same_tensors(mine, theirs, f"{where}[{index}]")
    else:
        assert first == second, where


def _killed_then_resumed(recipe, data, overrides, runs, name):
    command = trainer_command(
        "run", recipe, "--data", *data, "--out", str(runs), "--name", name, "--device", "cpu", "--set", *overrides
    )
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=trainer_environment(),
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    killed_after = None
    try:
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "checkpoint" and event["step"] >= 20:
                killed_after = event["step"]
                os.killpg(process.pid, signal.SIGKILL)  # the trainer and its data workers, with no warning
                break
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    assert killed_after is not None and killed_after < 60, "the run ended before it could be killed"
    assert process.returncode == -signal.SIGKILL
    resumed = run_trainer("resume", str(runs / name))
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["resumed"] and events[0]["step"] >= killed_after
    assert events[-1]["event"] == "done" and events[-1]["step"] == 60
    return runs / name


def _compare_with_uninterrupted(recipe, data, overrides, tmp_path):
    runs = tmp_path / "runs"
    whole = run_trainer(
        "run", recipe, "--data", *data, "--out", str(runs), "--name", "whole", "--device", "cpu", "--set", *overrides
    )
    assert whole.returncode == 0, whole.stderr
    resumed_folder = _killed_then_resumed(recipe, data, overrides, runs, "killed")
    step_whole, state_whole = _final_state(runs / "whole")
    step_resumed, state_resumed = _final_state(resumed_folder)
    assert step_whole == step_resumed == 60
    _assert_same_tensors(state_whole["state"], state_resumed["state"], "state")
    _assert_same_tensors(state_whole["rng"], state_resumed["rng"], "rng")
    # metrics.csv describes the run that made the weights: no step counted twice after the resume.
    rows = [row.split(",") for row in (resumed_folder / "metrics.csv").read_text().splitlines()[1:]]
    train_loss_steps = [int(row[0]) for row in rows if row[2] == "train" and row[3] == "loss"]
    assert train_loss_steps == sorted(set(train_loss_steps)) == list(range(10, 61, 10))
    validations = json.loads((resumed_folder / "validation.json").read_text())
    assert [record["step"] for record in validations] == [30, 60]
    assert len(checkpoints(resumed_folder / "checkpoints")) <= 3  # the last 2 and the best


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, phantom_folder):
    overrides = [*SETTINGS, "model.arguments={widths=[8,16,32],blocks=[1,1,1]}"]
    _compare_with_uninterrupted("msdenoiser", [str(phantom_folder)], overrides, tmp_path)


def test_kill_9_then_resume_equals_an_uninterrupted_cycle_gan_run(tmp_path, phantom_folder, second_domain_folder):
    """CycleGAN adds image pools with their own random draws and two optimisers over two networks each."""
    overrides = [
        *SETTINGS,
        "data.batch=2",
        "data.patch=32",
        "model.arguments={width=4,blocks=1}",
        'discriminator.arguments={width=4,layers=2,norm="instance"}',
        "loss.image_pool=4",
    ]
    _compare_with_uninterrupted(
        "cyclegan-xray-ct", [str(phantom_folder), str(second_domain_folder)], overrides, tmp_path
    )


def test_sigterm_checkpoints_and_exits_130(tmp_path, phantom_folder):
    """What the viewer's Cancel sends: the run saves where it is, so no step is lost, and says how to resume."""
    overrides = [
        *SETTINGS,
        "steps=100000",
        "checkpoint_every=100000",
        "validate_every=100000",
        "model.arguments={widths=[8,16,32],blocks=[1,1,1]}",
    ]
    command = trainer_command(
        "run",
        "msdenoiser",
        "--data",
        str(phantom_folder),
        "--out",
        str(tmp_path / "runs"),
        "--name",
        "cancelled",
        "--device",
        "cpu",
        "--set",
        *overrides,
    )
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=trainer_environment(), cwd=REPO_ROOT
    )
    for line in process.stdout:
        if json.loads(line)["event"] == "step":
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    remaining, errors = process.communicate(timeout=60)
    assert process.returncode == 130, errors
    events = [json.loads(line) for line in remaining.splitlines()]
    cancelled = [event for event in events if event["event"] == "cancelled"]
    assert cancelled and [event for event in events if event["event"] == "checkpoint"]
    assert "resume" in errors
    step, _ = _final_state(tmp_path / "runs" / "cancelled")
    assert step == cancelled[0]["step"] >= 10
