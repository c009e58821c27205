"""The exception family that carries user-facing messages (CLI: one line and exit 2; GUI: a message box)."""

from __future__ import annotations

from pathlib import Path


class MedViewerError(Exception):
    """A problem the user can act on; its message is shown as is, without a traceback."""


class UnreadableFileError(MedViewerError):
    """A file that cannot be read as an image: missing, truncated, corrupt, not an image, or too large."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FrameOutOfRangeError(MedViewerError):
    """A frame number outside the series."""


class OutputError(MedViewerError):
    """An output that cannot be written, or that would overwrite an input."""
