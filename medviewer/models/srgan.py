"""SRGAN's networks: the SRResNet generator with CBAM ("srgan-cbam"), its discriminator and the feature loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
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
    span_through_pixel_shuffle,
)
from medviewer.models.attention import CBAM

_UPSAMPLING_STAGES = {2: (2,), 3: (3,), 4: (2, 2)}


class _ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN (+ CBAM on the branch, before the addition, as CBAM does for ResNets) + identity."""

    def __init__(self, width: int, attention: bool):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.attention = CBAM(width) if attention else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.attention(self.branch(features))


@register_architecture("srgan-cbam")
class SRGANGenerator(ImageNetwork):
    """SRGAN's generator, SRResNet (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
    Generative Adversarial Network", CVPR), with CBAM (Woo et al. 2018) in every residual block.

    Kept: 9x9 head conv + PReLU; `blocks` (16) residual blocks conv3-BN-PReLU-conv3-BN of `width` (64)
    channels; conv3-BN and the long skip from the head; sub-pixel (pixel-shuffle) upsampling stages of
    conv3 + shuffle x2 + PReLU (x4 = two stages; x3 = one stage shuffling by 3); 9x9 tail conv.
    Changed: a CBAM module ends each residual branch (`attention`, the "-cbam"); convolutions followed by
    BatchNorm have no bias (BatchNorm's shift replaces it); PReLU slopes are per channel; and the tail is
    linear, in the input's [0, 1] units, where the paper output [-1, 1] images: a bounded activation would
    only fight the engine's own clipping. In eval mode BatchNorm uses its running statistics, so only CBAM's
    global pooling couples distant pixels: receptive_radius is None with attention and finite without.
    """

    def __init__(
        self,
        scale: int,
        blocks: int = 16,
        width: int = 64,
        channels: int = 1,
        attention: bool = True,
    ):
        scale = positive_int("scale", scale)
        if scale not in _UPSAMPLING_STAGES:
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        blocks = positive_int("blocks", blocks)
        width = positive_int("width", width)
        channels = positive_int("channels", channels)
        attention = flag("attention", attention)
        stages = _UPSAMPLING_STAGES[scale]
        radius = None if attention else radius_of(lambda span: _input_span(span, stages, blocks), scale=scale, period=1)
        super().__init__(
            scale=scale,
            in_channels=channels,
            out_channels=channels,
            size_multiple=1,
            receptive_radius=radius,
            half_precision_safe=True,
        )
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.trunk = nn.Sequential(
            *(_ResidualBlock(width, attention) for _ in range(blocks)),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        upsampling: list[nn.Module] = []
        for factor in stages:
            upsampling += [nn.Conv2d(width, width * factor * factor, 3, padding=1), nn.PixelShuffle(factor)]
            upsampling.append(nn.PReLU(width))
        self.upsampling = nn.Sequential(*upsampling)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        features = self.head(images)
        features = features + self.trunk(features)
        return self.tail(self.upsampling(features))


def _input_span(span: Span, stages: Sequence[int], blocks: int) -> Span:
    span = span_through_conv(span, 9)
    for factor in reversed(stages):
        span = span_through_conv(span_through_pixel_shuffle(span, factor), 3)
    for _ in range(2 * blocks + 1):  # two convs per block, then the trunk's closing conv
        span = span_through_conv(span, 3)
    return span_through_conv(span, 9)


@register_architecture("srgan-discriminator")
class SRGANDiscriminator(Discriminator):
    """SRGAN's VGG-style discriminator (Ledig et al. 2017), for the trainer.

    Kept: eight 3x3 convolutions, `width` (64) to 8 x `width` channels, stride 2 on every second one,
    BatchNorm from the second on, LeakyReLU(0.2), then dense 1024 + LeakyReLU and dense 1. Changed: a global
    average pool before the dense layers, so any patch size works (the paper flattened a fixed 96x96 crop);
    the output is a logit (use BCEWithLogits), not a sigmoid, for numerical stability. Inputs in [0, 1] are
    mapped to the paper's [-1, 1].
    """

    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__(in_channels=positive_int("in_channels", in_channels))
        width = positive_int("width", width)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for index, out_channels in enumerate((width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width)):
            stride = 2 if index % 2 == 0 else 1
            layers += [
                nn.Conv2d(channels, out_channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.LeakyReLU(0.2),
            ]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(channels, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(2 * images - 1).mean(dim=(2, 3)))


class FeatureLoss(nn.Module):
    """SRGAN's perceptual ("VGG") loss (Ledig et al. 2017; Johnson et al. 2016): the distance between the
    features a frozen network extracts from the output and from the target.

    SRGAN used VGG19's relu5_4 features from ImageNet weights. torchvision is not a dependency and nothing may
    be downloaded, so the trainer supplies `feature_extractor` (for example VGG weights it reads from disk, or a
    network trained on medical images) and adapts our [0, 1] single-channel images to it inside that module.
    The extractor may return one tensor or a sequence of them (several layers); their distances are summed.
    It is frozen here: no gradients to its weights, and it stays in eval mode.
    """

    def __init__(self, feature_extractor: nn.Module, distance: Literal["mse", "l1"] = "mse"):
        super().__init__()
        if distance not in ("mse", "l1"):
            raise ValueError(f"distance must be 'mse' or 'l1', got {distance!r}")
        self.distance = F.mse_loss if distance == "mse" else F.l1_loss
        self.feature_extractor = feature_extractor.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> FeatureLoss:
        super().train(mode)
        self.feature_extractor.eval()  # BatchNorm or dropout inside a frozen extractor must not change
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = _as_sequence(self.feature_extractor(target))
        output_features = _as_sequence(self.feature_extractor(output))
        losses = [self.distance(mine, theirs) for mine, theirs in zip(output_features, target_features, strict=True)]
        return torch.stack(losses).sum()


def _as_sequence(features: torch.Tensor | Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    return (features,) if isinstance(features, torch.Tensor) else features
