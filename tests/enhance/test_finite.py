"""NaN and infinite pixels: filled for the method, put back in the result, left out of every score.

References: scikit-image's PSNR on the finite pixels alone, scipy's nearest-neighbour transform, and the
engine run on an all-finite copy of the same image.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medviewer.cli import main
from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.evaluation import paired, simulate, without_reference
from medviewer.enhance.finite import fill_non_finite, find_non_finite, put_back
from medviewer.errors import NoFinitePixelsError
from medviewer.io.study import load_studies
from medviewer.io.window import Window, apply_window, auto_window
from medviewer.metrics import estimate_noise_sigma, psnr, score, ssim
from medviewer.models.registry import discover_models


def _image(seed: int = 0, shape=(64, 72)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    smooth = 500 * np.exp(-((rows - shape[0] / 2) ** 2 + (columns - shape[1] / 2) ** 2) / 300.0) - 200
    return (smooth + rng.normal(0, 10, shape)).astype(np.float32)


def _with_holes(image: np.ndarray) -> np.ndarray:
    holed = image.copy()
    holed[3, 4] = np.nan
    holed[10:12, 20:23] = np.inf
    holed[40, 50] = -np.inf
    return holed


@pytest.fixture(scope="module")
def registry():
    return discover_models()


def test_find_fill_and_put_back_round_trip():
    image = _with_holes(_image())
    found = find_non_finite(image)
    assert found.count == 8 and found.mask.sum() == 8
    filled = fill_non_finite(image, found)
    assert np.isfinite(filled).all()
    assert filled[3, 4] in (image[2, 4], image[4, 4], image[3, 3], image[3, 5])  # a nearest finite neighbour
    np.testing.assert_array_equal(filled[~found.mask], image[~found.mask])
    upscaled = np.zeros((128, 144), np.float32)
    put_back(upscaled, found, scale=2)
    assert np.isnan(upscaled[6:8, 8:10]).all() and np.isposinf(upscaled[20:24, 40:46]).all()
    assert np.isneginf(upscaled[80:82, 100:102]).all()
    assert np.count_nonzero(~np.isfinite(upscaled)) == 8 * 4
    assert find_non_finite(np.arange(6).reshape(2, 3)) is None  # integers are always finite


def test_an_image_without_a_finite_pixel_is_refused():
    with pytest.raises(NoFinitePixelsError, match="all 12 pixels are NaN or infinite"):
        find_non_finite(np.full((3, 4), np.nan))


def test_psnr_leaves_non_finite_pixels_out_exactly_as_scikit_image_on_the_rest():
    reference = _image(1) / 500.0
    test = reference + np.random.default_rng(2).normal(0, 0.05, reference.shape)
    holed = _with_holes(test)
    finite = np.isfinite(holed)
    expected = peak_signal_noise_ratio(reference[finite], holed[finite], data_range=1.0)
    assert psnr(reference, holed) == pytest.approx(expected, abs=1e-12)
    assert psnr(_with_holes(reference), test) == pytest.approx(expected, abs=1e-12)  # either image may hold them
    with pytest.raises(NoFinitePixelsError):
        psnr(np.full((8, 8), np.nan), np.zeros((8, 8)))


def _masked_ssim_by_hand(reference, test, finite, row, column, sigma=1.5, radius=5):
    """SSIM at one pixel from its Gaussian window over the finite pixels only (weights renormalised)."""
    offsets = np.arange(-radius, radius + 1)
    kernel_1d = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel = np.outer(kernel_1d, kernel_1d)
    window = np.s_[row - radius : row + radius + 1, column - radius : column + radius + 1]
    weights = kernel * finite[window]
    weights = weights / weights.sum()
    x, y = np.where(finite[window], reference[window], 0), np.where(finite[window], test[window], 0)
    mean_x, mean_y = (weights * x).sum(), (weights * y).sum()
    var_x = (weights * x * x).sum() - mean_x**2
    var_y = (weights * y * y).sum() - mean_y**2
    cov = (weights * x * y).sum() - mean_x * mean_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))


def test_ssim_uses_the_finite_pixels_of_each_window():
    from medviewer.metrics import ssim_map

    reference = _image(3, (48, 60)) / 500.0
    test = reference + np.random.default_rng(4).normal(0, 0.05, reference.shape)
    holed = _with_holes(test)
    finite = np.isfinite(holed)
    local = ssim_map(reference, holed)
    for row, column in ((12, 22), (20, 20), (6, 6), (30, 33)):  # windows with and without holes
        assert local[row, column] == pytest.approx(_masked_ssim_by_hand(reference, holed, finite, row, column), 1e-9)
    assert np.isnan(local[~finite]).all()
    inner = local[5:-5, 5:-5]
    assert ssim(reference, holed) == pytest.approx(float(np.nanmean(inner)), abs=1e-12)
    # With every pixel finite the weights are all one and the score is scikit-image's own.
    expected = structural_similarity(
        reference, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim(reference, test) == pytest.approx(expected, abs=1e-7)


def test_noise_estimate_ignores_neighbourhoods_with_non_finite_pixels():
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 7.0, (256, 256))
    holed = noise.copy()
    holed[::17, ::13] = np.nan
    assert estimate_noise_sigma(holed) == pytest.approx(estimate_noise_sigma(noise), rel=0.03)
    assert math.isnan(estimate_noise_sigma(np.full((3, 3), np.inf)))


def test_window_shows_nan_black_and_infinity_at_the_ends():
    values = np.array([[np.nan, np.inf, -np.inf, 40.0]])
    brightness = apply_window(values, Window(40, 400, "LINEAR"))
    assert brightness.tolist()[0][:3] == [0.0, 1.0, 0.0] and 0.4 < brightness[0, 3] < 0.6
    assert auto_window(_with_holes(_image())) == auto_window(_image()[np.isfinite(_with_holes(_image()))])


@pytest.mark.parametrize("model_id", ["nlm", "bicubic-x2", "unsharp"])
def test_engine_keeps_non_finite_pixels_and_enhances_the_rest_as_the_filled_image(registry, model_id):
    enhancer = load_enhancer(registry.get(model_id))
    holed = _with_holes(_image())
    found = find_non_finite(holed)
    enhanced = enhancer.enhance(holed)
    expected = put_back(enhancer.enhance(fill_non_finite(holed, found)), found, enhancer.scale)
    np.testing.assert_array_equal(enhanced, expected)
    assert np.count_nonzero(~np.isfinite(enhanced)) == found.count * enhancer.scale**2


def test_evaluations_count_the_pixels_and_score_only_the_rest(registry):
    enhancer = load_enhancer(registry.get("nlm"))
    clean = _image()
    holed = _with_holes(clean)
    evaluation = simulate(enhancer, holed, parse_degradation("noise:25"))
    assert evaluation.non_finite_pixels == 8
    assert np.isnan(evaluation.enhanced[3, 4]) and np.isposinf(evaluation.enhanced[10, 20])
    assert np.isfinite(evaluation.enhanced_scores.psnr) and np.isfinite(evaluation.enhanced_scores.ssim)
    assert evaluation.gain_db > 0
    assert math.isfinite(evaluation.noise_sigma_input) and math.isfinite(evaluation.noise_sigma_enhanced)
    pair = paired(enhancer, holed, clean)
    assert pair.non_finite_pixels == 8 and math.isfinite(pair.enhanced_scores.psnr)
    finite = np.isfinite(holed)
    low, high = float(clean.min()), float(clean.max())
    expected = score((clean - low) / (high - low), np.where(finite, (pair.enhanced - low) / (high - low), np.nan))
    assert pair.enhanced_scores.psnr == pytest.approx(expected.psnr, abs=1e-6)
    clinical = without_reference(load_enhancer(registry.get("bicubic-x2")), holed)
    assert clinical.non_finite_pixels == 8 and math.isfinite(clinical.noise_sigma_enhanced)


# --- the command line -------------------------------------------------------------------------------------


def _float_dicom(path, values: np.ndarray) -> None:
    """A parametric-map-like image in Float Pixel Data (what a DICOM float image with NaN looks like)."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.Modality = "OT"
    dataset.Rows, dataset.Columns = values.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 32
    dataset.FloatPixelData = values.astype("<f4").tobytes()
    dataset.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".dcm"])
def test_info_counts_non_finite_pixels_and_windows_the_rest(tmp_path, capsys, suffix):
    holed = _with_holes(_image())
    path = tmp_path / f"holed{suffix}"
    if suffix == ".npy":
        np.save(path, holed)
    elif suffix == ".tif":
        import tifffile

        tifffile.imwrite(path, holed)
    else:
        _float_dicom(path, holed)
    assert main(["info", "--json", str(path)]) == 0
    (record,) = json.loads(capsys.readouterr().out)["studies"][0]["series"]
    assert record["non_finite_pixels"] == 8
    window = record["windows"][0]
    expected = auto_window(holed[np.isfinite(holed)])
    assert (window["center"], window["width"]) == pytest.approx((expected.center, expected.width))
    assert main(["info", str(path)]) == 0
    assert "8 pixels are NaN or infinite" in capsys.readouterr().out
    (series,) = load_studies([path]).series
    assert series.non_finite_pixels() == 8


@pytest.mark.parametrize("arguments", [[], ["--degrade", "noise:15"], ["--degrade", "sr:2"]])
def test_enhance_keeps_them_says_so_and_never_crashes(tmp_path, capsys, arguments):
    holed = _with_holes(_image())
    np.save(tmp_path / "holed.npy", holed)
    model = "bicubic-x2" if "sr:2" in arguments or not arguments else "nlm"
    output = tmp_path / "out.npy"
    code = main(["enhance", "--model", model, *arguments, "-o", str(output), str(tmp_path / "holed.npy")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "8 pixels NaN or infinite in the input, kept as they were" in captured.out
    enhanced = np.load(output)
    assert np.count_nonzero(~np.isfinite(enhanced)) == 8 * (4 if model == "bicubic-x2" and not arguments else 1)
    second = ["enhance", "--model", model, *arguments, "--json", "-o", str(tmp_path / "o2.npy")]
    main([*second, str(tmp_path / "holed.npy")])
    record = json.loads(capsys.readouterr().out)
    assert record["non_finite_pixels"] == 8 and record["noise_sigma_input"] is not None


def test_enhance_refuses_an_image_with_no_finite_pixel_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "empty.npy", np.full((32, 32), np.nan, np.float32))
    code = main(["enhance", "--model", "nlm", "-o", str(tmp_path / "out.npy"), str(tmp_path / "empty.npy")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "empty.npy" in err[0] and "all 1024 pixels are NaN or infinite" in err[0]
    assert not (tmp_path / "out.npy").exists()


def test_dicom_output_of_an_image_with_non_finite_pixels_is_refused_in_one_line_and_npy_keeps_them(tmp_path, capsys):
    holed = _with_holes(_image())
    source = tmp_path / "map.dcm"
    _float_dicom(source, holed)
    code = main(["enhance", "--model", "nlm", "-o", str(tmp_path / "out.dcm"), str(source)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "8 values are NaN or infinite" in err[0] and ".npy" in err[0]
    assert not (tmp_path / "out.dcm").exists()
    assert main(["enhance", "--model", "nlm", "-o", str(tmp_path / "out.npy"), str(source)]) == 0
    assert np.count_nonzero(~np.isfinite(np.load(tmp_path / "out.npy"))) == 8


def test_a_float_dicom_source_keeps_its_values_in_derived_dicom_through_a_fitted_rescale(tmp_path):
    from pydicom.pixels import apply_modality_lut

    values = _image() / 1000.0  # fractions: rounding them to whole samples would flatten the image
    source = tmp_path / "map.dcm"
    _float_dicom(source, values)
    assert main(["enhance", "--model", "unsharp", "-o", str(tmp_path / "out.dcm"), str(source)]) == 0
    (series,) = load_studies([source]).series
    expected = load_enhancer(discover_models().get("unsharp")).enhance(series.values(0))
    written = pydicom.dcmread(tmp_path / "out.dcm")
    stored = apply_modality_lut(written.pixel_array, written)
    span = float(expected.max() - expected.min())
    np.testing.assert_allclose(stored, expected, rtol=0, atol=span / 65535)


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_float64_values_beyond_float32_are_refused_not_turned_into_infinity(tmp_path, capsys, suffix):
    values = np.where(np.random.default_rng(0).random((16, 16)) > 0.5, 1e308, -1e308)
    path = tmp_path / f"huge{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    else:
        import tifffile

        tifffile.imwrite(path, values)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path.name in err[0] and "beyond the float32 range" in err[0]


def test_an_image_too_small_to_measure_is_refused_naming_the_file(tmp_path, capsys):
    np.save(tmp_path / "tiny.npy", np.arange(20, dtype=np.float32)[None])
    code = main(["enhance", "--model", "nlm", "-o", str(tmp_path / "out.npy"), str(tmp_path / "tiny.npy")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "tiny.npy" in err[0] and "3x3" in err[0]
