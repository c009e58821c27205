"""The shipped models at a glance, from their cards and one timing each: README.md's "Shipped models" table.

Run: .venv/bin/python benchmarks/shipped_models.py [--models-dir DIR] [--models ID ...]

Per model: the recipe and how it was trained (steps, minutes, device, from the card), GFLOP per 512x512
input (counted by PyTorch's FlopCounterMode on the meta device), CPU seconds per 512x512 slice through the
engine (best of 3 after a warm-up, torch's default threads), the weights file's size, and the card's own
validation figure on its validation split (the held-out figures are `benchmarks/enhance_quality.py`'s; for
CycleGAN, the round trip's PSNR and mean error per domain, and `benchmarks/translation_quality.py`'s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from medviewer.enhance.engine import load_enhancer
from medviewer.models.architectures import build_architecture
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models


def gigaflops_per_512(architecture: str, arguments: dict) -> float:
    with torch.device("meta"):
        network = build_architecture(architecture, arguments)
        with FlopCounterMode(display=False) as counter:
            network(torch.zeros(1, network.in_channels, 512, 512))
    return counter.get_total_flops() / 1e9


def seconds_per_512(entry) -> float:
    enhancer = load_enhancer(entry, "cpu")
    image = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    enhancer.enhance_normalised_image(image)  # warm-up
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        enhancer.enhance_normalised_image(image)
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=BUNDLED_MODELS_FOLDER)
    parser.add_argument("--models", nargs="+", help="only these model ids (the rows of a retrained model)")
    arguments = parser.parse_args()
    registry = discover_models([arguments.models_dir])
    lines = [
        "| model | recipe | training | GFLOP per 512² | CPU s per 512² | file MB | validation split (card) |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for entry in registry.entries:
        if entry.kind != "network" or (arguments.models and entry.id not in arguments.models):
            continue
        card = entry.card
        training = card.extra.get("training", {})
        recipe = json.loads(card.recipe) if card.recipe.startswith("{") else {}
        trained = (
            f"{training.get('step', '?')} steps, {training.get('seconds', 0) / 60:.0f} min, {training.get('device')}"
            + (f", from {Path(str(training['init'])).stem}" if training.get("init") else "")
        )
        validation = ", ".join(
            f"{spec}: {figures['psnr']:.2f} dB (baseline {card.extra['baselines'][spec]['classical']['psnr']:.2f})"
            for spec, figures in card.extra.get("validation_by_degradation", {}).items()
        ) or ", ".join(  # translation: no ground truth, the round trip of each domain
            f"cycle {domain.upper()}: {figures['psnr']:.2f} dB, mean error {figures['cycle_error']:.4f}"
            for domain, figures in (card.extra.get("cycle_validation") or {}).items()
        )
        lines.append(
            f"| `{entry.id}`{' (default)' if registry.defaults.get(entry.task) == entry.id else ''} "
            f"| `{training.get('recipe_file', recipe.get('recipe', {}).get('name', '?'))}` | {trained} "
            f"| {gigaflops_per_512(card.architecture, card.arguments):.1f} | {seconds_per_512(entry):.3f} "
            f"| {entry.weights_path.stat().st_size / 1e6:.1f} | {validation} |"
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
