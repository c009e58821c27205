"""The model registry: every method a user can pick, networks found by their cards and the classical ones.

Networks are discovered from model cards in the bundled `resources/models` folder and in the user's models
folder. Each card is checked against its architecture and its weights file's header before it is listed,
so a broken download or a hand-edited card is reported once and skipped instead of failing later, and
never stops the others from loading.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import torch

from medviewer.errors import MedViewerError, UnknownModelError, one_line
from medviewer.models.architectures import ArchitectureError, ImageNetwork, build_architecture
from medviewer.models.card import CARD_SUFFIX, InvalidModelCardError, ModelCard, read_model_card
from medviewer.models.classical import CLASSICAL_METHODS, ClassicalMethod
from medviewer.models.weights import InvalidWeightsError, check_weights

log = logging.getLogger(__name__)

USER_MODELS_ENVIRONMENT = "MEDVIEWER_MODELS_DIR"
BUNDLED_MODELS_FOLDER = Path(__file__).resolve().parents[2] / "resources" / "models"


def user_models_folder() -> Path:
    """Where a user's own models live: `$MEDVIEWER_MODELS_DIR`, else the platform's user data folder
    (e.g. ~/.local/share/MedViewer/models on Linux), where the trainer exports to."""
    override = os.environ.get(USER_MODELS_ENVIRONMENT)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("MedViewer", appauthor=False) / "models"


def default_model_folders() -> list[Path]:
    return [BUNDLED_MODELS_FOLDER, user_models_folder()]


@dataclass(frozen=True)
class ModelEntry:
    """One method a user can choose: a network with its card, or a classical method."""

    id: str
    name: str
    task: str
    scale: int
    kind: str  # "network" or "classical"
    description: str
    card: ModelCard | None = None
    card_path: Path | None = None
    classical: ClassicalMethod | None = None

    @property
    def weights_path(self) -> Path | None:
        return None if self.card is None or self.card_path is None else self.card_path.parent / self.card.weights_file


@dataclass(frozen=True)
class SkippedModel:
    """A card or weights file that was not listed, and why (shown by `medviewer models` and the GUI)."""

    path: Path
    reason: str


@dataclass
class ModelRegistry:
    entries: list[ModelEntry]
    skipped: list[SkippedModel] = field(default_factory=list)
    defaults: dict[str, str] = field(default_factory=dict)  # task -> id of the model to preselect

    def get(self, model_id: str) -> ModelEntry:
        for entry in self.entries:
            if entry.id == model_id:
                return entry
        close = difflib.get_close_matches(model_id, [entry.id for entry in self.entries], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `medviewer models` lists them"
        raise UnknownModelError(f"unknown model {model_id!r}{hint}")

    def default_entry(self, task: str) -> ModelEntry | None:
        """The model the viewer preselects for `task`: the network whose card says `"default": true` (from
        the last folder that has one, so a user's own default replaces the bundled one), or None."""
        model_id = self.defaults.get(task)
        return self.get(model_id) if model_id is not None else None

    def by_task(self) -> dict[str, list[ModelEntry]]:
        grouped: dict[str, list[ModelEntry]] = {}
        for entry in self.entries:
            grouped.setdefault(entry.task, []).append(entry)
        return grouped


def discover_models(folders: Sequence[Path] | None = None) -> ModelRegistry:
    """List the classical methods and every valid network card in `folders` (default: bundled, then user).

    A later folder's model replaces an earlier one with the same id (a user's retrained model wins over
    the bundled one), and that is logged; a problem with one model never hides the others."""
    folders = default_model_folders() if folders is None else [Path(folder) for folder in folders]
    entries: dict[str, ModelEntry] = {method.id: _classical_entry(method) for method in CLASSICAL_METHODS}
    skipped: list[SkippedModel] = []
    card_paths = _card_paths(folders, skipped)
    for card_path in card_paths:
        try:
            entry = network_entry(card_path)
        except MedViewerError as error:
            skipped.append(SkippedModel(card_path, one_line(getattr(error, "reason", str(error)))))
            log.warning("skipped model %s: %s", card_path, error)
            continue
        previous = entries.get(entry.id)
        if previous is not None and previous.kind == "classical":
            skipped.append(SkippedModel(card_path, f"id {entry.id!r} is a built-in method's"))
            continue
        if previous is not None:
            log.info("model %s from %s replaces the one in %s", entry.id, card_path, previous.card_path)
        entries[entry.id] = entry
    by_card = {entry.card_path: entry for entry in entries.values() if entry.card_path is not None}
    defaults = {}
    for card_path in card_paths:  # discovery order: bundled first, the user's folder last
        entry = by_card.get(card_path)
        if entry is not None and entry.card is not None and entry.card.default:
            defaults[entry.task] = entry.id
    order = {"network": 0, "classical": 1}
    listed = sorted(entries.values(), key=lambda entry: (entry.task, order[entry.kind], entry.scale, entry.id))
    return ModelRegistry(entries=listed, skipped=skipped, defaults=defaults)


def network_entry(card_path: Path) -> ModelEntry:
    """Read a card and check it against its architecture and its weights' header (no tensor is read)."""
    card = read_model_card(card_path)
    weights_path = card_path.parent / card.weights_file
    if weights_path.is_symlink() and not weights_path.resolve().is_relative_to(card_path.parent.resolve()):
        raise InvalidModelCardError(card_path, f"weights {card.weights_file} link outside the models folder")
    try:
        with torch.device("meta"):  # shapes only: building on the meta device allocates nothing
            network = build_architecture(card.architecture, card.arguments)
    except ArchitectureError as error:
        raise InvalidModelCardError(card_path, str(error)) from None
    if not isinstance(network, ImageNetwork):
        raise InvalidModelCardError(card_path, f"architecture {card.architecture} is not an image-to-image network")
    if network.scale != card.scale:
        raise InvalidModelCardError(card_path, f"scale {card.scale} but the architecture upscales by {network.scale}")
    counted = sum(parameter.numel() for parameter in network.parameters())
    if counted != card.parameters:
        raise InvalidModelCardError(card_path, f"says {card.parameters} parameters, the architecture has {counted}")
    try:
        check_weights(weights_path, network.state_dict())
    except InvalidWeightsError as error:
        raise InvalidModelCardError(card_path, f"{weights_path.name}: {error.reason}") from None
    return ModelEntry(
        id=card.id,
        name=card.name,
        task=card.task,
        scale=card.scale,
        kind="network",
        description=card.intended_use,
        card=card,
        card_path=card_path,
    )


def _classical_entry(method: ClassicalMethod) -> ModelEntry:
    return ModelEntry(
        id=method.id,
        name=method.name,
        task=method.task,
        scale=method.scale,
        kind="classical",
        description=method.description,
        classical=method,
    )


def _card_paths(folders: Iterable[Path], skipped: list[SkippedModel]) -> list[Path]:
    paths = []
    for folder in folders:
        if not folder.is_dir():
            continue
        try:
            paths.extend(sorted(path for path in folder.iterdir() if path.suffix == CARD_SUFFIX and path.is_file()))
        except OSError as error:
            skipped.append(SkippedModel(folder, f"cannot list folder ({error.strerror or error})"))
    return paths
