"""Losses: pixel (L1, L2, Charbonnier), adversarial (vanilla, LSGAN), frequency (DAGAN), perceptual on a
feature network given explicitly (a local VGG19 file or an encoder the trainer trains itself)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import nn

from medviewer.errors import MedViewerError
from medviewer.models.feature_networks import VGG19Features

PixelLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_CHARBONNIER_EPSILON = 1e-3


def pixel_loss(kind: str) -> PixelLoss:
    if kind == "l1":
        return F.l1_loss
    if kind == "l2":
        return F.mse_loss
    if kind == "charbonnier":  # a smooth L1 (Lai et al. 2017, LapSRN): robust to outliers, differentiable at 0
        return lambda output, target: torch.sqrt((output - target) ** 2 + _CHARBONNIER_EPSILON**2).mean()
    raise ValueError(f"unknown pixel loss {kind!r}")


class AdversarialLoss:
    """The GAN objective on discriminator logits: 'vanilla' (binary cross-entropy, Goodfellow et al. 2014,
    as SRGAN, pix2pix and DAGAN) or 'lsgan' (least squares, Mao et al. 2017, as CycleGAN)."""

    def __init__(self, kind: str):
        if kind not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown adversarial loss {kind!r}")
        self.kind = kind

    def __call__(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def frequency_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DAGAN's frequency-domain loss (Yang et al. 2018): mean squared distance of the 2-D Fourier transforms
    (orthonormal, so its scale matches the pixel MSE by Parseval)."""
    difference = torch.fft.fft2(output.float(), norm="ortho") - torch.fft.fft2(target.float(), norm="ortho")
    return (difference.real**2 + difference.imag**2).mean()


class PerceptualNetworkError(MedViewerError):
    """A VGG19 weights file that is missing or does not hold VGG19's convolutions."""


def load_vgg19(path: Path) -> VGG19Features:
    """VGG19 features from a local safetensors file with torchvision's names (`features.N.weight`)."""
    network = VGG19Features()
    state = network.state_dict()
    loaded = {}
    try:
        with safe_open(str(Path(path).expanduser()), framework="pt") as weights:
            available = set(weights.keys())
            for name, tensor in state.items():
                if name not in available:
                    raise PerceptualNetworkError(f"{path}: not VGG19 weights ({name} is missing)")
                value = weights.get_tensor(name)
                if tuple(value.shape) != tuple(tensor.shape):
                    raise PerceptualNetworkError(
                        f"{path}: {name} has shape {tuple(value.shape)}, VGG19 needs {tuple(tensor.shape)}"
                    )
                loaded[name] = value.float()
    except (SafetensorError, OSError) as error:
        raise PerceptualNetworkError(f"{path}: cannot read VGG19 weights ({error})") from None
    network.load_state_dict(loaded)
    return network.eval().requires_grad_(False)


def count_parameters(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())
