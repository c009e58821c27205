"""Quality of every method per degradation, by the shared protocol, on held-out images: PSNR and SSIM.

Run: .venv/bin/python benchmarks/enhance_quality.py [--models-dir DIR ...] [--degradations noise:25 sr:2 ...]
     [--speed] [--self-ensemble 2 8]
(BM3D is included when the `bm3d` package is installed: `.venv/bin/pip install bm3d`.)

Each image is the reference; a copy is degraded per ARCHITECTURE.md's protocol (fixed seeds), enhanced
by every method whose task and scale fit, and scored against the reference through the same code the CLI
and the viewer use (`medviewer.enhance.evaluation.simulate`). The "degraded input" row is the protocol's
baseline (the noisy image; bicubic upscaling for super-resolution). BM3D is given the true sigma on Gaussian
noise (an oracle our blind networks do not get) and its own noise estimate on low-dose noise; on low-dose noise
BM3D + Anscombe (variance-stabilised, then BM3D, then the unbiased inverse) is given the true photon count.

The held-out images (`trainer.training_pool.held_out_images`) are never used for training shipped models:
the centre 256x256 of scikit-image's `camera()` and `moon()`, `coins()`, the Shepp-Logan phantom, and
pydicom's bundled CT_small.dcm and MR_small.dcm.

"High-frequency energy" is `medviewer.metrics.high_frequency_ratio`: the spectral energy above 1/4 cycle per
pixel as a fraction of the reference's (1: as much fine detail as the reference; below: blurrier; above:
detail or noise the reference lacks), a sharpness measure that needs no downloaded network.

`--speed` times every denoiser on one 512x512 slice (noise:25) in this process, as ratios to BM3D.
Every network runs as its card says: a card's `self_ensemble: N` (the default denoiser's 4) makes its row
"ID xN". `--self-ensemble N` adds each network run as a geometric self-ensemble of N copies (`medviewer.
enhance.self_ensemble`) as its own row, "ID xN", in both tables (N = 1: the single pass). The arithmetic
(float32, or bfloat16 on a CPU that has it, `MEDVIEWER_CPU_BFLOAT16=0` to refuse) is printed to stderr.
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
from medviewer.enhance.self_ensemble import ENSEMBLE_SIZES
from medviewer.metrics import estimate_noise_sigma, high_frequency_ratio
from medviewer.models.registry import BUNDLED_MODELS_FOLDER, discover_models
from trainer.training_pool import held_out_images

DEFAULT_DEGRADATIONS = (
    "noise:15",
    "noise:25",
    "noise:50",
    "lowdose:30",
    "lowdose:60",
    "lowdose:120",
    "sr:2",
    "sr:4",
)


class BM3D(Enhancer):
    """BM3D (Dabov et al. 2007) through the `bm3d` package, with a given sigma or, if None, our noise estimate."""

    def __init__(self, sigma: float | None = None):
        import bm3d  # noqa: F401 - fail at construction, not on the first image
        import torch

        super().__init__("bm3d", "BM3D", "denoise", 1, torch.device("cpu"))
        self.sigma = sigma

    def run_normalised(self, images, progress=None, should_cancel=None):
        import bm3d

        return np.stack(
            [bm3d.bm3d(image, sigma_psd=self.sigma or estimate_noise_sigma(image)) for image in images]
        ).astype(np.float32)


class BM3DAnscombe(Enhancer):
    """BM3D for Poisson-Gaussian noise done properly: the generalised Anscombe transform with the true photon
    count (the protocol's read noise is one count), BM3D at unit sigma, and Makitalo and Foi's closed-form
    approximation of the exact unbiased inverse ("Optimal inversion of the generalized Anscombe transformation
    for Poisson-Gaussian noise", IEEE TIP 22(1), 2013). Given the true dose, as BM3D is given the true sigma."""

    READ_NOISE_COUNTS = 1.0

    def __init__(self):
        import bm3d  # noqa: F401
        import torch

        super().__init__("bm3d-anscombe", "BM3D + Anscombe", "denoise", 1, torch.device("cpu"))
        self.photons: float | None = None

    def run_normalised(self, images, progress=None, should_cancel=None):
        import bm3d

        if self.photons is None:
            raise ValueError("BM3D + Anscombe needs the photon count of a lowdose degradation")
        sigma2 = self.READ_NOISE_COUNTS**2
        outputs = []
        for image in images:
            stabilised = 2.0 * np.sqrt(np.maximum(image.astype(np.float64) * self.photons + 0.375 + sigma2, 0.0))
            denoised = np.maximum(bm3d.bm3d(stabilised, sigma_psd=1.0), 0.8)  # the inverse's series needs D > 0
            counts = (
                0.25 * denoised**2
                + 0.25 * np.sqrt(1.5) / denoised
                - 1.375 / denoised**2
                + 0.625 * np.sqrt(1.5) / denoised**3
                - 0.125
                - sigma2
            )
            outputs.append(np.maximum(counts, 0.0) / self.photons)
        return np.stack(outputs).astype(np.float32)


def bm3d_for(degradation: Degradation, bm3d: BM3D | None, anscombe: BM3DAnscombe | None = None) -> None:
    """Give BM3D the true sigma for Gaussian noise (normalised units), its own estimate otherwise; give BM3D +
    Anscombe the true photon count."""
    if bm3d is not None:
        bm3d.sigma = degradation.amount / 255 if degradation.kind == "noise" else None
    if anscombe is not None:
        anscombe.photons = degradation.amount if degradation.kind == "lowdose" else None


def _row_name(model_id: str, ensemble: int, explicit: bool = False) -> str:
    """A network's row: its id for one pass (as its card runs it), "ID xN" for N copies, "ID x1" for a
    single pass asked for beside a card that runs several."""
    return f"{model_id} x{ensemble}" if ensemble != 1 or explicit else model_id


def methods_for(degradation: Degradation, enhancers: list[Enhancer]) -> list[Enhancer]:
    task = "super-resolution" if degradation.kind == "sr" else "denoise"
    fits = [e for e in enhancers if e.task == task and e.scale == degradation.scale]
    return [e for e in fits if degradation.kind == "lowdose" or not isinstance(e, BM3DAnscombe)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, action="append", default=None, help="extra model folders")
    parser.add_argument("--degradations", nargs="+", default=list(DEFAULT_DEGRADATIONS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", help="only these method ids (and BM3D where installed)")
    parser.add_argument("--speed", action="store_true", help="time every denoiser on a 512x512 slice instead")
    parser.add_argument(
        "--self-ensemble",
        type=int,
        nargs="+",
        default=[],
        choices=ENSEMBLE_SIZES,
        metavar="N",
        help="also run every network as a self-ensemble of N copies (rows 'ID xN'; 1: one pass)",
    )
    arguments = parser.parse_args()
    registry = discover_models([BUNDLED_MODELS_FOLDER, *(arguments.models_dir or [])])
    entries = [e for e in registry.entries if not arguments.methods or e.id in arguments.methods]
    enhancers: list[Enhancer] = []
    for entry in entries:  # each as its card says, as the viewer runs it: "ID xN" when that is N copies
        enhancer = load_enhancer(entry, arguments.device)
        enhancer.id = _row_name(entry.id, getattr(enhancer, "ensemble", 1))
        enhancers.append(enhancer)
    for size in arguments.self_ensemble:
        for entry in (e for e in entries if e.card is not None and e.card.self_ensemble != size):
            ensemble = load_enhancer(entry, arguments.device, ensemble=size)
            ensemble.id = _row_name(entry.id, size, explicit=True)  # its own row beside the card's
            enhancers.append(ensemble)
    arithmetic = sorted({f"{e.id}: {e.precision}" for e in enhancers if hasattr(e, "precision")})
    if arithmetic:
        print(f"Network arithmetic on {arguments.device}: {', '.join(arithmetic)}", file=sys.stderr)
    bm3d: BM3D | None = None
    anscombe: BM3DAnscombe | None = None
    try:
        bm3d, anscombe = BM3D(), BM3DAnscombe()
        enhancers += [bm3d, anscombe]
    except ImportError:
        print("bm3d not installed: BM3D left out", file=sys.stderr)
    if arguments.speed:
        print(speed_table(methods_for(parse_degradation("noise:25"), enhancers)))
        return
    images = held_out_images()
    lines = [
        "| degradation | method | PSNR dB | SSIM | gain over input dB | high-frequency energy | seconds per image |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for spec in arguments.degradations:
        degradation = parse_degradation(spec)
        bm3d_for(degradation, bm3d, anscombe)
        rows: dict[str, list[tuple[float, float, float, float, float]]] = {}
        for name, image in images.items():
            seed = zlib.crc32(name.encode())  # the same noise for every method and every run
            candidates = methods_for(degradation, enhancers)
            for enhancer in candidates:
                started = time.perf_counter()
                result = simulate(enhancer, image, degradation, seed=seed)
                seconds = time.perf_counter() - started
                if enhancer is candidates[0]:  # the degraded input is the same for every method
                    rows.setdefault("degraded input", []).append(
                        (
                            result.baseline_scores.psnr,
                            result.baseline_scores.ssim,
                            0.0,
                            high_frequency_ratio(result.reference, result.baseline),
                            0.0,
                        )
                    )
                rows.setdefault(enhancer.id, []).append(
                    (
                        result.enhanced_scores.psnr,
                        result.enhanced_scores.ssim,
                        result.gain_db,
                        high_frequency_ratio(result.reference, result.enhanced),
                        seconds,
                    )
                )
                print(f"{spec} {name} {enhancer.id}: {result.enhanced_scores.psnr:.2f} dB", file=sys.stderr)
        for method, scores in rows.items():
            psnr, ssim, gain, high, seconds = (statistics.fmean(column) for column in zip(*scores, strict=True))
            lines.append(f"| {spec} | {method} | {psnr:.2f} | {ssim:.4f} | {gain:+.2f} | {high:.2f} | {seconds:.2f} |")
    print(f"Mean over {len(images)} held-out images: {', '.join(images)}.")
    print("\n".join(lines))


def speed_table(denoisers: list[Enhancer], repeats: int = 3) -> str:
    """Seconds per 512x512 slice (best of `repeats` after a warm-up; BM3D once), and each method's speed as a
    multiple of BM3D's, measured in this process so the ratios hold on a busy machine."""
    from skimage import data

    from medviewer.enhance.degrade import degrade

    image = data.camera().astype(np.float32) / 255
    noisy = degrade(image, parse_degradation("noise:25"), seed=0)
    seconds: dict[str, float] = {}
    for enhancer in denoisers:
        runs = 1 if enhancer.id == "bm3d" else repeats
        if enhancer.id == "bm3d":
            enhancer.sigma = 25 / 255
        else:
            enhancer.enhance_normalised_image(noisy)  # warm-up: first-call allocation and kernel choice
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            enhancer.enhance_normalised_image(noisy)
            timings.append(time.perf_counter() - started)
        seconds[enhancer.id] = min(timings)
        print(f"speed {enhancer.id}: {seconds[enhancer.id]:.3f} s", file=sys.stderr)
    lines = ["| method | seconds per 512x512 | times faster than BM3D |", "| --- | ---: | ---: |"]
    for method, value in seconds.items():
        ratio = f"{seconds['bm3d'] / value:.1f}" if "bm3d" in seconds else "n/a"
        lines.append(f"| {method} | {value:.3f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
