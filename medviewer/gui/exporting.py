"""File > Export: the dialogs, and what each export writes (through the core's writers; originals never change).

Each `*_to` function takes the window and a destination and raises MedViewerError; the dialog wrappers turn
errors into messages. Tests call the `*_to` functions directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QFileDialog

from medviewer.enhance.report import metrics_rows, write_metrics_csv
from medviewer.errors import MedViewerError, OutputError
from medviewer.io.derived_dicom import Derivation, write_derived_series, write_derived_slice
from medviewer.io.export import write_image
from medviewer.io.figure import FigurePanel, write_comparison_figure

if TYPE_CHECKING:
    from medviewer.gui.main_window import MainWindow

SLICE_FILTERS = "PNG (*.png);;TIFF (*.tif *.tiff);;NumPy values (*.npy);;DICOM derived secondary capture (*.dcm)"
SERIES_FILTERS = (
    "DICOM derived series, into a new folder (*);;NumPy stack of values (*.npy);;PNG per slice (*.png);;"
    "TIFF per slice (*.tif)"
)


def _inputs(window: MainWindow) -> list[Path]:
    """Every file the window has open: none of them may be overwritten."""
    return [frame.path for series in window.browser.series_list() for frame in series.frames]


def _derivation(window: MainWindow) -> Derivation:
    results = window.results
    evaluation = next(iter(results.evaluations.values()))
    scale = max(1, round(evaluation.enhanced.shape[1] / window.series.shape[1]))
    note = f"enhanced from a simulated {evaluation.degradation} degradation" if evaluation.mode == "simulate" else ""
    return Derivation.new(results.entry.id, results.name, scale, description=note)


def _display_window(window: MainWindow):
    """PNG/TIFF of a DICOM show the window on screen; a PNG/TIFF source keeps its grey levels."""
    if window.series.source_format != "DICOM":
        return window.chosen_window
    return window.chosen_window or window.series.default_window(window.index)


def _require_evaluation(window: MainWindow):
    evaluation = window.current_evaluation()
    if evaluation is None:
        raise MedViewerError("nothing to export: enhance this slice first")
    return evaluation


def export_slice_to(window: MainWindow, destination: Path) -> Path:
    evaluation = _require_evaluation(window)
    destination = Path(destination)
    if destination.suffix.lower() == ".dcm":
        frame = window.series.frames[window.index]
        return write_derived_slice(
            frame, evaluation.enhanced, destination, _derivation(window), window.index + 1, _inputs(window)
        )
    return write_image(
        evaluation.enhanced,
        destination,
        display_window=_display_window(window),
        invert=window.series.invert_display,
        protected=_inputs(window),
    )


def export_series_to(window: MainWindow, destination: Path) -> list[Path]:
    results, series = window.results, window.series
    if results is None or results.series_uid != series.uid or len(results.evaluations) < len(series):
        done = 0 if results is None else len(results.evaluations)
        raise MedViewerError(f"{done} of {len(series)} slices are enhanced: press Enhance series first")
    volume = np.stack([results.evaluations[index].enhanced for index in range(len(series))])
    destination = Path(destination)
    suffix = destination.suffix.lower()
    if suffix == ".npy":
        return [write_image(volume, destination, protected=_inputs(window))]
    if suffix in (".png", ".tif", ".tiff"):
        written = []
        for index in range(len(series)):
            path = destination.with_name(f"{destination.stem}_{index + 1:04d}{suffix}")
            written.append(
                write_image(
                    volume[index],
                    path,
                    display_window=_display_window(window),
                    invert=series.invert_display,
                    protected=_inputs(window),
                )  # fmt: skip
            )
        return written
    if suffix:
        raise OutputError(f"{destination}: choose .npy, .png, .tif, or a folder name (DICOM series)")
    return write_derived_series(series, volume, destination, _derivation(window), _inputs(window))


def _error_map_rgb(difference: np.ndarray, colour_map: str, limit: float) -> np.ndarray:
    """The error map as the pane shows it: the same colour map over the same symmetric limits."""
    scaled = np.clip((difference + limit) / (2 * limit), 0.0, 1.0)
    return pg.colormap.get(colour_map).map(scaled, mode="float")[..., :3].astype(np.float32)


def figure_panels(window: MainWindow) -> list[FigurePanel]:
    """The figure's images, titled as the panes are: acquired, input or reference, enhanced (or synthetic, for a
    translation, whose values are no measurement) and the error map."""
    from medviewer.gui.main_window import ERROR_COLOUR_MAP

    evaluation = _require_evaluation(window)
    series, index, chosen = window.series, window.index, window.chosen_window
    entry = window.results.entry
    synthetic = entry.task == "translation"
    panels = [FigurePanel("Original (acquired)", series.display(index, chosen))]
    if evaluation.mode == "simulate":
        panels.append(
            FigurePanel(
                f"Degraded input ({evaluation.degradation})",
                series.display_values(evaluation.model_input, index, chosen),
            )
        )
    elif evaluation.mode == "paired":
        panels.append(FigurePanel("Paired reference", series.display_values(evaluation.reference, index, chosen)))
    title = (
        f"Synthetic: {window.results.name} (translated, not a measurement)"
        if synthetic
        else f"Enhanced: {window.results.name} (not acquired)"
    )
    panels.append(FigurePanel(title, series.display_values(evaluation.enhanced, index, chosen)))
    error_title = "Difference, synthetic − input (not an error)" if synthetic else f"Error map ({_units(window)})"
    panels.append(
        FigurePanel(
            error_title, _error_map_rgb(evaluation.difference, ERROR_COLOUR_MAP, window.results.difference_limit())
        )
    )
    return panels


def _units(window: MainWindow) -> str:
    """The error map's units: the series' own, except for a translation's synthetic values."""
    synthetic = window.results is not None and window.results.entry.task == "translation"
    return "grey levels" if synthetic or not window.series.units else window.series.units


def export_figure_to(window: MainWindow, destination: Path) -> Path:
    panels = figure_panels(window)
    series, index = window.series, window.index
    limit = window.results.difference_limit()
    caption = [
        f"{series.description} · slice {index + 1} of {len(series)} · error map from -{limit:.4g} (blue) to "
        f"+{limit:.4g} (red) {_units(window)}"
    ] + window.metrics_panel.summary_text().splitlines()
    return write_comparison_figure(panels, caption, destination, protected=_inputs(window))


def export_metrics_to(window: MainWindow, destination: Path) -> Path:
    results = window.results
    if results is None or not results.evaluations:
        raise MedViewerError("no metrics yet: enhance a slice or the series first")
    evaluations = sorted(results.evaluations.items())
    rows = metrics_rows(evaluations, results.entry.id, results.name, window.series.units, results.device)
    return write_metrics_csv(rows, destination, protected=_inputs(window))


def _ask_and_write(window: MainWindow, title: str, filters: str, default_name: str, write) -> None:
    folder = window.settings.last_folder() or Path.home()
    path, _ = QFileDialog.getSaveFileName(window, title, str(folder / default_name), filters)
    if not path:
        return
    try:
        written = write(window, Path(path))
    except MedViewerError as error:
        window.show_error(str(error))
        return
    count = len(written) if isinstance(written, list) else 1
    window.show_status(f"Wrote {count} file{'s' if count != 1 else ''} to {Path(path).parent}")


def _stem(window: MainWindow) -> str:
    model = window.results.entry.id if window.results is not None else "enhanced"
    return f"{window.series.frames[window.index].path.stem}_{model}"


def export_slice(window: MainWindow) -> None:
    if window.current_evaluation() is None:
        window.show_error("Nothing to export: enhance this slice first")
        return
    _ask_and_write(window, "Export enhanced slice", SLICE_FILTERS, f"{_stem(window)}.png", export_slice_to)


def export_series(window: MainWindow) -> None:
    if window.results is None:
        window.show_error("Nothing to export: enhance the series first")
        return
    _ask_and_write(window, "Export enhanced series", SERIES_FILTERS, f"{_stem(window)}_series", export_series_to)


def export_figure(window: MainWindow) -> None:
    if window.current_evaluation() is None:
        window.show_error("Nothing to export: enhance this slice first")
        return
    _ask_and_write(window, "Export figure", "PNG (*.png)", f"{_stem(window)}_figure.png", export_figure_to)


def export_metrics(window: MainWindow) -> None:
    if window.results is None:
        window.show_error("No metrics yet: enhance a slice first")
        return
    _ask_and_write(window, "Export metrics", "CSV (*.csv)", f"{_stem(window)}_metrics.csv", export_metrics_to)
