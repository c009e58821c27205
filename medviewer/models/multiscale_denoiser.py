"""The default blind denoiser, a compact multi-scale residual network registered as "msdenoiser"."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medviewer.models.architectures import (
    ImageNetwork,
    Span,
    float32_layer,
    positive_int,
    positive_ints,
    radius_of,
    register_architecture,
    span_through_conv,
    span_through_pixel_shuffle,
    span_through_pixel_unshuffle,
    span_union,
)

_UNSHUFFLE = 2  # space-to-depth factor at the input


class _ResidualBlock(nn.Module):
    """x + conv3(ReLU(conv3(x))), bias-free: DRUNet's block."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.branch(features)


def _stage(width: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*(_ResidualBlock(width) for _ in range(blocks)))


class ResidualUNetMixin:
    """The multi-scale body shared by msdenoiser and fastsr: per level residual blocks, a 2x2 stride-2 conv
    down, the coarsest level's blocks, then back up by 1x1 conv + pixel shuffle with an additive skip and the
    level's blocks again. A mixin rather than a submodule so that the weights keep the names
    (`encoders.0...`) the first shipped msdenoiser was trained and exported with."""

    def build_residual_unet(self, widths: Sequence[int], blocks: Sequence[int]) -> None:
        levels = len(widths)
        self.encoders = nn.ModuleList(_stage(widths[level], blocks[level]) for level in range(levels - 1))
        self.downsamplers = nn.ModuleList(
            nn.Conv2d(widths[level], widths[level + 1], 2, stride=2, bias=False) for level in range(levels - 1)
        )
        self.bottleneck = _stage(widths[-1], blocks[-1])
        self.upsamplers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[level + 1], widths[level] * 4, 1, bias=False), nn.PixelShuffle(2))
            for level in range(levels - 1)
        )
        self.decoders = nn.ModuleList(_stage(widths[level], blocks[level]) for level in range(levels - 1))

    def residual_unet(self, features: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder, downsampler in zip(self.encoders, self.downsamplers, strict=True):
            features = encoder(features)
            skips.append(features)
            features = downsampler(features)
        features = self.bottleneck(features)
        for level in reversed(range(len(self.decoders))):
            features = self.decoders[level](self.upsamplers[level](features) + skips[level])
        return features


def check_levels(widths: object, blocks: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated (widths, blocks): one positive entry of each per level."""
    widths = positive_ints("widths", widths)
    blocks = positive_ints("blocks", blocks)
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"widths and blocks need one entry per level, got {list(widths)} and {list(blocks)}")
    return widths, blocks


def residual_unet_input_span(span: Span, blocks: Sequence[int]) -> Span:
    """Span at the body's input read by a span at its output."""
    return _span_at_level_input(span, 0, blocks)


@register_architecture("msdenoiser")
class MultiScaleDenoiser(ResidualUNetMixin, ImageNetwork):
    """A small DRUNet-style residual U-Net (Zhang et al. 2021, "Plug-and-Play Image Restoration with Deep
    Denoiser Prior", IEEE TPAMI) behind FFDNet's space-to-depth input (Zhang et al. 2018, "FFDNet: Toward a
    Fast and Flexible Solution for CNN-based Image Denoising", IEEE TIP), sized for CPU inference.

    Structure: pixel-unshuffle by 2, a 3x3 head to `widths[0]`; per level, `blocks[level]` residual blocks
    (conv3-ReLU-conv3 + identity), then a 2x2 stride-2 conv down to the next width; `blocks[-1]` blocks at the
    coarsest level; back up by a 1x1 conv and pixel shuffle, an *additive* skip from the encoder, and the
    level's blocks again; a 3x3 tail to the unshuffled channels and a pixel shuffle give the noise, and the
    output is the input minus it (residual learning, as DnCNN).
    From DRUNet we kept the additive skips, residual blocks, strided-conv downsampling and bias-free layers;
    we changed the widths (32/64/128, not 64/.../512), levels (3, not 4), blocks (2/2/4, not 4 per level),
    upsampling (pixel shuffle, not transposed conv) and dropped the noise-level input map (this one is blind).
    Why: budget. Working at half resolution after the unshuffle and doubling the width as the area quarters
    makes every 3x3 conv cost the same ~1.2 GFLOP on a 512x512 slice, 24 of them about 30 GFLOP in all,
    under the ~40 GFLOP (0.5 s at ~165 GFLOP/s on two CPU cores) we allow; the coarsest level, at 1/8
    resolution, buys a receptive radius over 100 pixels. Bias-free layers make the network positively
    homogeneous, which helps a blind denoiser generalise beyond the noise levels it was trained on (Mohan et
    al. 2020, "Robust and Interpretable Blind Image Denoising via Bias-Free Convolutional Neural Networks",
    ICLR). No normalisation: tiling is exact (finite receptive_radius) and float16 is safe.
    """

    def __init__(
        self,
        channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        blocks: Sequence[int] = (2, 2, 4),
    ):
        channels = positive_int("channels", channels)
        widths, blocks = check_levels(widths, blocks)
        levels = len(widths)
        size_multiple = _UNSHUFFLE * 2 ** (levels - 1)
        super().__init__(
            scale=1,
            in_channels=channels,
            out_channels=channels,
            size_multiple=size_multiple,
            receptive_radius=radius_of(lambda span: _input_span(span, blocks), scale=1, period=size_multiple),
            half_precision_safe=True,
            cpu_bfloat16_safe=True,
        )
        unshuffled = channels * _UNSHUFFLE**2
        self.head = nn.Conv2d(unshuffled, widths[0], 3, padding=1, bias=False)
        self.build_residual_unet(widths, blocks)
        self.tail = nn.Conv2d(widths[0], unshuffled, 3, padding=1, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        features = self.residual_unet(float32_layer(self.head, F.pixel_unshuffle(images, _UNSHUFFLE)))
        return images - F.pixel_shuffle(float32_layer(self.tail, features), _UNSHUFFLE)


def _through_blocks(span: Span, blocks: int) -> Span:
    for _ in range(2 * blocks):
        span = span_through_conv(span, 3)
    return span


def _span_at_level_input(span: Span, level: int, blocks: Sequence[int]) -> Span:
    """Span at the input of encoder `level` read by a span at the output of decoder `level` (or of the
    bottleneck, for the last level)."""
    if level == len(blocks) - 1:
        return _through_blocks(span, blocks[level])
    span = _through_blocks(span, blocks[level])  # back through the decoder to the sum of skip and upsampled
    from_skip = span
    deeper = _span_at_level_input(span_through_pixel_shuffle(span, 2), level + 1, blocks)  # 1x1 conv: same span
    from_below = span_through_conv(deeper, 2, stride=2, padding=0)
    return _through_blocks(span_union(from_skip, from_below), blocks[level])


def _input_span(span: Span, blocks: Sequence[int]) -> Span:
    unshuffled = span_through_pixel_shuffle(span, _UNSHUFFLE)
    features = span_through_conv(_span_at_level_input(span_through_conv(unshuffled, 3), 0, blocks), 3)
    return span_union(span, span_through_pixel_unshuffle(features, _UNSHUFFLE))
