"""The trained models in resources/models: small enough for the repository, preselected where they are the
default, honest cards, and better than the classical methods on held-out images they never saw."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.evaluation import simulate
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import held_out_images

SHIPPED = ["msdenoiser", "fastsr-x2", "fastsr-x4", "lowdose-denoiser", "srcnn-x2", "srcnn-x4", "vdsr-x2", "vdsr-x4"]


@pytest.fixture(scope="module")
def registry():
    return discover_models([BUNDLED_MODELS_FOLDER])


def test_every_shipped_model_is_listed_and_small(registry):
    assert not registry.skipped
    assert {entry.id for entry in registry.entries if entry.kind == "network"} >= set(SHIPPED)
    files = list(BUNDLED_MODELS_FOLDER.iterdir())
    assert all(path.stat().st_size < 25e6 for path in files)
    assert sum(path.stat().st_size for path in files) < 120e6
    for model_id in SHIPPED:
        with safe_open(BUNDLED_MODELS_FOLDER / f"{model_id}.safetensors", "pt") as weights:
            assert {str(weights.get_slice(name).get_dtype()) for name in weights.keys()} == {"F16"}


def test_defaults_are_the_denoiser_and_the_fast_x2_network(registry):
    assert registry.default_entry("denoise").id == "msdenoiser"
    assert registry.default_entry("super-resolution").id == "fastsr-x2"
    assert [entry.id for entry in registry.entries if entry.card is not None and entry.card.default] == [
        "msdenoiser",
        "fastsr-x2",
    ]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_cards_state_their_data_device_time_and_baselines(registry, model_id):
    card = registry.get(model_id).card
    assert "training pool" in card.training_data
    assert "Not a medical device" in card.limits
    training = card.extra["training"]
    assert (
        training["device"].startswith(("cpu", "cuda")) and training["seconds"] > 120
    )  # minutes of real training, not a placeholder
    baselines = card.extra["baselines"]
    for spec, figures in card.extra["validation_by_degradation"].items():
        assert figures["psnr"] > baselines[spec]["classical"]["psnr"], spec


@pytest.mark.parametrize(
    ("model_id", "baseline_id", "spec", "margin_db"),
    [
        ("msdenoiser", "nlm", "noise:25", 0.5),
        ("lowdose-denoiser", "nlm", "lowdose:60", 1.0),
        ("lowdose-denoiser", "msdenoiser", "lowdose:30", 0.1),
        ("fastsr-x2", "bicubic-x2", "sr:2", 2.0),
        ("fastsr-x4", "bicubic-x4", "sr:4", 0.8),
        ("srcnn-x2", "bicubic-x2", "sr:2", 0.5),
        ("srcnn-x4", "bicubic-x4", "sr:4", 0.5),
        ("fastsr-x2", "srcnn-x2", "sr:2", 1.0),
        ("vdsr-x2", "bicubic-x2", "sr:2", 1.5),
        ("vdsr-x2", "srcnn-x2", "sr:2", 0.5),
        ("fastsr-x2", "vdsr-x2", "sr:2", 0.3),  # the fast default at or above VDSR, at 1/11.5 of its FLOPs
        ("vdsr-x4", "bicubic-x4", "sr:4", 1.0),
        ("vdsr-x4", "srcnn-x4", "sr:4", 0.3),
        ("fastsr-x4", "vdsr-x4", "sr:4", 0.2),
    ],
)
def test_shipped_networks_beat_the_classical_method_on_held_out_images(
    registry, model_id, baseline_id, spec, margin_db
):
    # Two held-out images (a photograph and a CT slice), never trained on; the full table is the benchmark's.
    images = held_out_images()
    degradation = parse_degradation(spec)
    network, baseline = (load_enhancer(registry.get(name), "cpu") for name in (model_id, baseline_id))
    gains = [
        simulate(network, images[name], degradation, seed=3).enhanced_scores.psnr
        - simulate(baseline, images[name], degradation, seed=3).enhanced_scores.psnr
        for name in ("camera (centre 256)", "CT_small.dcm")
    ]
    assert float(np.mean(gains)) > margin_db, gains
