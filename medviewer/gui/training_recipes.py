"""The shipped training recipes as the training dialog offers them, read from the trainer's TOML files.

The viewer never imports the `trainer` package: it imports torch (seconds), and training belongs in its own
process. So the package's folder is found without importing it and its `recipes/*.toml` are read with
tomllib; only the few keys the dialog needs are looked at, with the trainer's own defaults for keys a recipe
leaves out (`trainer/recipe.py`: RecipeSection, ModelSection, DataSection, RunSection).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomllib

log = logging.getLogger(__name__)

TRAINER_PACKAGE = "trainer"
# The source tree's own trainer, used when no installed package of that name holds recipes.
_SOURCE_TREE_TRAINER = Path(__file__).resolve().parents[2] / TRAINER_PACKAGE
_SR_SCALE = re.compile(r"^sr:(\d+)$")

FOLDER_LABELS = {
    "synthetic": ("Images",),
    "paired": ("LOW (input)", "HIGH (target)"),
    "unpaired": ("A (source)", "B (target)"),
}
FOLDER_HINTS = {
    "synthetic": ("clean images; the recipe degrades copies of them ({degradation}) to learn from",),
    "paired": (
        "the degraded images (e.g. low-dose), same file names as in HIGH",
        "the matching clean images (e.g. full-dose)",
    ),
    "unpaired": ("images of the source domain", "images of the target domain (not matched to A)"),
}


@dataclass(frozen=True)
class RecipeSummary:
    """What the dialog needs from one recipe file; `name` (the file stem) is what `trainer run` takes."""

    name: str
    title: str
    description: str
    paradigm: str
    task: str
    architecture: str
    pairing: str
    degradation: str
    steps: int
    path: Path

    @property
    def folder_labels(self) -> tuple[str, ...]:
        """One label per data folder the recipe needs: paired and unpaired recipes need two."""
        return FOLDER_LABELS.get(self.pairing, FOLDER_LABELS["synthetic"])

    @property
    def folder_hints(self) -> tuple[str, ...]:
        hints = FOLDER_HINTS.get(self.pairing, FOLDER_HINTS["synthetic"])
        return tuple(hint.format(degradation=self.degradation) for hint in hints)

    @property
    def scale(self) -> int:
        """The upscaling factor its model learns: F for an `sr:F` degradation, else 1."""
        match = _SR_SCALE.match(self.degradation.strip())
        return int(match.group(1)) if match else 1

    @property
    def can_start_from_model(self) -> bool:
        """A cycle recipe trains two generators; `--init` gives one, so the trainer refuses it there."""
        return self.paradigm != "cycle"


def trainer_folder() -> Path | None:
    """The `trainer` package's folder, found without importing it (None: not installed, not in the tree)."""
    candidates = []
    try:
        spec = importlib.util.find_spec(TRAINER_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent)
    candidates.append(_SOURCE_TREE_TRAINER)
    for folder in candidates:
        # Another project's package may be called "trainer" too: ours is the one with recipes.
        if (folder / "recipes").is_dir() and (folder / "__main__.py").is_file():
            return folder
    return None


def recipes_folder() -> Path | None:
    folder = trainer_folder()
    return None if folder is None else folder / "recipes"


def read_recipe(path: Path) -> RecipeSummary:
    """One recipe file's summary; OSError or tomllib.TOMLDecodeError for a file that cannot be read."""
    table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    recipe, model, data, run = (table.get(section, {}) for section in ("recipe", "model", "data", "run"))
    return RecipeSummary(
        name=Path(path).stem,
        title=str(recipe.get("name") or Path(path).stem),
        description=str(recipe.get("description", "")),
        paradigm=str(recipe.get("paradigm", "supervised")),
        task=str(recipe.get("task", "denoise")),
        architecture=str(model.get("architecture", "msdenoiser")),
        pairing=str(data.get("pairing", "synthetic")),
        degradation=str(data.get("degradation", "noise:0-55")),
        steps=int(run.get("steps", 1000)),
        path=Path(path),
    )


def shipped_recipes(folder: Path | None = None) -> list[RecipeSummary]:
    """Every readable recipe in `folder` (default: the trainer's), by name; a broken file is logged and left
    out, so that one bad recipe never closes the dialog (the trainer reports it in full if it is chosen)."""
    folder = recipes_folder() if folder is None else Path(folder)
    if folder is None or not folder.is_dir():
        return []
    summaries = []
    for path in sorted(folder.glob("*.toml"), key=lambda path: path.stem):  # by name, as the trainer lists them
        try:
            summaries.append(read_recipe(path))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:  # TOMLDecodeError is a ValueError
            log.warning("recipe %s not offered: %s", path, error)
    return summaries


def recipe_for_model(
    recipes: Sequence[RecipeSummary],
    architecture: str,
    task: str,
    scale: int = 1,
    preferred: str | None = None,
) -> RecipeSummary | None:
    """The recipe to fine-tune a model with: the one it was trained with (`preferred`, from its card) if
    shipped and of the same architecture, else one of the same architecture, task and scale, else the same
    architecture and task, else the first of the same task and scale, else the first of the same task.
    Recipes that can start from a model (not cycle) come first at every level; None if no recipe fits."""
    ordered = sorted(recipes, key=lambda recipe: not recipe.can_start_from_model)
    tests = (
        lambda r: r.name == preferred and r.architecture == architecture and r.task == task,
        lambda r: r.architecture == architecture and r.task == task and r.scale == scale,
        lambda r: r.architecture == architecture and r.task == task,
        lambda r: r.task == task and r.scale == scale,
        lambda r: r.task == task,
    )
    for test in tests:
        for recipe in ordered:
            if test(recipe):
                return recipe
    return None
