"""`eval`: a run's best weights or a registered model, scored on a folder under a protocol degradation,
beside the degraded input and the classical baseline, through the viewer's own simulate path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medviewer.enhance.degrade import Degradation
from medviewer.enhance.device import choose_device
from medviewer.enhance.engine import ClassicalEnhancer, NetworkEnhancer, load_enhancer
from medviewer.enhance.evaluation import check_simulation_fits, simulate
from medviewer.models.classical import classical_method
from medviewer.models.registry import discover_models
from trainer.data import DataError, grey_values, scan_folder
from trainer.run import RUN_FILE


def evaluate(
    source: str, folder: Path, degradation: Degradation, device: str = "auto", limit: int = 50
) -> dict[str, Any]:
    source_path = Path(source).expanduser()
    if (source_path / RUN_FILE).is_file():
        from trainer.export import load_run_generator

        network, recipe = load_run_generator(source_path)
        enhancer = NetworkEnhancer(
            network, source_path.name, recipe.recipe.name or source_path.name, recipe.recipe.task, choose_device(device)
        )
    elif source_path.exists():
        raise DataError(f"{source} is neither a run folder nor a model id")
    else:
        enhancer = load_enhancer(discover_models().get(source), device)
    check_simulation_fits(enhancer.id, enhancer.task, enhancer.scale, degradation)
    baseline = ClassicalEnhancer(classical_method(f"bicubic-x{degradation.scale}" if degradation.scale > 1 else "nlm"))
    records = scan_folder(folder, 0)
    rows = []
    for record in records:
        for index in range(record.frames):
            if len(rows) >= limit:
                break
            values = grey_values(record.series, index)
            if min(values.shape) < 16 * degradation.scale:
                continue
            seed = len(rows)
            model = simulate(enhancer, values, degradation, seed=seed)
            classical = simulate(baseline, values, degradation, seed=seed)
            rows.append((model.enhanced_scores, model.baseline_scores, classical.enhanced_scores))
    if not rows:
        raise DataError(f"no image in {folder} is large enough to score")

    def mean(position: int, field: str) -> float:
        return float(np.mean([getattr(row[position], field) for row in rows]))

    return {
        "model": enhancer.id,
        "degradation": degradation.spec,
        "images": len(rows),
        "model_psnr": mean(0, "psnr"),
        "model_ssim": mean(0, "ssim"),
        "input_psnr": mean(1, "psnr"),
        "input_ssim": mean(1, "ssim"),
        "baseline": baseline.id,
        "baseline_psnr": mean(2, "psnr"),
        "baseline_ssim": mean(2, "ssim"),
    }
