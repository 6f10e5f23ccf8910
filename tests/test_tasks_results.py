"""The result cache: what resuming rests on."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdoc.progress import LongdocWarning
from longdoc.tasks.results import ResultCache, result_key


def test_a_stored_result_comes_back_and_other_keys_miss(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = result_key("summarize", "model-a", "prompt-sha", 120, "chunk text")
    cache.put(key, "A summary.")
    assert cache.get(key) == "A summary."
    assert cache.get(result_key("summarize", "model-b", "prompt-sha", 120, "chunk text")) is None
    assert result_key("x", {"b": 1, "a": 2}) == result_key("x", {"a": 2, "b": 1})


def test_a_damaged_entry_counts_as_missing_and_is_replaced(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    key = result_key("step", "text")
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text('{"key": "', encoding="utf-8")
    assert cache.get(key) is None
    cache.put(key, "fresh")
    assert cache.get(key) == "fresh"
    assert not [p for p in cache.path(key).parent.iterdir() if p.name.endswith(".tmp")]


def test_an_entry_under_the_wrong_name_is_not_trusted(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    first, second = result_key("one"), result_key("two")
    cache.put(first, "for one")
    cache.path(second).parent.mkdir(parents=True, exist_ok=True)
    cache.path(second).write_bytes(cache.path(first).read_bytes())  # a copied file
    assert cache.get(second) is None


def test_an_unwritable_cache_warns_once_and_does_not_fail(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache directory should be")
    cache = ResultCache(blocker)
    with pytest.warns(LongdocWarning, match="cannot save results") as warned:
        cache.put(result_key("a"), "x")
        cache.put(result_key("b"), "y")
    assert len(warned) == 1
