"""Classical methods equal direct scikit-image / Pillow calls; the catalogue is complete and looks ids up safely."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage import exposure, filters, restoration
from skimage.metrics import peak_signal_noise_ratio

from medviewer.enhance.degrade import Degradation, degrade, degraded_baseline
from medviewer.errors import MedViewerError, UnknownModelError
from medviewer.models.classical import (
    CLASSICAL_METHODS,
    ClassicalMethod,
    bicubic_upscale,
    clahe,
    classical_method,
    histogram_equalisation,
    lanczos_upscale,
    non_local_means,
    unsharp_mask,
)

EXPECTED_IDS = [
    "bicubic-x2",
    "bicubic-x3",
    "bicubic-x4",
    "lanczos-x2",
    "lanczos-x3",
    "lanczos-x4",
    "histeq",
    "clahe",
    "nlm",
    "unsharp",
]


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return (skimage.data.camera() / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def small_camera(camera) -> np.ndarray:
    # Upscaling and NLM are the slow ones: a 128x128 region with edges and flat sky keeps them fast.
    return np.ascontiguousarray(camera[64:192, 192:320])


def _pillow_upscale(image: np.ndarray, scale: int, resample: Image.Resampling) -> np.ndarray:
    height, width = image.shape
    return np.asarray(Image.fromarray(image, mode="F").resize((width * scale, height * scale), resample))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_equals_pillow_and_the_protocol_baseline(small_camera, scale):
    upscaled = bicubic_upscale(small_camera, scale)
    assert upscaled.dtype == np.float32
    assert upscaled.shape == (128 * scale, 128 * scale)
    np.testing.assert_array_equal(upscaled, _pillow_upscale(small_camera, scale, Image.Resampling.BICUBIC))
    baseline = degraded_baseline(small_camera, Degradation("sr", scale), (128 * scale, 128 * scale))
    np.testing.assert_array_equal(upscaled, baseline)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lanczos_equals_pillow(small_camera, scale):
    upscaled = lanczos_upscale(small_camera, scale)
    assert upscaled.dtype == np.float32
    assert upscaled.shape == (128 * scale, 128 * scale)
    np.testing.assert_array_equal(upscaled, _pillow_upscale(small_camera, scale, Image.Resampling.LANCZOS))


def test_upscale_non_square_sizes_are_exact():
    image = np.random.default_rng(0).random((13, 29)).astype(np.float32)
    assert bicubic_upscale(image, 3).shape == (39, 87)
    assert lanczos_upscale(image, 4).shape == (52, 116)
    with pytest.raises(ValueError):
        bicubic_upscale(image, 0)


def test_histogram_equalisation_equals_skimage(camera):
    result = histogram_equalisation(camera)
    assert result.dtype == np.float32 and result.shape == camera.shape
    np.testing.assert_allclose(result, exposure.equalize_hist(camera), atol=1e-6)


def test_clahe_equals_skimage(camera):
    result = clahe(camera)
    assert result.dtype == np.float32 and result.shape == camera.shape
    np.testing.assert_allclose(result, exposure.equalize_adapthist(camera, clip_limit=0.01), atol=1e-6)


def test_clahe_accepts_slight_overshoot_by_clipping(small_camera):
    overshooting = small_camera * 1.1 - 0.05  # noise pushes normalised values a little outside [0, 1]
    with pytest.raises(ValueError):
        exposure.equalize_adapthist(overshooting, clip_limit=0.01)
    expected = exposure.equalize_adapthist(np.clip(overshooting, 0, 1), clip_limit=0.01)
    np.testing.assert_allclose(clahe(overshooting), expected, atol=1e-6)


def test_unsharp_equals_skimage(camera):
    result = unsharp_mask(camera)
    assert result.dtype == np.float32 and result.shape == camera.shape
    expected = filters.unsharp_mask(camera, radius=2, amount=1, preserve_range=True)
    np.testing.assert_allclose(result, expected, atol=1e-6)


@pytest.fixture(scope="module")
def noisy_small_camera(small_camera) -> np.ndarray:
    return degrade(small_camera, Degradation("noise", 0.08 * 255), seed=1)


def test_nlm_equals_skimage_with_the_documented_parameters(noisy_small_camera):
    # Immerkaer's estimate written out here rather than calling metrics, so a change there shows up.
    image = noisy_small_camera.astype(np.float64)
    kernel_response = (
        image[:-2, :-2] - 2 * image[:-2, 1:-1] + image[:-2, 2:]
        - 2 * image[1:-1, :-2] + 4 * image[1:-1, 1:-1] - 2 * image[1:-1, 2:]
        + image[2:, :-2] - 2 * image[2:, 1:-1] + image[2:, 2:]
    )  # fmt: skip
    sigma = np.sqrt(np.pi / 2) * np.abs(kernel_response).sum() / (6 * 126 * 126)
    expected = restoration.denoise_nl_means(
        noisy_small_camera, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6
    )
    result = non_local_means(noisy_small_camera)
    assert result.dtype == np.float32 and result.shape == noisy_small_camera.shape
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_nlm_raises_psnr_by_more_than_2_db(small_camera, noisy_small_camera):
    before = peak_signal_noise_ratio(small_camera, noisy_small_camera, data_range=1.0)
    after = peak_signal_noise_ratio(small_camera, non_local_means(noisy_small_camera), data_range=1.0)
    assert after > before + 2.0


def test_nlm_leaves_a_noise_free_constant_image_alone():
    flat = np.full((32, 32), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(non_local_means(flat), flat)


def test_colour_images_are_processed_per_channel(small_camera):
    colour = np.stack([small_camera, 1 - small_camera, small_camera**2], axis=-1)
    result = unsharp_mask(colour)
    assert result.shape == colour.shape and result.dtype == np.float32
    np.testing.assert_allclose(result[..., 1], unsharp_mask(colour[..., 1]), atol=0)
    assert bicubic_upscale(colour, 2).shape == (256, 256, 3)


# ---- catalogue -------------------------------------------------------------------------------------------------


def test_catalogue_lists_the_expected_methods():
    assert [method.id for method in CLASSICAL_METHODS] == EXPECTED_IDS
    for method in CLASSICAL_METHODS:
        assert isinstance(method, ClassicalMethod)
        assert method.task in {"denoise", "super-resolution", "contrast"}
        assert method.name and method.description.endswith(".") and "\n" not in method.description
    assert classical_method("unsharp").name == "Unsharp mask / edge enhancement"
    assert classical_method("unsharp").task == "contrast"
    assert classical_method("nlm").task == "denoise"
    assert {classical_method(i).task for i in ("histeq", "clahe")} == {"contrast"}


@pytest.mark.parametrize("method_id", EXPECTED_IDS)
def test_every_method_maps_a_float32_image_to_the_right_size(method_id):
    method = classical_method(method_id)
    image = np.random.default_rng(2).random((24, 20)).astype(np.float32)
    result = method.function(image)
    assert result.dtype == np.float32
    assert result.shape == (24 * method.scale, 20 * method.scale)
    expected_scale = int(method_id.split("-x")[1]) if "-x" in method_id else 1
    assert method.scale == expected_scale
    if method.task == "super-resolution":
        assert method_id.startswith(("bicubic", "lanczos")) and method.scale > 1


def test_catalogue_bicubic_is_the_pillow_upscale(small_camera):
    np.testing.assert_array_equal(
        classical_method("bicubic-x3").function(small_camera),
        _pillow_upscale(small_camera, 3, Image.Resampling.BICUBIC),
    )


def test_unknown_id_raises_a_user_error_not_key_error():
    with pytest.raises(UnknownModelError) as raised:
        classical_method("bicubic-x5")
    message = str(raised.value)
    assert isinstance(raised.value, MedViewerError) and not isinstance(raised.value, KeyError)
    assert "unknown" in message and "bicubic-x5" in message and "bicubic-x4" in message and "\n" not in message
