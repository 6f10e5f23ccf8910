"""Paragraphs as a translation keeps them: one per blank-line block, or one per line."""

from __future__ import annotations

from longdoc.tasks.paragraphs import split_paragraphs


def test_single_line_paragraphs_are_kept_line_for_line() -> None:
    paragraphs = split_paragraphs("第一行。\n第二行。\n  第三行。\n")
    assert [p.text for p in paragraphs] == ["第一行。", "第二行。", "第三行。"]
    assert [p.separator for p in paragraphs] == ["\n", "\n  ", "\n"]
