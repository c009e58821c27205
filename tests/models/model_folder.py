"""Test helper: write a model card and matching safetensors weights, as the trainer's export does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from medviewer.models.architectures import build_architecture
from medviewer.models.weights import save_weights


def card_record(model_id: str, architecture: str, arguments: dict[str, Any], task: str, scale: int) -> dict[str, Any]:
    with torch.device("meta"):
        parameters = sum(p.numel() for p in build_architecture(architecture, arguments).parameters())
    return {
        "id": model_id,
        "name": f"Test {architecture}",
        "task": task,
        "scale": scale,
        "architecture": architecture,
        "arguments": arguments,
        "parameters": parameters,
        "training_data": "random initialisation (test fixture)",
        "recipe": "none: untrained, for engine tests only",
        "validation": {"psnr": 20.0, "ssim": 0.5, "degradation": "noise:25", "images": "none"},
        "date": "2026-11-22",
        "intended_use": "tests",
        "limits": "untrained",
    }


def write_model(
    folder: Path,
    model_id: str = "tiny-srcnn-x2",
    architecture: str = "srcnn",
    arguments: dict[str, Any] | None = None,
    task: str = "super-resolution",
    scale: int = 2,
    seed: int = 0,
    card_changes: dict[str, Any] | None = None,
) -> Path:
    """Write `<id>.json` and `<id>.safetensors` into `folder`; returns the card's path. `card_changes` edit
    the card after the weights were written (to make a card that does not fit its weights)."""
    arguments = {"scale": 2} if arguments is None else arguments
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    network = build_architecture(architecture, arguments)
    save_weights(network, folder / f"{model_id}.safetensors")
    record = card_record(model_id, architecture, arguments, task, scale)
    record.update(card_changes or {})
    card_path = folder / f"{model_id}.json"
    card_path.write_text(json.dumps(record, indent=2))
    return card_path
