"""GUI tests never touch the user's real settings: QSettings go to an INI file in a temporary folder."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture
def isolated_settings(tmp_path):
    from medviewer.gui.settings import ViewerSettings

    return ViewerSettings(QSettings(str(tmp_path / "medviewer-settings.ini"), QSettings.Format.IniFormat))
