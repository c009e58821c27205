"""CycleGAN's ResNet generator, registered as "cyclegan-resnet"."""

from __future__ import annotations

import torch
from torch import nn

from medviewer.models.architectures import ImageNetwork, positive_int, register_architecture


class _ResidualBlock(nn.Module):
    """Reflection pad, conv3, InstanceNorm, ReLU, reflection pad, conv3, InstanceNorm, plus the identity."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.branch(features)


@register_architecture("cyclegan-resnet")
class CycleGANGenerator(ImageNetwork):
    """CycleGAN's ResNet generator (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
    Cycle-Consistent Adversarial Networks", ICCV; after Johnson et al. 2016), for unpaired translation such
    as low-dose to normal-dose CT.

    Kept: c7s1-`width`, two stride-2 3x3 downsamplings (d2w, d4w), `blocks` (9) residual blocks, two
    fractionally strided 3x3 upsamplings (u2w, uw), c7s1 to the output channels with tanh; reflection padding
    and InstanceNorm (no affine, no running statistics) as in the authors' release. Changed: `forward` maps the
    [0, 1] input to the paper's [-1, 1] and the tanh output back, so the network keeps our units.
    InstanceNorm normalises each image by its own statistics, so every output pixel depends on the whole
    image: receptive_radius is None. half_precision_safe is False: features stored in float16 keep 11
    significant bits, so on a low-contrast feature (flat background, soft tissue: small spread about a large
    mean) little of (value - mean) survives, and dividing by the small standard deviation scales that
    rounding up to full-size errors.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64, blocks: int = 9):
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        width = positive_int("width", width)
        blocks = positive_int("blocks", blocks)
        super().__init__(
            scale=1,
            in_channels=in_channels,
            out_channels=out_channels,
            size_multiple=4,
            receptive_radius=None,
            half_precision_safe=False,
        )
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
        ]
        for factor in (1, 2):
            layers += [
                nn.Conv2d(width * factor, width * factor * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * factor * 2),
                nn.ReLU(),
            ]
        layers += [_ResidualBlock(4 * width) for _ in range(blocks)]
        for factor in (4, 2):
            layers += [
                nn.ConvTranspose2d(width * factor, width * factor // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(width * factor // 2),
                nn.ReLU(),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.translator = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.check_input(images)
        return (self.translator(2 * images - 1) + 1) / 2
