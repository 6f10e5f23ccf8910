"""Faithfulness: every number and name a model writes must appear in the text it was given.

Small models invent figures and names ("revenue of $52 million" for a report that gave none), and
a reader cannot tell. This module finds the numbers and capitalised names of a generated text and
checks each against the source:

- a number is supported when the source has the same digits ("1,140" = "1140"), the same value
  under a scale word ("4.8亿" = "480 million", but not "4.8 billion"), or a value that rounds to it at the precision
  written ("48,213,000" -> "48.2 million"); a small integer also when the source spells it out
  ("three", "三");
- a capitalised Latin word that does not start a sentence is supported when the source has the
  word (any case). Names in Chinese text, and Latin names in a summary whose source is Chinese
  (pinyin, translations), cannot be checked this way and are not.

`drop_unsupported` removes the sentences that carry anything unsupported; the callers re-add what
the summary then misses from facts that passed the same check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longdoc.script import HAN, HAN_CHARACTER
from longdoc.tasks.cleanup import sentences
from longdoc.tasks.language import detect_language
from longdoc.tasks.numerals import CHINESE_DIGITS, ENGLISH_UNITS

_SCALES = {
    "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9,
    "千": 1e3, "万": 1e4, "十万": 1e5, "百万": 1e6, "千万": 1e7, "亿": 1e8, "万亿": 1e12,
}
# A number: digits with optional thousands separators and decimals, then an optional scale word.
# Not preceded by a Latin letter or a digit, so "COVID19" or "A4" are not read as figures (a
# Chinese character may come right before a number: "营收4.8亿元").
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s?(thousand|million|billion|trillion|bn)(?![A-Za-z])|(万亿|十万|百万|千万|万|亿|千))?",
    re.I,
)
_MONEY = re.compile(r"[$€£¥￥]\s*$")
_SHARE = re.compile(r"\s?(?:%|％|percent\b|per cent\b|个百分点|成)")
_NUMBER_WORDS = {
    **ENGLISH_UNITS, "twenty": 20, "first": 1,
    "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "once": 1, "twice": 2, "single": 1, "dozen": 12, "half": 2, "double": 2,
    **{digit: value for digit, value in CHINESE_DIGITS.items() if value}, "十": 10,
}
_SPELLED = max(value for value in _NUMBER_WORDS.values())
_CAPITALISED = re.compile(r"(?<![A-Za-z0-9'’])[A-Z][A-Za-z]*(?:['’][A-Za-z]+)?")
_WORD = re.compile(r"[A-Za-z]+")
# A Chinese proper name: up to 8 characters, then what kind of body or place it names.
_CHINESE_NAME = re.compile(
    f"([{HAN}]{{1,8}}?)(股份有限公司|有限责任公司|有限公司|集团|公司|银行|大学|学院|医院|研究院|研究所|委员会|市|县|镇|乡|村)"
)
_UNTRANSLATED = re.compile(f"[{HAN}]{{2,}}")
# Characters that join words rather than belong to a name.
_JOINER = re.compile("[与同和及跟向由对在为被把将从、的了是其该各本]")
# Where a sentence or list item really starts: after bullets, numbering, quotes and brackets.
_LEAD = re.compile(r"^[\s\-*•·#>\"'“‘(\[]*(?:\d+[.)]\s+)?[\s\"'“‘(\[]*")


@dataclass(frozen=True)
class Figure:
    """A number as written: its digits, decimals and the scale word after it."""

    literal: str  # digits without separators: "1140", "48.2"
    value: float  # with the scale applied: 48.2 million -> 48_200_000.0
    decimals: int
    scale: float
    # An amount, a share or a count worth reporting (money, a percentage, a decimal, a scale
    # word, 100 or more), not a year or a small number of days, clauses or items.
    notable: bool = True


def figures(text: str) -> list[Figure]:
    """Every number written in digits in `text`."""
    found = []
    for match in _NUMBER.finditer(text):
        whole, fraction, word, cjk = match.groups()
        literal = whole.replace(",", "") + (f".{fraction}" if fraction else "")
        scale = _SCALES[(word or cjk).lower()] if (word or cjk) else 1.0
        value = float(literal) * scale
        notable = bool(fraction or word or cjk or _MONEY.search(text[max(0, match.start() - 2) : match.start()])
                       or _SHARE.match(text, match.end())) or (value >= 100 and not (1900 <= value <= 2100 and "." not in literal))
        found.append(Figure(literal, value, len(fraction or ""), scale, notable))
    return found


def western_amounts(text: str) -> str:
    """`text` with Chinese-scaled amounts written the Western way ("4.8亿" -> "480 million",
    "20万" -> "200,000"): small models translating 亿 and 万 get the scale wrong ("4.8 billion")."""

    def written(match: re.Match[str]) -> str:
        figure = figures(match.group(0))[0]
        if not match.group(4):
            return match.group(0)
        for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
            if figure.value >= scale:
                return f"{figure.value / scale:,.{_digits(figure.value / scale)}f} {word}"
        return f"{figure.value:,.{_digits(figure.value)}f}"

    return _NUMBER.sub(written, text)


def _digits(value: float) -> int:
    """Decimals needed to write `value` exactly, up to 4 (the rest is float noise)."""
    for digits in range(5):
        if abs(round(value, digits) - value) < 1e-9 * max(1.0, value):
            return digits
    return 4


class SourceFacts:
    """What a source text contains, indexed once so that many generated texts can be checked fast."""

    def __init__(self, source: str) -> None:
        own = figures(source)
        self.literals = {figure.literal for figure in own}
        self.values = sorted({figure.value for figure in own})
        lowered = source.lower()
        self.words = set(_WORD.findall(lowered))
        self.spelled = {value for word, value in _NUMBER_WORDS.items() if word in self.words or (HAN_CHARACTER.match(word) and word in source)}
        self.chinese = detect_language(source) == "zh"
        self.text = source

    def supports_figure(self, figure: Figure) -> bool:
        # A figure with a scale word must have that value: "4.8亿" is not "4.8 billion".
        if (figure.scale == 1.0 and figure.literal in self.literals) or any(
            abs(value - figure.value) <= 1e-9 * max(1.0, value) for value in self.values
        ):
            return True
        if figure.scale == 1.0 and figure.decimals == 0 and figure.value <= _SPELLED and int(figure.value) in self.spelled:
            return True
        # Rounded at the precision written: "48.2 million" for 48,213,000; plain integers must match.
        if figure.decimals or figure.scale > 1.0:
            return any(round(value / figure.scale, figure.decimals) == round(figure.value / figure.scale, figure.decimals)
                       and value >= figure.value * 0.9 for value in self.values)
        return False

    def supports_name(self, word: str) -> bool:
        base = re.split(r"['’]", word)[0].lower()
        return base in self.words


def unsupported(text: str, source: SourceFacts) -> list[str]:
    """The numbers and names of `text` that `source` does not contain, as written in `text`."""
    missing = [match.group(0) for match in _NUMBER.finditer(text) if not source.supports_figure(figures(match.group(0))[0])]
    # Latin names can be checked where the source is not Chinese, or the text copies them into Chinese.
    if not source.chinese or HAN_CHARACTER.search(text):
        missing += [word for word in names(text) if not source.supports_name(word)]
    if source.chinese:
        missing += [name for name in chinese_names(text) if name not in source.text]
    return missing


def chinese_names(text: str) -> list[str]:
    """Names of companies, institutions and places in Chinese text: the characters before a word
    such as 有限公司, 集团, 大学 or 市, cut after any joining character (与, 和, 的, ...)."""
    found = []
    for match in _CHINESE_NAME.finditer(text):
        name = _JOINER.split(match.group(1))[-1]
        if len(name) >= 2:
            found.append(name + match.group(2))
    return found


def names(text: str) -> list[str]:
    """Capitalised Latin words that do not start a sentence or list item (those may be any word)."""
    found = []
    for sentence in sentences(text):
        start = _LEAD.match(sentence)
        body = sentence[start.end() if start else 0 :]
        for match in _CAPITALISED.finditer(body):
            if match.start() == 0 or match.group(0) == "I" or body[: match.start()].rstrip().endswith(":"):
                continue
            found.append(match.group(0))
    return found


@dataclass(frozen=True)
class Dropped:
    """A sentence removed from a generated text, and what in it the source does not hold."""

    sentence: str
    unsupported: list[str]


def drop_unsupported(text: str, source: SourceFacts, keep_chinese: bool = True) -> tuple[str, list[Dropped]]:
    """`text` without the sentences that carry a number or name the source does not have; with
    `keep_chinese` False also those left partly untranslated (two Chinese characters in a row)."""
    kept, dropped = [], []
    for sentence in sentences(text):
        missing = unsupported(sentence, source) + ([] if keep_chinese else _UNTRANSLATED.findall(sentence))
        if missing:
            dropped.append(Dropped(sentence.strip(), missing))
        else:
            kept.append(sentence)
    return re.sub(r"[ \t]+\n", "\n", "".join(kept)).strip(), dropped
