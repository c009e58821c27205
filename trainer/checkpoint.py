"""Checkpoints: everything a bit-exact resume needs, written atomically, the last K and the best kept.

Saved with `torch.save` and read back with `torch.load(weights_only=True)`: tensors, numbers, strings and
containers only, never arbitrary pickled objects.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from medviewer.io.atomic import write_atomically

_NAME = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{step:08d}.pt"


def save_checkpoint(folder: Path, step: int, payload: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_atomically(checkpoint_path(folder, step), lambda temporary: torch.save(payload, temporary))


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first (a write cut short leaves only a .partial)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(folder: Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1][1] if found else None


def load_checkpoint(path: Path) -> dict:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def prune_checkpoints(folder: Path, keep: int, best_step: int | None) -> None:
    """Delete all but the newest `keep` checkpoints and the best one."""
    found = checkpoints(folder)
    kept = {step for step, _ in found[-keep:]}
    if best_step is not None:
        kept.add(best_step)
    for step, path in found:
        if step not in kept:
            path.unlink(missing_ok=True)
    for partial in Path(folder).glob(".step-*.partial"):  # left by a run killed mid-write
        partial.unlink(missing_ok=True)
