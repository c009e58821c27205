"""Reference modes: simulate, paired and none mean what ARCHITECTURE.md says, scored as scikit-image scores."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import camera
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import ClassicalEnhancer
from medviewer.enhance.evaluation import WrongScaleError, paired, simulate, without_reference
from medviewer.models.classical import classical_method


def nlm():
    return ClassicalEnhancer(classical_method("nlm"))


def ct_like(size=96):
    """Camera as a CT-like slice in HU: the units must come back out."""
    return (camera()[::4, ::4][:size, :size].astype(np.float32) / 255.0) * 2000.0 - 1000.0


def skimage_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def test_simulate_scores_enhanced_and_degraded_against_the_clean_image():
    image = ct_like()
    result = simulate(nlm(), image, parse_degradation("noise:25"), seed=3)
    clean = (image - image.min()) / (image.max() - image.min())
    enhanced = (result.enhanced - image.min()) / (image.max() - image.min())
    degraded = (result.model_input - image.min()) / (image.max() - image.min())
    assert result.mode == "simulate" and result.degradation == "noise:25"
    assert result.enhanced_scores.psnr == pytest.approx(
        peak_signal_noise_ratio(clean, enhanced, data_range=1), abs=1e-3
    )
    assert result.enhanced_scores.ssim == pytest.approx(skimage_ssim(clean, enhanced), abs=1e-4)
    assert result.baseline_scores.psnr == pytest.approx(
        peak_signal_noise_ratio(clean, degraded, data_range=1), abs=1e-3
    )
    assert result.gain_db > 1.0
    np.testing.assert_allclose(result.reference, image)
    # the degraded copy is noisy in HU: sigma 25/255 of the image's 2000 HU range
    assert np.std(result.model_input - image) == pytest.approx(25 / 255 * 2000, rel=0.05)
    np.testing.assert_allclose(result.difference, result.enhanced - image, atol=1e-2)


def test_simulate_super_resolution_crops_to_the_scale_and_ignores_a_border():
    image = ct_like(95)  # not a multiple of 2: cropped to 94
    result = simulate(ClassicalEnhancer(classical_method("bicubic-x2")), image, parse_degradation("sr:2"))
    assert result.reference.shape == (94, 94) and result.enhanced.shape == (94, 94)
    assert result.model_input.shape == (47, 47)
    clean = (result.reference - image[:94, :94].min()) / (image[:94, :94].max() - image[:94, :94].min())
    enhanced = (result.enhanced - result.reference.min()) / (result.reference.max() - result.reference.min())
    inner = (slice(4, -4), slice(4, -4))
    assert result.enhanced_scores.psnr == pytest.approx(
        peak_signal_noise_ratio(clean[inner], enhanced[inner], data_range=1), abs=1e-3
    )


def test_simulate_is_deterministic_per_seed():
    image = ct_like(48)
    first = simulate(nlm(), image, parse_degradation("lowdose:200"), seed=1)
    again = simulate(nlm(), image, parse_degradation("lowdose:200"), seed=1)
    other = simulate(nlm(), image, parse_degradation("lowdose:200"), seed=2)
    np.testing.assert_array_equal(first.enhanced, again.enhanced)
    assert not np.array_equal(first.model_input, other.model_input)


def test_scale_mismatches_are_refused():
    with pytest.raises(WrongScaleError, match="needs a x2"):
        simulate(nlm(), ct_like(32), parse_degradation("sr:2"))
    with pytest.raises(WrongScaleError, match="reference is"):
        paired(ClassicalEnhancer(classical_method("bicubic-x2")), ct_like(32), ct_like(32))


def test_paired_uses_the_reference_range_and_scores_the_input_too():
    reference = ct_like(64)
    rng = np.random.default_rng(0)
    noisy = reference + rng.normal(0, 60, reference.shape).astype(np.float32)
    result = paired(nlm(), noisy, reference)
    low, span = reference.min(), reference.max() - reference.min()
    assert result.baseline_scores.psnr == pytest.approx(
        peak_signal_noise_ratio((reference - low) / span, (noisy - low) / span, data_range=1), abs=1e-3
    )
    assert result.enhanced_scores.psnr > result.baseline_scores.psnr


def test_without_reference_reports_changes_and_noise_but_no_scores():
    image = ct_like(64) + np.random.default_rng(0).normal(0, 50, (64, 64)).astype(np.float32)
    result = without_reference(nlm(), image)
    assert result.enhanced_scores is None and result.baseline_scores is None and result.gain_db is None
    np.testing.assert_allclose(result.difference, result.enhanced - image, atol=1e-3)
    assert result.noise_sigma_enhanced < result.noise_sigma_input


def test_colour_images_are_simulated_and_enhanced_in_colour():
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:48, 0:48]
    rgb = np.stack([rows * 5, columns * 5, (rows + columns) * 2], -1).clip(0, 255).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    result = simulate(nlm(), rgb, parse_degradation("noise:15"))
    assert result.enhanced.shape == rgb.shape and result.enhanced.dtype == np.uint8
    assert result.gain_db > 0
    upscaled = without_reference(ClassicalEnhancer(classical_method("bicubic-x2")), rgb)
    assert upscaled.enhanced.shape == (96, 96, 3)
