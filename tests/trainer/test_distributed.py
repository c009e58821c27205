"""torchrun with two gloo processes on the CPU reaches the weights one process reaches on the combined batch.

Each process takes half of every step's global batch (the same items, `StepBatchSampler`), and
DistributedDataParallel averages the gradients, which is the gradient of the whole batch's mean loss. Only
the order of floating-point sums differs. Adam divides each gradient by its own running magnitude, so where a
gradient is near zero (a ReLU that barely fires) rounding differences are amplified up to the learning rate
per step; the tolerance is therefore stated against how far training moved the weights: the two runs'
weights differ by less than 1% of the distance both travelled from their common initialisation (measured
here: 0.12% after 20 steps)."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from medviewer.models.architectures import build_architecture
from tests.trainer.conftest import FAST, REPO_ROOT, run_trainer, trainer_environment
from trainer.checkpoint import checkpoints, load_checkpoint

RELATIVE_TOLERANCE = 0.01
SETTINGS = [
    *FAST,
    "steps=20",
    "validate_every=10",
    "checkpoint_every=10",
    "optimiser.ema_decay=0.9",
    "model.arguments={widths=[8,16,32],blocks=[1,1,1]}",
]


def _weights(run_folder):
    step, path = checkpoints(run_folder / "checkpoints")[-1]
    saved = load_checkpoint(path)
    return step, saved["state"]["networks"]["generator"], saved["state"]["ema"]["generator"]


def test_two_gloo_processes_equal_one_process_on_the_combined_batch(tmp_path, phantom_folder):
    runs = tmp_path / "runs"
    single = run_trainer(
        "run",
        "msdenoiser",
        "--data",
        str(phantom_folder),
        "--out",
        str(runs),
        "--name",
        "one",
        "--device",
        "cpu",
        "--set",
        *SETTINGS,
    )
    assert single.returncode == 0, single.stderr
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "trainer",
        "run",
        "msdenoiser",
        "--data",
        str(phantom_folder),
        "--out",
        str(runs),
        "--name",
        "two",
        "--device",
        "cpu",
        "--set",
        *SETTINGS,
    ]
    environment = trainer_environment()
    environment["OMP_NUM_THREADS"] = "1"  # two processes on two cores
    double = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=REPO_ROOT)
    assert double.returncode == 0, double.stderr[-3000:]
    events = [json.loads(line) for line in double.stdout.splitlines() if line.startswith("{")]
    starts = [event for event in events if event["event"] == "start"]
    assert len(starts) == 1 and starts[0]["processes"] == 2  # only rank 0 reports
    assert events[-1]["event"] == "done" and events[-1]["step"] == 20
    step_one, live_one, ema_one = _weights(runs / "one")
    step_two, live_two, ema_two = _weights(runs / "two")
    assert step_one == step_two == 20
    torch.manual_seed(0)  # the trainer seeds with run.seed (0) before building, so this is its initialisation
    initial = build_architecture("msdenoiser", {"widths": [8, 16, 32], "blocks": [1, 1, 1]}).state_dict()
    for first, second in ((live_one, live_two), (ema_one, ema_two)):
        travelled = _norm({name: first[name] - initial[name] for name in first})
        apart = _norm({name: first[name] - second[name] for name in first})
        assert travelled > 0.1  # the runs really trained
        assert apart < RELATIVE_TOLERANCE * travelled, (apart, travelled)


def _norm(tensors) -> float:
    return float(torch.sqrt(sum((tensor.double() ** 2).sum() for tensor in tensors.values())))
