"""Metrics equal scikit-image's definitions (the reference) and hand-computed cases; the noise estimate is unbiased."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medviewer.errors import MedViewerError, ShapeMismatchError
from medviewer.metrics import (
    ImageTooSmallError,
    Scores,
    absolute_error_map,
    estimate_noise_sigma,
    high_frequency_ratio,
    psnr,
    score,
    signed_difference_map,
    ssim,
    ssim_map,
    symmetric_display_limit,
)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return skimage.data.camera().astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    # A 128x128 corner keeps the colour cases fast.
    return skimage.data.astronaut()[:128, 96:224].astype(np.float64) / 255.0


def _skimage_ssim(reference: np.ndarray, test: np.ndarray, data_range: float, full: bool = False):
    return structural_similarity(
        reference,
        test,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1 if reference.ndim == 3 else None,
        full=full,
    )


def _noisy(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return image + np.random.default_rng(seed).normal(0.0, sigma, image.shape)


# ---- PSNR ----------------------------------------------------------------------------------------------------


def test_psnr_hand_computed():
    reference = np.zeros((4, 4))
    test = np.zeros((4, 4))
    test[0, 0] = 0.4  # MSE = 0.16 / 16 = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert psnr(reference, test) == pytest.approx(20.0, abs=1e-12)
    assert psnr(reference, test, data_range=10.0) == pytest.approx(40.0, abs=1e-12)


def test_psnr_identical_is_infinite(camera):
    assert psnr(camera, camera.copy()) == math.inf


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_psnr_equals_skimage(camera, sigma):
    test = _noisy(camera, sigma, seed=1)
    assert psnr(camera, test) == pytest.approx(peak_signal_noise_ratio(camera, test, data_range=1.0), abs=1e-9)


def test_psnr_colour_and_other_ranges_equal_skimage(astronaut):
    reference = astronaut * 4000.0 - 1000.0  # CT-like units
    test = _noisy(reference, 30.0, seed=2)
    expected = peak_signal_noise_ratio(reference, test, data_range=4000.0)
    assert psnr(reference, test, data_range=4000.0) == pytest.approx(expected, abs=1e-9)


def test_psnr_border_ignores_edge_pixels():
    reference = np.zeros((16, 16))
    test = np.zeros((16, 16))
    test[:4, :] = 1.0  # all error lies in the top 4 rows
    test[8, 8] = 0.1  # MSE inside the 8x8 interior = 0.01 / 64
    assert psnr(reference, test, border=4) == pytest.approx(10 * math.log10(64 / 0.01), abs=1e-9)
    assert psnr(reference, test) < 10.0


def test_psnr_border_equals_skimage_on_crop(camera):
    test = _noisy(camera, 0.03, seed=3)
    expected = peak_signal_noise_ratio(camera[4:-4, 4:-4], test[4:-4, 4:-4], data_range=1.0)
    assert psnr(camera, test, border=4) == pytest.approx(expected, abs=1e-9)


def test_shape_mismatch_is_one_line_naming_both_shapes():
    with pytest.raises(ShapeMismatchError) as raised:
        psnr(np.zeros((10, 12)), np.zeros((12, 10)))
    message = str(raised.value)
    assert "10x12" in message and "12x10" in message and "\n" not in message
    assert isinstance(raised.value, MedViewerError)
    for function in (ssim, ssim_map, absolute_error_map, signed_difference_map):
        with pytest.raises(ShapeMismatchError):
            function(np.zeros((20, 20)), np.zeros((20, 21)))


def test_border_larger_than_image_is_a_user_error():
    with pytest.raises(ImageTooSmallError):
        psnr(np.zeros((8, 8)), np.ones((8, 8)), border=4)


# ---- SSIM ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, 0.02, 0.1, 0.4])
def test_ssim_equals_skimage_on_camera(camera, sigma):
    test = camera if sigma == 0 else _noisy(camera, sigma, seed=4)
    assert ssim(camera, test) == pytest.approx(_skimage_ssim(camera, test, 1.0), abs=1e-4)


def test_ssim_identical_is_one(camera):
    assert ssim(camera, camera) == pytest.approx(1.0, abs=1e-12)


def test_ssim_equals_skimage_on_random_and_blurred():
    rng = np.random.default_rng(5)
    reference = rng.random((96, 80))
    unrelated = rng.random((96, 80))
    assert ssim(reference, unrelated) == pytest.approx(_skimage_ssim(reference, unrelated, 1.0), abs=1e-4)
    shifted = np.roll(reference, 1, axis=1) * 0.7 + 0.1
    assert ssim(reference, shifted) == pytest.approx(_skimage_ssim(reference, shifted, 1.0), abs=1e-4)


@pytest.mark.parametrize("shape", [(11, 11), (11, 30), (12, 13), (17, 11)])
def test_ssim_equals_skimage_near_minimum_size(shape):
    rng = np.random.default_rng(6)
    reference = rng.random(shape)
    test = np.clip(_noisy(reference, 0.1, seed=7), 0, 1)
    assert ssim(reference, test) == pytest.approx(_skimage_ssim(reference, test, 1.0), abs=1e-4)


def test_ssim_refuses_images_smaller_than_its_window_like_skimage():
    # With Gaussian weights scikit-image's window is 11 pixels (not 7): both refuse a 10-pixel side.
    small = np.zeros((10, 40))
    with pytest.raises(ValueError):
        _skimage_ssim(small, small, 1.0)
    with pytest.raises(ImageTooSmallError):
        ssim(small, small)
    with pytest.raises(ImageTooSmallError):
        ssim(np.zeros((18, 18)), np.zeros((18, 18)), border=4)


@pytest.mark.parametrize("low,high", [(-1000.0, 3000.0), (0.0, 255.0), (-0.5, 0.25)])
def test_ssim_equals_skimage_on_other_ranges(camera, low, high):
    reference = camera[::2, ::2] * (high - low) + low
    test = _noisy(reference, 0.05 * (high - low), seed=8)
    data_range = high - low
    expected = _skimage_ssim(reference, test, data_range)
    assert ssim(reference, test, data_range=data_range) == pytest.approx(expected, abs=1e-4)


def test_ssim_equals_skimage_on_float32_inputs(camera):
    reference = camera.astype(np.float32)
    test = _noisy(camera, 0.05, seed=9).astype(np.float32)
    assert ssim(reference, test) == pytest.approx(_skimage_ssim(reference, test, 1.0), abs=1e-4)


def test_ssim_colour_equals_skimage_channel_mean(astronaut):
    test = _noisy(astronaut, 0.06, seed=10)
    assert ssim(astronaut, test) == pytest.approx(_skimage_ssim(astronaut, test, 1.0), abs=1e-4)


def test_ssim_map_equals_skimage_full(camera, astronaut):
    test = _noisy(camera[:100, :120], 0.05, seed=11)
    _, expected_map = _skimage_ssim(camera[:100, :120], test, 1.0, full=True)
    np.testing.assert_allclose(ssim_map(camera[:100, :120], test), expected_map, atol=1e-4)
    colour_test = _noisy(astronaut, 0.05, seed=12)
    _, expected_colour_map = _skimage_ssim(astronaut, colour_test, 1.0, full=True)
    np.testing.assert_allclose(ssim_map(astronaut, colour_test), expected_colour_map, atol=1e-4)


def test_ssim_border_equals_skimage_on_crop(camera):
    test = _noisy(camera, 0.05, seed=13)
    expected = _skimage_ssim(camera[4:-4, 4:-4], test[4:-4, 4:-4], 1.0)
    assert ssim(camera, test, border=4) == pytest.approx(expected, abs=1e-4)
    assert ssim_map(camera, test, border=4).shape == (504, 504)


def test_score_bundles_both(camera):
    test = _noisy(camera, 0.05, seed=14)
    result = score(camera, test, border=4)
    assert isinstance(result, Scores)
    assert result.psnr == pytest.approx(peak_signal_noise_ratio(camera[4:-4, 4:-4], test[4:-4, 4:-4], data_range=1))
    assert result.ssim == pytest.approx(_skimage_ssim(camera[4:-4, 4:-4], test[4:-4, 4:-4], 1.0), abs=1e-4)


# ---- error maps ------------------------------------------------------------------------------------------------


def test_error_maps_hand_computed():
    reference = np.array([[1.0, 2.0], [3.0, 4.0]])
    test = np.array([[1.5, 2.0], [2.0, 4.25]])
    signed = signed_difference_map(reference, test)
    absolute = absolute_error_map(reference, test)
    assert signed.dtype == np.float32 and absolute.dtype == np.float32
    np.testing.assert_array_equal(signed, np.array([[0.5, 0.0], [-1.0, 0.25]], dtype=np.float32))
    np.testing.assert_array_equal(absolute, np.array([[0.5, 0.0], [1.0, 0.25]], dtype=np.float32))


# ---- noise estimate --------------------------------------------------------------------------------------------


def _smooth_gradient(size: int = 256) -> np.ndarray:
    rows, columns = np.mgrid[0:size, 0:size] / (size - 1)
    return 0.2 + 0.5 * rows + 0.2 * columns + 0.05 * np.sin(2 * np.pi * rows) * np.cos(np.pi * columns)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_noise_estimate_within_ten_percent_on_smooth_image(sigma):
    noisy = _noisy(_smooth_gradient(), sigma, seed=15)
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_noise_estimate_within_ten_percent_on_flat_image(sigma):
    noisy = _noisy(np.full((256, 256), 0.5), sigma, seed=16)
    assert estimate_noise_sigma(noisy) == pytest.approx(sigma, rel=0.10)


def test_noise_estimate_in_image_units_and_zero_for_linear_ramp():
    noisy = _noisy(_smooth_gradient(), 0.05, seed=17)
    # The estimate scales with the image: in Hounsfield-like units the same noise reads 1000x larger.
    assert estimate_noise_sigma(noisy * 1000.0) == pytest.approx(1000.0 * estimate_noise_sigma(noisy), rel=1e-9)
    rows, columns = np.mgrid[0:64, 0:64]
    assert estimate_noise_sigma(0.01 * rows + 0.02 * columns) == pytest.approx(0.0, abs=1e-12)


def test_noise_estimate_hand_computed():
    # One impulse of height 1 in a 5x5 zero image: |I*N| over the 3x3 interior sums to the kernel's
    # absolute sum, 4 + 4*2 + 4*1 = 16; sigma = sqrt(pi/2) * 16 / (6 * 3 * 3).
    image = np.zeros((5, 5))
    image[2, 2] = 1.0
    assert estimate_noise_sigma(image) == pytest.approx(math.sqrt(math.pi / 2) * 16 / 54, rel=1e-12)


def test_noise_estimate_colour_is_channel_mean():
    rng = np.random.default_rng(18)
    colour = np.stack([0.5 + rng.normal(0, s, (128, 128)) for s in (0.02, 0.04, 0.06)], axis=-1)
    per_channel = [estimate_noise_sigma(colour[..., c]) for c in range(3)]
    assert estimate_noise_sigma(colour) == pytest.approx(np.mean(per_channel), rel=1e-12)
    assert estimate_noise_sigma(colour) == pytest.approx(0.04, rel=0.1)


def test_symmetric_display_limit_ignores_a_few_extremes():
    difference = np.linspace(-10, 10, 1001)
    difference[0] = -1e6  # one hot pixel must not wash out the map
    assert symmetric_display_limit(difference, percentile=99.0) == pytest.approx(np.percentile(np.abs(difference), 99))
    assert symmetric_display_limit(difference, percentile=99.0) < 11


def test_symmetric_display_limit_is_never_zero():
    assert symmetric_display_limit(np.zeros((4, 4))) == 1.0
    assert symmetric_display_limit(np.array([0.0] * 999 + [3.0])) == 3.0


def test_high_frequency_ratio_is_one_for_the_reference_below_for_blur_above_for_noise(camera):
    from scipy import ndimage
    from skimage.transform import rescale

    assert high_frequency_ratio(camera, camera) == pytest.approx(1.0)
    blurred = ndimage.gaussian_filter(camera, 1.0)
    upscaled = np.clip(rescale(rescale(camera, 0.5, order=3, anti_aliasing=True), 2, order=3), 0, 1)
    noisy = camera + np.random.default_rng(0).normal(0, 0.05, camera.shape)
    assert high_frequency_ratio(camera, blurred) < 0.2
    assert 0.05 < high_frequency_ratio(camera, upscaled) < 0.6  # bicubic x2 keeps little above 1/4 cycle/pixel
    assert high_frequency_ratio(camera, noisy) > 1.5
    assert high_frequency_ratio(camera, 2 * camera) == pytest.approx(4.0)  # energy, not amplitude
    colour = np.stack([camera, blurred, camera], axis=-1)
    assert 0.6 < high_frequency_ratio(np.stack([camera] * 3, axis=-1), colour) < 0.7
    with pytest.raises(ImageTooSmallError):
        high_frequency_ratio(camera[:4, :4], camera[:4, :4])
    with pytest.raises(ShapeMismatchError):
        high_frequency_ratio(camera, camera[:100])
