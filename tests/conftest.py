"""Shared test set-up: headless Qt, pydicom's bundled files, generated series."""

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STUDY = REPO_ROOT / "resources" / "sample_study"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
