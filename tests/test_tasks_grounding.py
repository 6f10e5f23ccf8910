"""The faithfulness check: which numbers and names of a generated text its source does not hold."""

from __future__ import annotations

import pytest

from longdoc.tasks.grounding import SourceFacts, drop_unsupported, figures, names, unsupported

SOURCE = (
    "Revenue rose to $48,213,000 in 2025, and three new plants opened. The plant in Tulsa employs 1,140 people. "
    "Net debt fell 12.5 percent. Chair Delphine Arkwright signed the report on 26 February 2026."
)


@pytest.mark.parametrize(
    "text",
    [
        "Revenue was 48.2 million in 2025.",  # rounded at the precision written
        "The Tulsa plant employs 1140 people.",  # thousands separators do not matter
        "3 plants opened.",  # the source spells the number out
        "Net debt fell 12.5%.",
        "Delphine Arkwright signed it on 26 February 2026.",
        "The report, signed by the chair of the board, shows growth.",
    ],
)
def test_what_the_source_says_is_supported(text: str) -> None:
    assert unsupported(text, SourceFacts(SOURCE)) == []


@pytest.mark.parametrize(
    "text, missing",
    [
        ("Revenue was 52 million in 2025.", ["52 million"]),
        ("The plant in Tulsa employs 1,400 people.", ["1,400"]),  # a plain integer must match exactly
        ("The plant is run by Acme Holdings in Tulsa.", ["Acme", "Holdings"]),
        ("Profit reached 7 percent under Chair Arkwright.", ["7"]),
    ],
)
def test_invented_figures_and_names_are_found(text: str, missing: list[str]) -> None:
    assert unsupported(text, SourceFacts(SOURCE)) == missing


def test_scale_words_in_either_language_compare_by_value() -> None:
    chinese = SourceFacts("公司全年营收4.8亿元，员工1,140名。")
    assert unsupported("Revenue was 480 million yuan, with 1,140 staff.", chinese) == []
    assert unsupported("Revenue was 4.8 billion yuan.", chinese) == ["4.8 billion"]
    assert [f.value for f in figures("营收4.8亿元，增长12%")] == [480_000_000.0, 12.0]


def test_latin_names_are_checked_unless_the_source_is_chinese_and_the_text_is_not() -> None:
    chinese = SourceFacts("雾溪镇的茶叶经鹰嘴垭运出山。")
    assert unsupported("Tea from Wuxi Town crossed Eagle-Beak Pass.", chinese) == []  # pinyin, translations
    assert unsupported("雾溪镇与IBM签约。", chinese) == ["IBM"]  # a Latin name copied into Chinese text


def test_names_skip_the_first_word_of_each_sentence_and_list_item() -> None:
    assert names("The board met. Tomas Brennick retires.\n- Members voted for Ines Varga.") == ["Brennick", "Ines", "Varga"]


def test_drop_unsupported_removes_only_the_sentences_with_inventions() -> None:
    text, dropped = drop_unsupported("Revenue was 48.2 million. Profit was 9 million. Tulsa grew.", SourceFacts(SOURCE))
    assert text == "Revenue was 48.2 million. Tulsa grew."
    assert [(d.sentence, d.unsupported) for d in dropped] == [("Profit was 9 million.", ["9 million"])]


def test_chinese_company_and_place_names_must_be_in_the_source() -> None:
    source = SourceFacts("曜华物流股份有限公司就供货合同提起的诉讼已经和解。公司与泓川零售连锁有限公司签订了合同。兰皋市仓库投入使用。")
    assert unsupported("华华物流股份有限公司支付了和解金。", source) == ["华华物流股份有限公司"]  # one character changed
    assert unsupported("集团同泓川零售连锁有限公司签约，兰皋市仓库启用。", source) == []  # a joining character is no part of a name


def test_a_sentence_left_untranslated_is_dropped_from_a_summary_in_another_language() -> None:
    source = SourceFacts("兰皋市仓库投入使用后，订单准时交付率提高到82.9%。")
    text, dropped = drop_unsupported("The warehouse opened. The兰皋市仓库 raised on-time delivery to 82.9%.", source, keep_chinese=False)
    assert text == "The warehouse opened." and dropped[0].unsupported == ["兰皋市仓库"]
