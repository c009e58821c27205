"""The outer loop shared by every paradigm: set-up, schedule, EMA, validation, progress, checkpoints, resume.

A run folder holds everything needed to continue or reproduce it:
  recipe.toml (resolved), run.json (data folders, device, init, code version), split.json, data.json,
  checkpoints/step-NNNNNNNN.pt, validation.json, metrics.csv, events.jsonl, cache/ (decoded frame pools).
Patches are a function of (seed, index), the schedule a function of the step, and every random generator is
checkpointed, so on the CPU a resumed run ends with the same weights as one never interrupted.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from medviewer.enhance.degrade import degraded_baseline
from medviewer.enhance.device import choose_device, describe_device
from medviewer.enhance.engine import NetworkEnhancer
from medviewer.errors import MedViewerError
from medviewer.io.atomic import write_atomically
from medviewer.metrics import score
from medviewer.models.architectures import Discriminator, ImageNetwork, build_architecture
from medviewer.models.classical import classical_method
from medviewer.models.feature_networks import SmallFeatureEncoder
from medviewer.models.registry import discover_models
from medviewer.models.srgan import FeatureLoss
from medviewer.models.weights import InvalidWeightsError, load_weights, save_weights
from trainer import checkpoint, data
from trainer.distributed import Distributed, from_environment, shutdown
from trainer.events import Reporter, truncate_metrics
from trainer.loops import PARADIGM_MODULES
from trainer.losses import AdversarialLoss, load_vgg19, pixel_loss
from trainer.memory import keep_freed_memory
from trainer.recipe import Recipe, RecipeError, load_recipe, recipe_from_table
from trainer.schedule import learning_rate_factor
from trainer.state import ImagePool, TrainingState, autocast_bfloat16

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.toml"
VALIDATION_FILE = "validation.json"
FEATURE_NETWORK_FILE = "feature_network.safetensors"
CHECKPOINT_FOLDER = "checkpoints"
CHECKPOINT_FORMAT = 1


class RunError(MedViewerError):
    """A run folder that is not a run, or a run that cannot continue as asked."""


class TrainingCancelled(MedViewerError):
    """SIGTERM or SIGINT: the run stopped after saving a checkpoint."""


# --- starting and resuming ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    """What run.json keeps besides the recipe."""

    recipe_name: str
    data: list[str]
    device: str
    init: str | None
    export_to: str | None
    code_version: str
    torch_version: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def code_version() -> str:
    """The git commit (with '+changes' when the tree is dirty) of the code that trains, else the version."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return commit + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return "medviewer " + version("medviewer")
        except PackageNotFoundError:
            return "unknown"


def prepare_run(
    recipe_path: Path,
    overrides: list[str],
    data_folders: list[Path],
    runs_folder: Path,
    name: str,
    device: str,
    init: str | None,
    export_to: str | None = None,
) -> Path:
    """Check everything a run needs (recipe, folders, init weights, device) and create its folder; nothing is
    trained yet. Every problem is one MedViewerError."""
    recipe = load_recipe(recipe_path, overrides)
    if init:
        recipe = _recipe_for_init(recipe, init)
    choose_device(device)  # an unavailable device is bad input, found before any data is read
    for folder in data_folders:
        if not Path(folder).expanduser().is_dir():
            raise data.DataError(
                f"data folder {folder} not found"
                if not Path(folder).exists()
                else f"data folder {folder} is not a folder"
            )
    check_networks(recipe)
    check_data(recipe, [Path(path).expanduser() for path in data_folders])
    folder = Path(runs_folder).expanduser() / name
    if folder.exists() and any(folder.iterdir()):
        raise RunError(f"run folder {folder} already exists; resume it with `medviewer-train resume {folder}`")
    folder.mkdir(parents=True, exist_ok=True)
    settings = RunSettings(
        recipe_name=Path(recipe_path).stem,
        data=[str(Path(path).expanduser().resolve()) for path in data_folders],
        device=device,
        init=_resolved_init(init),
        export_to=export_to,
        code_version=code_version(),
        torch_version=torch.__version__,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    data.write_json(folder / RUN_FILE, settings.to_json())
    text = recipe.to_toml()
    write_atomically(folder / RECIPE_FILE, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    return folder


def check_networks(recipe: Recipe) -> None:
    """Build the recipe's networks on the meta device (shapes only, nothing allocated) to refuse arguments an
    architecture does not take, or a generator that does not fit the data, before a run folder exists."""
    with torch.device("meta"):
        networks = PARADIGM_MODULES[recipe.recipe.paradigm].networks(recipe, build_generator, build_discriminator)
    _check_fit(recipe, networks[PARADIGM_MODULES[recipe.recipe.paradigm].GENERATORS[0]])


def check_data(recipe: Recipe, folders: list[Path]) -> None:
    """Read the folders' headers and split them, so that a folder the recipe cannot train on is refused
    before a run folder exists (`train` repeats this; pixels are only decoded there)."""
    splits = data.split_series(data.scan_data(recipe, folders), recipe)
    side = recipe.data.patch
    for domain in sorted({record.domain for record in splits["train"]}):
        if not any(min(r.rows, r.columns) >= side for r in splits["train"] if r.domain == domain):
            raise data.DataError(f"no training image is at least {side}x{side} pixels; lower data.patch")


def _resolved_init(init: str | None) -> str | None:
    if init is None:
        return None
    path = Path(init).expanduser()
    return str(path.resolve()) if path.suffix == ".safetensors" else init


def _recipe_for_init(recipe: Recipe, init: str) -> Recipe:
    """Fine-tuning a registered model trains that model's architecture, whatever the recipe's model says."""
    path = Path(init).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise RunError(f"--init {init}: weights file not found")
        return recipe
    entry = discover_models().get(init)
    if entry.card is None:
        raise RunError(f"--init {init}: {entry.name} is a classical method, not a network to fine-tune")
    if recipe.recipe.paradigm == "cycle":
        raise RunError("--init with a model id is for one generator; a cycle recipe trains two")
    table = recipe.to_json()
    table["model"] = {"architecture": entry.card.architecture, "arguments": dict(entry.card.arguments)}
    return recipe_from_table(table, [], source=f"recipe with --init {init}")


def read_run(folder: Path) -> tuple[Recipe, RunSettings]:
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"run folder {folder} not found")
    if not (folder / RUN_FILE).is_file() or not (folder / RECIPE_FILE).is_file():
        raise RunError(f"{folder} is not a run folder (no {RUN_FILE} and {RECIPE_FILE})")
    try:
        settings = RunSettings(**json.loads((folder / RUN_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as error:
        raise RunError(f"{folder / RUN_FILE}: unreadable ({error})") from None
    return load_recipe(folder / RECIPE_FILE), settings


# --- building ------------------------------------------------------------------------------------------------


def build_generator(architecture: str, arguments: dict) -> ImageNetwork:
    network = build_architecture(architecture, arguments)
    if not isinstance(network, ImageNetwork):
        raise RecipeError(f"model.architecture {architecture!r} is not an image-to-image network")
    return network


def build_discriminator(architecture: str, arguments: dict) -> Discriminator:
    network = build_architecture(architecture, arguments)
    if not isinstance(network, Discriminator):
        raise RecipeError(f"discriminator.architecture {architecture!r} is not a discriminator")
    return network


def _check_fit(recipe: Recipe, generator: ImageNetwork) -> None:
    degradation = recipe.degradation
    scale = degradation.scale if degradation is not None and recipe.data.pairing == "synthetic" else 1
    if generator.scale != scale:
        raise RecipeError(
            f"model {recipe.model.architecture} upscales x{generator.scale}, but the data gives x{scale} pairs "
            f"(data.degradation {recipe.data.degradation!r})"
        )
    input_side = recipe.data.patch // scale
    if input_side % generator.size_multiple:
        raise RecipeError(
            f"data.patch {recipe.data.patch} gives {input_side}-pixel inputs; {recipe.model.architecture} needs "
            f"multiples of {generator.size_multiple}"
        )


def _optimiser(recipe: Recipe, parameters, lr: float) -> torch.optim.Optimizer:
    settings = recipe.optimiser
    kind = torch.optim.AdamW if settings.name == "adamw" else torch.optim.Adam
    return kind(parameters, lr=lr, betas=tuple(settings.betas), weight_decay=settings.weight_decay)


def _perceptual(recipe: Recipe, folder: Path, train_pool: data.FramePool, device, is_main: bool, context):
    loss = recipe.loss
    if loss.perceptual_weight <= 0:
        return None, "none"
    if loss.perceptual_network == "vgg19":
        network = load_vgg19(Path(loss.perceptual_weights))
        description = f"VGG19 relu5_4 features, weights from {Path(loss.perceptual_weights).name}"
    else:
        path = folder / FEATURE_NETWORK_FILE
        network = SmallFeatureEncoder()
        if not path.exists():
            if is_main:
                _train_feature_network(network, recipe, train_pool, path)
            context.barrier()
        load_weights(network, path)
        description = (
            f"a VGG-style encoder (32/64/128 channels) the trainer trained as a denoising autoencoder for "
            f"{loss.perceptual_pretrain_steps} steps on this run's training patches; not ImageNet VGG19"
        )
    return FeatureLoss(network.to(device)).to(device), description


def _train_feature_network(network: SmallFeatureEncoder, recipe: Recipe, pool: data.FramePool, path: Path) -> None:
    """A denoising autoencoder on clean training patches (noise sigma 25/255): its encoder learns image
    structure rather than noise, which is what a perceptual loss should compare. Seeded on its own."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(recipe.run.seed + 7919)
    side = max(32, recipe.data.patch - recipe.data.patch % 4)
    settings = data.PatchSettings(side, None, 1.0, 0.0, 0.0, recipe.run.seed + 7919)
    patches = data.PatchDataset([pool], settings, "synthetic")
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    network.train()
    for step in range(recipe.loss.perceptual_pretrain_steps):
        clean = torch.stack([patches[step * 16 + item]["target"] for item in range(16)])
        noisy = clean + torch.randn_like(clean) * (25 / 255)
        loss = torch.nn.functional.l1_loss(network.reconstruct(noisy), clean)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network.eval()
    save_weights(
        network, path, metadata={"purpose": "perceptual feature network", "final_l1": f"{float(loss.detach()):.5f}"}
    )
    torch.set_rng_state(generator_state)


# --- validation ----------------------------------------------------------------------------------------------


@dataclass
class ValidationSet:
    images: list[data.ValidationImage]
    baselines: dict[str, dict[str, dict[str, float]]]  # degradation -> "input"/"classical" -> psnr/ssim
    classical_name: str
    domains: tuple[list[np.ndarray], list[np.ndarray]] | None = None  # cycle: held-out images of A and B


def _border(recipe: Recipe) -> int:
    degradation = recipe.degradation
    return 4 if degradation is not None and degradation.kind == "sr" and recipe.data.pairing == "synthetic" else 0


def build_validation(recipe: Recipe, splits: dict[str, list[data.SeriesRecord]]) -> ValidationSet:
    """Held-out whole images, their degraded inputs (fixed seeds) and the baselines' scores, computed once."""
    records = splits["val"]
    if recipe.recipe.paradigm == "cycle":
        first = [record for record in records if record.domain == 0]
        second = [record for record in records if record.domain == 1]
        count = max(1, recipe.data.val_images // 2)
        return ValidationSet([], {}, "none", (data.domain_images(first, count), data.domain_images(second, count)))
    degradations = recipe.val_degradations if recipe.data.pairing == "synthetic" else []
    images = data.validation_images(records, recipe, recipe.data.val_images, degradations)
    if not images:
        raise data.DataError("no validation image is large enough; add series or lower data.val_fraction")
    scale = degradations[0].scale if degradations else 1
    classical = classical_method(f"bicubic-x{scale}" if scale > 1 else "nlm")
    baselines: dict[str, dict[str, dict[str, float]]] = {}
    specs = [degradation.spec for degradation in degradations] or ["paired"]
    border = _border(recipe)
    for spec, degradation in zip(specs, degradations or [None], strict=True):
        shown, restored = [], []
        for image in images:
            degraded = image.inputs[spec]
            if degradation is not None:
                shown.append(
                    score(
                        image.reference, degraded_baseline(degraded, degradation, image.reference.shape), border=border
                    )
                )
            else:
                shown.append(score(image.reference, degraded, border=border))
            restored.append(score(image.reference, classical.function(degraded), border=border))
        baselines[spec] = {"input": _mean_scores(shown), "classical": _mean_scores(restored)}
    return ValidationSet(images, baselines, classical.id)


def _mean_scores(scores) -> dict[str, float]:
    return {
        "psnr": float(np.mean([item.psnr for item in scores])),
        "ssim": float(np.mean([item.ssim for item in scores])),
    }


def _enhancer(network: torch.nn.Module, recipe: Recipe, device: torch.device, ensemble: int = 1) -> NetworkEnhancer:
    # A copy: the engine fuses BatchNorm into convolutions and switches to eval mode, in place.
    copied = copy.deepcopy(network)
    name = recipe.recipe.name or "run"
    return NetworkEnhancer(copied, "validation", name, recipe.recipe.task, device, ensemble=ensemble)


def validate(state: TrainingState, validation: ValidationSet) -> dict[str, Any]:
    """Scores of the EMA weights on whole held-out images through the viewer's own tiled engine path."""
    if validation.domains is not None:
        return _validate_cycle(state, validation)
    return score_network(state.evaluated("generator"), state.recipe, validation, state.device)


def score_network(
    network: torch.nn.Module, recipe: Recipe, validation: ValidationSet, device: torch.device, ensemble: int = 1
) -> dict[str, Any]:
    """One generator's validation record (mean PSNR/SSIM per degradation) on `validation`'s images, as a
    self-ensemble of `ensemble` copies; export uses it to score weights that no training step produced (an
    average of several runs' weights) and a card that runs the model as a self-ensemble."""
    enhancer = _enhancer(network, recipe, device, ensemble)
    border = _border(recipe)
    by_degradation = {}
    for spec in validation.baselines:
        scores = [
            score(image.reference, enhancer.enhance_normalised_image(image.inputs[spec]), border=border)
            for image in validation.images
        ]
        by_degradation[spec] = _mean_scores(scores)
    return {
        "psnr": float(np.mean([item["psnr"] for item in by_degradation.values()])),
        "ssim": float(np.mean([item["ssim"] for item in by_degradation.values()])),
        "by_degradation": by_degradation,
    }


def _validate_cycle(state: TrainingState, validation: ValidationSet) -> dict[str, Any]:
    """CycleGAN has no ground truth for a translation; it reports how well each domain survives A->B->A."""
    forward = {name: _enhancer(state.evaluated(name), state.recipe, state.device) for name in state.generators}
    results = {}
    for label, images, there, back in (
        ("a", validation.domains[0], "generator_ab", "generator_ba"),
        ("b", validation.domains[1], "generator_ba", "generator_ab"),
    ):
        scores, errors = [], []
        for image in images:
            rebuilt = forward[back].enhance_normalised_image(forward[there].enhance_normalised_image(image))
            scores.append(score(image, rebuilt))
            errors.append(float(np.mean(np.abs(rebuilt - image))))
        results[label] = {**_mean_scores(scores), "cycle_error": float(np.mean(errors))}
    return {
        "psnr": float(np.mean([item["psnr"] for item in results.values()])),
        "ssim": float(np.mean([item["ssim"] for item in results.values()])),
        "cycle_error": float(np.mean([item["cycle_error"] for item in results.values()])),
        "by_domain": results,
    }


# --- the loop ------------------------------------------------------------------------------------------------


class _StopRequest:
    """SIGTERM/SIGINT (the viewer's Cancel, Ctrl-C) ask the loop to checkpoint and stop after this step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for number in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread (tests may call train in one): no handler
                pass
        return self

    def _handle(self, number, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


def _device_text(device: torch.device, recipe: Recipe) -> str:
    """The device as events, checkpoints and cards state it, with the arithmetic when it is not float32."""
    text = describe_device(device)
    return f"{text} with bfloat16 autocast" if autocast_bfloat16(recipe.run.precision, device) else text


def _device_for(settings_device: str, context: Distributed) -> torch.device:
    device = choose_device(settings_device)
    if device.type == "cuda" and context.active:
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    return device


def train(folder: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Train (or continue) the run in `folder` to its recipe's step count. Returns the final summary."""
    folder = Path(folder)
    recipe, settings = read_run(folder)
    if overrides:  # only the length may change on resume: anything else would not be the same run
        extended = load_recipe(folder / RECIPE_FILE, overrides)
        if {**extended.to_json(), "run": None} != {**recipe.to_json(), "run": None} or any(
            getattr(extended.run, key) != getattr(recipe.run, key)
            for key in ("seed", "pretrain_steps", "validate_every", "keep_checkpoints")
        ):
            raise RunError("resume may change only run.steps, run.checkpoint_every and run.log_every")
        recipe = extended
        if os.environ.get("RANK", "0") == "0":  # the run folder describes the run as it now is
            text = recipe.to_toml()
            write_atomically(folder / RECIPE_FILE, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    preferred = choose_device(settings.device)
    if preferred.type == "cpu":
        keep_freed_memory()
    context = from_environment(preferred.type)
    try:
        return _train(folder, recipe, settings, context)
    finally:
        shutdown(context)


def _train(folder: Path, recipe: Recipe, settings: RunSettings, context: Distributed) -> dict[str, Any]:
    device = _device_for(settings.device, context)
    paradigm = PARADIGM_MODULES[recipe.recipe.paradigm]
    torch.manual_seed(recipe.run.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    latest = checkpoint.latest_checkpoint(folder / CHECKPOINT_FOLDER)
    is_main = context.is_main
    if is_main and latest is not None:
        # Written after the checkpoint, so its stale copies go before anything is reported.
        step_of_latest = int(latest.stem.split("-")[1])
        truncate_metrics(folder, step_of_latest)
        _truncate_validation(folder, step_of_latest)
    first_step = int(latest.stem.split("-")[1]) if latest is not None else 0
    reporter = Reporter(folder, recipe.run.steps, first_step, enabled=is_main)
    try:
        return _train_reported(folder, recipe, settings, context, device, paradigm, latest, reporter)
    except MedViewerError as error:
        reporter.event("error", message=str(error))
        raise
    except torch.OutOfMemoryError:
        reporter.event("error", message=f"out of {device.type} memory; lower data.batch or data.patch")
        raise
    finally:
        reporter.close()


def _train_reported(folder, recipe, settings, context, device, paradigm, latest, reporter) -> dict[str, Any]:
    is_main = context.is_main
    records = data.scan_data(recipe, [Path(path) for path in settings.data])
    splits = data.split_series(records, recipe)
    split_record = data.split_summary(splits)
    split_path = folder / "split.json"
    if split_path.exists():
        if json.loads(split_path.read_text(encoding="utf-8")) != split_record:
            raise RunError(
                f"the data in {', '.join(settings.data)} changed since this run started (split.json "
                "differs); start a new run"
            )
    elif is_main:
        data.write_json(split_path, split_record)
        data.write_json(folder / "data.json", data.data_summary(splits, settings.data))

    pools = _pools(folder, recipe, splits, context)

    generator_networks = paradigm.networks(recipe, build_generator, build_discriminator)
    generator = generator_networks[paradigm.GENERATORS[0]]
    _check_fit(recipe, generator)
    if settings.init and latest is None:
        _load_init(generator, settings.init)
    # oneDNN's bf16 convolutions want channels-last; float32 CPU runs keep the layout they always had.
    channels_last = device.type == "cuda" or autocast_bfloat16(recipe.run.precision, device)
    for network in generator_networks.values():
        network.to(device)
        if channels_last:
            network.to(memory_format=torch.channels_last)
    perceptual, perceptual_description = _perceptual(recipe, folder, pools[0], device, is_main, context)
    optimisers, base_lrs = {}, {}
    for name, members in paradigm.OPTIMISERS.items():
        is_discriminator = "discriminator" in name
        lr = (
            recipe.discriminator.learning_rate
            if is_discriminator and recipe.discriminator.learning_rate > 0
            else recipe.optimiser.lr
        )
        parameters = [parameter for member in members for parameter in generator_networks[member].parameters()]
        optimisers[name] = _optimiser(recipe, parameters, lr)
        base_lrs[name] = lr
    state = TrainingState(
        recipe=recipe,
        device=device,
        networks=generator_networks,
        forward={name: context.wrap(network, device) for name, network in generator_networks.items()},
        optimisers=optimisers,
        parameters_of={name: list(members) for name, members in paradigm.OPTIMISERS.items()},
        generators=paradigm.GENERATORS,
        pixel=pixel_loss(recipe.loss.pixel),
        adversarial=AdversarialLoss(recipe.loss.adversarial) if recipe.loss.adversarial != "none" else None,
        perceptual=perceptual,
        pools={
            "a": ImagePool(recipe.loss.image_pool, recipe.run.seed + 1),
            "b": ImagePool(recipe.loss.image_pool, recipe.run.seed + 2),
        }
        if recipe.recipe.paradigm == "cycle"
        else {},
        base_lrs=base_lrs,
    )
    best = {"step": None, "psnr": -math.inf}
    elapsed = 0.0
    if latest is not None:
        saved = checkpoint.load_checkpoint(latest)
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise RunError(
                f"{latest}: checkpoint format {saved.get('format')!r}, this trainer reads {CHECKPOINT_FORMAT}"
            )
        state.load_state_dict(saved["state"])
        torch.set_rng_state(saved["rng"]["torch"])
        if device.type == "cuda" and saved["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(saved["rng"]["cuda"][context.local_rank % len(saved["rng"]["cuda"])])
        best = {"step": saved["best"]["step"], "psnr": saved["best"]["psnr"]}
        elapsed = float(saved["elapsed_seconds"])

    validation = build_validation(recipe, splits) if is_main else None
    steps = recipe.run.steps
    reporter.event(
        "start",
        run=str(folder),
        recipe=settings.recipe_name,
        paradigm=recipe.recipe.paradigm,
        step=state.step,
        steps=steps,
        device=_device_text(device, recipe),
        processes=context.world,
        parameters={name: sum(p.numel() for p in network.parameters()) for name, network in generator_networks.items()},
        data=json.loads((folder / "data.json").read_text(encoding="utf-8")) if is_main else None,
        perceptual=perceptual_description,
        baselines=validation.baselines if validation is not None else None,
        classical=validation.classical_name if validation is not None else None,
        resumed=latest is not None,
    )
    if state.step >= steps:
        reporter.event("done", run=str(folder), step=state.step, steps=steps, best_step=best["step"])
        return {"step": state.step, "best": best}

    mode = recipe.data.pairing
    settings_patch = data.PatchSettings(
        recipe.data.patch,
        recipe.degradation if mode == "synthetic" else None,
        recipe.data.gamma,
        recipe.data.contrast,
        recipe.data.min_patch_std,
        recipe.run.seed,
        recipe.data.amount_exponent,
        recipe.data.noise_maps,
    )
    dataset = data.PatchDataset(pools, settings_patch, mode)
    sampler = data.StepBatchSampler(state.step, steps, recipe.data.batch, context.rank, context.world)
    workers = recipe.data.workers
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
        # Its own generator: creating the iterator must not draw from the global one a resume restores.
        generator=torch.Generator().manual_seed(recipe.run.seed),
    )
    for network in generator_networks.values():
        network.train()
    window_losses: dict[str, list[float]] = {}
    window_started, window_patches = time.monotonic(), 0
    last_checkpoint_time = time.monotonic()
    step_started = time.monotonic()
    with _StopRequest() as stop:
        for batch in loader:
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            if channels_last:
                batch = {key: value.contiguous(memory_format=torch.channels_last) for key, value in batch.items()}
            state.set_learning_rates(learning_rate_factor(recipe.optimiser, state.step, steps))
            losses = paradigm.step(state, batch)
            state.step += 1
            state.update_ema()
            for name, value in losses.items():
                window_losses.setdefault(name, []).append(value)
            window_patches += recipe.data.batch
            step = state.step
            if not all(math.isfinite(value) for value in losses.values()):
                raise RunError(f"loss became {losses} at step {step}; lower optimiser.lr or set optimiser.grad_clip")
            if step % recipe.run.log_every == 0 or step == steps:
                now = time.monotonic()
                means = {name: float(np.mean(values)) for name, values in window_losses.items()}
                rate = window_patches / max(now - window_started, 1e-9)
                lr = next(iter(state.optimisers.values())).param_groups[0]["lr"]
                reporter.event(
                    "step",
                    step=step,
                    steps=steps,
                    losses=means,
                    lr=lr,
                    patches_per_second=round(rate, 2),
                    eta_seconds=reporter.eta_seconds(step),
                )
                reporter.metric_rows(step, "train", {**means, "lr": lr, "patches_per_second": rate})
                reporter.progress(step, means)
                window_losses, window_started, window_patches = {}, now, 0
            due_checkpoint = (
                step % recipe.run.checkpoint_every == 0
                or step == steps
                or stop.requested
                # Time-based only in one process: ranks must agree on every collective step they take.
                or (not context.active and time.monotonic() - last_checkpoint_time > 60 * recipe.run.checkpoint_minutes)
            )
            if is_main and (step % recipe.run.validate_every == 0 or step == steps):
                scores = validate(state, validation)
                for network in generator_networks.values():
                    network.train()
                improved = scores["psnr"] > best["psnr"]
                if improved:
                    best = {"step": step, "psnr": scores["psnr"]}
                    due_checkpoint = True  # the best weights must survive pruning
                reporter.event(
                    "val", step=step, steps=steps, **scores, best_step=best["step"], baselines=validation.baselines
                )
                reporter.metric_rows(step, "val", _flat_scores(scores))
                _append_validation(folder, {"step": step, **scores})
            if due_checkpoint:
                elapsed += time.monotonic() - step_started
                step_started = time.monotonic()
                if is_main:
                    path = checkpoint.save_checkpoint(
                        folder / CHECKPOINT_FOLDER,
                        step,
                        {
                            "format": CHECKPOINT_FORMAT,
                            "step": step,
                            "state": state.state_dict(),
                            "rng": {
                                "torch": torch.get_rng_state(),
                                "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                            },
                            "best": best,
                            "elapsed_seconds": elapsed,
                            "device": _device_text(device, recipe),
                            "processes": context.world,
                        },
                    )
                    checkpoint.prune_checkpoints(folder / CHECKPOINT_FOLDER, recipe.run.keep_checkpoints, best["step"])
                    reporter.event("checkpoint", step=step, path=str(path), best_step=best["step"])
                last_checkpoint_time = time.monotonic()
            if stop.requested:
                reporter.event("cancelled", step=step, steps=steps, run=str(folder))
                raise TrainingCancelled(f"stopped at step {step}; `medviewer-train resume {folder}` continues")
    reporter.event(
        "done",
        run=str(folder),
        step=state.step,
        steps=steps,
        best_step=best["step"],
        best_psnr=best["psnr"],
        seconds=round(elapsed, 1),
    )
    return {"step": state.step, "best": best, "seconds": elapsed}


def _flat_scores(scores: dict[str, Any]) -> dict[str, float]:
    flat = {key: value for key, value in scores.items() if isinstance(value, float)}
    for group in ("by_degradation", "by_domain"):
        for label, values in scores.get(group, {}).items():
            for name, value in values.items():
                flat[f"{name}@{label}"] = value
    return flat


def _append_validation(folder: Path, record: dict[str, Any]) -> None:
    path = folder / VALIDATION_FILE
    history = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    history.append(record)
    data.write_json(path, history)


def _truncate_validation(folder: Path, after_step: int) -> None:
    path = folder / VALIDATION_FILE
    if path.exists():
        history = json.loads(path.read_text(encoding="utf-8"))
        data.write_json(path, [record for record in history if record["step"] <= after_step])


def run_validation_set(folder: Path) -> ValidationSet:
    """The validation images and baselines a run scored itself on, rebuilt from its data folders and seed;
    refuses if the data changed since (split.json differs), as resuming does."""
    recipe, settings = read_run(folder)
    splits = data.split_series(data.scan_data(recipe, [Path(path) for path in settings.data]), recipe)
    split_path = Path(folder) / "split.json"
    if split_path.exists() and json.loads(split_path.read_text(encoding="utf-8")) != data.split_summary(splits):
        raise RunError(f"the data in {', '.join(settings.data)} changed since run {folder} (split.json differs)")
    return build_validation(recipe, splits)


def validation_history(folder: Path) -> list[dict[str, Any]]:
    path = Path(folder) / VALIDATION_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def _pools(folder: Path, recipe: Recipe, splits, context: Distributed) -> list[data.FramePool]:
    """Frame pools of the training split, decoded by rank 0 into the run's cache and shared by the others."""
    cache = folder / "cache"
    mode = recipe.data.pairing
    min_side = recipe.data.patch
    train = splits["train"]
    digest = hashlib.sha256(json.dumps(data.split_summary(splits)["train"]).encode()).hexdigest()[:12]
    index_path = cache / f"index-{digest}.json"
    if context.is_main and not index_path.exists():
        if mode == "unpaired":
            built = [
                data.build_pools(
                    [r for r in train if r.domain == domain], cache, f"train-{domain}", paired=False, min_side=min_side
                )
                for domain in (0, 1)
            ]
            pools = [built[0][0], built[1][0]]
        else:
            pool, reference, _ = data.build_pools(train, cache, "train", paired=mode == "paired", min_side=min_side)
            pools = [pool] + ([reference] if reference is not None else [])
        data.write_json(
            index_path, [{"path": pool.path.name, "shapes": pool.shapes, "offsets": pool.offsets} for pool in pools]
        )
    context.barrier()
    index = json.loads(index_path.read_text(encoding="utf-8"))
    pools = [
        data.FramePool(cache / item["path"], tuple(tuple(shape) for shape in item["shapes"]), tuple(item["offsets"]))
        for item in index
    ]
    for pool in pools:
        if len(pool) == 0:
            raise data.DataError(f"no training image is at least {min_side}x{min_side} pixels; lower data.patch")
    return pools


def _load_init(generator: torch.nn.Module, init: str) -> None:
    path = Path(init)
    if path.suffix != ".safetensors":
        entry = discover_models().get(init)
        path = entry.weights_path
    try:
        load_weights(generator, path)
    except InvalidWeightsError as error:
        raise RunError(f"--init {init}: {error.reason}") from None


def default_run_name(recipe_name: str) -> str:
    return f"{recipe_name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
