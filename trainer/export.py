"""Export: a run's best (EMA) generator as safetensors plus the model card the viewer's registry reads.

The card states the recipe, the validation figures beside the baselines, the data summary (counts,
modalities, sizes; never patient data), training time and device, and for translation that the output is
synthetic. The weights and card are written atomically into the user models folder (or `--to`), where the
viewer's model panel finds them.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medviewer.enhance.device import choose_device
from medviewer.io.atomic import write_atomically
from medviewer.models.card import card_from_json
from medviewer.models.registry import network_entry, user_models_folder
from medviewer.models.weights import InvalidWeightsError, load_weights, save_weights
from trainer import checkpoint
from trainer.loops import PARADIGM_MODULES
from trainer.recipe import Recipe
from trainer.run import (
    CHECKPOINT_FOLDER,
    RunError,
    build_generator,
    read_run,
    run_validation_set,
    score_network,
    validation_history,
)

_DEFAULT_USE = {
    "denoise": "Reducing noise in grey-level images like those it was trained on, for viewing beside the original.",
    "super-resolution": "Upscaling grey-level images like those it was trained on, for viewing beside the original.",
    "translation": "Research on unpaired modality translation; the output is synthetic, never a measurement.",
    "contrast": "Contrast enhancement for viewing beside the original.",
}
_DEFAULT_LIMITS = (
    "Trained by the user's own run; figures hold for its validation split only. Not a medical device: never "
    "read an enhanced image in place of the acquired one."
)
_SYNTHETIC = (
    " Its output is SYNTHETIC: a translation invented by a network trained on unpaired images, not a "
    "measurement of the patient; it must never be read as an acquired image."
)


_USER_FOLDERS = "from the user's folders"


def model_id_for(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "model"
    return cleaned[:64]


# Adversarial and cycle training do not aim at the highest PSNR: the best-PSNR checkpoint of a GAN is the one
# least changed by its adversarial term (often the first after pre-training), and CycleGAN's validation PSNR
# is of the round trip, which an identity mapping would win. Those runs export their last checkpoint.
_LAST_CHECKPOINT_PARADIGMS = frozenset({"adversarial", "cycle"})


def chosen_checkpoint(
    folder: Path, paradigm: str = "supervised", step: int | None = None
) -> tuple[int, Path, dict[str, Any] | None]:
    """The checkpoint `step` if given; else, for supervised runs, the one with the best validation PSNR (the
    run keeps it) and for adversarial and cycle runs the newest; with its validation record where there is one."""
    found = dict(checkpoint.checkpoints(folder / CHECKPOINT_FOLDER))
    if not found:
        raise RunError(f"{folder} has no checkpoint yet; train it first (`medviewer-train resume {folder}`)")
    history = {record["step"]: record for record in validation_history(folder) if record["step"] in found}
    if step is not None:
        if step not in found:
            kept = ", ".join(str(kept_step) for kept_step in sorted(found))
            raise RunError(f"{folder} has no checkpoint at step {step}; it keeps steps {kept}")
        return step, found[step], history.get(step)
    if history and paradigm not in _LAST_CHECKPOINT_PARADIGMS:
        best = max(history.values(), key=lambda record: record["psnr"])
        return best["step"], found[best["step"]], best
    newest = max(found)
    return newest, found[newest], history.get(newest)


def _start_event(folder: Path) -> dict[str, Any]:
    path = folder / "events.jsonl"
    start: dict[str, Any] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "start":
                start = record
    return start


def export_run(
    folder: Path,
    to: Path | None = None,
    model_id: str | None = None,
    onnx: bool = False,
    *,
    float16: bool = False,
    default: bool = False,
    name: str | None = None,
    data_source: str | None = None,
    limits: str | None = None,
    step: int | None = None,
    average_with: Sequence[Path] = (),
    self_ensemble: int = 1,
) -> list[Path]:
    """Write `<id>.safetensors` and `<id>.json` (and `<id>-reverse.*` for CycleGAN's second generator).

    `float16` stores the weights in half precision (half the file; the engine loads them into its own
    dtype) where the architecture is safe in float16; `default` marks the card as its task's preselected
    model; `name` replaces the card's display name and `data_source` says where the training folder came
    from (default: "the user's folders"); `limits` replaces the recipe's stated limits; `step` exports that
    checkpoint instead of `chosen_checkpoint`'s choice; `average_with` exports the uniform average of that
    checkpoint's weights and these weights files (`average_weights`), scored afresh on the run's validation
    split so that the card's figures are the average's own; `self_ensemble` (2, 4 or 8) makes the card run
    the model as a geometric self-ensemble of that many copies by default, its figures scored so."""
    folder = Path(folder)
    recipe, settings = read_run(folder)
    step, path, validation = chosen_checkpoint(folder, recipe.recipe.paradigm, step)
    paradigm = PARADIGM_MODULES[recipe.recipe.paradigm]
    if average_with and (len(paradigm.GENERATORS) != 1 or recipe.recipe.paradigm == "cycle"):
        raise RunError(f"--average-with needs a run with one generator; {folder.name} trains {recipe.recipe.paradigm}")
    saved = checkpoint.load_checkpoint(path)
    to = Path(to).expanduser() if to is not None else user_models_folder()
    to.mkdir(parents=True, exist_ok=True)
    model_id = model_id_for(model_id or folder.name)
    start = _start_event(folder)
    summary = json.loads((folder / "data.json").read_text(encoding="utf-8")) if (folder / "data.json").exists() else {}
    written = []
    for index, generator_name in enumerate(paradigm.GENERATORS):
        network = build_generator(recipe.model.architecture, recipe.model.arguments)
        weights = saved["state"]["ema"].get(generator_name) or saved["state"]["networks"][generator_name]
        network.load_state_dict(weights)
        network.eval()
        metadata = {"run": folder.name, "step": str(step)}
        if average_with:
            average_weights(network, average_with)
            metadata["averaged_with"] = ", ".join(Path(other).name for other in average_with)
        if average_with or self_ensemble != 1:
            validation = {
                "step": step,
                **score_network(network, recipe, run_validation_set(folder), choose_device(), self_ensemble),
            }
        this_id = model_id if index == 0 else f"{model_id[:56]}-reverse"
        card = _card(
            this_id, recipe, settings, network, step, validation, saved, start, summary, folder, reverse=index == 1
        )
        if average_with:
            card["averaged_with"] = [
                {"weights": Path(other).name, "sha256": hashlib.sha256(Path(other).read_bytes()).hexdigest()}
                for other in average_with
            ]
        if name:
            card["name"] = f"{name}{' (reverse)' if index == 1 else ''}"
        if data_source:
            card["training_data"] = card["training_data"].replace(_USER_FOLDERS, data_source)
        if limits:
            card["limits"] = limits + (_SYNTHETIC if recipe.recipe.task == "translation" else "")
        if default and index == 0:
            card["default"] = True
        if self_ensemble != 1:
            card["self_ensemble"] = self_ensemble
        halved = float16 and bool(getattr(network, "half_precision_safe", False))
        if halved:
            card["weights_dtype"] = "float16"
        card_from_json(card, default_weights=f"{this_id}.safetensors")  # the registry's own check, before writing
        stored = copy.deepcopy(network).half() if halved else network
        weights_path = save_weights(stored, to / f"{this_id}.safetensors", metadata=metadata)
        text = json.dumps(card, indent=2) + "\n"
        card_path = write_atomically(
            to / f"{this_id}.json", lambda temporary, text=text: temporary.write_text(text, "utf-8")
        )
        network_entry(card_path)  # exactly what the viewer will do: fails loudly if the pair does not load
        written += [weights_path, card_path]
        if onnx:
            from trainer.onnx_export import export_onnx

            written.append(export_onnx(network, to / f"{this_id}.onnx"))
    return written


def average_weights(network: torch.nn.Module, paths: Sequence[Path]) -> None:
    """Replace `network`'s floating-point tensors by the uniform mean of its own and those of each weights
    file (same architecture): a "model soup" (Wortsman et al. 2022, "Model soups: averaging weights of
    multiple fine-tuned models improves accuracy without increasing inference time", ICML). Fine-tunes of one
    parent (the stages of a shipped model, each on other data) stay in one basin of the loss, so their mean is
    often better than each, at no cost at inference. Integer buffers keep `network`'s values."""
    state = network.state_dict()
    total = {name: tensor.detach().to(torch.float64).clone() for name, tensor in state.items()}
    for path in paths:
        other = copy.deepcopy(network)
        try:
            load_weights(other, Path(path))
        except InvalidWeightsError as error:
            raise RunError(f"--average-with {path}: {error.reason}") from None
        for name, tensor in other.state_dict().items():
            total[name] += tensor.detach().to(torch.float64)
    count = len(paths) + 1
    network.load_state_dict(
        {
            name: (total[name] / count).to(tensor.dtype) if tensor.is_floating_point() else tensor
            for name, tensor in state.items()
        }
    )


def _training_device(device: str, recipe: Recipe) -> str:
    """The checkpoint's device text, naming bfloat16 autocast where the recipe asked for it (checkpoints
    written before the trainer said so themselves do not)."""
    if recipe.run.precision == "bfloat16" and "bfloat16" not in device:
        return f"{device} with bfloat16 autocast"
    return device


def _card(model_id, recipe: Recipe, settings, network, step, validation, saved, start, summary, folder, reverse):
    task = recipe.recipe.task
    degradations = (validation or {}).get("by_degradation") or {}
    if degradations:
        spec, figures = next(iter(degradations.items()))
    elif validation is not None and "by_domain" in validation:
        label = "b" if reverse else "a"
        figures = validation["by_domain"][label]
        spec = f"cycle {'B->A->B' if reverse else 'A->B->A'} reconstruction"
    else:
        spec, figures = "none", {"psnr": 0.0, "ssim": 0.0}
    splits = summary.get("splits", {})
    validation_split = splits.get("val", {})
    train_split = splits.get("train", {})
    images = (
        f"{validation_split.get('images', '?')} images of {validation_split.get('series', '?')} held-out series "
        f"({', '.join(validation_split.get('modalities', {})) or 'unknown modality'}); up to "
        f"{recipe.data.val_images} whole images scored"
    )
    training_data = (
        f"{train_split.get('series', '?')} series / {train_split.get('images', '?')} images "
        f"({', '.join(f'{k}: {v}' for k, v in train_split.get('modalities', {}).items())}; sizes "
        f"{', '.join(train_split.get('sizes', [])[:6])}) {_USER_FOLDERS}, split by series "
        f"(validation {validation_split.get('series', '?')} series, test {splits.get('test', {}).get('series', '?')}); "
        + (
            f"degradation {recipe.data.degradation} drawn per patch"
            if recipe.data.pairing == "synthetic"
            else f"{recipe.data.pairing} folders"
        )
    )
    name = recipe.recipe.name or recipe.model.architecture
    limits = recipe.recipe.limits or _DEFAULT_LIMITS
    if task == "translation":
        limits += _SYNTHETIC
    card: dict[str, Any] = {
        "id": model_id,
        "name": f"{name}{' (reverse)' if reverse else ''} [{folder.name}]",
        "task": task,
        "scale": int(network.scale),
        "architecture": recipe.model.architecture,
        "arguments": recipe.model.arguments,
        "parameters": int(sum(parameter.numel() for parameter in network.parameters())),
        "training_data": training_data,
        "recipe": recipe.to_json(),
        "validation": {
            "psnr": round(float(figures["psnr"]), 3),
            "ssim": round(float(figures["ssim"]), 4),
            "degradation": spec,
            "images": images,
        },
        "date": datetime.date.today().isoformat(),
        "intended_use": recipe.recipe.intended_use or _DEFAULT_USE[task],
        "limits": limits,
        "weights": f"{model_id}.safetensors",
        "validation_by_degradation": degradations,
        "baselines": start.get("baselines"),
        "baseline_method": start.get("classical"),
        "data_summary": summary,
        "perceptual_network": start.get("perceptual", "none"),
        "training": {
            "run": folder.name,
            "recipe_file": settings.recipe_name,
            "step": step,
            "steps": recipe.run.steps,
            "seconds": round(float(saved.get("elapsed_seconds", 0.0)), 1),
            "device": _training_device(saved.get("device", "unknown"), recipe),
            "processes": saved.get("processes", 1),
            "code_version": settings.code_version,
            "torch": settings.torch_version,
            "init": settings.init,
        },
    }
    if task == "translation":
        card["synthetic_output"] = True
        card["cycle_validation"] = validation.get("by_domain") if validation else None
    return card


def load_run_generator(folder: Path) -> tuple[torch.nn.Module, Recipe]:
    """The generator export would write (best EMA weights), for `eval RUN_DIR`."""
    recipe, _ = read_run(folder)
    _, path, _ = chosen_checkpoint(Path(folder), recipe.recipe.paradigm)
    saved = checkpoint.load_checkpoint(path)
    name = PARADIGM_MODULES[recipe.recipe.paradigm].GENERATORS[0]
    network = build_generator(recipe.model.architecture, recipe.model.arguments)
    network.load_state_dict(saved["state"]["ema"].get(name) or saved["state"]["networks"][name])
    return network.eval(), recipe
