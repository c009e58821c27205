"""Model cards, safetensors weights and the registry: valid models listed, broken ones reported, never fatal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from medviewer.errors import UnknownModelError
from medviewer.models.architectures import build_architecture
from medviewer.models.card import InvalidModelCardError, read_model_card
from medviewer.models.registry import (
    BUNDLED_MODELS_FOLDER,
    USER_MODELS_ENVIRONMENT,
    discover_models,
    user_models_folder,
)
from medviewer.models.weights import InvalidWeightsError, check_weights, load_weights, save_weights
from tests.models.model_folder import card_record, write_model


def test_a_valid_model_is_listed_with_its_card(tmp_path):
    write_model(tmp_path)
    registry = discover_models([tmp_path])
    entry = registry.get("tiny-srcnn-x2")
    assert entry.kind == "network" and entry.task == "super-resolution" and entry.scale == 2
    assert entry.card.architecture == "srcnn" and entry.card.parameters == 8129  # SRCNN 9-1-5, 64/32
    assert entry.weights_path == tmp_path / "tiny-srcnn-x2.safetensors"
    assert registry.skipped == []


def test_classical_methods_are_always_listed_once_per_scale(tmp_path):
    ids = {entry.id for entry in discover_models([tmp_path]).entries}
    assert {"bicubic-x2", "bicubic-x4", "lanczos-x2", "lanczos-x4", "histeq", "clahe", "nlm", "unsharp"} <= ids


def test_unknown_model_suggests_close_ids(tmp_path):
    with pytest.raises(UnknownModelError, match="bicubic-x2"):
        discover_models([tmp_path]).get("bicubic-2x")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"task": "painting"}, "task"),
        ({"scale": 0}, "scale"),
        ({"scale": 3}, "upscales by 2"),
        ({"parameters": 5}, "parameters"),
        ({"architecture": "no-such-net"}, "no-such-net"),
        ({"arguments": {"scale": 2, "colour": 7}}, "argument"),
        ({"weights": "../elsewhere.safetensors"}, "file name in the card's folder"),
        ({"weights": "model.pt"}, "safetensors"),
        ({"date": "yesterday"}, "date"),
        ({"architecture": "patchgan-discriminator", "arguments": {}}, "not an image-to-image network"),
        ({"id": "Has Spaces"}, "id"),
        ({"validation": {"psnr": "high"}}, "validation"),
    ],
)
def test_broken_cards_are_reported_and_skipped_never_fatal(tmp_path, change, reason):
    write_model(tmp_path, model_id="good", seed=1)
    write_model(tmp_path, model_id="broken", card_changes=change)
    registry = discover_models([tmp_path])
    assert "good" in {entry.id for entry in registry.entries}
    assert "broken" not in {entry.id for entry in registry.entries}
    [skipped] = registry.skipped
    assert skipped.path.name == "broken.json"
    assert reason.lower() in skipped.reason.lower()
    assert "\n" not in skipped.reason


def test_missing_field_is_named(tmp_path):
    card = write_model(tmp_path)
    record = json.loads(card.read_text())
    del record["limits"], record["intended_use"]
    card.write_text(json.dumps(record))
    with pytest.raises(InvalidModelCardError, match="missing intended_use, limits"):
        read_model_card(card)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b"\xff\xfe\x00garbage", b"x" * 1_000_001])
def test_unreadable_cards_are_skipped(tmp_path, content):
    (tmp_path / "bad.json").write_bytes(content)
    registry = discover_models([tmp_path])
    assert [skipped.path.name for skipped in registry.skipped] == ["bad.json"]


@pytest.mark.parametrize(
    "damage, reason",
    [
        ("missing", "not found"),
        ("truncated", "safetensors"),
        ("garbage", "safetensors"),
        ("wrong_shape", "shape"),
        ("missing_tensor", "missing"),
        ("extra_tensor", "unexpected"),
        ("integer_weights", "I32"),
    ],
)
def test_broken_weights_are_reported_and_skipped(tmp_path, damage, reason):
    card = write_model(tmp_path)
    weights = tmp_path / "tiny-srcnn-x2.safetensors"
    state = build_architecture("srcnn", {"scale": 2}).state_dict()
    if damage == "missing":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "garbage":
        weights.write_bytes(b"\x00" * 64)
    elif damage == "wrong_shape":
        state[next(iter(state))] = torch.zeros(3, 3)
        save_file(state, str(weights))
    elif damage == "missing_tensor":
        state.pop(next(iter(state)))
        save_file(state, str(weights))
    elif damage == "extra_tensor":
        state["surprise"] = torch.zeros(1)
        save_file(state, str(weights))
    elif damage == "integer_weights":
        name = next(iter(state))
        state[name] = torch.zeros(state[name].shape, dtype=torch.int32)
        save_file(state, str(weights))
    registry = discover_models([tmp_path])
    assert "tiny-srcnn-x2" not in {entry.id for entry in registry.entries}
    [skipped] = registry.skipped
    assert skipped.path == card and reason.lower() in skipped.reason.lower()


def test_weights_with_nan_refuse_to_load(tmp_path):
    network = build_architecture("srcnn", {"scale": 2})
    state = network.state_dict()
    name = next(iter(state))
    state[name] = state[name].clone().fill_(float("nan"))
    save_file(state, str(tmp_path / "nan.safetensors"))
    check_weights(tmp_path / "nan.safetensors", state)  # the header is fine...
    with pytest.raises(InvalidWeightsError, match="NaN"):  # ...the values are not
        load_weights(build_architecture("srcnn", {"scale": 2}), tmp_path / "nan.safetensors")


def test_saved_weights_load_back_identically(tmp_path):
    torch.manual_seed(3)
    network = build_architecture("srcnn", {"scale": 2})
    save_weights(network, tmp_path / "w.safetensors", {"recipe": "test"})
    other = build_architecture("srcnn", {"scale": 2})
    load_weights(other, tmp_path / "w.safetensors")
    for (name, a), (_, b) in zip(network.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob("*.partial"))


def test_half_precision_weights_are_accepted_and_widened(tmp_path):
    network = build_architecture("srcnn", {"scale": 2})
    save_file({k: v.half() for k, v in network.state_dict().items()}, str(tmp_path / "half.safetensors"))
    other = build_architecture("srcnn", {"scale": 2})
    load_weights(other, tmp_path / "half.safetensors")
    assert all(p.dtype == torch.float32 for p in other.parameters())
    first = next(iter(network.state_dict()))
    np.testing.assert_allclose(other.state_dict()[first], network.state_dict()[first], atol=1e-3)


def test_a_pickle_is_never_loaded(tmp_path):
    """A `.pt` pickle named like weights is refused by safetensors' header check, not unpickled."""
    network = build_architecture("srcnn", {"scale": 2})
    torch.save(network.state_dict(), tmp_path / "tiny-srcnn-x2.safetensors")
    record = card_record("tiny-srcnn-x2", "srcnn", {"scale": 2}, "super-resolution", 2)
    (tmp_path / "tiny-srcnn-x2.json").write_text(json.dumps(record))
    registry = discover_models([tmp_path])
    assert [skipped.path.name for skipped in registry.skipped] == ["tiny-srcnn-x2.json"]


def test_user_folder_replaces_bundled_model_with_the_same_id(tmp_path):
    write_model(tmp_path / "bundled", seed=1, card_changes={"name": "Bundled"})
    write_model(tmp_path / "user", seed=2, card_changes={"name": "Retrained"})
    registry = discover_models([tmp_path / "bundled", tmp_path / "user"])
    assert registry.get("tiny-srcnn-x2").name == "Retrained"


def test_a_card_may_not_take_a_classical_methods_id(tmp_path):
    write_model(tmp_path, model_id="bicubic-x2")
    registry = discover_models([tmp_path])
    assert registry.get("bicubic-x2").kind == "classical"
    assert "built-in" in registry.skipped[0].reason


def test_user_models_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(USER_MODELS_ENVIRONMENT, str(tmp_path / "mine"))
    assert user_models_folder() == tmp_path / "mine"
    monkeypatch.delenv(USER_MODELS_ENVIRONMENT)
    assert user_models_folder().name == "models" and "medviewer" in str(user_models_folder()).lower()


def test_missing_folders_are_fine(tmp_path):
    registry = discover_models([tmp_path / "nowhere"])
    assert registry.skipped == [] and registry.entries


def test_bundled_models_are_all_valid():
    registry = discover_models([BUNDLED_MODELS_FOLDER])
    assert registry.skipped == [], registry.skipped


def test_the_default_model_of_a_task_comes_from_its_card_and_the_user_folder_wins(tmp_path):
    denoiser = {"architecture": "dncnn", "arguments": {"depth": 3, "width": 4}, "task": "denoise", "scale": 1}
    write_model(tmp_path / "bundled", model_id="bundled-denoiser", card_changes={"default": True}, **denoiser)
    write_model(tmp_path / "bundled", model_id="other-denoiser", **denoiser)
    registry = discover_models([tmp_path / "bundled"])
    assert registry.default_entry("denoise").id == "bundled-denoiser"
    assert registry.default_entry("super-resolution") is None
    assert registry.get("bundled-denoiser").card.default and not registry.get("other-denoiser").card.default
    write_model(tmp_path / "user", model_id="my-denoiser", card_changes={"default": True}, **denoiser)
    assert discover_models([tmp_path / "bundled", tmp_path / "user"]).default_entry("denoise").id == "my-denoiser"


def test_a_default_flag_must_be_true_or_false(tmp_path):
    write_model(tmp_path, card_changes={"default": "yes"})
    registry = discover_models([tmp_path])
    assert "default must be true or false" in registry.skipped[0].reason


@pytest.mark.parametrize("size", [3, 0, True, "4", 16])
def test_a_cards_self_ensemble_must_be_an_engine_size(tmp_path, size):
    write_model(tmp_path, card_changes={"self_ensemble": size})
    registry = discover_models([tmp_path])
    assert f"self_ensemble {size!r} must be one of 1, 2, 4, 8" in registry.skipped[0].reason


def test_a_cards_self_ensemble_is_how_the_model_runs_unless_the_caller_says_otherwise(tmp_path):
    from medviewer.enhance.engine import load_enhancer
    from medviewer.enhance.self_ensemble import ENSEMBLE_SIZES
    from medviewer.models.card import SELF_ENSEMBLE_SIZES

    assert SELF_ENSEMBLE_SIZES == ENSEMBLE_SIZES  # the card's copy of the engine's sizes
    write_model(tmp_path, model_id="plain")
    write_model(tmp_path, model_id="fourfold", card_changes={"self_ensemble": 4})
    registry = discover_models([tmp_path])
    assert registry.get("plain").card.self_ensemble == 1 and "self_ensemble" not in registry.get("plain").card.to_json()
    card = registry.get("fourfold").card
    assert card.self_ensemble == 4 and card.to_json()["self_ensemble"] == 4
    assert load_enhancer(registry.get("plain"), "cpu").ensemble == 1
    assert load_enhancer(registry.get("fourfold"), "cpu").ensemble == 4
    assert load_enhancer(registry.get("fourfold"), "cpu").name.endswith("(self-ensemble x4)")
    assert load_enhancer(registry.get("fourfold"), "cpu", ensemble=1).ensemble == 1
