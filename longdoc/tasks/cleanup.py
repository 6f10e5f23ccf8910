"""Model replies made presentable: sentences repeated word for word dropped, a sentence cut off
by the token cap removed. Small models decoding greedily do both often enough to matter."""

from __future__ import annotations

import re

from longdoc.chunking import abbreviation_period

# Where a sentence ends: after . ! ? followed by whitespace, after Chinese 。！？ (closing quotes
# included), and at line breaks (list items, paragraphs).
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|[.!?]+[\"'”’)\]]*$|[。！？]+[”’」』）)]*|\n")
ENDS_SENTENCE = re.compile(r"[.!?。！？…][\"'”’)\]」』）]*$")


def sentences(text: str) -> list[str]:
    """`text` cut after every sentence end; joined again, the pieces give `text` back."""
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group() == "." and abbreviation_period(text, match.start()):
            continue
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def tidy(text: str, truncated: bool = False) -> str:
    """`text` without repeated sentences and, when `truncated`, without its unfinished last sentence."""
    pieces = _without_repeats(sentences(text.strip()))
    if truncated and pieces and not (pieces[-1].endswith("\n") or ENDS_SENTENCE.search(pieces[-1])):
        kept = len("".join(pieces[:-1]))
        if kept > len("".join(pieces)) // 3:  # keep a long fragment rather than lose most of the reply
            pieces = pieces[:-1]
    return "".join(pieces).strip()


def _without_repeats(pieces: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for piece in pieces:
        key = " ".join(piece.split()).lower()
        if len(key.encode("utf-8")) > 16 and key in seen:
            continue  # short pieces ("Yes.", list markers) may repeat legitimately
        seen.add(key)
        kept.append(piece)
    return kept
