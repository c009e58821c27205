"""The degradation protocol: statistics match its definition, sr equals Pillow directly, specs parse strictly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medviewer.enhance.degrade import (
    Degradation,
    InvalidDegradationError,
    NormalisedImage,
    crop_to_multiple,
    degrade,
    degraded_baseline,
    normalise,
    parse_degradation,
)
from medviewer.errors import MedViewerError


def _pillow_bicubic(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The protocol's resize written out directly against Pillow, independent of our helper."""
    float_image = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(float_image.resize((width, height), Image.Resampling.BICUBIC))


def _smooth_image(height: int = 96, width: int = 120) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width]
    return (0.5 + 0.4 * np.sin(rows / 7.0) * np.cos(columns / 11.0)).astype(np.float32)


# ---- specs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,kind,amount,scale,border",
    [
        ("noise:25", "noise", 25.0, 1, 0),
        ("noise:12.5", "noise", 12.5, 1, 0),
        ("sr:4", "sr", 4.0, 4, 4),
        ("sr:2", "sr", 2.0, 2, 4),
        ("lowdose:1000", "lowdose", 1000.0, 1, 0),
        (" NOISE : 5 ", "noise", 5.0, 1, 0),
    ],
)
def test_parse_degradation(spec, kind, amount, scale, border):
    parsed = parse_degradation(spec)
    assert parsed == Degradation(kind, amount)
    assert (parsed.kind, parsed.amount, parsed.scale, parsed.border) == (kind, amount, scale, border)


@pytest.mark.parametrize("spec", ["noise:25", "noise:12.5", "sr:3", "lowdose:1000", "lowdose:0.5"])
def test_spec_round_trips(spec):
    assert parse_degradation(spec).spec == spec


@pytest.mark.parametrize(
    "spec",
    ["", "noise", "noise:", "noise:0", "noise:-3", "noise:abc", "noise:nan", "noise:inf", "sr:1", "sr:9", "sr:2.5",
     "sr:x", "lowdose:0", "blur:3", "sr:4:2", "noise:25\nrm -rf /"],
)  # fmt: skip
def test_bad_specs_raise_one_line_saying_what_is_accepted(spec):
    with pytest.raises(InvalidDegradationError) as raised:
        parse_degradation(spec)
    message = str(raised.value)
    assert isinstance(raised.value, MedViewerError)
    assert "\n" not in message
    assert "noise:S" in message and "sr:F" in message and "lowdose:P" in message


def test_degradation_validates_when_built_directly():
    with pytest.raises(InvalidDegradationError):
        Degradation("sr", 2.5)
    with pytest.raises(InvalidDegradationError):
        Degradation("noise", -1)
    with pytest.raises(InvalidDegradationError):
        Degradation("jpeg", 50)


# ---- noise -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [5, 25, 50])
def test_noise_has_the_protocol_sigma_and_is_not_clipped(level):
    clean = np.full((512, 512), 0.02, dtype=np.float32)
    noisy = degrade(clean, parse_degradation(f"noise:{level}"), seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert np.std(noisy - clean) == pytest.approx(level / 255.0, rel=0.03)
    assert abs(np.mean(noisy - clean)) < 0.003 * level / 25
    assert noisy.min() < 0.0  # 0.02 minus several sigma: clipping would hide the protocol's noise


def test_noise_colour_is_per_channel_shape():
    clean = np.zeros((32, 40, 3), dtype=np.float32)
    noisy = degrade(clean, parse_degradation("noise:25"), seed=2)
    assert noisy.shape == clean.shape
    assert not np.allclose(noisy[..., 0], noisy[..., 1])


# ---- determinism -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["noise:25", "lowdose:200"])
def test_same_seed_same_result_different_seed_different_result(spec):
    clean = _smooth_image()
    degradation = parse_degradation(spec)
    first = degrade(clean, degradation, seed=7)
    np.testing.assert_array_equal(first, degrade(clean, degradation, seed=7))
    assert not np.array_equal(first, degrade(clean, degradation, seed=8))


def test_noise_equals_numpy_generator_definition():
    clean = _smooth_image(16, 16)
    expected = clean.astype(np.float64) + np.random.default_rng(3).normal(0.0, 10 / 255, clean.shape)
    np.testing.assert_allclose(degrade(clean, parse_degradation("noise:10"), seed=3), expected, atol=1e-6)


# ---- super-resolution --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_sr_equals_pillow_bicubic_directly(factor):
    clean = crop_to_multiple(_smooth_image(97, 121), factor)
    small = degrade(clean, parse_degradation(f"sr:{factor}"))
    height, width = clean.shape
    assert small.shape == (height // factor, width // factor) and small.dtype == np.float32
    np.testing.assert_array_equal(small, _pillow_bicubic(clean, width // factor, height // factor))


def test_sr_antialiases_a_fine_checkerboard():
    # Pillow widens the bicubic kernel on downscale: a 1-pixel checkerboard averages to grey, not aliasing.
    checkerboard = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    small = degrade(checkerboard, parse_degradation("sr:4"))
    assert np.abs(small[2:-2, 2:-2] - 0.5).max() < 0.05


def test_sr_colour_is_per_channel():
    clean = np.stack([_smooth_image(48, 64), 1 - _smooth_image(48, 64), _smooth_image(48, 64) ** 2], axis=-1)
    small = degrade(clean, parse_degradation("sr:2"))
    assert small.shape == (24, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(small[..., channel], _pillow_bicubic(clean[..., channel], 32, 24))


def test_sr_refuses_sizes_that_are_not_multiples():
    with pytest.raises(InvalidDegradationError, match="multiples of 3"):
        degrade(np.zeros((30, 31), dtype=np.float32), parse_degradation("sr:3"))


def test_sr_baseline_is_pillow_bicubic_upscale_to_reference_shape():
    clean = _smooth_image(96, 120)
    degradation = parse_degradation("sr:4")
    small = degrade(clean, degradation)
    baseline = degraded_baseline(small, degradation, clean.shape)
    assert baseline.shape == clean.shape and baseline.dtype == np.float32
    np.testing.assert_array_equal(baseline, _pillow_bicubic(small, 120, 96))


def test_baseline_of_same_size_degradations_is_the_degraded_image():
    clean = _smooth_image()
    degradation = parse_degradation("noise:25")
    noisy = degrade(clean, degradation)
    np.testing.assert_array_equal(degraded_baseline(noisy, degradation, clean.shape), noisy)


# ---- crop ------------------------------------------------------------------------------------------------------


def test_crop_to_multiple_drops_bottom_right_remainder():
    image = np.arange(10 * 13).reshape(10, 13)
    cropped = crop_to_multiple(image, 4)
    assert cropped.shape == (8, 12)
    np.testing.assert_array_equal(cropped, image[:8, :12])
    assert crop_to_multiple(image, 1).shape == (10, 13)
    assert crop_to_multiple(np.zeros((9, 9, 3)), 2).shape == (8, 8, 3)
    with pytest.raises(InvalidDegradationError):
        crop_to_multiple(np.zeros((3, 30)), 4)


# ---- low dose --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("photons", [50.0, 1000.0])
def test_lowdose_preserves_mean_and_has_poisson_variance(photons):
    intensity = 0.3
    clean = np.full((256, 256), intensity, dtype=np.float32)
    low = degrade(clean, Degradation("lowdose", photons), seed=4)
    assert low.dtype == np.float32 and low.shape == clean.shape
    expected_variance = intensity / photons + 1.0 / photons**2  # Poisson plus one count of read noise
    assert np.mean(low) == pytest.approx(intensity, abs=4 * np.sqrt(expected_variance / low.size))
    assert np.var(low) == pytest.approx(expected_variance, rel=0.03)


def test_lowdose_variance_follows_intensity_and_clips_negatives():
    clean = np.concatenate([np.full((128, 256), 0.1), np.full((128, 256), 0.8), np.full((128, 256), -0.5)])
    photons = 100.0
    low = degrade(clean.astype(np.float32), Degradation("lowdose", photons), seed=5)
    assert np.var(low[:128]) == pytest.approx(0.1 / photons + 1 / photons**2, rel=0.05)
    assert np.var(low[128:256]) == pytest.approx(0.8 / photons + 1 / photons**2, rel=0.05)
    # Clipped to 0 before counting: only read noise remains.
    assert np.mean(low[256:]) == pytest.approx(0.0, abs=1e-3)
    assert np.std(low[256:]) == pytest.approx(1 / photons, rel=0.05)


# ---- normalise -------------------------------------------------------------------------------------------------


def test_normalise_scales_whole_image_and_restores():
    rng = np.random.default_rng(6)
    hounsfield = rng.uniform(-1024, 3071, (64, 48)).astype(np.int16)
    normalised = normalise(hounsfield)
    assert isinstance(normalised, NormalisedImage)
    assert normalised.image.dtype == np.float32
    assert normalised.image.min() == 0.0 and normalised.image.max() == 1.0
    assert (normalised.low, normalised.high) == (float(hounsfield.min()), float(hounsfield.max()))
    expected = (hounsfield - float(hounsfield.min())) / (float(hounsfield.max()) - float(hounsfield.min()))
    np.testing.assert_allclose(normalised.image, expected, rtol=0, atol=1e-7)
    restored = normalised.restore(normalised.image)
    assert restored.dtype == np.float32
    # float32 holds about 7 significant digits: values up to ~4000 survive to well under 1e-3.
    np.testing.assert_allclose(restored, hounsfield, rtol=0, atol=1e-3)


def test_normalise_colour_uses_one_range_for_all_channels():
    colour = np.zeros((4, 4, 3))
    colour[..., 0] = 10.0
    colour[..., 2] = 20.0
    normalised = normalise(colour)
    assert (normalised.low, normalised.high) == (0.0, 20.0)
    np.testing.assert_array_equal(normalised.image[0, 0], np.array([0.5, 0.0, 1.0], dtype=np.float32))


def test_normalise_constant_image_gives_zeros_and_restores_constant():
    normalised = normalise(np.full((5, 6), 42.0))
    np.testing.assert_array_equal(normalised.image, np.zeros((5, 6), dtype=np.float32))
    assert normalised.low == normalised.high == 42.0
    np.testing.assert_array_equal(normalised.restore(normalised.image), np.full((5, 6), 42.0, dtype=np.float32))
    np.testing.assert_array_equal(normalised.restore(np.full((5, 6), 0.7)), np.full((5, 6), 42.0, dtype=np.float32))


def test_restore_maps_enhanced_values_linearly():
    normalised = NormalisedImage(np.zeros((1, 3), dtype=np.float32), low=-1000.0, high=1000.0)
    np.testing.assert_array_equal(normalised.restore(np.array([[0.0, 0.5, 1.1]])), [[-1000.0, 0.0, 1200.0]])
