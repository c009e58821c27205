"""Quality of every method per degradation, by the shared protocol, on held-out images: PSNR and SSIM.

Run: .venv/bin/python benchmarks/enhance_quality.py [--models-dir DIR ...] [--degradations noise:25 sr:2 ...]
(BM3D is included when the `bm3d` package is installed: `.venv/bin/pip install bm3d`.)

Each image is the reference; a copy is degraded per ARCHITECTURE.md's protocol (fixed seeds), enhanced
by every method whose task and scale fit, and scored against the reference through the same code the CLI
and the viewer use (`medviewer.enhance.evaluation.simulate`). The "degraded input" row is the protocol's
baseline (the noisy image; bicubic upscaling for super-resolution).

The held-out images are never to be used for training shipped models (the trainer excludes them): the
centre 256x256 of scikit-image's `camera()` and `moon()`, `coins()`, the Shepp-Logan phantom, and
pydicom's bundled CT_small.dcm and MR_small.dcm (scikit-image's `brain()` would need a download).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from medviewer.enhance.degrade import Degradation, parse_degradation
from medviewer.enhance.engine import Enhancer, load_enhancer
from medviewer.enhance.evaluation import simulate
from medviewer.metrics import estimate_noise_sigma
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models

DEFAULT_DEGRADATIONS = ("noise:15", "noise:25", "noise:50", "lowdose:300", "sr:2", "sr:4")


def held_out_images() -> dict[str, np.ndarray]:
    import pydicom
    from pydicom.data import get_testdata_file
    from skimage import data

    images = {
        "camera (centre 256)": data.camera()[128:384, 128:384].astype(np.float32),
        "moon (centre 256)": data.moon()[128:384, 128:384].astype(np.float32),
        "coins": data.coins().astype(np.float32),
    }
    images["Shepp-Logan phantom"] = data.shepp_logan_phantom().astype(np.float32)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        dataset = pydicom.dcmread(get_testdata_file(name, download=False))
        values = pydicom.pixels.apply_modality_lut(dataset.pixel_array, dataset)
        images[name] = np.asarray(values, np.float32)
    return images


class BM3D(Enhancer):
    """BM3D (Dabov et al. 2007) through the `bm3d` package, blind: sigma from our noise estimate."""

    def __init__(self):
        import torch

        super().__init__("bm3d", "BM3D", "denoise", 1, torch.device("cpu"))

    def run_normalised(self, images, progress=None, should_cancel=None):
        import bm3d

        return np.stack([bm3d.bm3d(image, sigma_psd=estimate_noise_sigma(image)) for image in images]).astype(
            np.float32
        )


def methods_for(degradation: Degradation, enhancers: list[Enhancer]) -> list[Enhancer]:
    task = "super-resolution" if degradation.kind == "sr" else "denoise"
    return [e for e in enhancers if e.task == task and e.scale == degradation.scale]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, action="append", default=None, help="extra model folders")
    parser.add_argument("--degradations", nargs="+", default=list(DEFAULT_DEGRADATIONS))
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    registry = discover_models([BUNDLED_MODELS_FOLDER, *(arguments.models_dir or [])])
    enhancers: list[Enhancer] = [load_enhancer(entry, arguments.device) for entry in registry.entries]
    try:
        enhancers.append(BM3D())
    except ImportError:
        print("bm3d not installed: BM3D left out", file=sys.stderr)
    images = held_out_images()
    lines = [
        "| degradation | method | PSNR dB | SSIM | gain over input dB | seconds per image |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for spec in arguments.degradations:
        degradation = parse_degradation(spec)
        rows: dict[str, list[tuple[float, float, float, float]]] = {}
        for name, image in images.items():
            seed = zlib.crc32(name.encode())  # the same noise for every method and every run
            candidates = methods_for(degradation, enhancers)
            for enhancer in candidates:
                started = time.perf_counter()
                result = simulate(enhancer, image, degradation, seed=seed)
                seconds = time.perf_counter() - started
                if enhancer is candidates[0]:  # the degraded input is the same for every method
                    rows.setdefault("degraded input", []).append(
                        (result.baseline_scores.psnr, result.baseline_scores.ssim, 0.0, 0.0)
                    )
                rows.setdefault(enhancer.id, []).append(
                    (result.enhanced_scores.psnr, result.enhanced_scores.ssim, result.gain_db, seconds)
                )
                print(f"{spec} {name} {enhancer.id}: {result.enhanced_scores.psnr:.2f} dB", file=sys.stderr)
        for method, scores in rows.items():
            psnr, ssim, gain, seconds = (statistics.fmean(column) for column in zip(*scores, strict=True))
            lines.append(f"| {spec} | {method} | {psnr:.2f} | {ssim:.4f} | {gain:+.2f} | {seconds:.2f} |")
    print(f"Mean over {len(images)} held-out images: {', '.join(images)}.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
