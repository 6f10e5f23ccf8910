"""The glossary's terms: names and terms that recur in a document, and the translations of terms.

Every piece of a translation gets the glossary entries that occur in it: pinned terms from the
user (`load_glossary_csv`), plus names and terms that recur in the document (`recurring_terms`).
A recurring term (a Chinese character sequence, or a capitalised name in Latin script, seen at
least three times) is translated once, in a short call of its own with a sentence that uses it
(`sentence_with`), the first time a piece contains it; the model's reply is read by `clean_term`,
which rejects what does not look like a translation. From then on every piece that contains the
term gets that translation in its glossary, so a name is rendered the same way throughout.
"""

from __future__ import annotations

import csv
import io
import re

from longdoc.script import HAN, HAN_CHARACTER
from longdoc.tasks.language import is_chinese

_CJK_RUN = re.compile(f"[{HAN}]{{2,}}")
_NAME = re.compile(r"(?<![.!?。]\s)(?<!^)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")
# Characters that start or end ordinary phrases rather than names: a candidate term with one of
# them at an edge is a fragment of a sentence ("的茶", "在镇").
_FUNCTION_CHARS = set("的了是在有和与及或不这那个们我你他她它也就都而着把被从到对说上下中里为以之其所很又还让给向于等匹支只条位座")
_NUMERALS = set("一二三四五六七八九十百千万两零年")
_MIN_OCCURRENCES = 3
_MAX_TERMS = 200


def recurring_terms(text: str, chinese: bool) -> list[str]:
    """Names and terms worth a glossary entry: sequences that recur, longest first.

    Chinese: 3-6 character sequences seen at least three times, not starting or ending with a
    function character, not mostly numerals, and not just part of a longer recurring sequence. Latin script:
    capitalised words and phrases not at a sentence start, seen at least three times.
    """
    counts: dict[str, int] = {}
    if chinese:
        for run in _CJK_RUN.findall(text):
            for size in (3, 4, 5, 6):  # two-character sequences are mostly common words
                for i in range(len(run) - size + 1):
                    gram = run[i : i + size]
                    counts[gram] = counts.get(gram, 0) + 1
        candidates = {g: c for g, c in counts.items() if c >= _MIN_OCCURRENCES and _could_be_term(g)}
        # "雾溪" inside "雾溪镇": keep the shorter only when it also occurs on its own often enough.
        terms = [g for g, c in candidates.items() if not any(g in longer and c - candidates[longer] < _MIN_OCCURRENCES for longer in candidates if len(longer) > len(g))]
    else:
        for match in _NAME.finditer(text):
            counts[match.group()] = counts.get(match.group(), 0) + 1
        terms = [name for name, count in counts.items() if count >= _MIN_OCCURRENCES]
    terms.sort(key=lambda term: (-len(term), -counts[term], term))
    return terms[:_MAX_TERMS]


def _could_be_term(gram: str) -> bool:
    """False for fragments of ordinary phrasing: a function character at an edge or "的" inside,
    or a number ("二十", "十年代")."""
    if gram[0] in _FUNCTION_CHARS or gram[-1] in _FUNCTION_CHARS or "的" in gram or gram[-1] in _NUMERALS:
        return False
    return sum(char in _NUMERALS for char in gram) * 2 < len(gram)


def sentence_with(text: str, term: str) -> str:
    """The sentence (at most ~200 characters around the term) where `term` first occurs."""
    at = text.find(term)
    start = max(text.rfind(mark, 0, at) for mark in ("。", "！", "？", ". ", "\n")) + 1
    end_marks = [text.find(mark, at) for mark in ("。", "！", "？", ". ", "\n")]
    end = min([e + 1 for e in end_marks if e >= 0] or [len(text)])
    start, end = max(start, at - 100), min(end, at + len(term) + 100)
    return text[start:end].strip()


def clean_term(reply: str, term: str, target: str) -> str | None:
    """The translation in a reply to the term prompt, or None when it does not look like one.

    Small models wrap it ('The translation of "X" is "Y".'): the last quoted phrase is taken.
    Rejected: long replies, the term itself, or text still in the source script.
    """
    quoted = re.findall(r"[\"“”']([^\"“”']{1,60})[\"“”']", reply)
    candidate = (quoted[-1] if quoted else reply.strip().splitlines()[0] if reply.strip() else "").strip(" .。\"'“”")
    if not candidate or candidate == term or len(candidate.split()) > 6 or len(candidate) > 60:
        return None
    if not is_chinese(target) and _CJK_RUN.search(candidate) or HAN_CHARACTER.search(candidate) and not is_chinese(target):
        return None
    if is_chinese(target) and not HAN_CHARACTER.search(candidate):
        return None
    return candidate


def load_glossary_csv(text: str) -> dict[str, str]:
    """Pinned terms from CSV text: `source,translation` per row; a header row and blank rows are skipped."""
    terms: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        cells = [cell.strip() for cell in row]
        if len(cells) < 2 or not cells[0] or not cells[1] or cells[0].startswith("#"):
            continue
        if cells[0].lower() in ("source", "term", "src") and not terms:
            continue  # header
        terms[cells[0]] = cells[1]
    return terms
