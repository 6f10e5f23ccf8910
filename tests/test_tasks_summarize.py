"""Summaries with a fake model: every part of the document reaches the summary, invented figures
and names are removed, the length is kept, and the run is batched, bounded and resumable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from longdoc.document import Document, Page
from longdoc.tasks.language import count_words
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, headings, summarize

TOWNS = ["Arden", "Bexley", "Corby", "Dunmore", "Elgin", "Fenwick", "Garth", "Holt", "Irvine", "Jarrow", "Keswick", "Lydd"]
ROUTINE = "The committee met as planned and reviewed the usual procedures for the quarter."


def _report(pages: int = 12, routine: int = 25) -> Document:
    """A paged report: routine sentences on every page and one key fact (a town, a figure) per page."""
    texts = []
    for page in range(1, pages + 1):
        sentences = [ROUTINE] * routine
        sentences.insert(routine // 2, _key_fact(page))
        texts.append(" ".join(sentences))
    return Document(source="report.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(texts)), kind="pdf")


def _key_fact(page: int) -> str:
    return f"A new depot opened in {TOWNS[page - 1]} at a cost of {page * 37},000 dollars."


def _fenced(prompt: str, tag: str) -> str:
    found = re.findall(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.S)
    return found[-1] if found else ""


def _scripted(write: Callable[[list[str]], str] | None = None):  # type: ignore[no-untyped-def]
    """Replies like a small instruction model: the writer (by default) keeps only the last fact it
    is given, as small models favour the last input; the opening names the report."""

    def reply(prompt: str) -> str:
        if "<topics>" in prompt:
            return "This is the annual report of the depot board."
        facts = [line[2:] for line in _fenced(prompt, "facts").splitlines()]
        return (write or (lambda given: given[-1]))(facts)

    return reply


def test_every_part_of_a_long_document_reaches_the_summary(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=1600, reply=_scripted())
    document = _report()
    result = summarize(document, model, ResultCache(tmp_path))
    assert result.chunks >= 6
    for page in range(1, 13):  # the writer dropped all but one fact per part: the check put them back
        assert TOWNS[page - 1] in result.text and f"{page * 37},000" in result.text
    assert result.restored > 0
    assert result.text.startswith("This is the annual report of the depot board.")
    # Every chunk is accounted for, and the tree's parts cover the document in order.
    chunks, parts = result.levels
    assert len(chunks) == result.chunks
    assert [child for part in parts for child in part.children] == [node.id for node in chunks]
    assert parts[0].page_start == 1 and parts[-1].page_end == 12


def test_a_garbled_fact_is_replaced_by_the_fact_not_followed_by_it(fake_model, tmp_path: Path) -> None:
    # The writer keeps its part's facts but garbles the town and figure of the first: the repair
    # puts that fact where its garbled telling was, so the paragraph does not state it twice.
    def garble(facts: list[str]) -> str:
        return " ".join([re.sub(r"in \w+ at a cost of [\d,]+", "in the north at some cost", facts[0]), *facts[1:]])

    model = fake_model(context_window=1600, reply=_scripted(write=garble))
    result = summarize(_report(), model, ResultCache(tmp_path), SummaryOptions(words=250))
    chosen = [fact for fact in result.facts if fact.selected]
    assert len(chosen) >= 6 and all(fact.in_summary for fact in chosen)
    assert result.restored > 0 and "in the north" not in result.text
    assert all(result.text.count(f" {town} at a cost") == 1 for town in TOWNS)


def test_an_opening_that_lists_every_heading_is_cut_to_its_first_sentences(fake_model, tmp_path: Path) -> None:
    def reply(prompt: str) -> str:
        if "<topics>" in prompt:
            return "This is the annual report of the depot board. It covers " + ", ".join(f"the {t} depot" for t in TOWNS) + "."
        return " ".join(line[2:] for line in _fenced(prompt, "facts").splitlines())

    result = summarize(_report(), fake_model(context_window=1600, reply=reply), ResultCache(tmp_path))
    assert result.text.startswith("This is the annual report of the depot board. A new depot")


def test_routine_statements_lose_to_specific_facts(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=1600, reply=_scripted(write=lambda facts: " ".join(facts)))
    result = summarize(_report(), model, ResultCache(tmp_path), SummaryOptions(words=100))
    chosen = [fact for fact in result.facts if fact.selected]
    assert chosen and all(fact.text.startswith("A new depot") for fact in chosen)
    assert "committee met" not in result.text


def _busy_report() -> Document:
    """Pages with three key facts each among routine sentences: more material than any summary holds."""
    texts = []
    for page, town in enumerate(TOWNS, start=1):
        facts = [_key_fact(page), f"The {town} depot employs {page + 40} drivers on two shifts.",
                 f"Deliveries from {town} rose by {page + 3} percent over the year."]
        texts.append(" ".join([ROUTINE] * 8 + facts[:1] + [ROUTINE] * 8 + facts[1:] + [ROUTINE] * 8))
    return Document(source="report.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(texts)), kind="pdf")


@pytest.mark.parametrize("words", [60, 150, 250, 400])
@pytest.mark.parametrize("writer", ["verbose", "silent", "faithful"])
def test_the_length_asked_is_kept_within_a_quarter(fake_model, tmp_path: Path, words: int, writer: str) -> None:
    padding = " It was a year of steady progress for the depot board and all of its members."
    write = {"verbose": lambda facts: " ".join(facts) + padding * 12, "silent": lambda facts: "",
             "faithful": lambda facts: " ".join(facts)}[writer]
    model = fake_model(context_window=1600, reply=_scripted(write=write))
    result = summarize(_busy_report(), model, ResultCache(tmp_path), SummaryOptions(words=words))
    assert abs(count_words(result.text) - words) <= words * 0.25, count_words(result.text)


def test_invented_figures_and_names_never_reach_the_summary(fake_model, tmp_path: Path) -> None:
    invent = lambda facts: " ".join(facts) + " Profits reached 99 million dollars under director Zorblat."  # noqa: E731
    model = fake_model(context_window=1600, reply=_scripted(write=invent))
    result = summarize(_report(), model, ResultCache(tmp_path))
    assert "99 million" not in result.text and "Zorblat" not in result.text
    assert any("Zorblat" in dropped.unsupported for dropped in result.dropped)
    assert "Arden" in result.text  # the supported sentences stay


def test_bullets_open_with_what_the_document_is_and_list_the_facts(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=1600, reply=_scripted())
    result = summarize(_report(8), model, ResultCache(tmp_path), SummaryOptions(style="bullets"))
    lines = result.text.splitlines()
    assert all(line.startswith("- ") for line in lines)
    assert lines[0] == "- This is the annual report of the depot board."
    assert all(TOWNS[page] in result.text for page in range(8))
    assert not any("<facts>" in prompt for prompt in model.prompts)  # bullets are the facts: no writing step


def test_a_chinese_document_is_summarized_in_chinese_with_every_part(fake_model, tmp_path: Path) -> None:
    towns = ["青石镇", "雾溪镇", "白沙村", "柳林乡", "云台镇", "石门村"]
    pages = [("委员会按计划召开例会，并审议了本季度的常规事项。" * 30) + f"{town}新建仓库一座，投资{n + 2}.5亿元。" for n, town in enumerate(towns)]
    document = Document(source="zh.txt", pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)))

    model = fake_model(context_window=1600, reply=_scripted())
    result = summarize(document, model, ResultCache(tmp_path), SummaryOptions(words=150))
    assert result.language == "Simplified Chinese" and "Simplified Chinese" in model.prompts[0]
    assert all(town in result.text for town in towns)
    assert "。 " not in result.text and "元。" in result.text  # Chinese sentences are joined without spaces


def test_the_writing_steps_go_in_one_batch_within_the_window(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=1600, reply=_scripted())
    result = summarize(_report(), model, ResultCache(tmp_path), SummaryOptions(words=400))
    assert len(model.calls) == 1 and len(model.calls[0]) == len(result.levels[1]) + 1  # the opening and each part
    assert all(model.count_tokens(prompt) <= model.context_window for prompt in model.prompts)
    assert all("<facts>" in prompt for prompt in model.prompts[1:])


def test_every_chunk_is_scored_and_reported(fake_model, tmp_path: Path) -> None:
    document = _report()
    result = summarize(document, fake_model(context_window=1600, reply=_scripted()), ResultCache(tmp_path))
    chunks = result.levels[0]
    assert " ".join(document.text[node.start : node.end] for node in chunks).split() == document.text.split()
    assert {fact.chunk for fact in result.facts} == set(range(result.chunks))
    key = [fact for fact in result.facts if fact.text.startswith("A new depot")]
    assert len(key) == 12 and all(fact.selected and fact.in_summary for fact in key)


def test_an_interrupted_summary_resumes_where_it_stopped(fake_model, tmp_path: Path) -> None:
    options = SummaryOptions(words=600, batch_size=2)  # an opening and 7 paragraphs: 4 calls
    document = _report()
    results = ResultCache(tmp_path)
    interrupted = fake_model(context_window=1600, reply=_scripted(), fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        summarize(document, interrupted, results, options)
    finished_before = len(interrupted.prompts)  # 2 calls of 2 prompts were saved before Ctrl-C
    assert finished_before == 4

    resumed = fake_model(context_window=1600, reply=_scripted())
    result = summarize(document, resumed, results, options)
    fresh = fake_model(context_window=1600, reply=_scripted())
    reference = summarize(document, fresh, ResultCache(tmp_path / "other"), options)
    assert result.text == reference.text
    assert result.cached == finished_before
    assert len(resumed.prompts) == len(fresh.prompts) - finished_before

    again = fake_model(context_window=1600, reply=_scripted())
    assert summarize(document, again, results, options).text == reference.text
    assert again.prompts == []  # everything, the writing steps included, came from the cache


def test_the_cache_key_includes_the_options(fake_model, tmp_path: Path) -> None:
    results = ResultCache(tmp_path)
    document = Document(source="note.txt", pages=(Page(1, "The meeting moved to Thursday. Bring the ledger to the hall."),))
    summarize(document, fake_model(context_window=1000), results, SummaryOptions(words=40))
    other = fake_model(context_window=1000)
    summarize(document, other, results, SummaryOptions(words=40, language="fr"))
    assert other.prompts and all("French" in prompt for prompt in other.prompts)


def test_the_summary_language_follows_the_document_unless_asked(fake_model, tmp_path: Path) -> None:
    chinese = Document(source="zh.txt", pages=(Page(1, "雾溪镇一年之中平均有二百一十多天起雾。"),))
    model = fake_model(context_window=1000)
    assert summarize(chinese, model, ResultCache(tmp_path)).language == "Simplified Chinese"
    assert "Simplified Chinese" in model.prompts[0]
    model = fake_model(context_window=1000)
    summarize(chinese, model, ResultCache(tmp_path), SummaryOptions(language="en"))
    assert "in English" in model.prompts[0]


def test_repeated_sentences_in_a_reply_are_dropped(fake_model, tmp_path: Path) -> None:
    looping = fake_model(context_window=1000, reply=lambda prompt: "The roof was fixed for 640 pounds. " * 4 + "The fair is in May.")
    document = Document(source="note.txt", pages=(Page(1, "Minutes: the roof was fixed for 640 pounds. The fair is in May."),))
    text = summarize(document, looping, ResultCache(tmp_path)).text
    assert text.count("The roof was fixed for 640 pounds.") == 1 and "The fair is in May." in text


def test_a_chinese_document_summarized_in_english_gets_translations_never_chinese(fake_model, tmp_path: Path) -> None:
    pages = [("委员会按计划召开例会，并审议了本季度的常规事项。" * 20) + f"第{n + 1}号仓库投资{n + 2}.5亿元建成。" for n in range(4)]
    document = Document(source="zh.txt", pages=tuple(Page(i + 1, t) for i, t in enumerate(pages)))
    sent: list[str] = []

    def reply(prompt: str) -> str:
        sent.append(prompt)
        if "<topics>" in prompt:
            return "This is a report on four warehouses. It covers their 投资 and 建设."  # half translated
        if "<facts>" in prompt:
            return ""  # the writer fails: every fact must come back from its translation
        text = prompt.rsplit("[user]\n", 1)[-1]
        amount = re.search(r"[\d.]+ (?:million|billion)", text)
        return f"The warehouse cost {amount.group(0) if amount else 'nothing'} yuan."

    result = summarize(document, fake_model(context_window=1600, reply=reply), ResultCache(tmp_path), SummaryOptions(words=80, language="en"))
    assert not re.search(r"[\u4e00-\u9fff]", result.text)
    assert "250 million yuan" in result.text and "550 million yuan" in result.text  # 2.5亿 and 5.5亿, never "billion"
    assert not any("亿" in prompt.rsplit("[user]\n", 1)[-1] for prompt in sent if "translat" in prompt.lower())


def test_headings_are_markdown_lines_and_short_lines_standing_alone() -> None:
    text = "# Annual Report 2025\n\nThe year went well.\n\nCapital Projects\n\nWe built a main.\n## 3. Finance\nIncome rose.\n\n第二章 茶路\n\n茶叶经鹰嘴垭运出山。"
    assert headings(text) == ["Annual Report 2025", "Capital Projects", "Finance", "茶路"]


def test_progress_names_the_phase_and_its_count_before_the_first_step_and_moves_by_tokens(tmp_path: Path, fake_model) -> None:  # type: ignore[no-untyped-def]
    from longdoc.progress import Progress

    reports: list[Progress] = []
    text = "\n\n".join(f"Section {n}. The harbour board approved {n * 7} new moorings for the spring." for n in range(12))
    document = Document(source="board.txt", pages=(Page(1, text),))
    summarize(document, fake_model(context_window=1000), ResultCache(tmp_path), SummaryOptions(words=300), reports.append)
    first, last = reports[0], reports[-1]
    assert first.phase == last.phase == "writing"
    assert first.done == 0 and first.total == last.total == last.done > 1  # the count is known up front
    assert first.prompt_tokens > 0 and first.token_limit > 0 and last.tokens > 0  # it moves by tokens read, then generated
