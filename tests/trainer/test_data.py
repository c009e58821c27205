"""Training data: split by series, deterministic by seed; pools keep 16-bit precision; patches depend only on
(seed, index); paired folders match by relative path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medviewer.enhance.degrade import degrade, normalise
from medviewer.io.synthetic import head_phantom_hu, write_ct_series
from tests.trainer.phantoms import phantom
from trainer.data import (
    DataError,
    PatchDataset,
    PatchSettings,
    StepBatchSampler,
    build_pools,
    noise_sigma_map,
    scan_data,
    split_series,
    split_summary,
)
from trainer.recipe import load_recipe, parse_degradation_range, recipe_from_table, shipped_recipes


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory):
    """Four DICOM CT series of 6 slices each, and two PNGs: 6 series in all."""
    folder = tmp_path_factory.mktemp("ct")
    for number in range(4):
        volume = head_phantom_hu(6, 64, seed=number)
        write_ct_series(
            folder / f"series{number}",
            volume,
            series_uid=f"1.2.3.4.{number}",
            uid_seed=f"s{number}",
            series_number=number + 1,
        )
    from PIL import Image

    for index in range(2):
        Image.fromarray((phantom(64, index) * 65535).astype(np.uint16)).save(folder / f"extra{index}.png")
    return folder


def _recipe(*overrides):
    return load_recipe(shipped_recipes()["msdenoiser"], list(overrides))


def test_split_is_by_series_and_deterministic_by_seed(ct_folder):
    recipe = _recipe("val_fraction=0.34", "test_fraction=0.17")
    records = scan_data(recipe, [ct_folder])
    assert sorted(record.frames for record in records) == [1, 1, 6, 6, 6, 6]
    splits = split_series(records, recipe)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [3, 2, 1]
    files = {name: {file for record in records for file in record.files} for name, records in splits.items()}
    assert not (files["train"] & files["val"]) and not (files["train"] & files["test"])
    for record in records:  # every slice of a series goes where its series goes
        if record.frames == 6:
            assert len({file.split("/")[0] for file in record.files}) == 1
    again = split_series(scan_data(recipe, [ct_folder]), recipe)
    assert split_summary(again) == split_summary(splits)
    other = split_series(scan_data(recipe, [ct_folder]), _recipe("val_fraction=0.34", "test_fraction=0.17", "seed=5"))
    assert split_summary(other) != split_summary(splits)
    assert "1.2.3.4" not in json.dumps(split_summary(splits))  # no UIDs leave the folder


def test_pools_keep_values_in_float32_and_16_bit_precision(ct_folder, tmp_path):
    recipe = _recipe()
    records = [record for record in scan_data(recipe, [ct_folder]) if record.frames == 6][:1]
    pool, reference, left_out = build_pools(records, tmp_path, "train", paired=False, min_side=32)
    assert reference is None and left_out == 0 and len(pool) == 6
    frames = pool.open()
    slice_three = pool.frame(frames, 3)
    expected = normalise(records[0].series.values(3)).image
    np.testing.assert_array_equal(slice_three, expected)
    assert slice_three.dtype == np.float32 and len(np.unique(slice_three)) > 256  # not squeezed to 8 bits


def test_frames_smaller_than_a_patch_are_left_out(ct_folder, tmp_path):
    records = scan_data(_recipe(), [ct_folder])
    pool, _, left_out = build_pools(records, tmp_path, "train", paired=False, min_side=65)
    assert len(pool) == 0 and left_out == 26


def test_patches_depend_only_on_seed_and_index_whatever_the_workers(ct_folder, tmp_path):
    recipe = _recipe()
    pool, _, _ = build_pools(scan_data(recipe, [ct_folder]), tmp_path, "train", paired=False, min_side=32)
    settings = PatchSettings(32, parse_degradation_range("noise:0-55"), 1.5, 0.3, 0.0, seed=3)
    dataset = PatchDataset([pool], settings, "synthetic")

    def batches(workers, start):
        loader = DataLoader(dataset, batch_sampler=StepBatchSampler(start, 6, 4), num_workers=workers)
        return [batch for batch in loader]

    in_process, with_workers, resumed = batches(0, 0), batches(2, 0), batches(0, 4)
    for mine, theirs in zip(in_process, with_workers, strict=True):
        assert torch.equal(mine["input"], theirs["input"]) and torch.equal(mine["target"], theirs["target"])
    assert torch.equal(in_process[4]["input"], resumed[0]["input"])
    assert not torch.equal(in_process[0]["target"], in_process[1]["target"])
    other_seed = PatchDataset([pool], PatchSettings(32, settings.degradation, 1.5, 0.3, 0.0, seed=4), "synthetic")
    assert not torch.equal(other_seed[0]["target"], dataset[0]["target"])


def test_a_split_batch_is_the_combined_batch():
    whole = list(StepBatchSampler(3, 5, 8))
    halves = [list(StepBatchSampler(3, 5, 8, rank, 2)) for rank in (0, 1)]
    for step, batch in enumerate(whole):
        assert halves[0][step] + halves[1][step] == batch
    with pytest.raises(DataError, match="divisible"):
        StepBatchSampler(0, 5, 7, 0, 2)


def test_super_resolution_patches_are_downscaled_with_context(ct_folder, tmp_path):
    pool, _, _ = build_pools(scan_data(_recipe(), [ct_folder]), tmp_path, "train", paired=False, min_side=48)
    settings = PatchSettings(32, parse_degradation_range("sr:4"), 1.0, 0.0, 0.0, seed=0)
    item = PatchDataset([pool], settings, "synthetic")[7]
    assert item["target"].shape == (1, 32, 32) and item["input"].shape == (1, 8, 8)
    # Downscaled from a wider crop: not the same as downscaling the patch alone at its edges.
    alone = degrade(item["target"][0].numpy(), parse_degradation_range("sr:4").at(0.0))
    assert not np.allclose(alone[0], item["input"][0, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(alone[3:5, 3:5], item["input"][0, 3:5, 3:5].numpy(), atol=2e-2)


def test_amount_exponent_draws_more_low_noise_patches(ct_folder, tmp_path):
    pool, _, _ = build_pools(scan_data(_recipe(), [ct_folder]), tmp_path, "train", paired=False, min_side=32)

    def median_sigma(exponent: float) -> float:
        settings = PatchSettings(32, parse_degradation_range("noise:0-55"), 1.0, 0.0, 0.0, 5, exponent)
        dataset = PatchDataset([pool], settings, "synthetic")
        residuals = [float((dataset[index]["input"] - dataset[index]["target"]).std()) * 255 for index in range(300)]
        return float(np.median(residuals))

    # Uniform draws: median sigma 27.5 of 55; u**2: half the draws below 55/4.
    assert median_sigma(1.0) == pytest.approx(27.5, abs=4)
    assert median_sigma(2.0) == pytest.approx(55 / 4, abs=3)


def test_blind_ranges_cover_their_amounts():
    noise = parse_degradation_range("noise:0-55")
    assert noise.at(0.0) is None and noise.at(1.0).amount == 55 and noise.spec == "noise:0-55"
    assert noise.at(1e-9) is None  # rounds to 0: clean, not an invalid amount (u**e makes such draws common)
    dose = parse_degradation_range("lowdose:20-400")
    assert dose.at(0.0).amount == pytest.approx(20) and dose.at(0.5).amount == pytest.approx((20 * 400) ** 0.5)
    assert parse_degradation_range("sr:4").at(0.3).scale == 4


def test_paired_folders_are_matched_by_relative_path(tmp_path):
    from PIL import Image

    for folder in ("low", "high"):
        for index in range(4):
            image = phantom(64, index)
            if folder == "low":
                image = np.clip(image + np.random.default_rng(index).normal(0, 0.05, image.shape), 0, 1)
            (tmp_path / folder / f"patient{index}").mkdir(parents=True)
            Image.fromarray((image * 65535).astype(np.uint16)).save(tmp_path / folder / f"patient{index}" / "a.png")
    (tmp_path / "low" / "unmatched.png").write_bytes((tmp_path / "low" / "patient0" / "a.png").read_bytes())
    table = json.loads(json.dumps(_recipe().to_json()))
    table["data"]["pairing"] = "paired"
    table["data"]["degradation"] = "none"
    recipe = recipe_from_table(table, [])
    records = scan_data(recipe, [tmp_path / "low", tmp_path / "high"])
    assert sorted(record.files[0] for record in records) == [f"patient{index}/a.png" for index in range(4)]
    pool, reference, _ = build_pools(records, tmp_path / "cache", "train", paired=True, min_side=32)
    low, high = pool.frame(pool.open(), 0), reference.frame(reference.open(), 0)
    assert high.min() == 0 and high.max() == 1  # both on the reference's scale
    assert 0.02 < float(np.abs(low - high).mean()) < 0.08
    with pytest.raises(DataError, match="exactly two folders"):
        scan_data(recipe, [tmp_path / "low"])


def test_noise_maps_vary_the_sigma_over_the_patch(ct_folder, tmp_path):
    pool, _, _ = build_pools(scan_data(_recipe(), [ct_folder]), tmp_path, "train", paired=False, min_side=32)

    def block_spread_and_rms(maps: float) -> tuple[float, float]:
        settings = PatchSettings(32, parse_degradation_range("noise:25"), 1.0, 0.0, 0.0, 5, 1.0, maps)
        dataset = PatchDataset([pool], settings, "synthetic")
        spreads, levels = [], []
        for index in range(80):
            residual = (dataset[index]["input"] - dataset[index]["target"])[0].numpy().astype(np.float64)
            blocks = residual.reshape(4, 8, 4, 8).std(axis=(1, 3))
            spreads.append(blocks.max() / blocks.min())
            levels.append(np.sqrt(np.mean(residual**2)) * 255)
        assert torch.equal(dataset[3]["input"], dataset[3]["input"])  # still one patch per (seed, index)
        return float(np.median(spreads)), float(np.median(levels))

    stationary, stationary_level = block_spread_and_rms(0.0)
    varying, varying_level = block_spread_and_rms(1.0)
    assert stationary < 2.0 and varying > 1.5 * stationary
    # The drawn sigma stays the level: the map only moves noise around the patch.
    assert stationary_level == pytest.approx(25, rel=0.1) and varying_level == pytest.approx(25, rel=0.2)


def test_noise_sigma_map_has_the_drawn_rms_and_follows_the_signal():
    clean = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    for seed in range(12):
        sigma = noise_sigma_map(clean, 0.1, np.random.default_rng(seed))
        assert sigma.shape == clean.shape and sigma.min() > 0
        assert float(np.sqrt(np.mean(sigma.astype(np.float64) ** 2))) == pytest.approx(0.1, rel=1e-4)
    # Some maps are signal-dependent: the bright side noisier than the dark one, column for column.
    maps = [noise_sigma_map(clean, 0.1, np.random.default_rng(seed)) for seed in range(12)]
    assert any(np.all(np.diff(sigma[0]) > 0) for sigma in maps)
    assert any(not np.all(np.diff(sigma[0]) >= 0) for sigma in maps)


class _NearlyConstantField:
    """A generator stub that draws the smooth-field branch with white noise almost equal everywhere: after
    the Gaussian filter its mean is ~1e10 times its spread, the case that once overflowed exp()."""

    def random(self):
        return 0.0

    def uniform(self, low, high):
        return high

    def standard_normal(self, shape):
        return 1.0 + 1e-6 * np.random.default_rng(0).standard_normal(shape)


def test_noise_sigma_map_survives_a_field_whose_mean_dwarfs_its_spread():
    clean = np.full((128, 128), 0.5, np.float32)
    sigma = noise_sigma_map(clean, 0.1, _NearlyConstantField())
    assert np.isfinite(sigma).all() and sigma.min() > 0
    assert float(np.sqrt(np.mean(sigma.astype(np.float64) ** 2))) == pytest.approx(0.1, rel=1e-4)
    assert sigma.max() / sigma.min() > 1.5  # still a varying map, not a constant one
