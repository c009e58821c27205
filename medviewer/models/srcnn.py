"""SRCNN, the first convolutional super-resolution network, registered as "srcnn"."""

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


@register_architecture("srcnn")
class SRCNN(ImageNetwork):
    """SRCNN 9-1-5 with 64 and 32 feature maps (Dong et al. 2014, "Learning a Deep Convolutional Network for
    Image Super-Resolution", ECCV; the 9-1-5 setting of the TPAMI 2016 version).

    Kept: bicubic pre-upsampling, then patch extraction (9x9, 64), non-linear mapping (1x1, 32) and
    reconstruction (5x5), ReLU between them. Changed: the bicubic step runs inside `forward` (PyTorch's
    bicubic, align_corners=False) so that the output is exactly `scale` times the input; and the convolutions
    zero-pad to keep the size, where the paper convolved without padding and lost a 6-pixel border.
    """

    def __init__(self, scale: int, channels: int = 1):
        scale = positive_int("scale", scale)
        channels = positive_int("channels", channels)
        super().__init__(
            scale=scale,
            in_channels=channels,
            out_channels=channels,
            size_multiple=1,
            receptive_radius=radius_of(lambda span: _input_span(span, scale), scale=scale, period=1),
            half_precision_safe=True,
        )
        self.patch_extraction = nn.Conv2d(channels, 64, kernel_size=9, padding=4)
        self.nonlinear_mapping = nn.Conv2d(64, 32, kernel_size=1)
        self.reconstruction = nn.Conv2d(32, channels, kernel_size=5, padding=2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        if self.scale > 1:
            images = F.interpolate(images, scale_factor=self.scale, mode="bicubic", align_corners=False)
        features = F.relu(self.patch_extraction(images))
        features = F.relu(self.nonlinear_mapping(features))
        return self.reconstruction(features)


def _input_span(span: Span, scale: int) -> Span:
    for kernel_size in (5, 1, 9):
        span = span_through_conv(span, kernel_size)
    return span_through_bicubic_upsampling(span, scale) if scale > 1 else span
