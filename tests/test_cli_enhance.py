"""`medviewer models` and `medviewer enhance`: outputs and scores checked against Pillow, scikit-image and
pydicom; derived DICOM; one-line errors with exit code 2 that leave every input untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medviewer.cli import main
from medviewer.models.registry import USER_MODELS_ENVIRONMENT
from tests.models.model_folder import write_model

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STUDY = REPO_ROOT / "resources" / "sample_study"
SAMPLE_PNG = REPO_ROOT / "resources" / "sample.png"


@pytest.fixture(autouse=True)
def user_models(tmp_path, monkeypatch):
    """Every test gets its own empty user models folder, never the developer's real one."""
    folder = tmp_path / "user-models"
    monkeypatch.setenv(USER_MODELS_ENVIRONMENT, str(folder))
    return folder


def run(capsys, *arguments) -> tuple[int, str, str]:
    code = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def normalised(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low), low, high


def pillow_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((width, height), Image.BICUBIC))


def reference_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def hu_image(height=64, width=80, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width]
    image = 800 * np.exp(-((rows - height / 2) ** 2 + (columns - width / 2) ** 2) / 400.0) - 1000
    return (image + rng.normal(0, 20, image.shape)).astype(np.float32)


def test_models_lists_classical_methods_and_user_networks(capsys, user_models):
    write_model(user_models)
    code, out, err = run(capsys, "models")
    assert code == 0, err
    for model_id in ("bicubic-x2", "bicubic-x4", "lanczos-x3", "nlm", "clahe", "histeq", "unsharp", "tiny-srcnn-x2"):
        assert model_id in out
    assert "super-resolution:" in out and "srcnn" in out


def test_models_json_has_every_card_in_full_and_reports_broken_ones(capsys, user_models):
    write_model(user_models)
    (user_models / "broken.json").write_text("{")
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    report = json.loads(out)
    [network] = [model for model in report["models"] if model["kind"] == "network" and model["id"] == "tiny-srcnn-x2"]
    assert network["card"]["architecture"] == "srcnn" and network["card"]["parameters"] == 8129
    assert network["card"]["validation"]["degradation"] == "noise:25"
    assert [Path(item["path"]).name for item in report["skipped"]] == ["broken.json"]


def test_npy_in_and_out_keeps_float_values_in_the_input_units(capsys, tmp_path):
    image = hu_image()
    np.save(tmp_path / "slice.npy", image)
    code, _, err = run(capsys, "enhance", "--model", "bicubic-x2", "-o", tmp_path / "big.npy", tmp_path / "slice.npy")
    assert code == 0, err
    out = np.load(tmp_path / "big.npy")
    x, low, high = normalised(image)
    expected = pillow_resize(x, 128, 160).astype(np.float64) * (high - low) + low  # Pillow, in HU
    assert out.dtype == np.float32 and out.shape == (128, 160)
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_simulate_scores_match_scikit_image(capsys, tmp_path):
    image = hu_image(96, 96)
    np.save(tmp_path / "slice.npy", image)
    code, out, err = run(
        capsys, "enhance", "--model", "bicubic-x2", "--degrade", "sr:2", "--json", "-o", tmp_path / "o.npy",
        tmp_path / "slice.npy",
    )  # fmt: skip
    assert code == 0, err
    [record] = records(out)
    x, low, high = normalised(image)
    small = pillow_resize(x, 48, 48)
    upscaled = pillow_resize(small, 96, 96).astype(np.float64)
    inner = (slice(4, -4), slice(4, -4))
    # the bicubic model on sr:2 IS the protocol's baseline: same numbers, gain zero
    assert record["mode"] == "simulate" and record["degradation"] == "sr:2"
    assert record["psnr"] == pytest.approx(peak_signal_noise_ratio(x[inner], upscaled[inner], data_range=1), abs=1e-4)
    assert record["ssim"] == pytest.approx(reference_ssim(x[inner], upscaled[inner]), abs=1e-4)
    assert record["baseline_psnr"] == pytest.approx(record["psnr"], abs=1e-6)
    assert record["psnr_gain_db"] == pytest.approx(0, abs=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), upscaled * (high - low) + low, atol=1e-3)


def test_simulate_noise_with_nlm_gains_over_the_noisy_input(capsys, tmp_path):
    code, out, err = run(
        capsys, "enhance", "--model", "nlm", "--degrade", "noise:20", "--json", "-o", tmp_path / "o.png", SAMPLE_PNG
    )
    assert code == 0, err
    [record] = records(out)
    assert record["psnr_gain_db"] > 1.0 and record["ssim"] > record["baseline_ssim"]
    assert record["noise_sigma_enhanced"] < record["noise_sigma_input"]


def test_paired_scores_against_the_reference_in_its_own_range(capsys, tmp_path):
    reference = hu_image(96, 96, seed=1)
    x, low, high = normalised(reference)
    small = pillow_resize(x, 48, 48).astype(np.float64) * (high - low) + low
    np.save(tmp_path / "reference.npy", reference)
    np.save(tmp_path / "low.npy", small.astype(np.float32))
    code, out, err = run(
        capsys, "enhance", "--model", "bicubic-x2", "--reference", tmp_path / "reference.npy", "--json",
        "-o", tmp_path / "o.npy", tmp_path / "low.npy",
    )  # fmt: skip
    assert code == 0, err
    [record] = records(out)
    enhanced = np.load(tmp_path / "o.npy").astype(np.float64)
    inner = (slice(4, -4), slice(4, -4))
    expected = peak_signal_noise_ratio(x[inner], ((enhanced - low) / (high - low))[inner], data_range=1)
    assert record["mode"] == "paired" and record["psnr"] == pytest.approx(expected, abs=1e-4)


def test_without_reference_there_is_never_a_psnr(capsys, tmp_path):
    code, out, err = run(capsys, "enhance", "--model", "unsharp", "--json", "-o", tmp_path / "o.png", SAMPLE_PNG)
    assert code == 0, err
    [record] = records(out)
    assert record["mode"] == "none"
    assert not any("psnr" in key or "ssim" in key for key in record)
    assert record["noise_sigma_input"] > 0 and record["noise_sigma_enhanced"] > 0


def test_many_inputs_one_model_load_names_kept(capsys, tmp_path, user_models):
    write_model(user_models)
    inputs = []
    for index in range(3):
        path = tmp_path / f"image{index}.npy"
        np.save(path, hu_image(40, 30, seed=index))
        inputs.append(path)
    code, out, err = run(
        capsys, "enhance", "--model", "tiny-srcnn-x2", "--device", "cpu", "--json", "--output-dir", tmp_path / "out",
        *inputs,
    )  # fmt: skip
    assert code == 0, err
    report = records(out)
    assert [Path(item["output"]).name for item in report] == ["image0.npy", "image1.npy", "image2.npy"]
    assert len({item["model_load_seconds"] for item in report}) == 1  # loaded once
    assert all(item["device"].startswith("cpu") and item["output_shape"] == [80, 60] for item in report)
    assert np.load(tmp_path / "out" / "image1.npy").shape == (80, 60)


def test_png_output_of_a_png_input_keeps_its_grey_levels(capsys, tmp_path):
    code, _, err = run(capsys, "enhance", "--model", "bicubic-x2", "-o", tmp_path / "big.png", SAMPLE_PNG)
    assert code == 0, err
    source = np.asarray(Image.open(SAMPLE_PNG))
    written = Image.open(tmp_path / "big.png")
    assert written.size == (source.shape[1] * 2, source.shape[0] * 2)
    assert written.mode == Image.open(SAMPLE_PNG).mode


def test_dicom_out_is_a_derived_series_that_keeps_hu(capsys, tmp_path):
    sources = sorted(SAMPLE_STUDY.glob("*.dcm"))[:3]
    code, out, err = run(
        capsys, "enhance", "--model", "bicubic-x2", "--json", "--output-dir", tmp_path / "derived", *sources
    )
    assert code == 0, err
    written = sorted((tmp_path / "derived").iterdir())
    assert [path.name for path in written] == [path.name for path in sources]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets = [pydicom.dcmread(path) for path in written]
        originals = [pydicom.dcmread(path) for path in sources]
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    assert datasets[0].SeriesInstanceUID != originals[0].SeriesInstanceUID
    assert datasets[0].StudyInstanceUID == originals[0].StudyInstanceUID
    for ds, original in zip(datasets, originals, strict=True):
        assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert ds.SOPInstanceUID != original.SOPInstanceUID
        assert "bicubic" in ds.SeriesDescription.lower() and "bicubic-x2" in ds.DerivationDescription
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([float(v) / 2 for v in original.PixelSpacing])
        assert (ds.Rows, ds.Columns) == (original.Rows * 2, original.Columns * 2)
    # values read back by pydicom equal what the engine wrote, in HU, to the stored precision
    hu = apply_modality_lut(originals[0].pixel_array, originals[0]).astype(np.float64)
    x = (hu - hu.min()) / (hu.max() - hu.min())
    expected = pillow_resize(x, originals[0].Rows * 2, originals[0].Columns * 2) * (hu.max() - hu.min()) + hu.min()
    read_back = apply_modality_lut(datasets[0].pixel_array, datasets[0])
    step = float(originals[0].RescaleSlope)
    assert np.max(np.abs(read_back - expected)) <= step / 2 + 1e-3


def test_inputs_are_never_modified(capsys, tmp_path):
    source = tmp_path / "slice.dcm"
    shutil.copy(sorted(SAMPLE_STUDY.glob("*.dcm"))[0], source)
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    code, _, err = run(capsys, "enhance", "--model", "nlm", "-o", source, source)
    assert code == 2 and "refusing to overwrite" in err and err.count("\n") == 1
    code, _, err = run(capsys, "enhance", "--model", "nlm", "--output-dir", tmp_path, source)
    assert code == 2 and "refusing to overwrite" in err
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "no-such-model"], "unknown model"),
        (["--model", "bicubic-2x"], "did you mean"),
        (["--model", "bicubic-x2", "--degrade", "noise:10"], "needs a same-size model"),
        (["--model", "nlm", "--degrade", "sr:2"], "needs a x2 model"),
        (["--model", "nlm", "--degrade", "blur:3"], "noise:S"),
        (["--model", "nlm", "--device", "cuda-ish"], "device"),
    ],
)
def test_bad_requests_are_one_line_exit_two(capsys, tmp_path, arguments, message):
    code, out, err = run(capsys, "enhance", *arguments, "-o", tmp_path / "o.npy", SAMPLE_PNG)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.npy").exists()


def test_wrong_size_reference_is_one_line(capsys, tmp_path):
    np.save(tmp_path / "a.npy", hu_image(32, 32))
    np.save(tmp_path / "ref.npy", hu_image(32, 32))
    code, _, err = run(
        capsys, "enhance", "--model", "bicubic-x2", "--reference", tmp_path / "ref.npy", "-o", tmp_path / "o.npy",
        tmp_path / "a.npy",
    )  # fmt: skip
    assert code == 2 and "reference is 32x32" in err and err.count("\n") == 1


def test_bad_weights_are_one_line(capsys, tmp_path, user_models):
    write_model(user_models)
    weights = user_models / "tiny-srcnn-x2.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    code, _, err = run(capsys, "enhance", "--model", "tiny-srcnn-x2", "-o", tmp_path / "o.npy", SAMPLE_PNG)
    assert code == 2 and "cannot be used" in err and "safetensors" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "{tmp}/o.npy", "{png}", "{png}"], "use --output-dir"),
        (["-o", "{tmp}/o.jpg", "{png}"], "unsupported output type .jpg"),
        (["-o", "{tmp}/o.npy", "{tmp}/missing.png"], "file not found"),
        (["-o", "{tmp}/o.npy", "--reference", "{png}", "--reference", "{png}", "{png}"], "one per input"),
        (["--output-dir", "{tmp}/out", "{png}", "{tmp}/copy/sample.png"], "would both be written"),
    ],
)
def test_bad_outputs_and_inputs_are_one_line(capsys, tmp_path, extra, message):
    (tmp_path / "copy").mkdir()
    shutil.copy(SAMPLE_PNG, tmp_path / "copy" / "sample.png")
    filled = [item.format(tmp=tmp_path, png=SAMPLE_PNG) for item in extra]
    code, _, err = run(capsys, "enhance", "--model", "nlm", *filled)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_bad_input_among_many_is_reported_and_the_rest_are_done(capsys, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, err = run(
        capsys, "enhance", "--model", "bicubic-x2", "--json", "--output-dir", tmp_path / "out",
        tmp_path / "broken.png", SAMPLE_PNG,
    )  # fmt: skip
    assert code == 2
    assert "broken.png" in err and err.count("\n") == 1
    assert [Path(item["output"]).name for item in records(out)] == ["sample.png"]
    assert (tmp_path / "out" / "sample.png").exists() and not (tmp_path / "out" / "broken.png").exists()


def test_an_input_identical_to_its_reference_is_reported_not_crashed(capsys, tmp_path):
    np.save(tmp_path / "a.npy", hu_image(48, 48))
    code, out, err = run(
        capsys, "enhance", "--model", "nlm", "--reference", tmp_path / "a.npy", "-o", tmp_path / "o.npy",
        tmp_path / "a.npy",
    )  # fmt: skip
    assert code == 0, err
    assert "(input: identical to the reference," in out


def test_self_ensemble_is_named_in_the_record_and_averages_transposed_passes(capsys, tmp_path, user_models):
    """--self-ensemble 2: the output is the mean of the single pass on the image and on its transpose (the
    engine's contract, checked here through the command line) and the record names how it was made."""
    write_model(user_models)
    image = hu_image(40, 30)
    np.save(tmp_path / "a.npy", image)
    np.save(tmp_path / "a-transposed.npy", image.T)
    outputs = {}
    for name, extra in (("single", []), ("transposed", []), ("pair", ["--self-ensemble", "2"])):
        source = tmp_path / ("a-transposed.npy" if name == "transposed" else "a.npy")
        code, out, err = run(
            capsys, "enhance", "--model", "tiny-srcnn-x2", "--device", "cpu", "--json", *extra,
            "-o", tmp_path / f"{name}.npy", source,
        )  # fmt: skip
        assert code == 0, err
        outputs[name] = (np.load(tmp_path / f"{name}.npy"), records(out)[0])
    expected = (outputs["single"][0] + outputs["transposed"][0].T) / 2
    np.testing.assert_allclose(outputs["pair"][0], expected, rtol=1e-5, atol=1e-2)
    assert outputs["pair"][1]["model_name"].endswith("(self-ensemble x2)")
    assert "self-ensemble" not in outputs["single"][1]["model_name"]


def test_without_self_ensemble_a_model_runs_as_its_card_says(capsys, tmp_path, user_models):
    """No --self-ensemble: as many copies as the card's `self_ensemble` (how its figures were measured);
    --self-ensemble 1 still gives the single pass."""
    write_model(user_models, model_id="fourfold", card_changes={"self_ensemble": 4})
    np.save(tmp_path / "a.npy", hu_image(40, 30))
    names = {}
    for name, extra in (("card", []), ("one", ["--self-ensemble", "1"]), ("four", ["--self-ensemble", "4"])):
        code, out, err = run(
            capsys, "enhance", "--model", "fourfold", "--device", "cpu", "--json", *extra,
            "-o", tmp_path / f"{name}.npy", tmp_path / "a.npy",
        )  # fmt: skip
        assert code == 0, err
        names[name] = records(out)[0]["model_name"]
    assert names["card"].endswith("(self-ensemble x4)") and "self-ensemble" not in names["one"]
    np.testing.assert_array_equal(np.load(tmp_path / "card.npy"), np.load(tmp_path / "four.npy"))
    assert not np.array_equal(np.load(tmp_path / "card.npy"), np.load(tmp_path / "one.npy"))


@pytest.mark.parametrize("size", ["3", "0", "two"])
def test_a_bad_self_ensemble_size_is_one_line_exit_two(capsys, tmp_path, size):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "enhance", "--model", "nlm", "--self-ensemble", size, "-o", tmp_path / "o.npy", SAMPLE_PNG)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--self-ensemble" in err and err.count("\n") == 1
    assert not (tmp_path / "o.npy").exists()
