"""Crops of held-out images at x4 by several super-resolution models, for judging sharpness by eye: README.md's
SRGAN figure.

Run: .venv/bin/python benchmarks/sr_crops.py [--models srresnet-cbam-x4 srgan-cbam-x4 ...] [--models-dir DIR]
     [--figure docs/figures/srgan_crops.png]

Each held-out image is downscaled by the protocol (`sr:4`, antialiased bicubic) and upscaled by every model;
the figure shows the same 64x64 crop of the reference, the bicubic baseline and each model, enlarged 3x with
nearest-neighbour so that the pixels are the models' own. Printed per crop: PSNR and high-frequency energy
(`medviewer.metrics.high_frequency_ratio`, 1 = the reference's) of each model on that crop.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

from medviewer.enhance.degrade import parse_degradation
from medviewer.enhance.engine import load_enhancer
from medviewer.enhance.evaluation import simulate
from medviewer.metrics import high_frequency_ratio, psnr
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import held_out_images, normalised

sys.path.insert(0, str(Path(__file__).parent))
from figure_grid import labelled_grid, save_png  # noqa: E402 - a sibling script, not an installed module

# (held-out image, top, left) of each 64x64 crop: a face and tripod, lunar texture, the CT slice's spine and
# soft tissue, the MR slice's brain.
CROPS = (
    ("camera (centre 256)", 40, 70),
    ("moon (centre 256)", 100, 100),
    ("CT_small.dcm", 20, 34),
    ("MR_small.dcm", 0, 0),
)
SIZE = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["srresnet-cbam-x4", "srgan-cbam-x4", "fastsr-x4"])
    parser.add_argument("--models-dir", type=Path, action="append", default=None, help="extra model folders")
    parser.add_argument("--figure", type=Path, help="write the crop figure here (PNG)")
    arguments = parser.parse_args()
    registry = discover_models([BUNDLED_MODELS_FOLDER, *(arguments.models_dir or [])])
    enhancers = [load_enhancer(registry.get(model_id), "cpu") for model_id in arguments.models]
    degradation = parse_degradation("sr:4")
    images = held_out_images()
    rows, captions = [], []
    lines = [
        "| crop | " + " | ".join(["bicubic", *arguments.models]) + " |",
        "| --- |" + " ---: |" * (len(arguments.models) + 1),
    ]
    for name, top, left in CROPS:
        image = normalised(images[name])  # [0, 1], as the models see it: crops and scores in the same units
        seed = zlib.crc32(name.encode())  # enhance_quality.py's seed for the same image
        results = [simulate(enhancer, image, degradation, seed=seed) for enhancer in enhancers]

        def crop(pixels, top=top, left=left):
            return pixels[top : top + SIZE, left : left + SIZE]

        reference = crop(results[0].reference)
        tiles = [crop(results[0].baseline), *(crop(result.enhanced) for result in results)]
        rows.append([reference, *tiles])
        captions.append(f"{name} at ({top}, {left})")
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{psnr(reference, tile):.2f} dB, HF {high_frequency_ratio(reference, tile):.2f}" for tile in tiles
            )
            + " |"
        )
    print("\n".join(lines))
    if arguments.figure:
        grid = labelled_grid(rows, ["reference", "bicubic x4", *arguments.models], captions, nearest=True)
        print(f"figure: {save_png(arguments.figure, grid)}", file=sys.stderr)


if __name__ == "__main__":
    main()
