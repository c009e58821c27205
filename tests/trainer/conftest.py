"""Generated folders and tiny recipe settings for the trainer's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.phantoms import write_folder

REPO_ROOT = Path(__file__).resolve().parents[2]

# Tiny networks and short runs: every recipe trains for real, in seconds.
FAST = [
    "log_every=10",
    "data.batch=8",
    "data.workers=0",
    "data.val_images=4",
    "optimiser.warmup_steps=0",
    "optimiser.ema_decay=0",
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tests' networks are tiny: a second thread buys nothing, and when anything else wants the CPU
    (CI neighbours, a GUI test's event loop), OpenMP threads that wait for each other at every layer make a
    run tens of times slower. Speed is measured by benchmarks/train_speed.py, at the default thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def phantom_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("phantoms") / "images", count=8, size=96, seed=0, kind="png")


@pytest.fixture(scope="session")
def second_domain_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("domain_b") / "images", count=8, size=96, seed=1, kind="npy")


def trainer_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "trainer", *arguments]


def trainer_environment(models_folder: Path | None = None) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    environment["OMP_NUM_THREADS"] = "1"  # see one_torch_thread
    if models_folder is not None:
        environment["MEDVIEWER_MODELS_DIR"] = str(models_folder)
    return environment


def run_trainer(
    *arguments: str, models_folder: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        trainer_command(*arguments),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=trainer_environment(models_folder),
        cwd=REPO_ROOT,
    )
