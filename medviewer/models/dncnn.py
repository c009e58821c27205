"""DnCNN, the residual-learning blind denoiser, registered as "dncnn"."""

from __future__ import annotations

import torch
from torch import nn

from medviewer.models.architectures import ImageNetwork, positive_int, register_architecture


@register_architecture("dncnn")
class DnCNN(ImageNetwork):
    """DnCNN (Zhang et al. 2017, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image
    Denoising", IEEE TIP), the blind variant: one network for a range of noise levels.

    Kept: `depth` (17) 3x3 layers of `width` (64) channels - conv+ReLU, then conv-BN-ReLU, then a conv to the
    image channels - zero padding, and residual learning: the network predicts the noise and returns the
    input minus it. Our choice where the paper is silent: convolutions followed by BatchNorm have no bias
    (BatchNorm's shift replaces it), nor has the last one (the noise has zero mean). In eval mode BatchNorm
    applies its running statistics, a fixed per-channel affine map, so the receptive radius is the `depth`
    convolutions' and float16 is safe.
    """

    def __init__(self, depth: int = 17, width: int = 64, channels: int = 1):
        depth = positive_int("depth", depth)
        width = positive_int("width", width)
        channels = positive_int("channels", channels)
        if depth < 2:
            raise ValueError(f"depth must be >= 2 (first and last layer), got {depth}")
        super().__init__(
            scale=1,
            in_channels=channels,
            out_channels=channels,
            size_multiple=1,
            receptive_radius=depth,  # one pixel per 3x3 convolution
            half_precision_safe=True,
        )
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1, bias=False))
        self.noise_estimator = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        return images - self.noise_estimator(images)
