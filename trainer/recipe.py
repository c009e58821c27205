"""Recipes: one training experiment per TOML file, read strictly into typed dataclasses.

A recipe is the only description of an experiment: the run folder keeps the resolved copy, so a result can be
reproduced by `resume` or by a fresh `run` of that file. Every key is known and typed; a wrong one is one
`RecipeError` naming it, raised before any data is read or any weight is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from medviewer.enhance.degrade import Degradation, InvalidDegradationError, parse_degradation
from medviewer.errors import MedViewerError, one_line

RECIPES_FOLDER = Path(__file__).resolve().parent / "recipes"
PARADIGMS = ("supervised", "adversarial", "cycle")
PAIRINGS = ("synthetic", "paired", "unpaired")
PIXEL_LOSSES = ("l1", "l2", "charbonnier")
ADVERSARIAL_LOSSES = ("none", "vanilla", "lsgan")
PERCEPTUAL_NETWORKS = ("none", "vgg19", "self-trained")
SCHEDULES = ("constant", "cosine", "step", "linear-decay")
OPTIMISERS = ("adam", "adamw")
PRECISIONS = ("auto", "float32", "bfloat16", "native")


class RecipeError(MedViewerError):
    """A recipe file or override that is missing, malformed, or names an unknown key or a wrong value."""


@dataclass(frozen=True)
class DegradationRange:
    """A protocol degradation with a range of amounts for blind models: 'noise:0-55', 'lowdose:20-200', 'sr:4'.

    Noise amounts are drawn uniformly; photon counts log-uniformly (each doubling of dose is equally likely,
    as dose levels are spread in practice). An amount of 0 means the clean image (a blind denoiser must leave
    clean images alone)."""

    kind: str
    low: float
    high: float

    @property
    def spec(self) -> str:
        def text(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else repr(value)

        if self.low == self.high:
            return f"{self.kind}:{text(self.low)}"
        return f"{self.kind}:{text(self.low)}-{text(self.high)}"

    @property
    def scale(self) -> int:
        return int(self.low) if self.kind == "sr" else 1

    def at(self, fraction: float) -> Degradation | None:
        """The degradation at `fraction` (0..1) of the range; None for amount 0 (no degradation)."""
        if self.kind == "lowdose" and self.low > 0:
            amount = math.exp(math.log(self.low) + fraction * (math.log(self.high) - math.log(self.low)))
        else:
            amount = self.low + fraction * (self.high - self.low)
        amount = round(amount, 6) if self.kind != "sr" else int(amount)
        if amount <= 0:  # after rounding: a draw that rounds to 0 is the clean image, not an invalid amount
            return None
        return Degradation(self.kind, amount)


def parse_degradation_range(text: str) -> DegradationRange:
    """'noise:0-55' -> a range; a single amount is a range of one value. Raises RecipeError."""
    kind, separator, amounts = str(text).strip().partition(":")
    low_text, dash, high_text = amounts.partition("-")
    try:
        if not separator:
            raise ValueError
        low = float(low_text)
        high = float(high_text) if dash else low
        if kind == "sr":
            parse_degradation(f"sr:{int(low)}")
            if dash or low != int(low):
                raise ValueError
        elif kind in ("noise", "lowdose"):
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
                raise ValueError
            if kind == "lowdose" and low <= 0:
                raise ValueError
        else:
            raise ValueError
    except (ValueError, InvalidDegradationError):
        raise RecipeError(
            f"invalid degradation {text!r}: use noise:S or noise:LOW-HIGH (sigma in 8-bit grey levels), "
            "lowdose:P or lowdose:LOW-HIGH (photons at peak, > 0), sr:F (integer 2..8), or none"
        ) from None
    return DegradationRange(kind, low, high)


@dataclass(frozen=True)
class RecipeSection:
    """What a recipe file calls its own: a description and the training paradigm."""

    name: str = ""
    description: str = ""
    paradigm: str = "supervised"
    task: str = "denoise"
    intended_use: str = ""
    limits: str = ""


@dataclass(frozen=True)
class ModelSection:
    architecture: str = "msdenoiser"
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DiscriminatorSection:
    architecture: str = "patchgan-discriminator"
    arguments: dict[str, Any] = field(default_factory=dict)
    # pix2pix's discriminator judges (input, output) pairs; SRGAN's and CycleGAN's judge the output alone.
    conditional: bool = False
    learning_rate: float = 0.0  # 0: the generator's (optimiser.lr)


@dataclass(frozen=True)
class DataSection:
    pairing: str = "synthetic"
    degradation: str = "noise:0-55"
    # Fixed degradations the validation split is scored at, so figures compare across runs and steps.
    val_degradations: list[str] = field(default_factory=lambda: ["noise:25"])
    patch: int = 64  # side of the target (full-resolution) patch
    batch: int = 16
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    val_images: int = 8
    workers: int = 2
    # Intensity augmentation: a gamma drawn log-uniformly in [1/gamma, gamma] (1: off), and a random
    # contrast stretch, so a model meets more intensity distributions than the training folder holds.
    gamma: float = 1.0
    contrast: float = 0.0
    # A patch whose standard deviation is below this (flat background) is redrawn up to 4 times.
    min_patch_std: float = 0.0
    # A ranged degradation's amount is drawn at fraction u^amount_exponent of its range (u uniform in [0, 1]):
    # 1 is uniform; 2 puts half the draws in the lowest quarter. A blind denoiser's loss is dominated by the
    # large errors of high-noise patches, so low noise, where it competes with BM3D, gets fewer updates.
    amount_exponent: float = 1.0
    # The fraction of Gaussian-noise patches whose sigma varies over the patch (a smooth random field or a
    # signal-dependent one, with the drawn sigma as its RMS): clinical noise is not stationary, and a blind
    # denoiser that only ever sees one level per patch learns to keep anything noisier as texture.
    noise_maps: float = 0.0


@dataclass(frozen=True)
class LossSection:
    pixel: str = "l1"
    pixel_weight: float = 1.0
    adversarial: str = "none"
    adversarial_weight: float = 0.0
    perceptual_weight: float = 0.0
    perceptual_network: str = "none"
    perceptual_weights: str = ""  # a local VGG19 safetensors file, for perceptual_network = "vgg19"
    perceptual_pretrain_steps: int = 300  # for "self-trained": steps of its denoising-autoencoder training
    frequency_weight: float = 0.0
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    image_pool: int = 50


@dataclass(frozen=True)
class OptimiserSection:
    name: str = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01  # cosine ends at lr * min_lr_ratio
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # step schedule, fractions of steps
    step_factor: float = 0.1  # step schedule: the learning rate is multiplied by this at each milestone
    decay_start: float = 0.5  # linear-decay: fraction of steps at full lr before the linear fall to 0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    ema_decay: float = 0.999  # 0: no EMA; validation and export use the EMA weights when on


@dataclass(frozen=True)
class RunSection:
    steps: int = 1000
    # SRGAN: SRResNet pre-training with the pixel loss alone for these first steps, then the GAN losses.
    pretrain_steps: int = 0
    seed: int = 0
    # Mixed precision of the forward pass: "bfloat16" (autocast; float32 weights, optimiser and loss),
    # "float32", "auto": bfloat16 on a CUDA GPU, float32 on the CPU, or "native": bfloat16 wherever the
    # hardware computes it (a CUDA GPU, or a CPU with AMX or AVX512-BF16), float32 elsewhere.
    precision: str = "auto"
    validate_every: int = 250
    checkpoint_every: int = 250
    checkpoint_minutes: float = 5.0  # also checkpoint when this long has passed since the last one
    keep_checkpoints: int = 3
    log_every: int = 10


@dataclass(frozen=True)
class Recipe:
    recipe: RecipeSection = field(default_factory=RecipeSection)
    model: ModelSection = field(default_factory=ModelSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optimiser: OptimiserSection = field(default_factory=OptimiserSection)
    run: RunSection = field(default_factory=RunSection)

    @property
    def degradation(self) -> DegradationRange | None:
        return None if self.data.degradation == "none" else parse_degradation_range(self.data.degradation)

    @property
    def val_degradations(self) -> list[Degradation]:
        return [parse_degradation(spec) for spec in self.data.val_degradations]

    def to_toml(self) -> str:
        """The resolved recipe as TOML that `load_recipe` reads back to an equal Recipe."""
        lines = []
        for section in dataclasses.fields(self):
            lines.append(f"[{section.name}]")
            for item in dataclasses.fields(getattr(self, section.name)):
                lines.append(f"{item.name} = {_toml_value(getattr(getattr(self, section.name), item.name))}")
            lines.append("")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def shipped_recipes() -> dict[str, Path]:
    """Recipe name (file stem) -> path, for every recipe in trainer/recipes, in name order (sorting the paths
    would put "msdenoiser-two-hours.toml" before "msdenoiser.toml": "-" sorts before ".")."""
    return {path.stem: path for path in sorted(RECIPES_FOLDER.glob("*.toml"), key=lambda path: path.stem)}


def find_recipe(name_or_path: str) -> Path:
    """A shipped recipe by name, or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found")
        return path
    recipes = shipped_recipes()
    if name_or_path in recipes:
        return recipes[name_or_path]
    close = difflib.get_close_matches(name_or_path, list(recipes), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `medviewer-train recipes` lists them"
    raise RecipeError(f"unknown recipe {name_or_path!r}{hint}")


def load_recipe(path: Path, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe file and apply `key=value` overrides (`steps=200`, `optimiser.lr=1e-4`)."""
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise RecipeError(f"cannot read recipe {path} ({error.strerror or error})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RecipeError(f"recipe {path} is not valid TOML ({error})") from None
    return recipe_from_table(table, overrides or [], source=str(path))


def recipe_from_table(table: dict[str, Any], overrides: list[str], source: str = "recipe") -> Recipe:
    table = {name: dict(section) if isinstance(section, dict) else section for name, section in table.items()}
    for override in overrides:
        section, key, value = _parse_override(override)
        table.setdefault(section, {})[key] = value
    sections = {}
    for section_field in dataclasses.fields(Recipe):
        raw = table.pop(section_field.name, {})
        if not isinstance(raw, dict):
            raise RecipeError(f"{source}: [{section_field.name}] must be a table")
        section_type = _section_types()[section_field.name]
        sections[section_field.name] = _build_section(section_type, section_field.name, raw, source)
    if table:
        unknown = sorted(table)[0]
        raise RecipeError(f"{source}: unknown section [{unknown}]; known: {', '.join(_section_types())}")
    recipe = Recipe(**sections)
    check_recipe(recipe, source)
    return recipe


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Recipe)
    return {name: hints[name] for name in (item.name for item in dataclasses.fields(Recipe))}


def _all_keys() -> dict[str, list[str]]:
    """Bare key -> the sections that have it (an override may omit the section where that is unambiguous)."""
    keys: dict[str, list[str]] = {}
    for name, section_type in _section_types().items():
        for item in dataclasses.fields(section_type):
            keys.setdefault(item.name, []).append(name)
    return keys


def _parse_override(override: str) -> tuple[str, str, Any]:
    key, separator, text = str(override).partition("=")
    key = key.strip()
    if not separator or not key:
        raise RecipeError(f"override {override!r} must be key=value, e.g. steps=200 or optimiser.lr=1e-4")
    section, dot, bare = key.rpartition(".")
    keys = _all_keys()
    if dot:
        if section not in _section_types() or bare not in (
            item.name for item in dataclasses.fields(_section_types()[section])
        ):
            raise RecipeError(f"unknown recipe key {key!r}{_close_hint(key)}")
    else:
        bare = key
        owners = keys.get(bare)
        if not owners:
            raise RecipeError(f"unknown recipe key {key!r}{_close_hint(key)}")
        if len(owners) > 1:
            choices = ", ".join(f"{owner}.{bare}" for owner in owners)
            raise RecipeError(f"recipe key {key!r} is ambiguous; use one of {choices}")
        section = owners[0]
    text = text.strip()
    try:  # a TOML value (200, 1e-4, true, [1, 2], "text"); bare words are taken as text
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, bare, value


def _close_hint(key: str) -> str:
    names = list(_all_keys()) + [
        f"{section}.{item.name}" for section, kind in _section_types().items() for item in dataclasses.fields(kind)
    ]
    close = difflib.get_close_matches(key, names, n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _build_section(section_type: type, name: str, raw: dict[str, Any], source: str):
    hints = typing.get_type_hints(section_type)
    known = {item.name for item in dataclasses.fields(section_type)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known))}"
            raise RecipeError(f"{source}: unknown key {name}.{key}{hint}")
        values[key] = _checked_value(f"{name}.{key}", value, hints[key], source)
    return section_type(**values)


def _checked_value(key: str, value: Any, expected: Any, source: str) -> Any:
    origin = typing.get_origin(expected)
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif expected is str:
        ok = isinstance(value, str)
    elif origin is list:
        (item_type,) = typing.get_args(expected)
        ok = isinstance(value, list)
        if ok:
            value = [_checked_value(f"{key}[{index}]", item, item_type, source) for index, item in enumerate(value)]
    elif origin is dict or expected is dict:
        ok = isinstance(value, dict)
        value = dict(value) if ok else value
    elif isinstance(expected, types.UnionType):
        ok = True
    else:  # pragma: no cover - a field type this reader does not know is a programming error
        raise TypeError(f"unsupported recipe field type {expected}")
    if not ok:
        kind = getattr(expected, "__name__", str(expected))
        raise RecipeError(f"{source}: {key} must be {_article(kind)}, got {one_line(repr(value))}")
    return value


def _article(kind: str) -> str:
    return {
        "int": "an integer",
        "float": "a number",
        "str": "text",
        "bool": "true or false",
        "dict": "a table",
    }.get(kind, kind.replace("list[", "a list of ").rstrip("]"))


def check_recipe(recipe: Recipe, source: str = "recipe") -> None:
    """Value checks that types alone cannot express; each failure names the key."""

    def fail(message: str) -> typing.NoReturn:
        raise RecipeError(f"{source}: {message}")

    def choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            fail(f"{key} {value!r} must be one of {', '.join(allowed)}")

    def at_least(key: str, value: float, low: float) -> None:
        if value < low:
            fail(f"{key} must be >= {low}, got {value}")

    choice("recipe.paradigm", recipe.recipe.paradigm, PARADIGMS)
    choice("recipe.task", recipe.recipe.task, ("denoise", "super-resolution", "translation", "contrast"))
    choice("data.pairing", recipe.data.pairing, PAIRINGS)
    choice("loss.pixel", recipe.loss.pixel, PIXEL_LOSSES)
    choice("loss.adversarial", recipe.loss.adversarial, ADVERSARIAL_LOSSES)
    choice("loss.perceptual_network", recipe.loss.perceptual_network, PERCEPTUAL_NETWORKS)
    choice("optimiser.name", recipe.optimiser.name, OPTIMISERS)
    choice("optimiser.schedule", recipe.optimiser.schedule, SCHEDULES)
    choice("run.precision", recipe.run.precision, PRECISIONS)
    for key, value, low in (
        ("run.steps", recipe.run.steps, 1),
        ("run.pretrain_steps", recipe.run.pretrain_steps, 0),
        ("run.validate_every", recipe.run.validate_every, 1),
        ("run.checkpoint_every", recipe.run.checkpoint_every, 1),
        ("run.keep_checkpoints", recipe.run.keep_checkpoints, 1),
        ("run.checkpoint_minutes", recipe.run.checkpoint_minutes, 0.1),
        ("run.log_every", recipe.run.log_every, 1),
        ("run.seed", recipe.run.seed, 0),
        ("data.patch", recipe.data.patch, 8),
        ("data.batch", recipe.data.batch, 1),
        ("data.val_images", recipe.data.val_images, 1),
        ("data.workers", recipe.data.workers, 0),
        ("data.gamma", recipe.data.gamma, 1.0),
        ("data.contrast", recipe.data.contrast, 0.0),
        ("data.min_patch_std", recipe.data.min_patch_std, 0.0),
        ("data.amount_exponent", recipe.data.amount_exponent, 0.1),
        ("optimiser.warmup_steps", recipe.optimiser.warmup_steps, 0),
        ("optimiser.grad_clip", recipe.optimiser.grad_clip, 0.0),
        ("loss.pixel_weight", recipe.loss.pixel_weight, 0.0),
        ("loss.adversarial_weight", recipe.loss.adversarial_weight, 0.0),
        ("loss.perceptual_weight", recipe.loss.perceptual_weight, 0.0),
        ("loss.frequency_weight", recipe.loss.frequency_weight, 0.0),
        ("loss.cycle_weight", recipe.loss.cycle_weight, 0.0),
        ("loss.identity_weight", recipe.loss.identity_weight, 0.0),
        ("loss.image_pool", recipe.loss.image_pool, 0),
        ("loss.perceptual_pretrain_steps", recipe.loss.perceptual_pretrain_steps, 1),
        ("discriminator.learning_rate", recipe.discriminator.learning_rate, 0.0),
    ):
        at_least(key, value, low)
    if not 0 < recipe.optimiser.lr <= 1:
        fail(f"optimiser.lr must be in (0, 1], got {recipe.optimiser.lr}")
    if not 0 <= recipe.optimiser.ema_decay < 1:
        fail(f"optimiser.ema_decay must be in [0, 1), got {recipe.optimiser.ema_decay}")
    if len(recipe.optimiser.betas) != 2 or not all(0 <= beta < 1 for beta in recipe.optimiser.betas):
        fail(f"optimiser.betas must be two numbers in [0, 1), got {recipe.optimiser.betas}")
    if not 0 < recipe.optimiser.min_lr_ratio <= 1 and recipe.optimiser.schedule == "cosine":
        fail(f"optimiser.min_lr_ratio must be in (0, 1], got {recipe.optimiser.min_lr_ratio}")
    if not all(0 < milestone < 1 for milestone in recipe.optimiser.milestones):
        fail(f"optimiser.milestones must be fractions of the run in (0, 1), got {recipe.optimiser.milestones}")
    if not 0 <= recipe.data.noise_maps <= 1:
        fail(f"data.noise_maps is a fraction of the noise patches, in [0, 1], got {recipe.data.noise_maps}")
    if not 0 < recipe.data.val_fraction < 1 or not 0 <= recipe.data.test_fraction < 1:
        fail("data.val_fraction must be in (0, 1) and data.test_fraction in [0, 1)")
    if recipe.data.val_fraction + recipe.data.test_fraction >= 1:
        fail("data.val_fraction + data.test_fraction must leave series for training")
    paradigm = recipe.recipe.paradigm
    if paradigm == "cycle" and recipe.data.pairing != "unpaired":
        fail("a cycle recipe needs data.pairing = 'unpaired' (two folders, one per domain)")
    if paradigm != "cycle" and recipe.data.pairing == "unpaired":
        fail(f"unpaired data needs recipe.paradigm = 'cycle', not {paradigm!r}")
    if recipe.data.pairing == "synthetic":
        degradation = recipe.degradation
        if degradation is None:
            fail("synthetic pairs need a data.degradation (noise:..., lowdose:... or sr:F)")
        if degradation.kind == "sr" and recipe.data.patch % degradation.scale:
            fail(f"data.patch {recipe.data.patch} must be a multiple of the sr scale {degradation.scale}")
        for spec in recipe.data.val_degradations:
            try:
                validation = parse_degradation(spec)
            except InvalidDegradationError as error:
                fail(f"data.val_degradations: {error}")
            if validation.scale != degradation.scale:
                fail(f"data.val_degradations {spec!r} must have the training scale x{degradation.scale}")
        if not recipe.data.val_degradations:
            fail("data.val_degradations must name at least one degradation")
    if paradigm == "adversarial" and recipe.loss.adversarial == "none":
        fail("an adversarial recipe needs loss.adversarial = 'vanilla' or 'lsgan'")
    if recipe.loss.perceptual_weight > 0 and recipe.loss.perceptual_network == "none":
        fail(
            "loss.perceptual_weight > 0 needs loss.perceptual_network: 'vgg19' with loss.perceptual_weights "
            "(a local safetensors file) or 'self-trained'; a random-weight feature network is never used"
        )
    if recipe.loss.perceptual_network == "vgg19" and recipe.loss.perceptual_weight > 0:
        if not recipe.loss.perceptual_weights:
            fail("loss.perceptual_network = 'vgg19' needs loss.perceptual_weights, a local VGG19 safetensors file")
        if not Path(recipe.loss.perceptual_weights).expanduser().is_file():
            fail(f"loss.perceptual_weights {recipe.loss.perceptual_weights} is not a file")
