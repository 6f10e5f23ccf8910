"""Numbers written in words, rewritten in digits, so that a reply and a passage that write one
number two ways still match: a Chinese passage dates a shelter 一九一一年 and the model answers
1911年; an English page says "ten episodes" and the model writes 10."""

from __future__ import annotations

import re

CHINESE_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_NUMERAL = re.compile(f"[{''.join(CHINESE_DIGITS)}{''.join(_CHINESE_UNITS)}万]+")

ENGLISH_UNITS = dict(zip(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split(), range(20)))
_ENGLISH_TENS = dict(zip("twenty thirty forty fifty sixty seventy eighty ninety".split(), range(20, 100, 10)))
_ENGLISH_NUMBER = re.compile(
    rf"\b(?:({'|'.join(_ENGLISH_TENS)})(?:[- ]({'|'.join(list(ENGLISH_UNITS)[1:10])}))?|({'|'.join(ENGLISH_UNITS)}))\b",
    re.IGNORECASE,
)


def numbers_as_digits(text: str) -> str:
    """`text` with Chinese numerals and English number words up to ninety-nine written in digits.

    A Chinese numeral becomes its digits between spaces (一九一一 -> " 1911 ", 三百二十 -> " 320 "),
    so the characters around it stay apart from it. A lone 一 stays: it mostly means "a" or "one
    whole" (一座小镇, 一样), and 1 would match nothing a reply writes.
    """
    text = _CHINESE_NUMERAL.sub(_chinese, text)
    return _ENGLISH_NUMBER.sub(_english, text)


def _chinese(match: re.Match[str]) -> str:
    run = match.group()
    if run == "一":
        return run
    value = chinese_numeral_value(run)
    return run if value is None else f" {value} "


def chinese_numeral_value(run: str) -> int | None:
    """The value of a run of Chinese numerals: digit by digit where it has no units (一九一一 is
    1911, as years are written), positional where it has them (二百一十四 is 214); None for a run
    no number is written as (百百)."""
    if not any(ch in _CHINESE_UNITS or ch == "万" for ch in run):
        return int("".join(str(CHINESE_DIGITS[ch]) for ch in run))
    total = section = 0
    digit: int | None = None
    for ch in run:
        if ch in CHINESE_DIGITS:
            if digit is not None and digit != 0:
                return None  # two digits in a row inside a positional number
            digit = CHINESE_DIGITS[ch]
        elif ch in _CHINESE_UNITS:
            if digit is None and section:
                return None
            section += (1 if digit is None else digit) * _CHINESE_UNITS[ch]
            digit = None
        else:  # 万
            total += (section + (digit or 0)) * 10_000
            section, digit = 0, None
    return total + section + (digit or 0)


def _english(match: re.Match[str]) -> str:
    tens, unit, alone = match.groups()
    if alone:
        return str(ENGLISH_UNITS[alone.lower()])
    return str(_ENGLISH_TENS[tens.lower()] + (ENGLISH_UNITS[unit.lower()] if unit else 0))
