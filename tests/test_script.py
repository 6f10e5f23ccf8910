"""One definition of CJK text: every stage reads the same characters as Chinese."""

from __future__ import annotations

import pytest

from longdoc.memory import lexical
from longdoc.tasks.ask import excerpt
from longdoc.tasks.glossary import clean_term
from longdoc.tasks.language import count_words, detect_language

# 刘䶮 (U+4DAE, Extension A) founded Southern Han; 豈 (U+F900) is a compatibility ideograph. Both
# lie outside U+4E00-U+9FFF, the only range translate.py and ask.py used to know.
EXTENSION_A, COMPATIBILITY = "䶮", "豈"


@pytest.mark.parametrize("rare", [EXTENSION_A, COMPATIBILITY])
def test_a_translation_still_in_chinese_characters_is_rejected(rare: str) -> None:
    assert clean_term(f'"{rare}"', "刘" + rare, "English") is None
    assert clean_term(f'"{rare}王"', "刘" + rare, "Simplified Chinese") == rare + "王"


def test_the_citation_excerpt_finds_a_name_written_in_extension_a() -> None:
    passage = "雨下了一整天。" * 20 + "刘䶮在广州称帝。" + "雨下了一整天。" * 20
    assert "刘䶮" in excerpt(passage, "刘䶮是谁？", width=20)  # its only shared pair: 刘䶮


def test_language_and_word_counts_read_rare_ideographs_as_chinese() -> None:
    text = (EXTENSION_A + COMPATIBILITY) * 30
    assert detect_language(text) == "zh"
    assert count_words(text) == 40  # 60 characters, 1.5 a word


def test_saved_postings_are_not_reused_when_the_cjk_ranges_change(monkeypatch: pytest.MonkeyPatch) -> None:
    uncached = lexical.tokenizer_id.__wrapped__  # the id is computed once a process; ask afresh
    before = uncached()
    monkeypatch.setattr(lexical, "CJK", lexical.CJK + "\u3100-\u312f")  # bopomofo added
    assert uncached() != before
