"""Model cards: the JSON beside each weights file that says what a model is, how it was made and its limits.

A card is read strictly: a model whose card is wrong is reported and skipped by the registry rather than
run with guessed settings, because a radiologist must know exactly which model produced an image.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medviewer.errors import MedViewerError, one_line

TASKS = ("denoise", "super-resolution", "translation", "contrast")
# medviewer.enhance.self_ensemble.ENSEMBLE_SIZES, repeated so that cards need nothing from the engine (tested).
SELF_ENSEMBLE_SIZES = (1, 2, 4, 8)
CARD_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".safetensors"
# A card is a page of text; anything much bigger is not a card and is not worth parsing.
_MAX_CARD_BYTES = 1_000_000
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_REQUIRED = (
    "id",
    "name",
    "task",
    "scale",
    "architecture",
    "arguments",
    "parameters",
    "training_data",
    "recipe",
    "validation",
    "date",
    "intended_use",
    "limits",
)


class InvalidModelCardError(MedViewerError):
    """A model card that is missing, unreadable, incomplete or unsafe."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


@dataclass(frozen=True)
class Validation:
    """The scores a model reached on held-out images, and on what: without the 'on what' a number misleads."""

    psnr: float
    ssim: float
    degradation: str
    images: str


@dataclass(frozen=True)
class ModelCard:
    """What the viewer shows about a network and what the engine needs to build it."""

    id: str
    name: str
    task: str
    scale: int
    architecture: str
    arguments: dict[str, Any]
    parameters: int
    training_data: str
    recipe: str
    validation: Validation
    date: datetime.date
    intended_use: str
    limits: str
    weights_file: str
    half_precision: bool | None = None  # None: the architecture decides
    # The model the viewer preselects for its task: one per task among the bundled models.
    default: bool = False
    # Copies of the geometric self-ensemble the model runs with unless the user picks another
    # (`medviewer.enhance.self_ensemble`): its validation figures and speed are for that many passes.
    self_ensemble: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The card as written to disk (and as `medviewer models --json` reports it)."""
        record: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "task": self.task,
            "scale": self.scale,
            "architecture": self.architecture,
            "arguments": self.arguments,
            "parameters": self.parameters,
            "training_data": self.training_data,
            "recipe": self.recipe,
            "validation": {
                "psnr": self.validation.psnr,
                "ssim": self.validation.ssim,
                "degradation": self.validation.degradation,
                "images": self.validation.images,
            },
            "date": self.date.isoformat(),
            "intended_use": self.intended_use,
            "limits": self.limits,
            "weights": self.weights_file,
        }
        if self.half_precision is not None:
            record["half_precision"] = self.half_precision
        if self.default:
            record["default"] = True
        if self.self_ensemble != 1:
            record["self_ensemble"] = self.self_ensemble
        record.update(self.extra)
        return record


def read_model_card(path: Path) -> ModelCard:
    """Parse and check one card; every problem is an `InvalidModelCardError` naming the card and the field."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_CARD_BYTES:
            raise InvalidModelCardError(path, f"{size} bytes is too large for a model card")
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidModelCardError(path, f"cannot read ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidModelCardError(path, f"not valid JSON ({error})") from None
    try:
        return card_from_json(record, default_weights=path.stem + WEIGHTS_SUFFIX)
    except ValueError as error:
        raise InvalidModelCardError(path, str(error)) from None


def card_from_json(record: Any, default_weights: str) -> ModelCard:
    """Check a parsed card; a `ValueError` says which field is wrong and why."""
    if not isinstance(record, dict):
        raise ValueError("a model card must be a JSON object")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    model_id = _text(record, "id")
    if not _MODEL_ID.match(model_id):
        raise ValueError(f"id {model_id!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'")
    task = _text(record, "task")
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
    scale = record["scale"]
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= 8:
        raise ValueError(f"scale {scale!r} must be an integer from 1 to 8")
    if (task == "super-resolution") != (scale > 1):
        raise ValueError(f"task {task} with scale {scale}: only super-resolution changes the size")
    arguments = record["arguments"]
    if not isinstance(arguments, dict) or not all(isinstance(key, str) for key in arguments):
        raise ValueError("arguments must be a JSON object")
    parameters = record["parameters"]
    if not isinstance(parameters, int) or isinstance(parameters, bool) or parameters < 0:
        raise ValueError(f"parameters {parameters!r} must be a non-negative integer")
    weights_file = record.get("weights", default_weights)
    # The weights must sit beside the card: a card must not be able to point the loader anywhere else.
    if not isinstance(weights_file, str) or Path(weights_file).name != weights_file or weights_file in ("", ".", ".."):
        raise ValueError(f"weights {weights_file!r} must be a file name in the card's folder")
    if not weights_file.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"weights {weights_file!r} must be a {WEIGHTS_SUFFIX} file (never a pickle)")
    half_precision = record.get("half_precision")
    if half_precision is not None and not isinstance(half_precision, bool):
        raise ValueError("half_precision must be true or false")
    default = record.get("default", False)
    if not isinstance(default, bool):
        raise ValueError("default must be true or false")
    self_ensemble = record.get("self_ensemble", 1)
    if isinstance(self_ensemble, bool) or self_ensemble not in SELF_ENSEMBLE_SIZES:
        raise ValueError(f"self_ensemble {self_ensemble!r} must be one of {', '.join(map(str, SELF_ENSEMBLE_SIZES))}")
    try:
        date = datetime.date.fromisoformat(_text(record, "date"))
    except ValueError:
        raise ValueError(f"date {record['date']!r} must be YYYY-MM-DD") from None
    recipe = record["recipe"]
    if isinstance(recipe, dict):  # a recipe may be inlined as the TOML table it came from
        recipe = json.dumps(recipe, sort_keys=True)
    elif not isinstance(recipe, str):
        raise ValueError("recipe must be text or an object")
    known = set(_REQUIRED) | {"weights", "half_precision", "default", "self_ensemble"}
    return ModelCard(
        id=model_id,
        name=_text(record, "name"),
        task=task,
        scale=scale,
        architecture=_text(record, "architecture"),
        arguments=dict(arguments),
        parameters=parameters,
        training_data=_text(record, "training_data"),
        recipe=recipe,
        validation=_validation(record["validation"]),
        date=date,
        intended_use=_text(record, "intended_use"),
        limits=_text(record, "limits"),
        weights_file=weights_file,
        half_precision=half_precision,
        default=default,
        self_ensemble=self_ensemble,
        extra={key: value for key, value in record.items() if key not in known},
    )


def _text(record: dict[str, Any], key: str) -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be non-empty text")
    return value


def _validation(value: Any) -> Validation:
    if not isinstance(value, dict):
        raise ValueError("validation must be an object with psnr, ssim, degradation and images")
    try:
        psnr = float(value["psnr"])
        ssim = float(value["ssim"])
        degradation = str(value["degradation"])
        images = str(value["images"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("validation must give psnr, ssim (numbers), degradation and images") from None
    if not math.isfinite(psnr) or not -1.0 <= ssim <= 1.0:
        raise ValueError(f"validation psnr {psnr} / ssim {ssim} out of range")
    return Validation(psnr=psnr, ssim=ssim, degradation=degradation, images=images)
