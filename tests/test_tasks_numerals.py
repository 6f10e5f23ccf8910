"""Numbers written in words or Chinese numerals, rewritten in digits for the answer support check."""

from __future__ import annotations

import pytest

from longdoc.tasks.numerals import chinese_numeral_value, numbers_as_digits


@pytest.mark.parametrize(("run", "value"), [
    ("一九一一", 1911),  # a year, digit by digit
    ("二〇一八", 2018),
    ("三百二十", 320),
    ("二百一十四", 214),
    ("十八", 18),
    ("一千零五", 1005),
    ("两千三百八十", 2380),
    ("三万五千", 35000),
    ("十五六", None),  # "fifteen or sixteen": no one number
])
def test_chinese_numerals_are_read_by_position_or_digit_by_digit(run: str, value: int | None) -> None:
    assert chinese_numeral_value(run) == value


@pytest.mark.parametrize(("text", "digits"), [
    ("这座小屋于一九一一年建成", "这座小屋于 1911 年建成"),
    ("一座小镇，走十五六天", "一座小镇，走十五六天"),  # a lone 一 is "a"; a span of two numbers stays
    ("ten episodes, twenty-one days, Ninety nine", "10 episodes, 21 days, 99"),
    ("seventeen and sixteen, not seventy", "17 and 16, not 70"),
    ("Tenth street and someone", "Tenth street and someone"),  # no number inside other words
])
def test_numbers_in_words_are_written_in_digits(text: str, digits: str) -> None:
    assert numbers_as_digits(text) == digits
