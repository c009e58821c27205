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
40 on the right (two doses in one image). No method is told the sigma map: the networks are blind, and BM3D
gets its own single noise estimate (the best a user without the map can do) and, as an oracle, the image's
root-mean-square sigma.

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


def sigma_field(name: str, clean: np.ndarray) -> np.ndarray:
    """The per-pixel noise sigma (normalised units) of field `name` for a clean image in [0, 1]."""
    if name == "signal-dependent":
        return ((5.0 + 40.0 * clean) / 255.0).astype(np.float32)
    if name == "split":
        left = np.arange(clean.shape[1])[None, :] < clean.shape[1] // 2
        return np.broadcast_to(np.where(left, 10.0, 40.0) / 255.0, clean.shape).astype(np.float32)
    raise ValueError(f"unknown noise field {name!r}")


FIELDS = ("signal-dependent", "split")


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
        noisy = {}
        for name, clean in images.items():
            rng = np.random.default_rng(zlib.crc32(f"{field} {name}".encode()))
            noisy[name] = (clean + sigma_field(field, clean) * rng.standard_normal(clean.shape)).astype(np.float32)
        rows = [("noisy input", {name: psnr(images[name], noisy[name]) for name in names})]
        for label, enhancer in methods:
            scores = {}
            for name in names:
                if enhancer is bm3d_rms:
                    bm3d_rms.sigma = float(np.sqrt(np.mean(sigma_field(field, images[name]) ** 2)))
                scores[name] = psnr(images[name], np.asarray(enhancer.enhance_normalised_image(noisy[name])))
            rows.append((label, scores))
            print(f"{field} {label}: {np.mean(list(scores.values())):.2f}", file=sys.stderr, flush=True)
        for label, scores in rows:
            cells = " | ".join(f"{scores[name]:.2f}" for name in names)
            print(f"| {field} | {label} | {np.mean(list(scores.values())):.2f} | {cells} |")


if __name__ == "__main__":
    main()
