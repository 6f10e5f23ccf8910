"""Shared test setup: every test gets its own longdoc home, and nothing may reach a model hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def longdoc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache at a fresh directory so tests never share or leave indexes."""
    home = tmp_path / "longdoc-home"
    monkeypatch.setenv("LONGDOC_HOME", str(home))
    return home
