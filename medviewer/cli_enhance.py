"""The `models` and `enhance` commands: list what the registry found; enhance many inputs with one model load."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medviewer.enhance.degrade import Degradation, parse_degradation
from medviewer.enhance.device import choose_device, describe_device
from medviewer.enhance.engine import Enhancer, load_enhancer
from medviewer.enhance.evaluation import Evaluation, check_simulation_fits, paired, simulate, without_reference
from medviewer.errors import MedViewerError, OutputError, UnknownModelError, UnreadableFileError
from medviewer.io.derived_dicom import Derivation, write_derived_slice
from medviewer.io.export import EXPORT_SUFFIXES, write_image
from medviewer.io.study import DicomFrame, RasterFrame, Series, load_studies
from medviewer.io.window import auto_window
from medviewer.models.registry import ModelEntry, ModelRegistry, discover_models

DICOM_SUFFIXES = (".dcm", ".dicom")


def run_models(as_json: bool = False) -> int:
    registry = discover_models()
    if as_json:
        print(json.dumps(_registry_record(registry), indent=2))
    else:
        print(_format_registry(registry))
    return 0


def _registry_record(registry: ModelRegistry) -> dict:
    models = []
    for entry in registry.entries:
        record = {"id": entry.id, "name": entry.name, "task": entry.task, "scale": entry.scale, "kind": entry.kind}
        record["description"] = entry.description
        if entry.card is not None:
            record["card"] = entry.card.to_json()
            record["card_path"] = str(entry.card_path)
        models.append(record)
    skipped = [{"path": str(item.path), "reason": item.reason} for item in registry.skipped]
    return {"models": models, "skipped": skipped}


def _format_registry(registry: ModelRegistry) -> str:
    lines = []
    for task, entries in registry.by_task().items():
        lines.append(f"{task}:")
        for entry in entries:
            if entry.card is not None:
                card = entry.card
                detail = (
                    f"{card.architecture}, {card.parameters:,} parameters, validation {card.validation.degradation}: "
                    f"PSNR {card.validation.psnr:.2f} dB, SSIM {card.validation.ssim:.3f}"
                )
            else:
                detail = f"classical: {entry.description}"
            lines.append(f"  {entry.id:<22} {entry.name} ({detail})")
    if registry.skipped:
        lines.append(f"Skipped {len(registry.skipped)} model file{'s' if len(registry.skipped) != 1 else ''}:")
        lines.extend(f"  {item.path}: {item.reason}" for item in registry.skipped)
    return "\n".join(lines)


@dataclass
class _Job:
    input: Path
    output: Path
    reference: Path | None


def run_enhance(arguments: argparse.Namespace) -> int:
    degradation = parse_degradation(arguments.degrade) if arguments.degrade else None
    device = choose_device(arguments.device)  # checked even for classical methods, which run on the CPU
    jobs = _plan_jobs(arguments)
    entry = _find_model(arguments.model)
    if degradation is not None:  # a wrong scale is known before a weight is loaded
        check_simulation_fits(entry.id, entry.task, entry.scale, degradation)
    started = time.perf_counter()
    enhancer = load_enhancer(entry, device, ensemble=arguments.self_ensemble)
    load_seconds = time.perf_counter() - started
    protected = [job.input for job in jobs] + [job.reference for job in jobs if job.reference is not None]
    derivations: dict[str, Derivation] = {}
    failures = 0
    for job in jobs:
        try:
            record = _enhance_one(job, enhancer, entry, degradation, arguments.seed, protected, derivations)
        except MedViewerError as error:
            print(f"medviewer: error: {error}", file=sys.stderr)
            failures += 1
            continue
        record["model_load_seconds"] = round(load_seconds, 4)
        print(json.dumps(record) if arguments.json else _format_record(record), flush=True)
    return 2 if failures else 0


def _plan_jobs(arguments: argparse.Namespace) -> list[_Job]:
    inputs: list[Path] = arguments.inputs
    references: list[Path] | None = arguments.reference
    if references is not None and len(references) != len(inputs):
        raise MedViewerError(f"--reference given {len(references)} times for {len(inputs)} inputs; give one per input")
    if arguments.output is not None:
        if len(inputs) > 1:
            raise MedViewerError(f"-o names one output but there are {len(inputs)} inputs; use --output-dir")
        outputs = [arguments.output]
    else:
        folder: Path = arguments.output_dir
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: not a folder")
        outputs = [folder / path.name for path in inputs]
        seen: dict[Path, Path] = {}
        for source, output in zip(inputs, outputs, strict=True):
            if output in seen:
                raise OutputError(f"{seen[output]} and {source} would both be written to {output}")
            seen[output] = source
        folder.mkdir(parents=True, exist_ok=True)
    for path in inputs + (references or []):
        if not path.is_file():
            raise UnreadableFileError(path, "file not found" if not path.exists() else "not a file")
    return [
        _Job(path, output, references[index] if references else None)
        for index, (path, output) in enumerate(zip(inputs, outputs, strict=True))
    ]


def _find_model(model_id: str) -> ModelEntry:
    registry = discover_models()
    try:
        return registry.get(model_id)
    except UnknownModelError:
        for skipped in registry.skipped:
            if skipped.path.stem == model_id:
                raise MedViewerError(f"model {model_id} cannot be used: {skipped.path}: {skipped.reason}") from None
        raise


def _single_series(path: Path) -> Series:
    loaded = load_studies([path])
    if not loaded.series:
        reason = loaded.skipped[0].reason if loaded.skipped else "nothing readable"
        raise UnreadableFileError(path, reason)
    if len(loaded.series) > 1:
        raise UnreadableFileError(path, f"holds {len(loaded.series)} series; give one image per input")
    return loaded.series[0]


def _enhance_one(
    job: _Job,
    enhancer: Enhancer,
    entry: ModelEntry,
    degradation: Degradation | None,
    seed: int,
    protected: list[Path],
    derivations: dict[str, Derivation],
) -> dict:
    try:
        return _enhance_series(job, enhancer, degradation, seed, protected, derivations)
    except MedViewerError as error:
        # The engine and the metrics do not know the file (an image too small for SSIM, one with no finite
        # pixel); with several inputs the user needs its name.
        if str(job.input) in str(error) or (job.reference is not None and str(job.reference) in str(error)):
            raise
        raise MedViewerError(f"{job.input}: {error}") from None


def _enhance_series(
    job: _Job,
    enhancer: Enhancer,
    degradation: Degradation | None,
    seed: int,
    protected: list[Path],
    derivations: dict[str, Derivation],
) -> dict:
    series = _single_series(job.input)
    reference_series = _single_series(job.reference) if job.reference is not None else None
    if len(series) > 1 and _output_kind(job, series) != "npy":
        raise OutputError(f"{job.input}: {len(series)} frames; write them as one .npy stack")
    if reference_series is not None and len(reference_series) != len(series):
        raise MedViewerError(f"{job.reference}: {len(reference_series)} frames, {job.input} has {len(series)}")
    evaluations: list[Evaluation] = []
    for index in range(len(series)):
        values = series.values(index)
        if degradation is not None:
            evaluations.append(simulate(enhancer, values, degradation, seed=seed + index))
        elif reference_series is not None:
            evaluations.append(paired(enhancer, values, reference_series.values(index)))
        else:
            evaluations.append(without_reference(enhancer, values))
    _write_output(job, series, evaluations, enhancer, protected, derivations)
    return _record(job, series, evaluations, enhancer, degradation)


def _output_kind(job: _Job, series: Series) -> str:
    suffix = job.output.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if suffix in EXPORT_SUFFIXES:
        return suffix.lstrip(".").replace("tiff", "tif")
    if isinstance(series.first, DicomFrame):  # DICOM files often have no suffix; --output-dir keeps the name
        return "dicom"
    raise OutputError(
        f"{job.output}: unsupported output type {suffix or '(none)'}; use .dcm or one of {', '.join(EXPORT_SUFFIXES)}"
    )


def _write_output(
    job: _Job,
    series: Series,
    evaluations: list[Evaluation],
    enhancer: Enhancer,
    protected: list[Path],
    derivations: dict[str, Derivation],
) -> None:
    kind = _output_kind(job, series)
    enhanced = evaluations[0].enhanced
    if kind == "npy":
        stack = enhanced if len(evaluations) == 1 else np.stack([item.enhanced for item in evaluations])
        write_image(stack, job.output, protected=protected)
    elif kind == "dicom":
        frame = series.first
        derivation = derivations.get(series.uid)
        if derivation is None:  # inputs from one series become one derived series
            derivation = Derivation.new(enhancer.id, enhancer.name, enhancer.scale)
            derivations[series.uid] = derivation
        instance = frame.header.instance_number if isinstance(frame, DicomFrame) else None
        write_derived_slice(
            frame,
            enhanced,
            job.output,
            derivation,
            instance_number=instance or len(derivations),
            inputs=protected,
        )
    else:
        frame = series.first
        if isinstance(frame, RasterFrame) and frame.image.pixels.dtype.kind in "ui":
            # A PNG/TIFF source has grey levels, not units: write them back at the source's depth.
            write_image(enhanced, job.output, bits=16 if frame.image.bits_per_sample > 8 else 8, protected=protected)
        else:
            window = series.file_windows[0] if series.file_windows else auto_window(enhanced)
            write_image(enhanced, job.output, display_window=window, invert=series.invert_display, protected=protected)


def _record(
    job: _Job, series: Series, evaluations: list[Evaluation], enhancer: Enhancer, degradation: Degradation | None
) -> dict:
    first = evaluations[0]
    record = {
        "input": str(job.input),
        "output": str(job.output),
        "model": enhancer.id,
        "model_name": enhancer.name,
        "task": enhancer.task,
        "scale": enhancer.scale,
        "device": describe_device(enhancer.device),
        "mode": first.mode,
        "degradation": degradation.spec if degradation is not None else None,
        "reference": str(job.reference) if job.reference is not None else None,
        "frames": len(evaluations),
        "input_shape": list(first.model_input.shape),
        "output_shape": list(first.enhanced.shape),
        "units": series.units or None,
        "seconds": round(sum(item.seconds for item in evaluations), 4),
        "noise_sigma_input": _mean(item.noise_sigma_input for item in evaluations),
        "noise_sigma_enhanced": _mean(item.noise_sigma_enhanced for item in evaluations),
        "non_finite_pixels": sum(item.non_finite_pixels for item in evaluations),
    }
    if first.enhanced_scores is not None:  # never a PSNR without a reference
        record.update(
            psnr=_mean(item.enhanced_scores.psnr for item in evaluations),
            ssim=_mean(item.enhanced_scores.ssim for item in evaluations),
            baseline_psnr=_mean(item.baseline_scores.psnr for item in evaluations),
            baseline_ssim=_mean(item.baseline_scores.ssim for item in evaluations),
        )
        record["psnr_gain_db"] = (
            None
            if record["psnr"] is None or record["baseline_psnr"] is None
            else round(record["psnr"] - record["baseline_psnr"], 4)
        )
    return record


def _mean(values) -> float | None:
    """None when any value is not finite: an identical image's infinite PSNR, or a noise estimate with no
    finite neighbourhood, has no mean worth printing, and JSON has no Infinity or NaN."""
    values = [float(value) for value in values]
    finite = [value for value in values if math.isfinite(value)]
    if len(finite) != len(values):
        return None
    return round(float(np.mean(finite)), 6)


def _format_record(record: dict) -> str:
    line = (
        f"{record['input']} -> {record['output']}: {record['model']} on {record['device']} in {record['seconds']:.2f} s"
    )
    units = f" {record['units']}" if record["units"] else ""
    if "psnr" in record:
        baseline = "degraded input" if record["mode"] == "simulate" else "input"
        line += (
            f"; PSNR {_decibels(record['psnr'])}, SSIM {_number(record['ssim'], '.4f')} "
            f"({baseline}: {_decibels(record['baseline_psnr'])}, {_number(record['baseline_ssim'], '.4f')})"
        )
    line += (
        f"; noise {_number(record['noise_sigma_input'], '.3g')} -> "
        f"{_number(record['noise_sigma_enhanced'], '.3g')}{units}"
    )
    if record["non_finite_pixels"]:
        count = record["non_finite_pixels"]
        line += f"; {count} pixel{'s' if count != 1 else ''} NaN or infinite in the input, kept as they were"
    return line


def _decibels(psnr: float | None) -> str:
    return "identical to the reference" if psnr is None else f"{psnr:.2f} dB"


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
