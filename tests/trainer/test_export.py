"""Export writes safetensors plus a model card the viewer's registry accepts; the viewer's engine reproduces
the validation figure; eval scores a run or a model id; --init fine-tunes from an exported model."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from medviewer.enhance.engine import load_enhancer
from medviewer.metrics import psnr
from medviewer.models.registry import discover_models
from tests.trainer.conftest import FAST
from trainer import run as runs
from trainer.cli import main
from trainer.data import scan_folder, split_series, validation_images
from trainer.export import chosen_checkpoint, export_run
from trainer.recipe import load_recipe, shipped_recipes

TINY = [
    *FAST,
    "optimiser.lr=2e-3",
    "model.arguments={widths=[8,16,32],blocks=[1,1,1]}",
    "steps=40",
    "validate_every=20",
    "checkpoint_every=20",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, phantom_folder):
    runs_folder = tmp_path_factory.mktemp("runs")
    folder = runs.prepare_run(
        shipped_recipes()["msdenoiser"], TINY, [phantom_folder], runs_folder, "denoiser-a", "cpu", None
    )
    with contextlib.redirect_stdout(io.StringIO()):
        runs.train(folder)
    return folder


def test_export_writes_weights_and_a_card_the_registry_lists(trained_run, tmp_path):
    written = export_run(trained_run, tmp_path / "models")
    assert sorted(path.name for path in written) == ["denoiser-a.json", "denoiser-a.safetensors"]
    registry = discover_models([tmp_path / "models"])
    assert not registry.skipped
    entry = registry.get("denoiser-a")
    card = entry.card
    assert card.task == "denoise" and card.architecture == "msdenoiser" and card.scale == 1
    history = json.loads((trained_run / "validation.json").read_text())
    best = max(history, key=lambda record: record["psnr"])
    assert card.validation.degradation == "noise:15"
    assert card.validation.psnr == pytest.approx(best["by_degradation"]["noise:15"]["psnr"], abs=1e-3)
    extra = card.extra
    assert extra["training"]["step"] == best["step"] and extra["training"]["device"].startswith("cpu")
    assert set(extra["baselines"]["noise:25"]) == {"input", "classical"} and extra["baseline_method"] == "nlm"
    assert extra["data_summary"]["splits"]["train"]["series"] == 6
    assert extra["perceptual_network"] == "none"
    assert "PNG" in card.training_data and "split by series" in card.training_data
    assert json.loads(card.recipe)["run"]["steps"] == 40


def test_float16_default_export_halves_the_file_and_keeps_the_output(trained_run, tmp_path):
    full = export_run(trained_run, tmp_path / "full")
    half = export_run(
        trained_run,
        tmp_path / "half",
        float16=True,
        default=True,
        name="Shipped",
        data_source="from a pool",
        limits="Grey only.",
    )
    assert half[0].stat().st_size < 0.6 * full[0].stat().st_size
    registry = discover_models([tmp_path / "half"])
    entry = registry.get("denoiser-a")
    assert registry.default_entry("denoise") is entry and entry.name == "Shipped"
    assert entry.card.limits == "Grey only."
    assert "from a pool" in entry.card.training_data and entry.card.extra["weights_dtype"] == "float16"
    noisy = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    outputs = [
        load_enhancer(discover_models([folder]).get("denoiser-a"), "cpu").enhance_normalised_image(noisy)
        for folder in (tmp_path / "full", tmp_path / "half")
    ]
    assert np.abs(outputs[0] - outputs[1]).max() < 2e-3  # weights rounded to float16, computed in float32


def test_the_viewer_engine_reproduces_the_validation_figure(trained_run, tmp_path, phantom_folder):
    export_run(trained_run, tmp_path / "models")
    enhancer = load_enhancer(discover_models([tmp_path / "models"]).get("denoiser-a"), "cpu")
    recipe = load_recipe(trained_run / "recipe.toml")
    splits = split_series(scan_folder(phantom_folder, 0), recipe)
    images = validation_images(splits["val"], recipe, recipe.data.val_images, recipe.val_degradations)
    scores = [psnr(image.reference, enhancer.enhance_normalised_image(image.inputs["noise:25"])) for image in images]
    card = discover_models([tmp_path / "models"]).get("denoiser-a").card
    assert float(np.mean(scores)) == pytest.approx(
        card.extra["validation_by_degradation"]["noise:25"]["psnr"], abs=1e-3
    )


def test_export_command_and_eval_of_run_and_model(trained_run, tmp_path, phantom_folder, capsys, monkeypatch):
    assert main(["export", str(trained_run), "--to", str(tmp_path / "models"), "--id", "My Denoiser"]) == 0
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert event["event"] == "export" and any(path.endswith("my-denoiser.json") for path in event["files"])
    assert main(["eval", str(trained_run), "--data", str(phantom_folder), "--degrade", "noise:25", "--limit", "3"]) == 0
    from_run = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert from_run["images"] == 3 and from_run["baseline"] == "nlm"
    assert from_run["model_psnr"] > from_run["input_psnr"]
    monkeypatch.setenv("MEDVIEWER_MODELS_DIR", str(tmp_path / "models"))
    assert main(["eval", "my-denoiser", "--data", str(phantom_folder), "--degrade", "noise:25", "--limit", "3"]) == 0
    from_model = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert from_model["model_psnr"] == pytest.approx(from_run["model_psnr"], abs=1e-6)


def test_init_fine_tunes_from_an_exported_model_and_from_a_weights_file(
    trained_run, tmp_path, phantom_folder, monkeypatch
):
    export_run(trained_run, tmp_path / "models")
    monkeypatch.setenv("MEDVIEWER_MODELS_DIR", str(tmp_path / "models"))
    # The recipe's own (default-size) model is replaced by the registered model's architecture and arguments.
    folder = runs.prepare_run(
        shipped_recipes()["msdenoiser"],
        [*FAST, "steps=1", "validate_every=1"],
        [phantom_folder],
        tmp_path / "runs",
        "tuned",
        "cpu",
        "denoiser-a",
    )
    assert load_recipe(folder / "recipe.toml").model.arguments == {"widths": [8, 16, 32], "blocks": [1, 1, 1]}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        runs.train(folder)
    events = [json.loads(line) for line in output.getvalue().splitlines()]
    first_validation = next(event for event in events if event["event"] == "val")
    # One step at a tiny learning rate from trained weights scores near them, far above a fresh network.
    history = json.loads((trained_run / "validation.json").read_text())
    assert first_validation["psnr"] > max(record["psnr"] for record in history) - 1.0
    weights = tmp_path / "models" / "denoiser-a.safetensors"
    folder = runs.prepare_run(
        shipped_recipes()["msdenoiser"], TINY, [phantom_folder], tmp_path / "runs", "from-file", "cpu", str(weights)
    )
    assert json.loads((folder / "run.json").read_text())["init"] == str(weights.resolve())


def test_export_takes_a_chosen_step_and_gan_runs_export_their_last(trained_run, tmp_path, capsys):
    history = {record["step"]: record for record in json.loads((trained_run / "validation.json").read_text())}
    assert sorted(history) == [20, 40]
    assert main(["export", str(trained_run), "--to", str(tmp_path / "models"), "--id", "early", "--step", "20"]) == 0
    card = discover_models([tmp_path / "models"]).get("early").card
    assert card.extra["training"]["step"] == 20
    assert card.validation.psnr == pytest.approx(history[20]["by_degradation"]["noise:15"]["psnr"], abs=1e-3)
    assert main(["export", str(trained_run), "--to", str(tmp_path / "models"), "--step", "30"]) == 2
    assert "no checkpoint at step 30; it keeps steps 20, 40" in capsys.readouterr().err
    # A GAN's best-PSNR checkpoint is the one its adversarial term changed least: adversarial and cycle runs
    # export the newest, with that step's validation record.
    for paradigm in ("adversarial", "cycle"):
        step, path, record = chosen_checkpoint(trained_run, paradigm)
        assert step == 40 and path.name.endswith("40.pt") and record["step"] == 40
    best = max(history.values(), key=lambda record: record["psnr"])
    assert chosen_checkpoint(trained_run, "supervised")[0] == best["step"]


def test_a_run_without_checkpoints_cannot_be_exported(tmp_path, phantom_folder, capsys):
    folder = runs.prepare_run(
        shipped_recipes()["msdenoiser"], TINY, [phantom_folder], tmp_path / "runs", "empty", "cpu", None
    )
    assert main(["export", str(folder), "--to", str(tmp_path / "models")]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_resume_may_extend_a_finished_run_but_not_change_it(trained_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    assert main(["resume", str(copy), "--set", "batch=4"]) == 2
    assert "only run.steps" in capsys.readouterr().err
    assert main(["resume", str(copy)]) == 0  # already at its length: reports done and stops
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["event"] == "done"
    assert main(["resume", str(copy), "--set", "steps=50"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["step"] == 40 and events[-1]["step"] == 50
    assert load_recipe(copy / "recipe.toml").run.steps == 50


def test_export_averages_weights_and_scores_the_average_afresh(trained_run, tmp_path, phantom_folder, capsys):
    """`--average-with` (a "model soup"): the exported weights are the tensor mean, and the card's figures are
    the average's own on the run's validation split, not the checkpoint's."""
    from safetensors.torch import load_file

    from medviewer.models.weights import save_weights
    from trainer.run import build_generator

    models = tmp_path / "models"
    history = {record["step"]: record for record in json.loads((trained_run / "validation.json").read_text())}
    for step in (20, 40):
        assert main(["export", str(trained_run), "--to", str(models), "--id", f"step{step}", "--step", str(step)]) == 0
    early, late = models / "step20.safetensors", models / "step40.safetensors"
    # A checkpoint averaged with its own weights is itself: scored afresh, it reproduces the recorded figures.
    assert (
        main(
            [
                "export",
                str(trained_run),
                "--to",
                str(models),
                "--id",
                "self",
                "--step",
                "20",
                "--average-with",
                str(early),
            ]
        )
        == 0
    )
    card = discover_models([models]).get("self").card
    assert card.validation.psnr == pytest.approx(history[20]["by_degradation"]["noise:15"]["psnr"], abs=1e-3)
    assert card.extra["averaged_with"][0]["weights"] == "step20.safetensors"
    assert (
        main(
            [
                "export",
                str(trained_run),
                "--to",
                str(models),
                "--id",
                "soup",
                "--step",
                "40",
                "--average-with",
                str(early),
            ]
        )
        == 0
    )
    soup, first, second = (load_file(path) for path in (models / "soup.safetensors", early, late))
    for name, tensor in soup.items():
        assert torch_allclose(tensor, (first[name] + second[name]) / 2)
    entry = discover_models([models]).get("soup")
    figures = entry.card.extra["validation_by_degradation"]["noise:25"]["psnr"]
    assert figures not in (
        history[20]["by_degradation"]["noise:25"]["psnr"],
        history[40]["by_degradation"]["noise:25"]["psnr"],
    )
    recipe = load_recipe(trained_run / "recipe.toml")
    images = validation_images(
        split_series(scan_folder(phantom_folder, 0), recipe)["val"],
        recipe,
        recipe.data.val_images,
        recipe.val_degradations,
    )
    enhancer = load_enhancer(entry, "cpu")
    scores = [psnr(image.reference, enhancer.enhance_normalised_image(image.inputs["noise:25"])) for image in images]
    assert float(np.mean(scores)) == pytest.approx(figures, abs=1e-3)
    # Weights of another architecture, or no file at all: one line, exit code 2.
    capsys.readouterr()
    save_weights(build_generator("msdenoiser", {}), tmp_path / "other.safetensors")
    for other in (tmp_path / "other.safetensors", tmp_path / "missing.safetensors"):
        assert main(["export", str(trained_run), "--to", str(models), "--average-with", str(other)]) == 2
        error = capsys.readouterr().err
        assert error.startswith("medviewer-train: error: --average-with") and len(error.strip().splitlines()) == 1


def torch_allclose(first, second) -> bool:
    return bool((first.float() - second.float()).abs().max() <= 1e-6)


def test_export_self_ensemble_makes_the_card_run_and_score_that_many_copies(trained_run, tmp_path, phantom_folder):
    """`export --self-ensemble 4`: the card says 4, the engine runs it so by default, and the card's figure
    is the x4 figure (reproduced through the viewer's engine), not the single pass's."""
    models = tmp_path / "models"
    assert main(["export", str(trained_run), "--to", str(models), "--id", "single"]) == 0
    assert main(["export", str(trained_run), "--to", str(models), "--id", "fourfold", "--self-ensemble", "4"]) == 0
    registry = discover_models([models])
    single, fourfold = registry.get("single").card, registry.get("fourfold").card
    assert single.self_ensemble == 1 and fourfold.self_ensemble == 4
    enhancer = load_enhancer(registry.get("fourfold"), "cpu")
    assert enhancer.ensemble == 4
    recipe = load_recipe(trained_run / "recipe.toml")
    splits = split_series(scan_folder(phantom_folder, 0), recipe)
    images = validation_images(splits["val"], recipe, recipe.data.val_images, recipe.val_degradations)
    scores = [psnr(image.reference, enhancer.enhance_normalised_image(image.inputs["noise:25"])) for image in images]
    figure = fourfold.extra["validation_by_degradation"]["noise:25"]["psnr"]
    assert float(np.mean(scores)) == pytest.approx(figure, abs=1e-3)
    assert figure != pytest.approx(single.extra["validation_by_degradation"]["noise:25"]["psnr"], abs=1e-4)
