"""`medviewer-train` / `python -m trainer`: run, resume, export, eval, recipes.

Bad input (a missing folder, a folder with no usable image, an unknown recipe key, a value of the wrong type,
a run folder that is not a run) is one line on stderr and exit code 2, before any training starts.
Progress is JSON lines on stdout; a stopped run (SIGTERM, Ctrl-C) checkpoints and exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

import platformdirs

from medviewer.errors import MedViewerError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130


def default_runs_folder() -> Path:
    return platformdirs.user_data_path("MedViewer", appauthor=False) / "runs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medviewer-train", description="Train MedViewer's networks on your images.")
    parser.add_argument("--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start a run of a recipe")
    run.add_argument("recipe", help="a shipped recipe name (see `recipes`) or a .toml file")
    run.add_argument(
        "--data",
        nargs="+",
        action="extend",
        type=Path,
        default=[],
        metavar="DIR",
        help="folders of images (paired recipes: LOW HIGH; cycle recipes: A B)",
    )
    run.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override recipe keys, e.g. --set steps=200 batch=8 optimiser.lr=1e-4",
    )
    run.add_argument("--init", metavar="MODEL_ID|WEIGHTS", help="start from a registered model or a safetensors file")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument(
        "--out", type=Path, default=None, metavar="RUNS", help=f"folder of runs (default {default_runs_folder()})"
    )
    run.add_argument("--name", help="run name (default: recipe-date-time); the run goes to RUNS/NAME")
    run.add_argument(
        "--export",
        nargs="?",
        const="",
        default=None,
        metavar="MODELS_DIR",
        help="export when done (default: the user models folder the viewer reads)",
    )

    resume = commands.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run_folder", type=Path)
    resume.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="only run.steps (to extend), run.checkpoint_every and run.log_every may change",
    )
    resume.add_argument("--export", nargs="?", const="", default=None, metavar="MODELS_DIR")

    export = commands.add_parser("export", help="write a run's best weights and model card for the viewer")
    export.add_argument("run_folder", type=Path)
    export.add_argument("--to", type=Path, default=None, metavar="MODELS_DIR", help="default: the user models folder")
    export.add_argument("--id", dest="model_id", help="model id (default: the run's name)")
    export.add_argument("--onnx", action="store_true", help="also write an ONNX graph, checked against the engine")
    export.add_argument("--float16", action="store_true", help="store the weights in half precision (half the file)")
    export.add_argument("--default", action="store_true", help="mark the card as its task's preselected model")
    export.add_argument("--name", dest="display_name", help="the name the viewer lists (default: recipe [run])")
    export.add_argument("--data-source", help="where the training folder came from, for the card")
    export.add_argument("--limits", help="the model's limits, for the card (default: the recipe's)")
    export.add_argument(
        "--step",
        type=int,
        help="export this checkpoint (default: the best validation PSNR; adversarial and cycle runs: the last)",
    )
    export.add_argument(
        "--average-with",
        nargs="+",
        type=Path,
        default=[],
        metavar="WEIGHTS",
        help="export the mean of the checkpoint's weights and these .safetensors files (same architecture; a "
        "'model soup'), scored afresh on the run's validation split",
    )

    export.add_argument(
        "--self-ensemble",
        type=int,
        choices=(1, 2, 4, 8),
        default=1,
        metavar="N",
        help="the card runs the model as a self-ensemble of N rotated/flipped copies by default (1, 2, 4 or 8; "
        "its validation figures scored so)",
    )

    evaluate = commands.add_parser("eval", help="score a run or a model on a folder under a protocol degradation")
    evaluate.add_argument("source", metavar="RUN_DIR|MODEL_ID")
    evaluate.add_argument("--data", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--degrade", required=True, metavar="SPEC", help="noise:S, sr:F or lowdose:P")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--limit", type=int, default=50, help="at most this many images (default 50)")

    commands.add_parser("recipes", help="list the shipped recipes, one line each")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pydicom").setLevel(logging.DEBUG if arguments.verbose else logging.CRITICAL)
    from trainer.run import TrainingCancelled  # torch takes seconds to import; --help should not wait

    try:
        with warnings.catch_warnings():
            if not arguments.verbose:
                warnings.simplefilter("ignore")
            return _dispatch(arguments)
    except TrainingCancelled as error:
        print(f"medviewer-train: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except MedViewerError as error:
        print(f"medviewer-train: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_CANCELLED


def _dispatch(arguments: argparse.Namespace) -> int:
    from trainer import run as runs
    from trainer.events import emit

    if arguments.command == "recipes":
        return _list_recipes()
    if arguments.command == "run":
        from trainer.distributed import from_environment
        from trainer.recipe import find_recipe

        context = from_environment(_device_kind(arguments.device))
        folder, problem = None, None
        if context.is_main:  # one process creates the run; under torchrun the others are told where it is
            try:
                recipe_path = find_recipe(arguments.recipe)
                name = arguments.name or runs.default_run_name(recipe_path.stem)
                folder = runs.prepare_run(
                    recipe_path,
                    arguments.overrides,
                    arguments.data,
                    arguments.out or default_runs_folder(),
                    name,
                    arguments.device,
                    arguments.init,
                    arguments.export,
                )
            except MedViewerError as error:
                problem = error
        folder, message = context.broadcast_object((folder, str(problem) if problem else None))
        if problem is not None:
            raise problem
        if message is not None:
            raise MedViewerError(message)
        return _train_and_export(folder, [], arguments.export if context.is_main else None)
    if arguments.command == "resume":
        runs.read_run(arguments.run_folder)
        is_main = os.environ.get("RANK", "0") == "0"
        return _train_and_export(arguments.run_folder, arguments.overrides, arguments.export if is_main else None)
    if arguments.command == "export":
        from trainer.export import export_run

        written = export_run(
            arguments.run_folder,
            arguments.to,
            arguments.model_id,
            arguments.onnx,
            float16=arguments.float16,
            default=arguments.default,
            name=arguments.display_name,
            data_source=arguments.data_source,
            limits=arguments.limits,
            step=arguments.step,
            average_with=arguments.average_with,
            self_ensemble=arguments.self_ensemble,
        )
        emit({"event": "export", "files": [str(path) for path in written]})
        return 0
    if arguments.command == "eval":
        from medviewer.enhance.degrade import parse_degradation
        from trainer.evaluate import evaluate

        degradation = parse_degradation(arguments.degrade)
        if not arguments.data.is_dir():
            raise MedViewerError(f"data folder {arguments.data} not found")
        result = evaluate(arguments.source, arguments.data, degradation, arguments.device, arguments.limit)
        print(
            f"{result['model']} on {result['images']} images, {result['degradation']}: "
            f"PSNR {result['model_psnr']:.2f} dB / SSIM {result['model_ssim']:.4f}; degraded input "
            f"{result['input_psnr']:.2f} / {result['input_ssim']:.4f}; {result['baseline']} "
            f"{result['baseline_psnr']:.2f} / {result['baseline_ssim']:.4f}",
            file=sys.stderr,
        )
        emit({"event": "eval", **result})
        return 0
    raise AssertionError(arguments.command)


def _device_kind(preference: str) -> str:
    from medviewer.enhance.device import choose_device

    return choose_device(preference).type


def _train_and_export(folder: Path, overrides: list[str], export_to: str | None) -> int:
    from trainer import run as runs
    from trainer.events import emit

    runs.train(Path(folder), overrides)
    if export_to is not None:
        from trainer.export import export_run

        written = export_run(Path(folder), Path(export_to) if export_to else None)
        emit({"event": "export", "files": [str(path) for path in written], "run": str(folder)})
    return 0


def _list_recipes() -> int:
    from trainer.recipe import load_recipe, shipped_recipes

    for name, path in shipped_recipes().items():
        recipe = load_recipe(path)
        print(
            f"{name:<22} {recipe.recipe.paradigm:<11} {recipe.model.architecture:<16} "
            f"{recipe.data.degradation:<16} {recipe.run.steps:>6} steps  {recipe.recipe.description}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
