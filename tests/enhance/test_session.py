"""The viewer's worker runs: reference choices, slices of a series and model comparisons, with progress and
cancellation, scored as scikit-image scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from medviewer.enhance.degrade import InvalidDegradationError, degrade, normalise, parse_degradation
from medviewer.enhance.engine import EnhancementCancelled, Enhancer, load_enhancer
from medviewer.enhance.session import (
    REFERENCE_MODES,
    EvaluationTooLargeError,
    InvalidReferenceError,
    ReferenceChoice,
    compare_models,
    device_label,
    evaluate,
    evaluate_slices,
)
from medviewer.errors import FrameOutOfRangeError, MedViewerError
from medviewer.io import volume_memory
from medviewer.io.study import load_studies
from medviewer.io.synthetic import head_phantom_hu, write_ct_series
from medviewer.models.registry import discover_models
from tests.conftest import SAMPLE_STUDY
from tests.models.model_folder import write_model

NOISE = "noise:25"


class IdentityEnhancer(Enhancer):
    """Returns its input; reports half-way and done, checks cancellation first, counts its runs."""

    def __init__(self, scale: int = 1, fail_with: str | None = None):
        import torch

        super().__init__("identity", "Identity", "denoise", scale, torch.device("cpu"))
        self.runs = 0
        self.fail_with = fail_with

    def run_normalised(self, images, progress=None, should_cancel=None):
        if should_cancel is not None and should_cancel():
            raise EnhancementCancelled()
        if self.fail_with:
            raise MedViewerError(self.fail_with)
        self.runs += 1
        if progress is not None:
            progress(0.5)
        output = np.repeat(np.repeat(images, self.scale, axis=1), self.scale, axis=2).astype(np.float32)
        if progress is not None:
            progress(1.0)
        return output


@pytest.fixture(scope="module")
def sample_series():
    return load_studies([SAMPLE_STUDY]).series[0]


@pytest.fixture(scope="module")
def registry():
    return discover_models(folders=[])


@pytest.fixture(scope="module")
def clean_and_noisy(tmp_path_factory):
    """Two 3-slice 64x64 phantom series of the same anatomy: a clean reference and a noisier scan."""
    folder = tmp_path_factory.mktemp("paired")
    write_ct_series(folder / "clean", head_phantom_hu(3, 64, noise_hu=0.0), uid_seed="clean")
    write_ct_series(folder / "noisy", head_phantom_hu(3, 64, seed=4, noise_hu=40.0), uid_seed="noisy")
    clean = load_studies([folder / "clean"]).series[0]
    noisy = load_studies([folder / "noisy"]).series[0]
    return clean, noisy


# --- ReferenceChoice ----------------------------------------------------------------------------------


def test_reference_choices_parse_and_describe_themselves():
    simulated = ReferenceChoice.simulate("noise:25", seed=3)
    assert simulated.mode == "simulate" and simulated.degradation == parse_degradation("noise:25")
    assert simulated.seed == 3
    assert simulated.describe() == "simulate noise:25"
    assert ReferenceChoice.paired(Path("/scans/full_dose.dcm")).describe() == "paired with full_dose.dcm"
    assert ReferenceChoice.none().describe() == "no reference"
    assert REFERENCE_MODES == ("simulate", "paired", "none")


def test_bad_choices_are_refused_with_one_line():
    with pytest.raises(InvalidDegradationError):
        ReferenceChoice.simulate("blur:3")
    with pytest.raises(InvalidReferenceError, match="unknown reference mode") as raised:
        ReferenceChoice(mode="guess")
    assert "\n" not in str(raised.value)
    with pytest.raises(InvalidReferenceError, match="needs a degradation"):
        ReferenceChoice(mode="simulate")


# --- evaluate -----------------------------------------------------------------------------------------


def test_evaluate_simulate_degrades_with_the_choice_seed(sample_series):
    values = sample_series.values(5)
    result = evaluate(IdentityEnhancer(), values, ReferenceChoice.simulate(NOISE, seed=9))
    frame = normalise(values)
    expected_input = frame.restore(degrade(frame.image, parse_degradation(NOISE), seed=9))
    np.testing.assert_allclose(result.model_input, expected_input, atol=1e-3)
    assert result.mode == "simulate" and result.degradation == NOISE
    # the identity gains nothing over its (degraded) input
    assert result.gain_db == pytest.approx(0.0, abs=1e-9)


def test_evaluate_paired_scores_against_the_reference(clean_and_noisy):
    clean, noisy = clean_and_noisy
    result = evaluate(IdentityEnhancer(), noisy.values(1), ReferenceChoice.paired(None), reference=clean.values(1))
    reference = clean.values(1).astype(np.float64)
    low, high = reference.min(), reference.max()
    expected = peak_signal_noise_ratio(
        (reference - low) / (high - low), (noisy.values(1) - low) / (high - low), data_range=1.0
    )
    assert result.mode == "paired"
    assert result.enhanced_scores.psnr == pytest.approx(expected, abs=1e-3)


def test_evaluate_paired_without_a_reference_is_a_one_line_error(sample_series):
    with pytest.raises(InvalidReferenceError, match="needs a reference image") as raised:
        evaluate(IdentityEnhancer(), sample_series.values(0), ReferenceChoice.paired(Path("ref.dcm")))
    assert "\n" not in str(raised.value)


def test_evaluate_without_reference_has_no_scores(sample_series):
    result = evaluate(IdentityEnhancer(), sample_series.values(0), ReferenceChoice.none())
    assert result.mode == "none" and result.enhanced_scores is None and result.baseline_scores is None
    # enhanced minus input, in HU; the identity changes nothing but float rounding of the HU range
    np.testing.assert_allclose(result.difference, 0.0, atol=1e-3)


# --- evaluate_slices ----------------------------------------------------------------------------------


def test_slices_get_their_own_reproducible_noise(sample_series):
    choice = ReferenceChoice.simulate(NOISE, seed=7)
    results = evaluate_slices(IdentityEnhancer(), sample_series, [2, 10], choice)
    assert list(results) == [2, 10]
    degradation = parse_degradation(NOISE)
    for index in (2, 10):
        frame = normalise(sample_series.values(index))
        expected = frame.restore(degrade(frame.image, degradation, seed=7 + index))
        np.testing.assert_allclose(results[index].model_input, expected, atol=1e-3)
    again = evaluate_slices(IdentityEnhancer(), sample_series, [2], choice)
    np.testing.assert_array_equal(again[2].model_input, results[2].model_input)


def test_slice_progress_is_overall_with_each_slice_scaled_into_its_share(sample_series):
    seen: list[float] = []
    evaluate_slices(IdentityEnhancer(), sample_series, [0, 1], ReferenceChoice.none(), progress=seen.append)
    # slice 0: inner 0.5 and 1.0 -> 0.25, 0.5, then done -> 0.5; slice 1: 0.75, 1.0, then 1.0
    assert seen == pytest.approx([0.25, 0.5, 0.5, 0.75, 1.0, 1.0])


def test_cancelling_between_slices(sample_series):
    enhancer, seen = IdentityEnhancer(), []
    with pytest.raises(EnhancementCancelled):
        evaluate_slices(
            enhancer,
            sample_series,
            [0, 1, 2],
            ReferenceChoice.none(),
            progress=seen.append,
            should_cancel=lambda: bool(seen),
        )
    assert enhancer.runs == 1


def test_cancelling_within_a_slice(sample_series):
    enhancer, calls = IdentityEnhancer(), []

    def second_check_cancels() -> bool:  # the first check is before the slice, the second inside the enhancer
        calls.append(None)
        return len(calls) >= 2

    with pytest.raises(EnhancementCancelled):
        evaluate_slices(enhancer, sample_series, [0, 1], ReferenceChoice.none(), should_cancel=second_check_cancels)
    assert enhancer.runs == 0 and len(calls) == 2


def test_paired_slices_use_the_same_slice_of_the_reference_series(clean_and_noisy):
    clean, noisy = clean_and_noisy
    results = evaluate_slices(IdentityEnhancer(), noisy, [0, 2], ReferenceChoice.paired(None), reference_series=clean)
    for index in (0, 2):
        np.testing.assert_array_equal(results[index].reference, clean.values(index))
        reference = clean.values(index).astype(np.float64)
        low, high = reference.min(), reference.max()
        expected = peak_signal_noise_ratio(
            (reference - low) / (high - low), (noisy.values(index) - low) / (high - low), data_range=1.0
        )
        assert results[index].enhanced_scores.psnr == pytest.approx(expected, abs=1e-3)


def test_paired_slices_need_a_reference_series_of_the_same_length(clean_and_noisy, sample_series):
    clean, noisy = clean_and_noisy
    with pytest.raises(InvalidReferenceError, match="has 24 slices but the series has 3"):
        evaluate_slices(IdentityEnhancer(), noisy, [0], ReferenceChoice.paired(None), reference_series=sample_series)
    with pytest.raises(InvalidReferenceError, match="needs a reference series"):
        evaluate_slices(IdentityEnhancer(), noisy, [0], ReferenceChoice.paired(None))


def test_slices_out_of_range_are_refused_before_any_work(sample_series):
    enhancer = IdentityEnhancer()
    with pytest.raises(FrameOutOfRangeError, match="slice 24 is out of range"):
        evaluate_slices(enhancer, sample_series, [0, 24], ReferenceChoice.none())
    assert enhancer.runs == 0


def test_slices_that_would_not_fit_in_memory_are_refused(sample_series, monkeypatch):
    # 2 slices x 5 float32 arrays of 512x512 (a x2 model on 256x256 without reference) = 10,485,760 bytes
    needed = 2 * 5 * 512 * 512 * 4
    monkeypatch.setattr(volume_memory, "memory_budget_bytes", lambda: needed - 1)
    enhancer = IdentityEnhancer(scale=2)
    with pytest.raises(EvaluationTooLargeError, match="choose fewer slices") as raised:
        evaluate_slices(enhancer, sample_series, [0, 1], ReferenceChoice.none())
    assert "\n" not in str(raised.value) and enhancer.runs == 0
    monkeypatch.setattr(volume_memory, "memory_budget_bytes", lambda: needed)
    assert len(evaluate_slices(enhancer, sample_series, [0, 1], ReferenceChoice.none())) == 2


# --- compare_models -----------------------------------------------------------------------------------


def test_compare_models_keeps_going_past_failures(tmp_path, sample_series, registry):
    write_model(tmp_path, "tiny-dncnn", "dncnn", {"depth": 3, "width": 4}, task="denoise", scale=1)
    network = discover_models(folders=[tmp_path]).get("tiny-dncnn")
    broken = registry.get("clahe")  # stands in for a model whose weights fail to load
    entries = [registry.get("unsharp"), registry.get("bicubic-x2"), network, broken]

    def load(entry, device=None):
        if entry.id == "clahe":
            raise MedViewerError("clahe.safetensors: file is truncated")
        return load_enhancer(entry, device)

    values = sample_series.values(3)[:64, :64]
    seen: list[float] = []
    results = compare_models(
        entries, values, ReferenceChoice.simulate(NOISE, seed=1), device="cpu", load=load, progress=seen.append
    )
    assert [result.entry.id for result in results] == ["unsharp", "bicubic-x2", "tiny-dncnn", "clahe"]
    unsharp, bicubic, tiny, failed = results
    assert unsharp.error is None and unsharp.device == "CPU (classical)"
    clean = (values - values.min()) / (values.max() - values.min())
    enhanced = (unsharp.evaluation.enhanced - values.min()) / (values.max() - values.min())
    assert unsharp.evaluation.enhanced_scores.psnr == pytest.approx(
        peak_signal_noise_ratio(clean, enhanced, data_range=1.0), abs=1e-3
    )
    assert bicubic.evaluation is None and "needs a same-size model" in bicubic.error
    assert tiny.error is None and tiny.evaluation.enhanced.shape == (64, 64) and tiny.device.startswith("cpu (")
    assert failed.evaluation is None and failed.error == "clahe.safetensors: file is truncated"
    assert seen == sorted(seen) and all(0.0 <= fraction <= 1.0 for fraction in seen) and seen[-1] == 1.0
    assert 0.25 in seen and 0.5 in seen and 0.75 in seen  # each model's end is its share of the whole


def test_compare_models_reports_a_model_that_fails_while_running(sample_series, registry):
    def load(entry, device=None):
        return IdentityEnhancer(fail_with="out of memory on cuda even with the smallest tiles; try --device cpu")

    results = compare_models([registry.get("nlm")], sample_series.values(0), ReferenceChoice.none(), load=load)
    assert results[0].evaluation is None and results[0].error.startswith("out of memory")


def test_compare_models_in_paired_mode_reports_a_wrong_scale(clean_and_noisy, registry):
    clean, noisy = clean_and_noisy
    entries = [registry.get("bicubic-x2"), registry.get("unsharp")]
    results = compare_models(entries, noisy.values(0), ReferenceChoice.paired(None), reference=clean.values(0))
    assert "reference is 64x64" in results[0].error
    assert results[1].error is None and results[1].evaluation.mode == "paired"


def test_compare_models_cancellation_propagates(sample_series, registry):
    loaded: list[str] = []

    def load(entry, device=None):
        loaded.append(entry.id)
        return IdentityEnhancer()

    entries = [registry.get("unsharp"), registry.get("nlm")]
    with pytest.raises(EnhancementCancelled):
        compare_models(
            entries, sample_series.values(0), ReferenceChoice.none(), load=load, should_cancel=lambda: bool(loaded)
        )
    assert loaded == ["unsharp"]


def test_wrong_scale_is_known_before_loading(sample_series, registry):
    def load(entry, device=None):
        raise AssertionError("a model that cannot fit the degradation must not be loaded")

    results = compare_models(
        [registry.get("bicubic-x2")], sample_series.values(0), ReferenceChoice.simulate("noise:5"), load=load
    )
    assert "noise:5 needs a same-size model" in results[0].error


def test_device_labels_name_where_a_model_ran_or_would_have(tmp_path, registry):
    write_model(tmp_path, "tiny-dncnn", "dncnn", {"depth": 3, "width": 4}, task="denoise", scale=1)
    network = discover_models(folders=[tmp_path]).get("tiny-dncnn")
    assert device_label(registry.get("nlm"), None, "cuda") == "CPU (classical)"
    assert device_label(network, None, "cpu").startswith("cpu (") and "threads" in device_label(network, None, "cpu")
    assert device_label(network, None, "abacus") == "abacus"  # an unknown device is named as asked
