"""bfloat16 on the CPU: only for networks measured safe in it, only where the CPU computes it natively, never
when the user says float32, and with the pixels themselves kept in float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import medviewer.enhance.engine as engine
from medviewer.enhance.device import CPU_BFLOAT16_ENVIRONMENT, cpu_bfloat16_allowed
from medviewer.enhance.engine import NetworkEnhancer, TileSettings
from medviewer.models.architectures import build_architecture, float32_layer

CPU = torch.device("cpu")


def _denoiser() -> nn.Module:
    torch.manual_seed(0)
    network = build_architecture("msdenoiser", {"widths": [8, 16], "blocks": [1, 1]})
    for parameter in network.parameters():  # the zero-initialised tail would make every output the input
        nn.init.normal_(parameter, std=0.05)
    return network


def _noisy(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:96, 0:80]
    clean = 0.5 + 0.3 * np.sin(rows / 7.0) * np.cos(columns / 11.0)
    return (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def _enhancer(network: nn.Module) -> NetworkEnhancer:
    return NetworkEnhancer(network, "m", "M", "denoise", CPU, tiles=TileSettings(output_pixels=4096 * 4096))


@pytest.fixture
def native_bfloat16(monkeypatch):
    monkeypatch.delenv(CPU_BFLOAT16_ENVIRONMENT, raising=False)
    monkeypatch.setattr(engine, "cpu_has_native_bfloat16", lambda: True)


def test_a_bfloat16_safe_network_runs_in_bfloat16_where_the_cpu_has_it(native_bfloat16, monkeypatch):
    image = _noisy()
    fast = _enhancer(_denoiser())
    assert fast.precision == "bfloat16"
    monkeypatch.setattr(engine, "cpu_has_native_bfloat16", lambda: False)
    exact = _enhancer(_denoiser())
    assert exact.precision == "float32"
    fast_output, exact_output = fast.run_normalised(image[None])[0], exact.run_normalised(image[None])[0]
    assert fast_output.dtype == np.float32
    difference = np.abs(fast_output - exact_output)
    assert 0 < difference.max() < 0.02, difference.max()  # rounded features, not a different network


@pytest.mark.parametrize("setting", ["0", "off", "False", "no"])
def test_the_user_can_insist_on_float32(native_bfloat16, monkeypatch, setting):
    monkeypatch.setenv(CPU_BFLOAT16_ENVIRONMENT, setting)
    assert not cpu_bfloat16_allowed()
    assert _enhancer(_denoiser()).precision == "float32"


def test_networks_not_measured_in_bfloat16_stay_float32(native_bfloat16):
    network = nn.Conv2d(1, 1, 3, padding=1)
    network.scale, network.size_multiple, network.receptive_radius = 1, 1, 1
    network.half_precision_safe = True  # float16 on a GPU says nothing about bfloat16 on a CPU
    assert _enhancer(network).precision == "float32"
    unsafe = _denoiser()
    unsafe.half_precision_safe = False
    assert _enhancer(unsafe).precision == "float32"


def test_float32_layer_keeps_the_pixels_out_of_bfloat16():
    torch.manual_seed(1)
    layer = nn.Conv2d(1, 4, 3, padding=1)
    image = torch.rand(1, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = layer(image)
        kept = float32_layer(layer, image)
    assert rounded.dtype == torch.bfloat16 and kept.dtype == torch.float32
    assert torch.equal(kept, layer(image))
    assert torch.equal(float32_layer(layer, image), layer(image))  # outside autocast: just the layer
