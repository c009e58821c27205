"""BatchNorm folding gives the same outputs as the network it came from."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from medviewer.enhance.fusion import fuse_batch_norms
from medviewer.models.architectures import build_architecture


def randomise_batch_norm_statistics(network: nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)


@pytest.mark.parametrize(
    "architecture, arguments, size, expected_pairs",
    [
        ("dncnn", {"depth": 6, "width": 16}, 32, 4),
        ("unet", {"depth": 3, "width": 8}, 64, None),
        ("srgan-cbam", {"scale": 2, "blocks": 2, "width": 16}, 24, None),
    ],
)
def test_folded_network_gives_the_same_output(architecture, arguments, size, expected_pairs):
    torch.manual_seed(0)
    network = build_architecture(architecture, arguments)
    randomise_batch_norm_statistics(network)
    network.eval()
    folded = copy.deepcopy(network)
    pairs = fuse_batch_norms(folded)
    if expected_pairs is not None:
        assert pairs == expected_pairs
    images = torch.rand(2, 1, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(folded(images), network(images), rtol=1e-4, atol=1e-5)


def test_training_networks_are_refused():
    with pytest.raises(ValueError, match="eval"):
        fuse_batch_norms(build_architecture("dncnn", {"depth": 3, "width": 4}).train())
