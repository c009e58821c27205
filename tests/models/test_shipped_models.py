"""The trained models in resources/models: small enough for the repository, preselected where they are the
default, honest cards, and better than the classical methods on held-out images they never saw; the GAN
models doing what they are for (SRGAN sharper than its L1 twin, CycleGAN's round trip holding on both
domains while it moves images toward the other)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.evaluation import simulate
from medviewer.metrics import high_frequency_ratio
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import held_out_images, normalised

SUPERVISED = [
    "msdenoiser",
    "fastsr-x2",
    "fastsr-x4",
    "lowdose-denoiser",
    "srcnn-x2",
    "srcnn-x4",
    "vdsr-x2",
    "vdsr-x4",
    "srresnet-cbam-x4",
]
ADVERSARIAL = ["srgan-cbam-x4", "pix2pix-denoiser", "dagan-denoiser"]
TRANSLATION = ["cyclegan-xray-ct", "cyclegan-xray-ct-reverse"]  # InstanceNorm: float32 (not half-precision safe)
FLOAT32 = TRANSLATION + ["pix2pix-denoiser"]  # InstanceNorm: not trusted to half precision
SHIPPED = SUPERVISED + ADVERSARIAL + TRANSLATION


@pytest.fixture(scope="module")
def registry():
    return discover_models([BUNDLED_MODELS_FOLDER])


def test_every_shipped_model_is_listed_and_small(registry):
    assert not registry.skipped
    assert {entry.id for entry in registry.entries if entry.kind == "network"} >= set(SHIPPED)
    files = list(BUNDLED_MODELS_FOLDER.iterdir())
    assert all(path.stat().st_size < 25e6 for path in files)
    assert sum(path.stat().st_size for path in files) < 120e6
    for model_id in sorted(set(SHIPPED) - set(FLOAT32)):
        with safe_open(BUNDLED_MODELS_FOLDER / f"{model_id}.safetensors", "pt") as weights:
            dtypes = {str(weights.get_slice(name).get_dtype()) for name in weights.keys()}
            assert dtypes - {"I64"} == {"F16"}, dtypes  # I64: BatchNorm's step counter


def test_defaults_are_the_denoiser_and_the_fast_x2_network(registry):
    assert registry.default_entry("denoise").id == "msdenoiser"
    assert registry.default_entry("super-resolution").id == "fastsr-x2"
    assert [entry.id for entry in registry.entries if entry.card is not None and entry.card.default] == [
        "msdenoiser",
        "fastsr-x2",
    ]
    # The default denoiser runs as an x4 self-ensemble (its figures are for that); every other model one pass.
    ensembles = {entry.id: entry.card.self_ensemble for entry in registry.entries if entry.card is not None}
    assert ensembles.pop("msdenoiser") == 4 and set(ensembles.values()) == {1}
    assert load_enhancer(registry.get("msdenoiser"), "cpu").name.endswith("(self-ensemble x4)")


@pytest.mark.parametrize("model_id", SHIPPED)
def test_cards_state_their_data_device_time_and_baselines(registry, model_id):
    card = registry.get(model_id).card
    assert "training pool" in card.training_data or "translation_domains" in card.training_data
    assert "Not a medical device" in card.limits
    training = card.extra["training"]
    assert (
        training["device"].startswith(("cpu", "cuda")) and training["seconds"] > 120
    )  # minutes of real training, not a placeholder
    if model_id in TRANSLATION:
        assert card.extra["synthetic_output"] is True and "SYNTHETIC" in card.limits
        assert set(card.extra["cycle_validation"]) == {"a", "b"}
        return
    # Supervised networks beat the classical method on their validation split; a GAN is not trained for PSNR
    # and is only held to beating its degraded input there (its held-out figures are in README.md).
    beaten = "classical" if model_id in SUPERVISED else "input"
    baselines = card.extra["baselines"]
    for spec, figures in card.extra["validation_by_degradation"].items():
        assert figures["psnr"] > baselines[spec][beaten]["psnr"], spec


@pytest.mark.parametrize(
    ("model_id", "baseline_id", "spec", "margin_db"),
    [
        ("msdenoiser", "nlm", "noise:25", 0.5),
        ("lowdose-denoiser", "nlm", "lowdose:60", 1.0),
        # The default never trained on Poisson noise, but its noise maps taught it to judge noise locally.
        ("msdenoiser", "nlm", "lowdose:30", 2.0),
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


def test_srgan_is_sharper_than_its_l1_twin_at_most_1_5_db_below_it(registry):
    """The issue's SRGAN target on the held-out images: more high-frequency energy than the SRResNet twin
    trained with L1 alone, PSNR no more than 1.5 dB below it."""
    images = held_out_images()
    degradation = parse_degradation("sr:4")
    scores = {}
    for model_id in ("srgan-cbam-x4", "srresnet-cbam-x4"):
        enhancer = load_enhancer(registry.get(model_id), "cpu")
        results = [simulate(enhancer, images[name], degradation, seed=3) for name in images]
        scores[model_id] = (
            np.mean([result.enhanced_scores.psnr for result in results]),
            np.mean([high_frequency_ratio(result.reference, result.enhanced) for result in results]),
        )
    (gan_psnr, gan_detail), (twin_psnr, twin_detail) = scores["srgan-cbam-x4"], scores["srresnet-cbam-x4"]
    assert gan_detail > 1.2 * twin_detail, scores
    assert gan_psnr > twin_psnr - 1.5, scores


def test_cyclegan_round_trip_holds_on_held_out_images_of_both_domains(registry):
    """Cycle error on unseen radiographs and DRRs (A) and CT_small / MR_small (B), and a translation that moves
    an X-ray's grey levels toward the CT/MR domain's (an identity mapping would pass the first check alone)."""
    from scipy.stats import wasserstein_distance

    from trainer.translation_domains import ct_mr_domain, head_ct_volume, held_out_domains

    forward, reverse = (load_enhancer(registry.get(model_id), "cpu") for model_id in TRANSLATION)
    volume = head_ct_volume()
    held_out = held_out_domains(volume)
    domain_b = np.concatenate([normalised(image).ravel() for _, image in ct_mr_domain(volume)])
    distances = {"before": [], "after": []}  # X-ray grey levels to domain B's
    for domain, there, back in (("A", forward, reverse), ("B", reverse, forward)):
        errors = []
        for image in held_out[domain].values():
            original = normalised(image).astype(np.float32)
            translated = there.enhance_normalised_image(original)
            errors.append(float(np.mean(np.abs(back.enhance_normalised_image(translated) - original))))
            if domain == "A":
                assert translated.shape == original.shape and np.isfinite(translated).all()
                distances["before"].append(wasserstein_distance(original.ravel(), domain_b[::50]))
                distances["after"].append(wasserstein_distance(translated.ravel(), domain_b[::50]))
        # Held out as shipped: 0.085 (A) and 0.128 (B, two clinical-like slices unlike the synthetic head CT
        # that dominates domain B); the bounds catch a broken or retrained-for-the-worse pair.
        assert float(np.mean(errors)) < {"A": 0.10, "B": 0.16}[domain], (domain, errors)
    # As shipped the mean distance halves (0.133 to 0.067 in the benchmark); one radiograph already near B's
    # grey levels moves a little away, so the mean is what is held.
    assert np.mean(distances["after"]) < 0.75 * np.mean(distances["before"]), distances


def test_self_ensemble_raises_the_default_denoisers_psnr_on_held_out_images(registry):
    """x8 self-ensemble of the shipped default beats its single pass (README: +0.2 dB on the held-out six);
    on two held-out images at sigma 25 the gain must be real, not rounding."""
    images = held_out_images()
    degradation = parse_degradation("noise:25")
    single, eight = (load_enhancer(registry.get("msdenoiser"), "cpu", ensemble=size) for size in (1, 8))
    gains = [
        simulate(eight, images[name], degradation, seed=3).enhanced_scores.psnr
        - simulate(single, images[name], degradation, seed=3).enhanced_scores.psnr
        for name in ("camera (centre 256)", "CT_small.dcm")
    ]
    assert min(gains) > 0.03 and float(np.mean(gains)) > 0.08, gains
