"""Speed and peak memory of every method through the inference engine, as ratios to non-local means.

Run: .venv/bin/python benchmarks/enhance_speed.py [--sizes 512 2048] [--only ID ...] [--device cpu]
(BM3D is measured when the `bm3d` package is installed: `.venv/bin/pip install bm3d`; it is not a
dependency of MedViewer.)

Each (method, size) runs in a fresh process, one after the other, on the same synthetic CT slice (a
noisy head phantom, normalised to [0, 1]): a warm-up on a 256x256 crop, then the median of `--repeats`
timed runs (one run at 2048 and above). Times are reported beside scikit-image's non-local means on the
same image in the same invocation, as `time / NLM time`, because this machine is shared and noisy and a
ratio survives that better than seconds do. Networks are timed with random weights (speed does not
depend on the values); super-resolution inputs are SIZE x SIZE and their outputs scale x larger.
Peak memory is the rise of the process's peak resident size (VmHWM) over its resident size before the
first run, and separately the absolute VmHWM of the default denoiser on a 4096x4096 image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NETWORKS = {
    # id: (architecture, arguments) -- the defaults a shipped card uses
    "msdenoiser": ("msdenoiser", {}),
    "dncnn": ("dncnn", {}),
    "unet": ("unet", {}),
    "dagan": ("dagan", {}),
    "srcnn-x2": ("srcnn", {"scale": 2}),
    "vdsr-x2": ("vdsr", {"scale": 2}),
    "srgan-cbam-x2": ("srgan-cbam", {"scale": 2}),
    "srgan-cbam-x4": ("srgan-cbam", {"scale": 4}),
    "cyclegan-resnet": ("cyclegan-resnet", {}),
}
CLASSICAL = ("nlm", "bicubic-x2", "lanczos-x2", "histeq", "clahe", "unsharp")
DEFAULT_DENOISER = "msdenoiser"


def test_image(size: int) -> np.ndarray:
    from medviewer.io.synthetic import head_phantom_hu

    hu = head_phantom_hu(1, size, seed=0, noise_hu=0.0)[0]
    clean = (hu - hu.min()) / (hu.max() - hu.min())
    return (clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape)).astype(np.float32)


def make_runner(method: str, device: str):
    """A function of a normalised image, and what it costs in GFLOP at 512x512 (networks only)."""
    import torch

    from medviewer.enhance.engine import ClassicalEnhancer, NetworkEnhancer
    from medviewer.metrics import estimate_noise_sigma
    from medviewer.models.architectures import build_architecture
    from medviewer.models.classical import classical_method

    if method == "bm3d":
        import bm3d

        return (lambda image: bm3d.bm3d(image, sigma_psd=estimate_noise_sigma(image))), None
    if method in NETWORKS:
        architecture, arguments = NETWORKS[method]
        torch.manual_seed(0)
        network = build_architecture(architecture, arguments)
        enhancer = NetworkEnhancer(network, method, method, "benchmark", torch.device(device))
        return (lambda image: enhancer.run_normalised(image[None])), _gflop(network)
    enhancer = ClassicalEnhancer(classical_method(method))
    return (lambda image: enhancer.run_normalised(image[None])), None


def _gflop(network) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network.eval()(torch.zeros(1, network.in_channels, 128, 128))
    return counter.get_total_flops() * 16 / 1e9  # FLOPs scale with area: 128x128 -> 512x512


def worker(method: str, size: int, repeats: int, device: str) -> dict:
    """Runs inside a fresh process; prints one JSON record."""
    import torch

    image = test_image(size)
    run, gflop = make_runner(method, device)
    run(image[:256, :256])  # warm-up: thread pools, allocator, kernels
    resident_before = _status_kb("VmRSS")
    times = []
    for _ in range(1 if size >= 2048 else repeats):
        started = time.perf_counter()
        run(image)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return {
        "method": method,
        "size": size,
        "seconds": statistics.median(times),
        "gflop_512": gflop,
        "peak_rise_mb": (_status_kb("VmHWM") - resident_before) / 1024,
        "peak_mb": _status_kb("VmHWM") / 1024,
        "threads": torch.get_num_threads(),
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(method: str, size: int, repeats: int, device: str) -> dict:
    command = [sys.executable, __file__, "--worker", method, str(size), str(repeats), device]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        return {"method": method, "size": size, "error": finished.stderr.strip().splitlines()[-1:]}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--only", nargs="+", default=None, help="method ids (NLM always runs as the baseline)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--bm3d-max-size", type=int, default=512, help="largest size BM3D runs at (it needs ~4 min at 2048)"
    )
    parser.add_argument("--skip-4096", action="store_true", help="skip the 4096x4096 default-denoiser memory run")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        method, size, repeats, device = arguments.worker
        print(json.dumps(worker(method, int(size), int(repeats), device)))
        return
    methods = list(arguments.only) if arguments.only else [*NETWORKS, *CLASSICAL, "bm3d"]
    methods = ["nlm"] + [method for method in methods if method != "nlm"]
    results = {}
    for size in arguments.sizes:
        for method in methods:
            if method == "bm3d" and size > arguments.bm3d_max_size:
                continue
            record = measure(method, size, arguments.repeats, arguments.device)
            results[(method, size)] = record
            print(json.dumps(record), file=sys.stderr, flush=True)
    big = None
    if not arguments.skip_4096:
        big = measure(DEFAULT_DENOISER, 4096, 1, arguments.device)
        print(json.dumps(big), file=sys.stderr, flush=True)
    print(markdown(results, methods, arguments.sizes, big, arguments.device))


def markdown(results: dict, methods: list[str], sizes: list[int], big: dict | None, device: str) -> str:
    header = "| method | GFLOP at 512² |"
    rule = "| --- | ---: |"
    for size in sizes:
        header += f" {size}² s | {size}² ÷ NLM | {size}² peak MB |"
        rule += " ---: | ---: | ---: |"
    lines = [header, rule]
    for method in methods:
        first = results.get((method, sizes[0]), {})
        gflop = first.get("gflop_512")
        row = f"| {method} | {gflop:.1f} |" if gflop is not None else f"| {method} | |"
        for size in sizes:
            record, nlm = results.get((method, size), {}), results.get(("nlm", size), {})
            if not record:
                row += " not run | | |"
                continue
            if "seconds" not in record:
                row += f" failed: {record.get('error')} | | |"
                continue
            ratio = record["seconds"] / nlm["seconds"] if "seconds" in nlm else float("nan")
            row += f" {record['seconds']:.3f} | {ratio:.3f} | {record['peak_rise_mb']:.0f} |"
        lines.append(row)
    threads = next((record.get("threads") for record in results.values() if "threads" in record), "?")
    lines.append("")
    lines.append(f"Device {device}, {threads} torch threads.")
    if big is not None and "seconds" in big:
        lines.append(
            f"{DEFAULT_DENOISER} on 4096x4096: {big['seconds']:.2f} s, process peak {big['peak_mb']:.0f} MB "
            f"(VmHWM, including Python, torch and the image itself)."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
