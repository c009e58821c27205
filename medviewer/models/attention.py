"""CBAM, the convolutional block attention module (channel then spatial attention) that generators plug in."""

from __future__ import annotations

import torch
from torch import nn

from medviewer.models.architectures import positive_int


class ChannelAttention(nn.Module):
    """CBAM's channel attention (Woo et al. 2018, "CBAM: Convolutional Block Attention Module", ECCV).

    Both a global average and a global max pool go through one shared two-layer MLP (hidden size
    channels / reduction, ReLU); the sum's sigmoid weighs each channel. Changed: the hidden size is at least
    1, so narrow test networks still build. Global pooling makes every output depend on the whole image.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, positive_int("channels", channels) // positive_int("reduction", reduction))
        self.shared_mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        average = self.shared_mlp(features.mean(dim=(2, 3), keepdim=True))
        maximum = self.shared_mlp(features.amax(dim=(2, 3), keepdim=True))
        return features * torch.sigmoid(average + maximum)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention (Woo et al. 2018): a 7x7 convolution over the channel-wise average and
    maximum maps, whose sigmoid weighs each pixel. Changed: the official code follows the convolution with
    BatchNorm; we use a plain biased convolution, which keeps the module free of batch statistics."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        kernel_size = positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        summary = torch.cat([features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)], dim=1)
        return features * torch.sigmoid(self.conv(summary))


class CBAM(nn.Module):
    """Channel attention followed by spatial attention, the order Woo et al. (2018) found best.

    A network that contains it has `receptive_radius` None: channel attention pools over the whole image.
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel_size: int = 7):
        super().__init__()
        self.channel_attention = ChannelAttention(channels, reduction)
        self.spatial_attention = SpatialAttention(spatial_kernel_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.spatial_attention(self.channel_attention(features))
