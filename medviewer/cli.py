"""The `medviewer` command line: `info`, `export`, `models`, `enhance`; bad input: one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from medviewer import __version__
from medviewer.enhance.self_ensemble import ENSEMBLE_SIZES
from medviewer.errors import FrameOutOfRangeError, MedViewerError, UnreadableFileError
from medviewer.io.export import EXPORT_SUFFIXES, export_frame
from medviewer.io.study import LoadedStudies, Series, load_studies
from medviewer.io.window import Window, auto_window

EXIT_BAD_INPUT = 2


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line too, exit 2
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="medviewer",
        description="Open, inspect and export medical images. Without a command, `medviewer [PATH...]` opens "
        "the viewer window with PATHs loaded.",
    )
    parser.add_argument("--version", action="version", version=f"medviewer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    info = commands.add_parser("info", help="describe what PATHs would load: studies, series, decodability")
    info.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="DICOM files, folders, DICOMDIR, PNG/JPEG/TIFF/NPY"
    )
    info.add_argument("--json", action="store_true", help="machine-readable output")

    export = commands.add_parser("export", help="write one frame as NPY (values) or PNG/TIFF (windowed)")
    export.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    export.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help=f"output file ({', '.join(EXPORT_SUFFIXES)})"
    )
    export.add_argument("--frame", type=int, default=0, metavar="N", help="frame number, counting from 0 (default 0)")
    export.add_argument(
        "--series",
        type=int,
        default=None,
        metavar="S",
        help="series number as listed by `info` (needed when PATH holds several)",
    )
    export.add_argument(
        "--window",
        default="file",
        metavar="C,W|auto|file",
        help="PNG/TIFF window: center,width in the image's units, 'auto' (0.1-99.9 percentiles), "
        "or 'file' (default: the file's VOI LUT or first window, else auto)",
    )
    export.add_argument("--depth", type=int, choices=(8, 16), default=8, help="PNG/TIFF bit depth (default 8)")
    _add_enhance_commands(commands)
    return parser


def _add_enhance_commands(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list the models and classical methods that can enhance images")
    models.add_argument("--json", action="store_true", help="machine-readable output: every card in full")

    enhance = commands.add_parser(
        "enhance",
        help="enhance images with a model; score against a simulated degradation or a reference",
        description="Enhance each INPUT (DICOM, PNG, TIFF or NPY) with one model, loaded once. Without "
        "--degrade or --reference there is no ground truth: the report gives noise estimates, never a PSNR.",
    )
    enhance.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    enhance.add_argument("--model", required=True, metavar="ID", help="a model id from `medviewer models`")
    enhance.add_argument(
        "--device", default="auto", metavar="auto|cpu|cuda|mps", help="where networks run (default: best available)"
    )
    reference = enhance.add_mutually_exclusive_group()
    reference.add_argument(
        "--degrade",
        metavar="SPEC",
        help="simulate: degrade a copy of each input (noise:S, sr:F or lowdose:P), enhance it, score against the input",
    )
    reference.add_argument(
        "--reference",
        type=Path,
        action="append",
        metavar="REF",
        help="paired: score against REF (e.g. the full-dose scan); give one per INPUT, in order",
    )
    enhance.add_argument(
        "--self-ensemble",
        type=int,
        choices=ENSEMBLE_SIZES,
        default=None,
        metavar="N",
        help="networks: average N rotated/flipped copies (1 = off, 2, 4 or 8; N times the time; default: the "
        "model card's, 1 for most, 4 for msdenoiser)",
    )
    enhance.add_argument("--seed", type=int, default=0, help="noise seed for --degrade (default 0)")
    outputs = enhance.add_mutually_exclusive_group(required=True)
    outputs.add_argument("-o", "--output", type=Path, metavar="OUT", help="output file for a single INPUT")
    outputs.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="write each output under DIR with its input's file name"
    )
    enhance.add_argument("--json", action="store_true", help="print one JSON record per input")


COMMANDS = ("info", "export", "models", "enhance")


def wants_viewer(argv: list[str]) -> bool:
    """`medviewer [PATH...]` opens the window; a command name or an option (--help, --version) does not."""
    return not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-"))


def run_viewer(paths: list[str]) -> int:
    missing = [path for path in paths if not Path(path).exists()]
    if missing:  # before Qt starts: a typo on the command line is a one-line error, as for every command
        print(f"medviewer: error: {missing[0]}: file not found", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        from medviewer.gui.app import run_viewer as run_window
    except ImportError as error:  # e.g. Qt's system libraries missing on a server
        print(f"medviewer: error: the viewer window cannot start: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_window([Path(path) for path in paths])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if wants_viewer(argv):
        return run_viewer(argv)
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pydicom").setLevel(logging.DEBUG if arguments.verbose else logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            if not arguments.verbose:
                warnings.simplefilter("ignore")  # pydicom warns about every non-conformance; we report our own
            if arguments.command == "info":
                return run_info(arguments.paths, as_json=arguments.json)
            if arguments.command in ("models", "enhance"):
                # imported here: torch takes seconds to import, and `info` and `export` do not need it
                from medviewer import cli_enhance

                if arguments.command == "models":
                    return cli_enhance.run_models(as_json=arguments.json)
                return cli_enhance.run_enhance(arguments)
            return run_export(arguments)
    except MedViewerError as error:
        print(f"medviewer: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `medviewer info ... | head`: the reader left; Python's documented remedy
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _load_or_fail(paths: list[Path]) -> LoadedStudies:
    loaded = load_studies(paths)
    if loaded.missing_inputs:
        raise UnreadableFileError(loaded.missing_inputs[0], "file not found")
    return loaded


def _explicit_failures(paths: list[Path], loaded: LoadedStudies) -> list[str]:
    """Files the user named one by one (not found inside a folder) that could not be loaded."""
    named = {path.resolve() for path in paths if path.is_file()}
    return [f"{skip.path}: {skip.reason}" for skip in loaded.skipped if skip.path.resolve() in named]


def run_info(paths: list[Path], as_json: bool = False) -> int:
    loaded = _load_or_fail(paths)
    report = describe(loaded)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    failures = _explicit_failures(paths, loaded)
    if not loaded.series and not failures:
        failures = [f"{', '.join(map(str, paths))}: nothing readable ({len(loaded.skipped)} files skipped)"]
    for line in failures:
        print(f"medviewer: error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT if failures else 0


def describe(loaded: LoadedStudies) -> dict:
    """What would be loaded, as plain data (the JSON of `info --json`)."""
    studies = []
    index = 0
    for study in loaded.studies:
        series_records = []
        for series in study.series:
            series_records.append({"index": index, **describe_series(series)})
            index += 1
        studies.append(
            {
                "study_uid": study.uid,
                "description": study.description,
                "date": study.date,
                "patient_name": study.patient_name,
                "patient_id": study.patient_id,
                "series": series_records,
            }
        )
    return {"studies": studies, "skipped": [{"path": str(s.path), "reason": s.reason} for s in loaded.skipped]}


def describe_series(series: Series) -> dict:
    rows, columns = series.shape
    record = {
        "series_uid": series.uid,
        "number": series.number,
        "description": series.description,
        "modality": series.modality,
        "format": series.source_format,
        "rows": rows,
        "columns": columns,
        "frames": len(series),
        "colour": series.is_colour,
        "transfer_syntax": series.transfer_syntax,
        "units": series.units,
        "pixel_spacing_mm": list(series.pixel_spacing_mm) if series.pixel_spacing_mm else None,
        "slice_spacing_mm": series.slice_spacing_mm,
        "monochrome1": series.invert_display,
        "windows": [
            {"center": w.center, "width": w.width, "function": w.function, "name": w.name} for w in series.file_windows
        ],
        "voi_lut": series.has_voi_lut,
        "uneven_spacing_after_frames": series.uneven_spacing(),
        "notes": series.notes,
        "non_finite_pixels": 0,
    }
    try:
        series.values(0)
        record["non_finite_pixels"] = series.non_finite_pixels()
        record["decodable"], record["reason"] = True, ""
        if not series.is_colour and not series.file_windows:
            automatic = series.default_window(0)
            record["windows"] = [
                {
                    "center": automatic.center,
                    "width": automatic.width,
                    "function": automatic.function,
                    "name": automatic.name,
                }
            ]
    except UnreadableFileError as error:
        record["decodable"], record["reason"] = False, error.reason
    return record


def format_report(report: dict) -> str:
    lines = []
    for study in report["studies"]:
        head = f"Study {study['description'] or '(no description)'}"
        if study["date"]:
            date = study["date"]
            head += (
                f"  date {date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 and date.isdigit() else f"  date {date}"
            )
        if study["patient_name"] or study["patient_id"]:
            head += f"  patient {study['patient_name']} ({study['patient_id']})"
        lines.append(head)
        for s in study["series"]:
            kind = s["modality"] or s["format"]
            lines.append(
                f'  series {s["index"]}: {kind} "{s["description"]}"  {s["rows"]}x{s["columns"]}  '
                f"{s['frames']} frame{'s' if s['frames'] != 1 else ''}  {s['transfer_syntax']}"
            )
            details = []
            if s["voi_lut"]:
                details.append("display by the file's VOI LUT")
            if s["windows"]:
                w = s["windows"][0]
                details.append(f"window {w['center']:g}/{w['width']:g} ({w['name']})")
            details.append(f"units {s['units'] or 'stored values'}")
            if s["pixel_spacing_mm"]:
                details.append(f"pixel {s['pixel_spacing_mm'][0]:g}x{s['pixel_spacing_mm'][1]:g} mm")
            if s["slice_spacing_mm"]:
                details.append(f"slices every {s['slice_spacing_mm']:g} mm")
            if s["uneven_spacing_after_frames"]:
                frames = s["uneven_spacing_after_frames"]
                listed = ", ".join(map(str, frames[:5])) + (", ..." if len(frames) > 5 else "")
                details.append(f"WARNING uneven slice spacing after frames {listed} (missing or repeated slices)")
            if s["non_finite_pixels"]:
                details.append(
                    f"WARNING {s['non_finite_pixels']} pixels are NaN or infinite (shown black; left out of windows, "
                    "metrics and noise estimates; kept as they are by enhancement)"
                )
            details.extend(f"WARNING {note}" for note in s["notes"])
            if s["colour"]:
                details.append("colour")
            if s["monochrome1"]:
                details.append("MONOCHROME1 (shown inverted)")
            details.append("decodable: yes" if s["decodable"] else f"decodable: no ({s['reason']})")
            lines.append("      " + ", ".join(details))
    if report["skipped"]:
        lines.append(f"Skipped {len(report['skipped'])} file{'s' if len(report['skipped']) != 1 else ''}:")
        lines.extend(f"  {s['path']}: {s['reason']}" for s in report["skipped"])
    return "\n".join(lines)


def run_export(arguments: argparse.Namespace) -> int:
    loaded = _load_or_fail(arguments.paths)
    failures = _explicit_failures(arguments.paths, loaded)
    if failures:
        raise MedViewerError(failures[0])
    all_series = loaded.series
    if not all_series:
        raise MedViewerError(f"{arguments.paths[0]}: nothing readable ({len(loaded.skipped)} files skipped)")
    if arguments.series is None:
        if len(all_series) > 1:
            raise MedViewerError(
                f"{arguments.paths[0]}: holds {len(all_series)} series; choose one with --series "
                f"(0..{len(all_series) - 1}, see `medviewer info`)"
            )
        series = all_series[0]
    elif 0 <= arguments.series < len(all_series):
        series = all_series[arguments.series]
    else:
        raise MedViewerError(
            f"{arguments.paths[0]}: --series {arguments.series} is out of range: "
            f"there are {len(all_series)} series (0..{len(all_series) - 1})"
        )
    # Every file the paths reached is an original, not only the chosen series' frames.
    other_originals = (
        [frame.path for s in all_series if s is not series for frame in s.frames]
        + [skip.path for skip in loaded.skipped]
        + [p for p in arguments.paths if p.is_file()]
    )
    try:
        export_frame(
            series,
            arguments.frame,
            arguments.output,
            chosen_window=_parse_window(arguments.window, series, arguments.frame),
            bits=arguments.depth,
            also_protected=other_originals,
        )
    except FrameOutOfRangeError as error:
        raise MedViewerError(f"{arguments.paths[0]}: {error}") from None
    return 0


def _parse_window(text: str, series: Series, frame: int) -> Window | None:
    if text == "file":
        return None  # the series' default: the file's VOI LUT or first window, else auto
    if text == "auto":
        return auto_window(series.values(frame))
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise MedViewerError(f"--window {text!r}: expected CENTER,WIDTH (e.g. 40,400), 'auto' or 'file'") from None
    if width < 1:
        raise MedViewerError(f"--window {text!r}: width must be at least 1")
    return Window(center, width, "LINEAR", "manual")


if __name__ == "__main__":
    sys.exit(main())
