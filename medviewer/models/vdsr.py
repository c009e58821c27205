"""VDSR, the very deep residual super-resolution network, registered as "vdsr"."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medviewer.models.architectures import (
    ImageNetwork,
    Span,
    positive_int,
    radius_of,
    register_architecture,
    span_through_bicubic_upsampling,
    span_through_conv,
)


@register_architecture("vdsr")
class VDSR(ImageNetwork):
    """VDSR (Kim et al. 2016, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR).

    Kept: `depth` 3x3 convolutions (20 in the paper) of `width` feature maps (64) with ReLU between them,
    zero padding to keep the size, He initialisation (without it, PyTorch's default shrinks the signal ~6x in
    variance per layer and a 20-layer VDSR never leaves bicubic), and the global residual: the network predicts
    the detail missing from the bicubic-upsampled input. Changed: the bicubic step runs inside `forward`
    (PyTorch's bicubic, align_corners=False) so that the output is exactly `scale` times the input, and the last
    layer starts at zero, so that training starts from bicubic rather than from bicubic plus random detail.
    """

    def __init__(self, scale: int, depth: int = 20, width: int = 64, channels: int = 1):
        scale = positive_int("scale", scale)
        depth = positive_int("depth", depth)
        width = positive_int("width", width)
        channels = positive_int("channels", channels)
        if depth < 2:
            raise ValueError(f"depth must be >= 2 (first and last layer), got {depth}")
        super().__init__(
            scale=scale,
            in_channels=channels,
            out_channels=channels,
            size_multiple=1,
            receptive_radius=radius_of(lambda span: _input_span(span, scale, depth), scale=scale, period=1),
            half_precision_safe=True,
        )
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.residual = nn.Sequential(*layers)
        initialise_for_relu(self.residual)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        if self.scale > 1:
            images = F.interpolate(images, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return images + self.residual(images)


def initialise_for_relu(layers: nn.Sequential) -> None:
    """He (Kaiming) normal initialisation of every convolution but the last, which starts at zero; zero biases."""
    convolutions = [layer for layer in layers if isinstance(layer, nn.Conv2d)]
    for convolution in convolutions[:-1]:
        nn.init.kaiming_normal_(convolution.weight, nonlinearity="relu")
    nn.init.zeros_(convolutions[-1].weight)
    for convolution in convolutions:
        nn.init.zeros_(convolution.bias)


def _input_span(span: Span, scale: int, depth: int) -> Span:
    for _ in range(depth):
        span = span_through_conv(span, 3)
    return span_through_bicubic_upsampling(span, scale) if scale > 1 else span
