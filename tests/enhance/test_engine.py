"""The inference engine: tiled equals whole, units kept, exact output sizes, progress, cancellation, colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medviewer.enhance.degrade import normalise
from medviewer.enhance.engine import (
    ClassicalEnhancer,
    EnhancementCancelled,
    NetworkEnhancer,
    OutOfDeviceMemoryError,
    TileSettings,
)
from medviewer.errors import MedViewerError
from medviewer.models.classical import bicubic_upscale, classical_method

CPU = torch.device("cpu")
WHOLE = TileSettings(output_pixels=4096 * 4096)
SMALL_TILES = TileSettings(output_pixels=64 * 64, overlap=8)


class ConvStack(nn.Module):
    """3x3 convolutions with zero padding: each layer widens the receptive field by one pixel."""

    scale = 1
    size_multiple = 1
    half_precision_safe = True

    def __init__(self, layers: int = 4, width: int = 8):
        super().__init__()
        torch.manual_seed(0)
        channels = [1] + [width] * (layers - 1) + [1]
        self.layers = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(channels[:-1], channels[1:], strict=True)
        )
        self.receptive_radius = layers

    def forward(self, x):
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


class UnshuffleNet(nn.Module):
    """Works at half resolution, so windows must sit on even pixels for tiling to be exact."""

    scale = 1
    size_multiple = 2
    receptive_radius = 3 + 2  # two 3x3 convs at half resolution: 2 low-res pixels + the cell itself
    half_precision_safe = True

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.first = nn.Conv2d(4, 8, 3, padding=1)
        self.second = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        low = nn.functional.pixel_unshuffle(x, 2)
        return x + nn.functional.pixel_shuffle(self.second(torch.relu(self.first(low))), 2)


class ShuffleUpscaler(nn.Module):
    scale = 2
    size_multiple = 1
    receptive_radius = 2
    half_precision_safe = True

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.first = nn.Conv2d(1, 8, 3, padding=1)
        self.second = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.second(torch.relu(self.first(x))), 2)


class Identity(nn.Module):
    scale = 1
    size_multiple = 1
    receptive_radius = 0
    half_precision_safe = True

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.unused


def enhancer(network, tiles=WHOLE, task="denoise"):
    return NetworkEnhancer(network, "test-model", "Test model", task, CPU, tiles=tiles)


def phantom(height=150, width=131, seed=0):
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width]
    image = 1000 * np.sin(rows / 9.0) * np.cos(columns / 13.0) - 300 + rng.normal(0, 40, (height, width))
    return image.astype(np.float32)


@pytest.mark.parametrize("network_class", [ConvStack, UnshuffleNet, ShuffleUpscaler])
def test_tiled_output_equals_whole_image_output(network_class):
    image = phantom(150, 132)
    whole = enhancer(network_class(), WHOLE).enhance(image)
    tiled_enhancer = enhancer(network_class(), SMALL_TILES)
    calls = []
    tiled = tiled_enhancer.enhance(image, progress=calls.append)
    assert len(calls) > 4, "the small tile setting must really tile this image"
    assert tiled.shape == whole.shape
    span = float(image.max() - image.min())
    # compare in the normalised units the network works in: 1e-4 of the image's range
    assert np.max(np.abs(tiled - whole)) / span < 1e-4


def test_units_are_preserved_hu_in_hu_out():
    image = phantom()
    out = enhancer(Identity()).enhance(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-6 * float(image.max() - image.min()))


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (1, 9), (201, 77)])
def test_super_resolution_output_is_exactly_scale_times_the_input(shape):
    image = phantom(*shape)
    assert enhancer(ShuffleUpscaler(), SMALL_TILES).enhance(image).shape == (shape[0] * 2, shape[1] * 2)


def test_odd_sizes_are_padded_for_networks_that_need_a_multiple():
    image = phantom(45, 63)
    whole = enhancer(UnshuffleNet()).enhance(image)
    assert whole.shape == image.shape
    assert np.all(np.isfinite(whole))


def test_progress_rises_to_one_and_results_are_deterministic():
    image = phantom(200, 200)
    fractions = []
    first = enhancer(ConvStack(), SMALL_TILES).enhance(image, progress=fractions.append)
    second = enhancer(ConvStack(), SMALL_TILES).enhance(image)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 0.5
    np.testing.assert_array_equal(first, second)


def test_cancellation_between_tiles():
    image = phantom(200, 200)
    asked = []

    def cancel_on_third_check():
        asked.append(True)
        return len(asked) >= 3

    with pytest.raises(EnhancementCancelled):
        enhancer(ConvStack(), SMALL_TILES).enhance(image, should_cancel=cancel_on_third_check)
    assert len(asked) == 3


def test_volume_batches_slices_and_equals_one_by_one():
    volume = np.stack([phantom(40, 48, seed=seed) for seed in range(5)])
    model = enhancer(ConvStack(), TileSettings(output_pixels=128 * 128))
    together = model.enhance_volume(volume)
    separately = np.stack([model.enhance(plane) for plane in volume])
    np.testing.assert_allclose(together, separately, rtol=1e-6, atol=1e-4)


def test_each_slice_is_normalised_on_its_own():
    """A slice's result must not depend on its neighbours' ranges (protocol: min-max per image)."""
    volume = np.stack([phantom(32, 32), phantom(32, 32, seed=3) * 10])
    model = enhancer(ConvStack())
    np.testing.assert_allclose(model.enhance_volume(volume)[0], model.enhance(volume[0]), atol=1e-4)


def test_colour_goes_through_luminance_and_keeps_its_type():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    same = enhancer(Identity()).enhance(rgb)
    assert same.dtype == np.uint8 and same.shape == rgb.shape
    assert np.max(np.abs(same.astype(int) - rgb.astype(int))) <= 1  # YCbCr round trip, rounding only
    bigger = enhancer(ShuffleUpscaler()).enhance(rgb)
    assert bigger.shape == (48, 60, 3) and bigger.dtype == np.uint8


def test_out_of_memory_retries_with_smaller_tiles():
    class Picky(ConvStack):
        def forward(self, x):
            if x.shape[-1] * x.shape[-2] * x.shape[0] > 100 * 100:
                raise torch.OutOfMemoryError("simulated")
            return super().forward(x)

    image = phantom(300, 300)
    tiles = TileSettings(output_pixels=1024 * 1024, overlap=8, smallest_output_pixels=32 * 32)
    out = enhancer(Picky(), tiles).enhance(image)
    expected = enhancer(ConvStack(), WHOLE).enhance(image)
    assert np.max(np.abs(out - expected)) / float(image.max() - image.min()) < 1e-4


def test_out_of_memory_with_smallest_tiles_is_one_clear_error():
    class AlwaysOutOfMemory(Identity):
        def forward(self, x):
            raise torch.OutOfMemoryError("simulated")

    with pytest.raises(OutOfDeviceMemoryError, match="out of memory"):
        enhancer(AlwaysOutOfMemory()).enhance(phantom(64, 64))


def test_classical_method_runs_in_normalised_units_and_restores_them():
    image = phantom(50, 40)
    out = ClassicalEnhancer(classical_method("bicubic-x2")).enhance(image)
    frame = normalise(image)
    np.testing.assert_allclose(out, frame.restore(bicubic_upscale(frame.image, 2)), atol=1e-3)
    assert out.shape == (100, 80)


def test_cpu_runs_in_float32_channels_last_even_for_half_safe_networks():
    model = enhancer(ConvStack())
    assert model.dtype == torch.float32
    weight = next(model.network.parameters())
    assert weight.is_contiguous(memory_format=torch.channels_last) or weight.shape[-1] == 1
    assert not any(parameter.requires_grad for parameter in model.network.parameters())
    assert not model.network.training


def test_tiles_are_sized_from_each_networks_widest_layer():
    narrow, wide = enhancer(ConvStack(width=8)), enhancer(ConvStack(width=64))
    settings = TileSettings()
    assert narrow.activations_per_pixel == 8 and wide.activations_per_pixel == 64
    assert narrow.output_pixels_per_pass(settings) == pytest.approx(8 * wide.output_pixels_per_pass(settings), rel=1e-5)


@pytest.mark.parametrize("network_class", [ConvStack, UnshuffleNet, ShuffleUpscaler])
def test_self_ensemble_of_two_averages_the_image_and_its_transpose(network_class):
    """In the engine, tiled, in the image's units: x2 = mean of the pass on the image and the transposed pass
    on its transpose (a non-square image, so the transposed copy is tiled differently)."""
    image = phantom(90, 131)
    single = NetworkEnhancer(network_class(), "test-model", "Test model", "denoise", CPU, tiles=SMALL_TILES)
    pair = NetworkEnhancer(network_class(), "test-model", "Test model", "denoise", CPU, tiles=SMALL_TILES, ensemble=2)
    frame = normalise(image)
    expected = (single.run_normalised(frame.image[None])[0] + single.run_normalised(frame.image.T[None])[0].T) / 2
    np.testing.assert_allclose(pair.enhance(image), frame.restore(expected), rtol=1e-5, atol=1e-2)
    assert pair.name == "Test model (self-ensemble x2)" and single.name == "Test model"


def test_self_ensemble_progress_spans_all_copies_and_cancels():
    image = phantom(120, 120)
    fractions = []
    eight = NetworkEnhancer(ConvStack(), "test-model", "Test model", "denoise", CPU, tiles=SMALL_TILES, ensemble=8)
    eight.enhance(image, progress=fractions.append)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] <= 1 / 8
    asked = []
    with pytest.raises(EnhancementCancelled):
        eight.enhance(image, should_cancel=lambda: asked.append(True) or len(asked) >= 20)
    assert len(asked) == 20  # into the later copies: cancellation is honoured in every one


def test_self_ensemble_size_is_checked_before_anything_runs():
    with pytest.raises(MedViewerError, match="must be one of"):
        NetworkEnhancer(ConvStack(), "test-model", "Test model", "denoise", CPU, ensemble=3)
