"""Feature networks for perceptual losses: VGG19 (SRGAN's choice, weights from a local file) and a small
VGG-style encoder the trainer can train itself when no VGG19 weights are at hand.

They are not image-to-image networks (nothing in the viewer runs them), so they are not in the architecture
registry; they live in the core beside the generators so that a network is still defined in one place.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's VGG19 `features` layout, so that a torchvision state dict saved as safetensors loads as is.
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG19 (Simonyan & Zisserman 2015) up to relu5_4, the layer SRGAN's "VGG54" loss compares (Ledig et
    al. 2017). Grey [0, 1] images are repeated to three channels and normalised with ImageNet's mean and
    standard deviation, as the weights expect. Layer names follow torchvision (`features.0.weight` ...)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.features((images - self.mean) / self.std)


class SmallFeatureEncoder(nn.Module):
    """A VGG-style encoder (conv3-ReLU pairs, max pooling, widths `width`, 2x, 4x) for grey images.

    It returns the last ReLU features of its second and third stages, the mid- and high-level features a
    perceptual loss compares. Untrained it is a random projection, which is no perceptual loss at all: the
    trainer trains it first (as the encoder of a denoising autoencoder, `decoder` below) and says so."""

    def __init__(self, width: int = 32, channels: int = 1):
        super().__init__()
        widths = (width, 2 * width, 4 * width)

        def stage(inputs: int, outputs: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(outputs, outputs, 3, padding=1),
                nn.ReLU(),
            )

        self.stages = nn.ModuleList(
            [stage(channels, widths[0]), stage(widths[0], widths[1]), stage(widths[1], widths[2])]
        )
        self.pool = nn.MaxPool2d(2, 2)
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(widths[2], widths[1], 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(widths[1], widths[0], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(widths[0], channels, 3, padding=1),
        )

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = self.stages[0](images)
        middle = self.stages[1](self.pool(features))
        deep = self.stages[2](self.pool(middle))
        return [middle, deep]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.encode(images)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """The autoencoder's output (input sides must be multiples of 4): what its pre-training fits."""
        return self.decoder(self.encode(images)[-1])
