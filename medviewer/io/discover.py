"""Which files a user's paths name: files, folders walked recursively, and DICOMDIR indexes of CD/USB exports."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

log = logging.getLogger(__name__)

_MEDIA_STORAGE_DIRECTORY = b"1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class Skipped:
    """A file that was not loaded, and why; shown to the user, never fatal to the rest."""

    path: Path
    reason: str


@dataclass
class Discovered:
    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing_inputs: list[Path] = field(default_factory=list)  # paths the user named that do not exist


def discover_files(paths: Iterable[Path | str]) -> Discovered:
    """Expand paths into the candidate files, each once, in a stable order."""
    found = Discovered()
    seen: set[str] = set()

    def add(file: Path) -> None:
        key = os.path.realpath(file)
        if key not in seen:
            seen.add(key)
            found.files.append(file)

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            found.missing_inputs.append(path)
        elif path.is_dir():
            for file in _walk(path):
                # Inside folders only the standard name marks an index: sniffing every file would cost an open each.
                if file.name.upper() == "DICOMDIR":
                    _add_dicomdir(file, add, found)
                else:
                    add(file)
        elif is_dicomdir(path):
            _add_dicomdir(path, add, found)
        else:
            add(path)
    return found


def _walk(folder: Path) -> Iterable[Path]:
    for root, directories, files in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):  # .DS_Store, editor swap files: not the user's images
                continue
            yield Path(root) / name


def is_dicomdir(path: Path) -> bool:
    """A DICOMDIR by its standard name or by its Media Storage Directory SOP class."""
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as handle:
            start = handle.read(512)
    except OSError:
        return False
    return start[128:132] == b"DICM" and _MEDIA_STORAGE_DIRECTORY in start


def _add_dicomdir(dicomdir: Path, add, found: Discovered) -> None:
    # Why not pydicom's FileSet: it drops records whose file is missing with only a log warning, and the
    # user must be told which images of their CD did not arrive. The records themselves are simple.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = pydicom.dcmread(dicomdir, force=True).get("DirectoryRecordSequence")
    except Exception as error:  # a damaged index must not stop the files beside it from loading
        found.skipped.append(Skipped(dicomdir, f"unreadable DICOMDIR ({str(error).splitlines()[0][:120]})"))
        return
    if records is None:
        found.skipped.append(Skipped(dicomdir, "DICOMDIR without directory records"))
        return
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue  # patient, study and series records refer to no file
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        referenced = dicomdir.parent.joinpath(*parts)
        if referenced.is_file():
            add(referenced)
        else:
            found.skipped.append(Skipped(referenced, f"listed in {dicomdir} but missing"))
