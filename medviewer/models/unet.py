"""The pix2pix U-Net generator ("unet") and the 70x70 PatchGAN discriminator ("patchgan-discriminator")."""

from __future__ import annotations

import torch
from torch import nn

from medviewer.models.architectures import (
    Discriminator,
    ImageNetwork,
    Span,
    flag,
    positive_int,
    radius_of,
    register_architecture,
    span_through_conv,
    span_through_transposed_conv,
    span_union,
)

NORMALISATIONS = ("batch", "instance")


def normalisation_layer(norm: str, channels: int) -> nn.Module:
    """pix2pix's choices: BatchNorm with running statistics, or InstanceNorm without affine or running stats."""
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels)


def check_normalisation(norm: object) -> str:
    if norm not in NORMALISATIONS:
        raise ValueError(f"norm must be one of {', '.join(NORMALISATIONS)}, got {norm!r}")
    return str(norm)


def encoder_widths(depth: int, width: int) -> list[int]:
    """pix2pix's widths: doubling from `width` per downsampling, capped at 8 x `width`."""
    return [width * min(2**level, 8) for level in range(depth)]


class _UnetLevel(nn.Module):
    """One level of pix2pix's recursive UnetSkipConnectionBlock: down, the deeper levels, up, and (except at the
    outermost level) the skip concatenation of this level's input with what came back up."""

    def __init__(
        self,
        input_channels: int,
        inner_channels: int,
        output_channels: int,
        deeper: _UnetLevel | None,
        *,
        outermost: bool,
        norm: str,
        dropout: bool,
    ):
        super().__init__()
        innermost = deeper is None
        use_bias = norm == "instance"  # BatchNorm's shift makes a bias redundant
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(input_channels, inner_channels, 4, stride=2, padding=1, bias=use_bias))
        if not (outermost or innermost):
            down.append(normalisation_layer(norm, inner_channels))
        up: list[nn.Module] = [nn.ReLU()]
        up_input = inner_channels if innermost else 2 * inner_channels
        up.append(nn.ConvTranspose2d(up_input, output_channels, 4, stride=2, padding=1, bias=use_bias or outermost))
        if not outermost:
            up.append(normalisation_layer(norm, output_channels))
        if dropout:
            up.append(nn.Dropout(0.5))  # nn.Dropout is the identity in eval mode
        self.outermost = outermost
        self.down = nn.Sequential(*down)
        self.deeper = deeper if deeper is not None else nn.Identity()
        self.up = nn.Sequential(*up)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        result = self.up(self.deeper(self.down(features)))
        return result if self.outermost else torch.cat([features, result], dim=1)


@register_architecture("unet")
class UNetGenerator(ImageNetwork):
    """The pix2pix U-Net generator (Isola et al. 2017, "Image-to-Image Translation with Conditional
    Adversarial Networks", CVPR; layer by layer as in the authors' PyTorch release), as a blind denoiser.

    Kept: `depth` 4x4 stride-2 convolutions down (LeakyReLU 0.2 before each but the first, normalisation on
    all but the outermost and innermost), 4x4 stride-2 transposed convolutions up (ReLU before, normalisation
    after but at the outermost), skip concatenations at every level, widths doubling from `width` (64) and
    capped at 8 x `width`, dropout 0.5 on the decoder's capped-width levels, input mapped to [-1, 1] and tanh
    at the end. Changed:
    - depth 6 by default instead of 8, so sizes need only be multiples of 64 (8 downsamplings of a
      256-pixel crop reach 1x1, a bottleneck that throws away all layout);
    - dropout acts in training only (pix2pix kept it at test time as its noise source; a viewer must give
      the same output for the same input);
    - the output is residual: input + tanh(last layer) / 2, a bounded correction of up to half the intensity
      range (the paper's full-range tanh in [-1, 1] units), rather than a direct sigmoid image. A denoiser's
      output differs from its input by a small zero-mean correction: predicting it starts training at the
      identity and keeps anatomy the network has nothing to say about, while a sigmoid would re-synthesise
      every pixel through the bottleneck and saturate near 0 and 1, where normalised slices keep their
      background and brightest bone. The correction is not clipped; compare "dagan".
    With BatchNorm (the default) eval mode uses running statistics and the receptive field is finite; with
    `norm` "instance" every output depends on whole-image statistics (receptive_radius None) and float16 is
    not trusted with those statistics.
    """

    def __init__(
        self,
        depth: int = 6,
        width: int = 64,
        channels: int = 1,
        norm: str = "batch",
        dropout: bool = True,
    ):
        depth = positive_int("depth", depth)
        width = positive_int("width", width)
        channels = positive_int("channels", channels)
        norm = check_normalisation(norm)
        dropout = flag("dropout", dropout)
        radius = radius_of(lambda span: _input_span(span, 0, depth), scale=1, period=2**depth)
        super().__init__(
            scale=1,
            in_channels=channels,
            out_channels=channels,
            size_multiple=2**depth,
            receptive_radius=radius if norm == "batch" else None,
            half_precision_safe=norm == "batch",
        )
        widths = encoder_widths(depth, width)
        level: _UnetLevel | None = None
        for index in reversed(range(depth)):
            outer = widths[index - 1] if index > 0 else channels
            level = _UnetLevel(
                outer,
                widths[index],
                outer,
                level,
                outermost=index == 0,
                norm=norm,
                dropout=dropout and 0 < index < depth - 1 and outer == widths[index] == 8 * width,
            )
        assert level is not None
        self.levels = level

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        return images + 0.5 * torch.tanh(self.levels(2 * images - 1))


def _input_span(span: Span, level: int, depth: int) -> Span:
    """Input span of level `level` that an output span of that level reads (the skip reads the span itself)."""
    inner = span_through_transposed_conv(span, 4, stride=2, padding=1)
    if level + 1 < depth:
        inner = _input_span(inner, level + 1, depth)
    below = span_through_conv(inner, 4, stride=2, padding=1)
    return below if level == 0 else span_union(below, span)


@register_architecture("patchgan-discriminator")
class PatchGANDiscriminator(Discriminator):
    """pix2pix's 70x70 PatchGAN (Isola et al. 2017): a map of real/fake logits, one per overlapping patch.

    Kept: 4x4 convolutions C64 (no normalisation) - C128 - C256 with stride 2, C512 with stride 1, then a
    stride-1 convolution to one channel; LeakyReLU 0.2; `layers` 3 gives the 70x70 patch. pix2pix conditions
    on the input by concatenating it with the output, so pass `in_channels` = 2 x image channels for that;
    CycleGAN's discriminator is the same network on the image alone. Inputs in [0, 1] are mapped to the
    paper's [-1, 1].
    """

    def __init__(self, in_channels: int = 1, width: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__(in_channels=positive_int("in_channels", in_channels))
        width = positive_int("width", width)
        layers = positive_int("layers", layers)
        norm = check_normalisation(norm)
        use_bias = norm == "instance"
        modules: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for index in range(1, layers + 1):
            out_channels = width * min(2**index, 8)
            stride = 2 if index < layers else 1
            modules += [
                nn.Conv2d(channels, out_channels, 4, stride=stride, padding=1, bias=use_bias),
                normalisation_layer(norm, out_channels),
                nn.LeakyReLU(0.2),
            ]
            channels = out_channels
        modules.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.patches = nn.Sequential(*modules)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.patches(2 * images - 1)
