"""The layout a translation keeps: paragraphs with their separators, cut into pieces and runs.

The document is split into paragraphs (blank-line separated, or line by line when it has no blank
lines); each becomes one output paragraph, with the source's own separators kept, so the layout
survives one to one. A hard-wrapped paragraph is joined into one line, and a paragraph too long
for one prompt is cut at sentence ends into pieces (translated in order and joined again). For
translation side by side, the paragraphs are cut into runs of whole paragraphs of about equal
length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, Page
from longdoc.model.protocol import Model
from longdoc.script import CJK_PUNCTUATION, HAN

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_BREAK = re.compile(r"\n\s*")
_CJK_CHAR = re.compile(f"[{HAN}{CJK_PUNCTUATION}]")


@dataclass(frozen=True)
class Paragraph:
    """One source paragraph and the whitespace that followed it in the document."""

    index: int
    text: str
    separator: str


def split_paragraphs(text: str) -> list[Paragraph]:
    """Paragraphs with their following separators; blank lines separate them when the text has
    any, single line breaks otherwise (text that puts one paragraph per line)."""
    body = text.strip()
    pattern = _BLANK_LINE if _BLANK_LINE.search(body) else _LINE_BREAK
    paragraphs, position = [], 0
    for match in pattern.finditer(body):
        paragraphs.append(Paragraph(len(paragraphs), body[position : match.start()], match.group()))
        position = match.end()
    paragraphs.append(Paragraph(len(paragraphs), body[position:], "\n"))
    return [p for p in paragraphs if p.text.strip()]


def split_runs(paragraphs: Sequence[Paragraph], count: int) -> list[list[Paragraph]]:
    """At most `count` consecutive runs of whole paragraphs, of about equal length in characters:
    a paragraph goes to the run its middle character falls in."""
    total = sum(len(p.text) for p in paragraphs) or 1
    runs: list[list[Paragraph]] = []
    done, current = 0, -1
    for paragraph in paragraphs:
        share = min(count - 1, (done + len(paragraph.text) // 2) * count // total)
        if share != current:
            runs.append([])
            current = share
        runs[-1].append(paragraph)
        done += len(paragraph.text)
    return runs


def split_piece(text: str, model: Model, piece_tokens: int) -> list[str]:
    """A paragraph as pieces of at most `piece_tokens` model tokens, cut at sentence ends."""
    flat = _joined_lines(text.strip())  # a hard-wrapped paragraph is one paragraph
    if model.count_tokens(flat) <= piece_tokens:
        return [flat]
    document = Document(source="<paragraph>", pages=(Page(1, flat),))
    chunks = chunk_document(document, ChunkConfig(size=piece_tokens, overlap=0), counter=model.count_tokens)
    return [chunk.text for chunk in chunks]


def _joined_lines(text: str) -> str:
    """Line breaks inside a paragraph removed: nothing between Chinese characters, a space elsewhere."""
    def joiner(match: re.Match[str]) -> str:
        before, after = text[max(match.start() - 1, 0)], text[match.end() : match.end() + 1]
        return "" if _CJK_CHAR.match(before) and _CJK_CHAR.match(after) else " "

    return _LINE_BREAK.sub(joiner, text)
