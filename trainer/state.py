"""The trainable state of a run: networks, their optimisers, EMA copies, image pools, and one update step.

A paradigm's loop (`trainer.loops`) computes losses from a batch and calls `update`; everything that a
bit-exact resume needs is in `state_dict`, next to the random generators `trainer.run` saves.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from medviewer.enhance.device import cpu_has_native_bfloat16
from trainer.losses import AdversarialLoss, PixelLoss, frequency_loss
from trainer.recipe import Recipe


class ImagePool:
    """A buffer of past generator outputs (Shrivastava et al. 2017), as CycleGAN's discriminators see them:
    each new fake is either shown as is or swapped, with probability 1/2, for one stored earlier, so the
    discriminator does not chase the generator's latest move. Its own random generator is checkpointed."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.cpu().clone())
                chosen.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(len(self.images), (), generator=self.generator))
                chosen.append(self.images[slot].to(images.device))
                self.images[slot] = image.cpu().clone()
            else:
                chosen.append(image)
        return torch.stack(chosen)

    def state_dict(self) -> dict:
        stacked = torch.stack(self.images) if self.images else torch.zeros(0)
        return {"images": stacked, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.images = [image.clone() for image in state["images"]] if state["images"].numel() else []
        self.generator.set_state(state["generator"])


def autocast_bfloat16(precision: str, device: torch.device) -> bool:
    """Whether a run's forward passes use bf16 autocast. bfloat16 has float32's exponent range, so no loss
    scaling is needed; weights, optimiser state and losses stay float32. "auto" means yes on a CUDA GPU
    and no on the CPU, where it is opt-in: it is 3.4x faster only on CPUs that compute bf16 natively
    (msdenoiser, batch 8 at 128x128, 2 threads with AMX: 4.6 -> 15.8 steps/s), slower elsewhere. "native"
    asks for it wherever the hardware has it, so one recipe is fast on such a CPU and correct on any other."""
    if precision == "auto":
        return device.type == "cuda"
    if precision == "native":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bfloat16())
    return precision == "bfloat16"


@dataclass
class TrainingState:
    recipe: Recipe
    device: torch.device
    networks: dict[str, nn.Module]  # the modules themselves
    forward: dict[str, nn.Module]  # what a loop calls: the DistributedDataParallel wrapper when there is one
    optimisers: dict[str, torch.optim.Optimizer]
    parameters_of: dict[str, list[str]]  # optimiser name -> the networks it updates
    generators: tuple[str, ...]  # the networks with EMA copies, which validation and export use
    pixel: PixelLoss
    adversarial: AdversarialLoss | None = None
    perceptual: nn.Module | None = None
    pools: dict[str, ImagePool] = field(default_factory=dict)
    ema: dict[str, nn.Module] = field(default_factory=dict)
    base_lrs: dict[str, float] = field(default_factory=dict)
    step: int = 0  # completed steps

    def __post_init__(self) -> None:
        if self.recipe.optimiser.ema_decay > 0:
            for name in self.generators:
                self.ema[name] = copy.deepcopy(self.networks[name]).eval().requires_grad_(False)

    def autocast(self):
        """The forward pass under bf16 autocast where `run.precision` asks for it (`autocast_bfloat16`)."""
        if autocast_bfloat16(self.recipe.run.precision, self.device):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def update(self, optimiser_name: str, loss: torch.Tensor) -> None:
        optimiser = self.optimisers[optimiser_name]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.recipe.optimiser.grad_clip
        if clip > 0:
            parameters = [p for name in self.parameters_of[optimiser_name] for p in self.networks[name].parameters()]
            torch.nn.utils.clip_grad_norm_(parameters, clip)
        optimiser.step()

    def set_learning_rates(self, factor: float) -> None:
        for name, optimiser in self.optimisers.items():
            for group in optimiser.param_groups:
                group["lr"] = self.base_lrs[name] * factor

    def update_ema(self) -> None:
        """EMA of generator weights (Polyak averaging); the decay ramps up over the first steps, (1 + t) /
        (10 + t) capped at the recipe's, so the average does not start out dominated by random weights.
        Buffers (BatchNorm statistics) are copied, not averaged."""
        if not self.ema:
            return
        decay = min(self.recipe.optimiser.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for name, average in self.ema.items():
                live = self.networks[name]
                for mine, theirs in zip(average.parameters(), live.parameters(), strict=True):
                    mine.lerp_(theirs.detach(), 1 - decay)
                for mine, theirs in zip(average.buffers(), live.buffers(), strict=True):
                    mine.copy_(theirs)

    def evaluated(self, name: str) -> nn.Module:
        """The weights validation and export use: the EMA copy when there is one."""
        return self.ema.get(name, self.networks[name])

    def content_losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The recipe's pixel, perceptual and frequency terms, weighted, by name."""
        loss = self.recipe.loss
        terms = {"pixel": loss.pixel_weight * self.pixel(output, target)}
        if self.perceptual is not None and loss.perceptual_weight > 0:
            terms["perceptual"] = loss.perceptual_weight * self.perceptual(output, target)
        if loss.frequency_weight > 0:
            terms["frequency"] = loss.frequency_weight * frequency_loss(output, target)
        return terms

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "networks": {name: network.state_dict() for name, network in self.networks.items()},
            "ema": {name: network.state_dict() for name, network in self.ema.items()},
            "optimisers": {name: optimiser.state_dict() for name, optimiser in self.optimisers.items()},
            "pools": {name: pool.state_dict() for name, pool in self.pools.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        for name, network in self.networks.items():
            network.load_state_dict(state["networks"][name])
        for name, network in self.ema.items():
            network.load_state_dict(state["ema"][name])
        for name, optimiser in self.optimisers.items():
            optimiser.load_state_dict(state["optimisers"][name])
        for name, pool in self.pools.items():
            pool.load_state_dict(state["pools"][name])


def frozen(network: nn.Module):
    """No gradients into `network` while a generator's loss runs through it."""

    @contextlib.contextmanager
    def context():
        flags = [parameter.requires_grad for parameter in network.parameters()]
        network.requires_grad_(False)
        try:
            yield network
        finally:
            for parameter, flag in zip(network.parameters(), flags, strict=True):
                parameter.requires_grad_(flag)

    return context()
