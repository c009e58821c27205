"""DAGAN's refinement U-Net generator, used as a blind denoiser, registered as "dagan"."""

from __future__ import annotations

import torch
from torch import nn

from medviewer.models.architectures import (
    ImageNetwork,
    Span,
    positive_int,
    radius_of,
    register_architecture,
    span_through_conv,
    span_through_transposed_conv,
    span_union,
)
from medviewer.models.unet import encoder_widths


@register_architecture("dagan")
class DAGANGenerator(ImageNetwork):
    """DAGAN's generator (Yang et al. 2018, "DAGAN: Deep De-Aliasing Generative Adversarial Networks for Fast
    Compressed Sensing MRI Reconstruction", IEEE TMI; layer by layer as `u_net_bn` in the authors' release),
    used here as a blind denoiser rather than for de-aliasing undersampled k-space.

    Kept, and what sets it apart from pix2pix's "unet":
    - post-activation encoder: 4x4 stride-2 conv, then BatchNorm, then LeakyReLU 0.2; the first conv is left
      linear (no normalisation or activation) and the innermost has LeakyReLU but no BatchNorm;
    - decoder: the skip is concatenated *before* each 4x4 stride-2 transposed conv, which is followed by
      BatchNorm and ReLU, and the last one upsamples to `width` features rather than to the image;
    - a 1x1 conv with tanh gives the correction, and refinement learning adds it to the input and clips the
      sum to the image range (the paper's `ramp` to [-1, 1], which is [0, 1] in our units, so the
      correction is tanh / 2). "unet" neither has the 1x1 head nor clips.
    Changed: `depth` 6 by default instead of 8 (sizes in multiples of 64 rather than 256); decoder widths
    mirror the encoder's (DAGAN widens three middle decoder levels to 1024 channels, many more weights for a
    gain it does not measure); no dropout (DAGAN has none either); the
    paper's perceptual and frequency-domain losses belong to the trainer. In eval mode BatchNorm uses
    running statistics, so the receptive field is finite and float16 is safe.
    """

    def __init__(self, depth: int = 6, width: int = 64, channels: int = 1):
        depth = positive_int("depth", depth)
        width = positive_int("width", width)
        channels = positive_int("channels", channels)
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        super().__init__(
            scale=1,
            in_channels=channels,
            out_channels=channels,
            size_multiple=2**depth,
            receptive_radius=radius_of(lambda span: _input_span(span, depth), scale=1, period=2**depth),
            half_precision_safe=True,
        )
        widths = encoder_widths(depth, width)
        encoder: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, stride=2, padding=1)]
        for level in range(1, depth):
            innermost = level == depth - 1
            layers: list[nn.Module] = [nn.Conv2d(widths[level - 1], widths[level], 4, stride=2, padding=1)]
            if not innermost:
                layers.append(nn.BatchNorm2d(widths[level]))
            layers.append(nn.LeakyReLU(0.2))
            encoder.append(nn.Sequential(*layers))
        self.encoder = nn.ModuleList(encoder)
        # decoder[level] brings features up to the resolution of encoder output `level - 1` (the input for 0)
        decoder: list[nn.Module] = []
        for level in range(depth):
            inputs = widths[level] if level == depth - 1 else 2 * widths[level]
            outputs = widths[level - 1] if level > 0 else width
            decoder.append(
                nn.Sequential(
                    nn.ConvTranspose2d(inputs, outputs, 4, stride=2, padding=1),
                    nn.BatchNorm2d(outputs),
                    nn.ReLU(),
                )
            )
        self.decoder = nn.ModuleList(decoder)
        self.correction = nn.Conv2d(width, channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        skips = []
        features = 2 * images - 1
        for layer in self.encoder:
            features = layer(features)
            skips.append(features)
        features = self.decoder[-1](skips.pop())
        for layer in reversed(self.decoder[:-1]):
            features = layer(torch.cat([features, skips.pop()], dim=1))
        return torch.clamp(images + 0.5 * torch.tanh(self.correction(features)), 0.0, 1.0)


def _input_span(span: Span, depth: int) -> Span:
    """Input span an output span reads: down the decoder, then back up the encoder adding each skip's span."""
    read_by_decoder: list[Span] = []  # [level]: the span decoder[level] reads at encoder output `level`
    for _ in range(depth):
        span = span_through_transposed_conv(span, 4, stride=2, padding=1)
        read_by_decoder.append(span)
    for level in reversed(range(depth)):
        span = span_through_conv(span_union(span, read_by_decoder[level]), 4, stride=2, padding=1)
    return span
