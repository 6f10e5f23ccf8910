"""Hierarchical summarization with a fake model: tree shape, budgets, no dropped input, resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longdoc.document import Document, Page
from longdoc.tasks.results import ResultCache
from longdoc.tasks.summarize import SummaryOptions, group_by_budget, summarize


def _report(pages: int = 12) -> Document:
    """A paged document whose every sentence carries a unique marker word (fact1, fact2, ...)."""
    texts = []
    for page in range(1, pages + 1):
        sentences = [f"On page {page} the board recorded fact{page}x{n} about the water works." for n in range(20)]
        texts.append(" ".join(sentences))
    return Document(source="report.pdf", pages=tuple(Page(i + 1, t) for i, t in enumerate(texts)), kind="pdf")


def _fenced(prompt: str) -> str:
    return re.findall(r"<(document|summaries)>\n(.*?)\n</\1>", prompt, re.S)[-1][1]


def test_a_short_document_is_summarized_in_one_call(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=1000)
    document = Document(source="note.txt", pages=(Page(1, "The meeting moved to Thursday. Bring the ledger."),))
    result = summarize(document, model, ResultCache(tmp_path))
    assert len(model.prompts) == 1 and result.levels == []
    assert "The meeting moved to Thursday" in _fenced(model.prompts[0])
    assert result.text.startswith("Summary:")


def test_a_long_document_becomes_a_tree_with_every_chunk_summarized(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=400)
    document = _report()
    result = summarize(document, model, ResultCache(tmp_path), SummaryOptions(words=40, part_words=30))
    leaves = result.levels[0]
    assert len(leaves) == result.chunks > 4
    # Every sentence of the document reached some map prompt: nothing was dropped.
    mapped = " ".join(_fenced(p) for p in model.prompts[: len(leaves)])
    assert all(marker in mapped for marker in re.findall(r"fact\d+x\d+", document.text))
    # Levels shrink until one final prompt holds the top level, and the top covers every page.
    sizes = [len(level) for level in result.levels]
    assert sizes == sorted(sizes, reverse=True) and len(result.levels) >= 2
    top = result.levels[-1]
    assert top[0].page_start == 1 and top[-1].page_end == 12
    assert [node.children for node in result.levels[1]] and all(node.children for node in result.levels[1] if node.text)


def test_no_prompt_exceeds_the_models_window(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=400)
    summarize(_report(20), model, ResultCache(tmp_path), SummaryOptions(words=40, part_words=30))
    budget = model.context_window
    for prompt in model.prompts:
        assert model.count_tokens(prompt) <= budget


def test_each_reduce_node_covers_its_childrens_span(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=400)
    result = summarize(_report(), model, ResultCache(tmp_path), SummaryOptions(words=40, part_words=30))
    for lower, upper in zip(result.levels, result.levels[1:]):
        by_id = {node.id: node for node in lower}
        covered = [child for node in upper for child in node.children]
        assert covered == [node.id for node in lower]  # every node has exactly one parent, in order
        for node in upper:
            children = [by_id[c] for c in node.children]
            assert (node.start, node.end) == (children[0].start, children[-1].end)


def test_the_map_phase_is_batched(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=400)
    result = summarize(_report(), model, ResultCache(tmp_path), SummaryOptions(words=40, part_words=30, batch_size=4))
    map_calls = model.calls[: -(-len(result.levels[0]) // 4)]
    assert [len(call) for call in map_calls][:-1] == [4] * (len(map_calls) - 1)


def test_an_interrupted_summary_resumes_where_it_stopped(fake_model, tmp_path: Path) -> None:
    options = SummaryOptions(words=40, part_words=30, batch_size=2)
    document = _report()
    results = ResultCache(tmp_path)
    interrupted = fake_model(context_window=400, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        summarize(document, interrupted, results, options)
    finished_before = len(interrupted.prompts)  # 3 calls of 2 prompts were saved before Ctrl-C

    resumed = fake_model(context_window=400)
    result = summarize(document, resumed, results, options)
    fresh = fake_model(context_window=400)
    reference = summarize(document, fresh, ResultCache(tmp_path / "other"), options)
    assert result.text == reference.text
    assert result.cached == finished_before
    assert len(resumed.prompts) == len(fresh.prompts) - finished_before

    again = fake_model(context_window=400)
    assert summarize(document, again, results, options).text == reference.text
    assert again.prompts == []  # everything, the final summary included, came from the cache


def test_the_cache_key_includes_the_options(fake_model, tmp_path: Path) -> None:
    results = ResultCache(tmp_path)
    document = Document(source="note.txt", pages=(Page(1, "The meeting moved to Thursday."),))
    summarize(document, fake_model(context_window=1000), results, SummaryOptions(words=40))
    other = fake_model(context_window=1000)
    summarize(document, other, results, SummaryOptions(words=40, style="bullets"))
    assert len(other.prompts) == 1 and "bullet" in other.prompts[0]


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
    document = Document(source="note.txt", pages=(Page(1, "Minutes of the trustees' meeting."),))
    text = summarize(document, looping, ResultCache(tmp_path)).text
    assert text == "The roof was fixed for 640 pounds. The fair is in May."


@pytest.mark.parametrize(
    "sizes, budget, groups",
    [
        ([10, 10, 10, 10], 100, [[0, 1, 2, 3]]),
        ([40, 40, 40, 40], 90, [[0, 1], [2, 3]]),
        ([40, 40, 40], 90, [[0, 1], [2]]),  # a lone last summary moves up unchanged
        ([80, 80, 80], 90, [[0, 1], [2]]),  # two per group even past the budget: the tree must shrink
        ([5], 90, [[0]]),
    ],
)
def test_group_by_budget(sizes: list[int], budget: int, groups: list[list[int]]) -> None:
    assert group_by_budget(sizes, budget) == groups
