"""Answers quoted from one passage at a time: each passage asked alone, quotes checked against
their passage, the best-supported quote chosen and cited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_tasks_ask import _manual, _memory

from longdoc.tasks.ask import ask
from longdoc.document import Document, Page
from longdoc.tasks.quotes import clean, quotable
from longdoc.tasks.results import ResultCache

QUESTION = "Where is the brass key to the lamp room?"


def _source_of(prompt: str) -> str:
    return re.search(r"<source>\n(.*?)\n</source>", prompt, re.S).group(1)  # type: ignore[union-attr]


def _quote_the_key(prompt: str) -> str:
    """Copies the answer from the passage that has it; NONE from any other; confirms what it copied."""
    if "Proposed answer:" in prompt:
        return "yes"
    return "behind the chart cabinet in the north office" if "brass key" in _source_of(prompt) else "NONE"


def test_each_passage_is_asked_alone_and_the_quote_is_cited_to_its_page(fake_model, tmp_path: Path) -> None:
    document = _manual()
    model = fake_model(context_window=700, reply=_quote_the_key)
    answer = ask(document, _memory(document), QUESTION, model, ResultCache(tmp_path))
    quoting = [p for p in model.prompts if "Proposed answer:" not in p]
    assert len(answer.sources) >= 2 and len(quoting) == len(answer.sources)
    assert all(prompt.count("<source>") == 1 for prompt in quoting)
    assert any("Proposed answer: behind the chart cabinet" in p for p in model.prompts)
    assert answer.supported and answer.text.startswith("behind the chart cabinet in the north office [")
    (number,) = answer.cited
    cited = answer.sources[number - 1]
    assert "brass key" in cited.text and cited.page_start <= 6 <= cited.page_end


def test_a_quote_its_passage_does_not_hold_is_set_aside(fake_model, tmp_path: Path) -> None:
    document = _manual()
    model = fake_model(context_window=700, reply=lambda prompt: "in the harbour master's tin box")
    answer = ask(document, _memory(document), QUESTION, model, ResultCache(tmp_path))
    assert not answer.supported and answer.text == "" and answer.cited == []
    assert answer.unverified == "in the harbour master's tin box"


def test_when_no_passage_answers_the_document_does_not(fake_model, tmp_path: Path) -> None:
    document = _manual()
    model = fake_model(context_window=700, reply=lambda prompt: "NONE")
    answer = ask(document, _memory(document), QUESTION, model, ResultCache(tmp_path))
    assert not answer.supported and answer.text == "" and answer.sources


def test_a_reply_that_only_repeats_the_question_is_no_answer(fake_model, tmp_path: Path) -> None:
    document = _manual()
    model = fake_model(context_window=700, reply=lambda prompt: "the brass key to the lamp room")
    assert not ask(document, _memory(document), QUESTION, model, ResultCache(tmp_path)).supported


def test_a_repeated_question_reads_every_quote_from_the_cache(fake_model, tmp_path: Path) -> None:
    document = _manual()
    results = ResultCache(tmp_path)
    ask(document, _memory(document), QUESTION, fake_model(context_window=700, reply=_quote_the_key), results)
    again = fake_model(context_window=700, reply=_quote_the_key)
    assert ask(document, _memory(document), QUESTION, again, results).supported and again.prompts == []


def _checking(says_yes: str):  # type: ignore[no-untyped-def]
    """Quotes the last year of every passage; asked of one sentence, says yes when it holds `says_yes`."""
    def reply(prompt: str) -> str:
        source = _source_of(prompt)
        if "Proposed answer:" in prompt:
            return "Yes." if says_yes in source else "No."
        return (re.findall(r"\d{4}", source) or ["NONE"])[-1]
    return reply


def _logbook() -> Document:
    pages = [" ".join(f"Pump {n} of deck {p} was last serviced in {1900 + 30 * p + n}." for n in range(30)) for p in range(1, 9)]
    pages[5] += " The lighthouse lamp was first lit in 1889 by the keeper."
    return Document(source="log.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)), kind="pdf")


def test_each_quote_is_checked_alone_against_its_sentence_and_the_confirmed_one_is_the_answer(fake_model, tmp_path: Path) -> None:
    document = _logbook()
    model = fake_model(context_window=700, reply=_checking("lighthouse"))
    answer = ask(document, _memory(document), "When was the lighthouse lamp first lit?", model, ResultCache(tmp_path))
    checks = [p for p in model.prompts if "Proposed answer:" in p]
    assert len(checks) >= 2  # every passage quoted a year: each was checked
    assert all(len(_source_of(p).split()) < 40 for p in checks)  # one sentence, not the passage
    assert answer.supported and answer.text.startswith("1889 [")
    assert "lighthouse" in answer.sources[answer.cited[0] - 1].text


def test_when_no_quote_is_confirmed_the_answer_is_not_in_the_document(fake_model, tmp_path: Path) -> None:
    document = _logbook()
    model = fake_model(context_window=700, reply=_checking("no sentence has this"))
    answer = ask(document, _memory(document), "When was the lighthouse lamp first lit?", model, ResultCache(tmp_path))
    assert not answer.supported and answer.text == "" and answer.unverified  # the best-ranked quote kept aside


@pytest.mark.parametrize(
    "reply, cleaned",
    [
        ('Answer: "Mitchel Musso".', "Mitchel Musso"),
        ("April 25, 2018 [2]\nThe second season premiered then.", "April 25, 2018"),
        ("「1997年」。", "1997年"),
        ("Dr. Heinz Doofenshmirtz", "Dr. Heinz Doofenshmirtz"),
    ],
)
def test_a_reply_is_read_as_the_words_it_quotes(reply: str, cleaned: str) -> None:
    assert clean(reply) == cleaned


@pytest.mark.parametrize(
    "question, document, expected",
    [
        ("who plays the mom on phineas and ferb", "Linda is voiced by Caroline Rhea.", True),
        ("北京大学建于哪一年？", "北京大学创办于1898年。", True),
        # Yes or no, or a pick among options: the answer is not the document's words.
        ("Is the key behind the cabinet?", "The key hangs behind the cabinet.", False),
        ("北京大学是否建于1898年？", "北京大学创办于1898年。", False),
        ("Where is the key?\n(A) In the box\n(B) Behind the cabinet", "The key hangs behind the cabinet.", False),
        # An English question on a Chinese text wants an English answer, not copied Chinese.
        ("When was Peking University founded?", "北京大学创办于1898年。" * 20, False),
        # "Is it A or B" names the words to pick from: they are in the document.
        ("Is the key in the box or behind the cabinet?", "The key hangs behind the cabinet.", True),
    ],
)
def test_only_answers_made_of_the_documents_words_are_quoted(question: str, document: str, expected: bool) -> None:
    assert quotable(question, document) is expected
