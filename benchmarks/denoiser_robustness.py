"""How the denoisers hold up when the noise level changes across the image: README.md's robustness table.

Run: .venv/bin/python benchmarks/denoiser_robustness.py [--models-dir DIR ...] [--methods ID ...]
(BM3D is included when the `bm3d` package is installed: `.venv/bin/pip install bm3d`.)

Why: the protocol's Gaussian noise has one sigma over the whole image, and a blind denoiser can learn to
read that one level off the image and treat anything noisier as texture to keep. Clinical noise is not
like that: it grows with the signal in radiographs, differs between body and air in CT and MR, and between
regions of different dose. A training change that raises the stationary figures while losing here (it has
happened: see README.md) would be a worse denoiser on real studies, so every candidate default denoiser is
scored on both before it ships.

Two non-stationary Gaussian fields, in 8-bit units of the image's range, on the six held-out images
(normalised as the protocol does, fixed seeds): "signal-dependent", sigma = 5 + 40 x the clean value (a
photon-limited detector's shape, without Poisson's discreteness), and "split", sigma 10 on the left half and
40 on the right (two doses in one image); "split, each side" is the split with the noisier half on the
right, left, bottom and top in turn, each image scored by the mean of the four (see `FIELDS`). No method is
told the sigma map: the networks are blind (each runs as its card says), and BM3D gets its own single noise
estimate (the best a user without the map can do) and, as an oracle, the image's root-mean-square sigma.

`--models-dir DIR` scores the denoisers of each folder too (labelled with the folder's name), so candidate
weights can be compared with the shipped ones in one run.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np

from medviewer.enhance.engine import Enhancer, load_enhancer
from medviewer.metrics import psnr
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import held_out_images, normalised

SPLIT_SIDES = ("right", "left", "bottom", "top")


def sigma_field(name: str, clean: np.ndarray, noisier_side: str = "right") -> np.ndarray:
    """The per-pixel noise sigma (normalised units) of field `name` for a clean image in [0, 1]; for the
    split, `noisier_side` is the half with sigma 40."""
    if name == "signal-dependent":
        return ((5.0 + 40.0 * clean) / 255.0).astype(np.float32)
    if name.startswith("split"):
        rows, columns = np.indices(clean.shape)
        noisier = {
            "right": columns >= clean.shape[1] // 2,
            "left": columns < clean.shape[1] // 2,
            "bottom": rows >= clean.shape[0] // 2,
            "top": rows < clean.shape[0] // 2,
        }[noisier_side]
        return (np.where(noisier, 40.0, 10.0) / 255.0).astype(np.float32)
    raise ValueError(f"unknown noise field {name!r}")


# "split, each side": the split with its noisier half on each of the four sides in turn, the image's score
# the mean of the four. A blind network is not rotation-equivariant, and on the split its single pass on
# CT_small ranged from 29.2 to 32.4 dB over the eight rotations and flips of the image (the eleventh
# msdenoiser stage): "split" alone measures one orientation's luck as much as the network.
FIELDS = ("signal-dependent", "split", "split, each side")


def noisy_versions(field: str, name: str, clean: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """The noisy copies of `clean` that field `field` scores (one, or one per side), each with its RMS sigma."""
    sides = SPLIT_SIDES if field == "split, each side" else ("right",)
    versions = []
    for side in sides:
        label = field if len(sides) == 1 else f"split {side}"
        rng = np.random.default_rng(zlib.crc32(f"{label} {name}".encode()))
        sigma = sigma_field(field, clean, side)
        noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
        versions.append((noisy, float(np.sqrt(np.mean(sigma**2)))))
    return versions


class FixedSigmaBM3D(Enhancer):
    """BM3D with one sigma for the whole image: `sigma` if given, else our noise estimate of the image."""

    def __init__(self, label: str, sigma: float | None = None):
        import bm3d  # noqa: F401 - fail at construction, not on the first image
        import torch

        super().__init__(label, label, "denoise", 1, torch.device("cpu"))
        self.sigma = sigma

    def run_normalised(self, images, progress=None, should_cancel=None):
        import bm3d

        from medviewer.metrics import estimate_noise_sigma

        return np.stack(
            [bm3d.bm3d(image, sigma_psd=self.sigma or estimate_noise_sigma(image)) for image in images]
        ).astype(np.float32)


def denoisers(folders: list[Path], methods: list[str]) -> list[tuple[str, Enhancer]]:
    """(label, enhancer) for every network denoiser in the bundled folder and each extra folder."""
    chosen = []
    for folder in [BUNDLED_MODELS_FOLDER, *folders]:
        suffix = "" if folder == BUNDLED_MODELS_FOLDER else f" ({folder.name})"
        for entry in discover_models([folder]).entries:
            if entry.task == "denoise" and entry.kind == "network" and (not methods or entry.id in methods):
                chosen.append((entry.id + suffix, load_enhancer(entry, "cpu")))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, action="append", default=[], help="more denoisers to score")
    parser.add_argument("--methods", nargs="*", default=[], help="only these model ids")
    arguments = parser.parse_args()
    images = {name: normalised(image) for name, image in held_out_images().items()}
    methods = denoisers(arguments.models_dir, arguments.methods)
    try:
        bm3d_estimate = FixedSigmaBM3D("bm3d (own estimate)")
        methods.append((bm3d_estimate.name, bm3d_estimate))
        bm3d_rms = FixedSigmaBM3D("bm3d (rms sigma, oracle)")
        methods.append((bm3d_rms.name, bm3d_rms))
    except ImportError:
        bm3d_rms = None
        print("bm3d not installed: BM3D rows left out", file=sys.stderr)
    names = list(images)
    print("PSNR dB on the six held-out images under non-stationary Gaussian noise (no method is given the map).")
    print("| noise field | method | mean | " + " | ".join(names) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in names) + " |")
    for field in FIELDS:
        noisy = {name: noisy_versions(field, name, clean) for name, clean in images.items()}
        rows = [
            ("noisy input", {name: np.mean([psnr(images[name], copy) for copy, _ in noisy[name]]) for name in names})
        ]
        for label, enhancer in methods:
            scores = {}
            for name in names:
                values = []
                for copy, rms_sigma in noisy[name]:
                    if enhancer is bm3d_rms:
                        bm3d_rms.sigma = rms_sigma
                    values.append(psnr(images[name], np.asarray(enhancer.enhance_normalised_image(copy))))
                scores[name] = float(np.mean(values))
            rows.append((label, scores))
            print(f"{field} {label}: {np.mean(list(scores.values())):.2f}", file=sys.stderr, flush=True)
        for label, scores in rows:
            cells = " | ".join(f"{scores[name]:.2f}" for name in names)
            print(f"| {field} | {label} | {np.mean(list(scores.values())):.2f} | {cells} |")


if __name__ == "__main__":
    main()
