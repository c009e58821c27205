"""Supervised training (SRCNN, VDSR, DnCNN, msdenoiser, SRResNet): one generator, pixel (+ content) losses."""

from __future__ import annotations

import torch

from trainer.state import TrainingState

GENERATORS = ("generator",)
OPTIMISERS = {"generator": ("generator",)}


def networks(recipe, build_generator, build_discriminator) -> dict:
    return {"generator": build_generator(recipe.model.architecture, recipe.model.arguments)}


def step(state: TrainingState, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    degraded, target = batch["input"], batch["target"]
    with state.autocast():
        output = state.forward["generator"](degraded)
    terms = state.content_losses(output.float(), target)
    total = sum(terms.values())
    state.update("generator", total)
    return {"loss": float(total.detach()), **{name: float(value.detach()) for name, value in terms.items()}}
