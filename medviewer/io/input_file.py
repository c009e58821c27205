"""Opening a file the user gave: read-only, with a one-line reason for everything that is not a regular file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from medviewer.errors import UnreadableFileError


def open_input_file(path: Path) -> tuple[BinaryIO, int]:
    """Open read-only (the input is never modified), refusing what is not a non-empty regular file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UnreadableFileError(path, "file not found") from None
    except PermissionError:
        raise UnreadableFileError(path, "permission denied") from None
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot access file ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableFileError(path, "is a directory, not a file")
    # A FIFO or device would block or never end; only regular files are images.
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFileError(path, "not a regular file")
    if info.st_size == 0:
        raise UnreadableFileError(path, "empty file")
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise UnreadableFileError(path, "file not found") from None
    except PermissionError:
        raise UnreadableFileError(path, "permission denied") from None
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot open file ({exc.strerror or exc})") from exc
    return stream, os.fstat(stream.fileno()).st_size
