"""Time to first slice, full-load throughput and peak memory of a 500-slice CT series: MedViewer vs naive pydicom.

Run: .venv/bin/python benchmarks/load_series.py [--slices 500] [--size 512] [--repeats 3] [--folder DIR]

The series is generated (synthetic head CT with a realistic header) in shuffled file order, read once to
warm the page cache, then each method runs `--repeats` times in this process, interleaved, and the median
is reported. "Naive pydicom" is what a script would do: `dcmread` + `pixel_array` of every file, then sort
by position; it cannot show any slice before it has read them all. Peak memory is measured in separate
runs and reported as a
multiple of the series' stored pixel bytes: the rise of peak resident memory (VmHWM) over the
resident size before loading, each method in a fresh process.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom

from medviewer.io.study import load_studies
from medviewer.io.synthetic import head_phantom_hu, write_ct_series


def generate(folder: Path, slices: int, size: int) -> list[Path]:
    existing = sorted(folder.glob("*.dcm"))
    if len(existing) == slices:
        return existing
    for path in existing:
        path.unlink()
    volume = head_phantom_hu(slices, size, seed=1)
    return write_ct_series(folder, volume, shuffle_seed=7, slice_spacing_mm=0.625, rich_header=True)


def read_raw(files: list[Path]) -> int:
    """What the disk (page cache) delivers: every file's bytes, read whole."""
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total


def naive_pydicom(files: list[Path]) -> np.ndarray:
    datasets = [pydicom.dcmread(path) for path in files]
    pixels = [dataset.pixel_array for dataset in datasets]
    order = np.argsort([float(dataset.ImagePositionPatient[2]) for dataset in datasets])
    return np.stack([pixels[index] for index in order])


def medviewer_first_slice(folder: Path) -> np.ndarray:
    series = load_studies([folder]).series[0]
    return series.values(0)


def medviewer_full(folder: Path) -> np.ndarray:
    series = load_studies([folder]).series[0]
    series.load_all()
    return series.stored_volume()


def timed(function, *arguments) -> float:
    gc.collect()
    start = time.perf_counter()
    function(*arguments)
    return time.perf_counter() - start


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    # VmHWM belongs to this address space and starts afresh at exec; ru_maxrss would carry over the
    # high-water mark of the (large) benchmark process this one was forked from.
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def measure_peak(method: str, folder: Path) -> int:
    """Run one method in this (fresh) process and print how far its peak RSS rose above the start."""
    files = sorted(folder.glob("*.dcm"))
    before = resident_bytes()
    result = naive_pydicom(files) if method == "naive" else medviewer_full(folder)
    peak = peak_resident_bytes()
    del result
    return peak - before


def peak_in_subprocess(method: str, folder: Path) -> int:
    """Peak resident memory, measured in a fresh process: tracemalloc cannot see mapped memory."""
    output = subprocess.run(
        [sys.executable, __file__, "--measure-peak", method, "--folder", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None, help="reuse a generated series here")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--measure-peak", choices=("naive", "medviewer"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    if arguments.measure_peak:
        print(measure_peak(arguments.measure_peak, arguments.folder))
        return 0

    with tempfile.TemporaryDirectory(prefix="mv-bench-") as scratch:
        folder = arguments.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        files = generate(folder, arguments.slices, arguments.size)
        print(
            f"series: {len(files)} files of {arguments.size}x{arguments.size} in {folder} "
            f"(generated/checked in {time.perf_counter() - start:.1f} s)",
            file=sys.stderr,
        )
        pixel_bytes = arguments.slices * arguments.size * arguments.size * 2
        file_bytes = read_raw(files)  # warms the page cache

        # Same answer from both, or the timings mean nothing.
        np.testing.assert_array_equal(naive_pydicom(files), medviewer_full(folder))

        runs: dict[str, list[float]] = {"raw": [], "naive": [], "first": [], "full": []}
        for _ in range(arguments.repeats):
            runs["raw"].append(timed(read_raw, files))
            runs["naive"].append(timed(naive_pydicom, files))
            runs["first"].append(timed(medviewer_first_slice, folder))
            runs["full"].append(timed(medviewer_full, folder))
        median = {name: statistics.median(values) for name, values in runs.items()}
        memory = {
            "naive": peak_in_subprocess("naive", folder) / pixel_bytes,
            "full": peak_in_subprocess("medviewer", folder) / pixel_bytes,
        }

    gb = 1e9
    rows = [
        ("read every file's bytes (page cache)", median["raw"], file_bytes / median["raw"] / gb, "-", "-"),
        (
            "naive pydicom: dcmread + pixel_array all, sort",
            median["naive"],
            pixel_bytes / median["naive"] / gb,
            f"{median['naive']:.3f} s",
            f"{memory['naive']:.2f}x",
        ),
        ("MedViewer: headers, sort, first slice in HU", median["first"], None, f"{median['first']:.3f} s", "-"),
        (
            "MedViewer: headers, sort, every slice",
            median["full"],
            pixel_bytes / median["full"] / gb,
            f"{median['first']:.3f} s",
            f"{memory['full']:.2f}x",
        ),
    ]
    print(
        f"\n{arguments.slices} slices of {arguments.size}x{arguments.size} 16-bit "
        f"({pixel_bytes / 1e6:.0f} MB of pixels), median of {arguments.repeats} runs\n"
    )
    print("| method | time | throughput | first slice | peak memory / pixels |")
    print("|---|---|---|---|---|")
    for name, seconds, throughput, first, peak in rows:
        rate = f"{throughput:.2f} GB/s" if throughput else "-"
        print(f"| {name} | {seconds:.3f} s | {rate} | {first} | {peak} |")
    print(
        f"\nfirst slice: {median['naive'] / median['first']:.1f}x sooner than naive pydicom; "
        f"full load: {median['naive'] / median['full']:.2f}x naive pydicom's speed, "
        f"{median['raw'] / median['full']:.2f}x the raw read speed"
    )
    if arguments.json:
        arguments.json.write_text(
            json.dumps(
                {"median_s": median, "peak_over_pixels": memory, "pixel_bytes": pixel_bytes, "file_bytes": file_bytes},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
