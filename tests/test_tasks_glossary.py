"""The glossary's terms: recurring names found in a document, term translations read from replies, pinned CSV terms."""

from __future__ import annotations

from longdoc.tasks.glossary import clean_term, load_glossary_csv, recurring_terms


def test_recurring_terms_are_names_not_phrases() -> None:
    text = "雾溪镇的茶叶很好。" * 3 + "陈守义说了二十年。" * 3
    terms = recurring_terms(text, chinese=True)
    assert "雾溪镇" in terms and "陈守义" in terms
    assert not any("的" in t or t.endswith("十") for t in terms)
    assert recurring_terms("Then Tobias Quill came. " * 3 + "The lamp was lit.", chinese=False) == ["Tobias Quill"]


def test_a_term_translation_that_does_not_look_like_one_is_ignored() -> None:
    assert clean_term('The English translation of "雾溪镇" is "Misty Creek Town".', "雾溪镇", "en") == "Misty Creek Town"
    assert clean_term('The translation is "Mud溪 Village".', "雾溪镇", "en") is None
    assert clean_term("雾溪镇", "雾溪镇", "en") is None
    assert clean_term("I am not sure how to translate this name into English at all", "雾溪镇", "en") is None


def test_glossary_csv() -> None:
    assert load_glossary_csv("source,translation\n马帮,mule caravan\n\n# note\n歇马店, Rest-Horse Inn\n") == {
        "马帮": "mule caravan",
        "歇马店": "Rest-Horse Inn",
    }
