"""medviewer-train's command line: one line and exit code 2 for bad input, before any training starts."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from tests.trainer.conftest import FAST, run_trainer
from trainer.checkpoint import checkpoints, load_checkpoint
from trainer.cli import main

TINY_DENOISER = [*FAST, "model.arguments={widths=[8,16,32],blocks=[1,1,1]}"]


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("medviewer-train: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_recipes_lists_every_shipped_recipe_one_line_each():
    result = run_trainer("recipes")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == sorted(names)
    for expected in (
        "srcnn-x2",
        "srcnn-x4",
        "vdsr-x2",
        "vdsr-x4",
        "srgan-cbam-x4",
        "srresnet-cbam-x4",
        "msdenoiser",
        "dncnn",
        "pix2pix-denoiser",
        "dagan-denoiser",
        "lowdose-denoiser",
        "cyclegan-xray-ct",
    ):
        assert expected in names


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["run", "msdenoiser", "--data", "/nonexistent/folder"], ["/nonexistent/folder", "not found"]),
        (["run", "no-such-recipe", "--data", "."], ["unknown recipe"]),
        (["run", "msdenoiser", "--set", "stepz=5"], ["unknown recipe key 'stepz'", "steps"]),
        (["run", "msdenoiser", "--set", "steps=abc"], ["run.steps must be an integer"]),
        (["run", "msdenoiser", "--set", "steps=0"], ["run.steps must be >= 1"]),
        (["run", "msdenoiser", "--set", "lr=-1"], ["optimiser.lr"]),
        (["run", "msdenoiser", "--set", "degradation=noise:abc"], ["invalid degradation"]),
        (["run", "msdenoiser", "--set", "nonsense"], ["must be key=value"]),
        (["run", "msdenoiser", "--set", "model.arguments={widths=[8]}"], ["widths and blocks"]),
        (["run", "cyclegan-xray-ct", "--data", "."], ["exactly two folders"]),
        (["run", "msdenoiser", "--device", "cuda:7"], ["cuda"]),
        (["run", "msdenoiser", "--init", "no-such-model"], ["unknown model"]),
        (["resume", "/nonexistent/run"], ["not found"]),
        (["export", "."], ["not a run folder"]),
        (["eval", "nlm", "--data", "/nonexistent", "--degrade", "noise:25"], ["not found"]),
        (["eval", "nlm", "--data", ".", "--degrade", "blur:3"], ["invalid degradation"]),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(arguments, fragments, phantom_folder, tmp_path, capsys):
    if "--data" not in arguments and arguments[0] == "run":
        arguments = [*arguments, "--data", str(phantom_folder)]
    if arguments[0] == "run":
        arguments = [*arguments, "--out", str(tmp_path / "runs")]
    code = main(arguments)  # in-process: the same code path as the command, without a Python start-up per case
    captured = capsys.readouterr()
    _one_line_error(subprocess.CompletedProcess(arguments, code, captured.out, captured.err), *fragments)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was started


def test_a_folder_without_images_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    result = run_trainer("run", "msdenoiser", "--data", str(empty), "--out", str(tmp_path / "runs"))
    _one_line_error(result, "no usable image", str(empty))


def test_a_folder_with_one_series_is_refused(tmp_path, phantom_folder):
    single = tmp_path / "single"
    single.mkdir()
    (single / "one.png").write_bytes(next(phantom_folder.glob("*.png")).read_bytes())
    result = run_trainer("run", "msdenoiser", "--data", str(single), "--out", str(tmp_path / "runs"))
    _one_line_error(result, "1 series", "at least 2")


def test_patches_larger_than_every_image_are_refused(tmp_path, phantom_folder):
    result = run_trainer(
        "run", "msdenoiser", "--data", str(phantom_folder), "--out", str(tmp_path / "runs"), "--set", "patch=128"
    )
    _one_line_error(result, "128x128", "data.patch")


def test_an_existing_run_is_not_overwritten(tmp_path, phantom_folder):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "run.json").write_text("{}")
    result = run_trainer(
        "run", "msdenoiser", "--data", str(phantom_folder), "--out", str(tmp_path / "runs"), "--name", "taken"
    )
    _one_line_error(result, "already exists", "resume")


def test_run_reports_json_lines_and_writes_the_run_folder(tmp_path, phantom_folder):
    result = run_trainer(
        "run",
        "msdenoiser",
        "--data",
        str(phantom_folder),
        "--out",
        str(tmp_path / "runs"),
        "--name",
        "first",
        "--device",
        "cpu",
        "--set",
        *TINY_DENOISER,
        "steps=20",
        "validate_every=10",
        "checkpoint_every=10",
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("step") == 2 and kinds.count("val") == 2 and kinds.count("checkpoint") == 2
    step = next(event for event in events if event["event"] == "step")
    assert step["steps"] == 20 and step["patches_per_second"] > 0 and "loss" in step["losses"]
    validation = next(event for event in events if event["event"] == "val")
    assert set(validation["by_degradation"]) == {"noise:15", "noise:25", "noise:50"}
    assert set(events[0]["baselines"]["noise:25"]) == {"input", "classical"}
    folder = tmp_path / "runs" / "first"
    for name in (
        "recipe.toml",
        "run.json",
        "split.json",
        "data.json",
        "metrics.csv",
        "events.jsonl",
        "validation.json",
    ):
        assert (folder / name).is_file(), name
    run = json.loads((folder / "run.json").read_text())
    assert run["code_version"] and run["data"] == [str(phantom_folder.resolve())]
    header, *rows = (folder / "metrics.csv").read_text().splitlines()
    assert header == "step,seconds,split,name,value"
    assert any(",val,psnr," in row for row in rows) and any(",train,loss," in row for row in rows)
    assert "uid" not in (folder / "split.json").read_text().lower()


def _tiny_run(tmp_path, folder, name, *overrides):
    result = run_trainer(
        "run",
        "msdenoiser",
        "--data",
        str(folder),
        "--out",
        str(tmp_path / "runs"),
        "--name",
        name,
        "--device",
        "cpu",
        "--set",
        *TINY_DENOISER,
        "steps=60",
        "log_every=20",
        "validate_every=60",
        "checkpoint_every=60",
        "optimiser.lr=3e-3",
        *overrides,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_bfloat16_cpu_run_learns_like_float32_and_says_so(tmp_path, phantom_folder):
    """`run.precision=bfloat16` on the CPU: the loss falls as the float32 run's does on the same patches
    (float32 master weights), and the start event and the checkpoint name the arithmetic, as the card will."""
    events = _tiny_run(tmp_path, phantom_folder, "bf16", "run.precision=bfloat16")
    exact = _tiny_run(tmp_path, phantom_folder, "fp32", "run.precision=float32")
    assert events[0]["device"].endswith("with bfloat16 autocast") and "bfloat16" not in exact[0]["device"]
    losses = [event["losses"]["loss"] for event in events if event["event"] == "step"]
    exact_losses = [event["losses"]["loss"] for event in exact if event["event"] == "step"]
    assert len(losses) == 3 and losses[-1] < 0.85 * losses[0], losses
    assert abs(losses[-1] - exact_losses[-1]) < 0.05 * exact_losses[-1], (losses, exact_losses)
    step, saved = checkpoints(tmp_path / "runs" / "bf16" / "checkpoints")[-1]
    assert step == 60 and load_checkpoint(saved)["device"].endswith("with bfloat16 autocast")
    weights = load_checkpoint(saved)["state"]["networks"]["generator"]
    assert all(value.dtype == torch.float32 for value in weights.values())
