"""CycleGAN on held-out images of both domains: cycle-consistency error, how far each translation moves an
image's grey levels toward the other domain, and README.md's figure.

Run: .venv/bin/python benchmarks/translation_quality.py [--model cyclegan-xray-ct] [--models-dir DIR]
     [--figure docs/figures/cyclegan.png]

There is no ground truth for an unpaired translation, so two things are measured on images no model trained
on (`trainer.translation_domains.held_out_domains`: radiographs of unseen seeds and DRRs from unseen angles in
A, CT_small and MR_small in B):
- the cycle error, mean |G_BA(G_AB(a)) - a| (and PSNR) in normalised units, and the same from B: how much of
  the image survives the round trip. An identity mapping would score 0, so it is read with the next column.
- the grey-level distance to the other domain: Wasserstein-1 between the image's grey levels and those of
  the other domain's training images, before and after translation. A translation that works moves the
  image toward the other domain (the distance falls); it says nothing about whether anatomy is right, which
  the figure shows and nobody should assume.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from medviewer.enhance.engine import load_enhancer
from medviewer.metrics import psnr
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import normalised
from trainer.translation_domains import ct_mr_domain, head_ct_volume, held_out_domains, radiograph_domain

sys.path.insert(0, str(Path(__file__).parent))
from figure_grid import labelled_grid, save_png  # noqa: E402 - a sibling script, not an installed module

_SAMPLES = 200_000  # grey levels drawn from each domain's training images: plenty for a 1-D distance


def domain_grey_levels(images, rng: np.random.Generator) -> np.ndarray:
    values = np.concatenate([normalised(image).ravel() for _, image in images])
    return rng.choice(values, size=min(_SAMPLES, values.size), replace=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan-xray-ct", help="the A->B model; its reverse is MODEL-reverse")
    parser.add_argument("--models-dir", type=Path, action="append", default=None, help="extra model folders")
    parser.add_argument("--figure", type=Path, help="write the held-out figure here (PNG)")
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    registry = discover_models([BUNDLED_MODELS_FOLDER, *(arguments.models_dir or [])])
    forward = load_enhancer(registry.get(arguments.model), arguments.device)
    reverse = load_enhancer(registry.get(f"{arguments.model[:56]}-reverse"), arguments.device)
    volume = head_ct_volume()
    rng = np.random.default_rng(0)
    levels = {
        "A": domain_grey_levels(radiograph_domain(volume), rng),
        "B": domain_grey_levels(ct_mr_domain(volume), rng),
    }
    held_out = held_out_domains(volume)
    lines = [
        "| held-out domain | images | cycle error (mean abs, normalised) | cycle PSNR dB "
        "| grey-level distance to the other domain: input | after translation |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    figure_rows, captions = [], []
    for domain, there, back, other in (("A", forward, reverse, "B"), ("B", reverse, forward, "A")):
        rows = []
        for name, image in held_out[domain].items():
            original = normalised(image).astype(np.float32)
            translated = there.enhance_normalised_image(original)
            rebuilt = back.enhance_normalised_image(translated)
            rows.append(
                (
                    float(np.mean(np.abs(rebuilt - original))),
                    psnr(original, rebuilt),
                    wasserstein_distance(original.ravel(), levels[other]),
                    wasserstein_distance(translated.ravel(), levels[other]),
                )
            )
            print(f"{domain} {name}: cycle error {rows[-1][0]:.4f}", file=sys.stderr)
            if domain == "B" or _shown(name):
                figure_rows.append([original, translated, rebuilt])
                captions.append(f"{domain}: {name.split('/')[-1]}")
        error, cycle_psnr, before, after = (statistics.fmean(column) for column in zip(*rows, strict=True))
        lines.append(
            f"| {domain} ({'X-ray' if domain == 'A' else 'CT/MR'}) | {len(rows)} | {error:.4f} | {cycle_psnr:.2f} "
            f"| {before:.3f} | {after:.3f} |"
        )
    print(f"Model {forward.id} (A -> B) and {reverse.id} (B -> A), {arguments.device}.")
    print("\n".join(lines))
    if arguments.figure:
        grid = labelled_grid(
            figure_rows, ["input (acquired or simulated)", "SYNTHETIC translation", "translated back"], captions
        )
        print(f"figure: {save_png(arguments.figure, grid)}", file=sys.stderr)


def _shown(name: str) -> bool:
    """Two simulated radiographs and one DRR make the figure's A rows."""
    return name.endswith(("49000", "49001")) or name.startswith("drr/") and name.endswith("067.5")


if __name__ == "__main__":
    main()
