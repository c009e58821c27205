"""What the viewer remembers between runs (QSettings): recent files, last folder, window geometry and layout."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "MedViewer"
APPLICATION = "MedViewer"
MAX_RECENT = 10


class ViewerSettings:
    """Typed access to QSettings, so that a key's name and type are written in one place."""

    def __init__(self, settings: QSettings | None = None):
        self._settings = settings or QSettings(ORGANISATION, APPLICATION)

    # --- recent files -------------------------------------------------------------------------
    def recent_paths(self) -> list[Path]:
        stored = self._settings.value("recent/paths", [])
        if isinstance(stored, str):  # QSettings returns a lone string for a one-item list in INI files
            stored = [stored]
        return [Path(text) for text in stored or []]

    def add_recent(self, paths: list[Path]) -> list[Path]:
        """Put `paths` first, most recent first, without duplicates; returns the new list."""
        recent = [path.resolve() for path in paths]
        recent += [path for path in self.recent_paths() if path not in recent]
        recent = recent[:MAX_RECENT]
        self._settings.setValue("recent/paths", [str(path) for path in recent])
        return recent

    def remove_recent(self, path: Path) -> None:
        self._settings.setValue("recent/paths", [str(item) for item in self.recent_paths() if item != path])

    def clear_recent(self) -> None:
        self._settings.remove("recent/paths")

    # --- places and layout --------------------------------------------------------------------
    def last_folder(self) -> Path | None:
        text = self._settings.value("paths/last_folder", "")
        return Path(text) if text else None

    def set_last_folder(self, folder: Path) -> None:
        self._settings.setValue("paths/last_folder", str(folder))

    def pane_layout(self, default: str) -> str:
        return str(self._settings.value("view/pane_layout", default))

    def set_pane_layout(self, name: str) -> None:
        self._settings.setValue("view/pane_layout", name)

    def geometry(self) -> QByteArray | None:
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self._settings.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._settings.setValue("window/geometry", geometry)
        self._settings.setValue("window/state", state)

    def cine_fps(self, default: int) -> int:
        try:
            return int(self._settings.value("view/cine_fps", default))
        except (TypeError, ValueError):
            return default

    def set_cine_fps(self, fps: int) -> None:
        self._settings.setValue("view/cine_fps", fps)

    def sync(self) -> None:
        self._settings.sync()
