"""Translation with a fake model: paragraph alignment, context, glossary, streaming, resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import last_turn

from longdoc.document import Document, Page
from longdoc.tasks.results import ResultCache
from longdoc.tasks.translate import TranslateOptions, missing_numbers, resolve_languages, translate

NOTES = "雾溪镇在青岚山南麓。\n\n镇上有一条茶路，马帮走了三百年。\n\n1898年，吴三娘开了歇马店。\n"


def _text_block(prompt: str) -> str:
    """The paragraph a translate prompt asks for: its last user turn."""
    return last_turn(prompt)


def _tagging_reply(prompt: str) -> str:
    """'EN(<the text>)'."""
    return f"EN({_text_block(prompt)})"


def _document(text: str) -> Document:
    return Document(source="notes.txt", pages=(Page(1, text),))


def test_paragraphs_map_one_to_one_with_their_separators(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=800, reply=_tagging_reply)
    out = list(translate(_document(NOTES), model, ResultCache(tmp_path)))
    assert [p.text for p in out] == ["EN(雾溪镇在青岚山南麓。)", "EN(镇上有一条茶路，马帮走了三百年。)", "EN(1898年，吴三娘开了歇马店。)"]
    assert "".join(p.text + p.separator for p in out).count("\n\n") == 2


def _first_attempts(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Prompts of first attempts: the fake's 'EN(<Chinese>)' replies leak, so each is retried."""
    return [prompt for prompt in model.prompts if "leave nothing in" not in prompt]


def test_each_paragraph_sees_the_previous_one_and_its_translation(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=800, reply=_tagging_reply)
    list(translate(_document(NOTES), model, ResultCache(tmp_path)))
    second = _first_attempts(model)[1]
    assert "[user]\n雾溪镇在青岚山南麓。\n\n[assistant]\nEN(雾溪镇在青岚山南麓。)\n\n[user]\n镇上有一条茶路" in second
    assert "[assistant]" not in model.prompts[0]  # the first paragraph has no history


def _term_or_tag(prompt: str) -> str:
    """Term prompts get 'The translation is "Term-<term>".', paragraphs 'EN(<text>)'."""
    asked = re.search(r'How is "(.+?)" written', prompt)
    return f'The translation is "Term {len(asked.group(1))}".' if asked else f"EN({_text_block(prompt)})"


def test_recurring_names_are_translated_once_and_kept_in_the_glossary(fake_model, tmp_path: Path) -> None:
    text = "吴三娘开了歇马店。\n\n马帮到了歇马店，吴三娘出来迎接。\n\n歇马店的灯亮了，吴三娘睡了。\n"
    model = fake_model(context_window=800, reply=_term_or_tag)
    list(translate(_document(text), model, ResultCache(tmp_path), TranslateOptions(glossary={"歇马店": "Rest-Horse Inn"})))
    term_calls = [p for p in model.prompts if "How is" in p]
    assert [re.search(r'How is "(.+?)"', p).group(1) for p in term_calls] == ["吴三娘"]  # type: ignore[union-attr]
    paragraphs = [p for p in model.prompts if "How is" not in p]
    for prompt in paragraphs:
        glossary = prompt.split("[system]")[1].split("[user]")[0]
        assert "吴三娘 = Term 3" in glossary and "歇马店 = Rest-Horse Inn" in glossary  # learned and pinned


def test_a_long_paragraph_is_cut_at_sentences_and_joined(fake_model, tmp_path: Path) -> None:
    sentence = "The caravan crossed the river at dawn and rested at the inn. "
    model = fake_model(context_window=800, reply=lambda prompt: _text_block(prompt).upper())
    options = TranslateOptions(source="en", target="fr", piece_tokens=40)
    out = list(translate(_document(sentence * 10), model, ResultCache(tmp_path), options))
    assert len(out) == 1 and len(model.prompts) >= 3
    assert out[0].text == (sentence * 10).strip().upper()
    assert all(model.count_tokens(_text_block(p)) <= 40 for p in model.prompts)


def test_translation_streams_paragraph_by_paragraph(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=800, reply=_tagging_reply)
    stream = translate(_document(NOTES), model, ResultCache(tmp_path))
    first = next(stream)
    assert first.index == 0 and len(_first_attempts(model)) == 1  # the rest is not translated yet


def test_an_interrupted_translation_resumes(fake_model, tmp_path: Path) -> None:
    results = ResultCache(tmp_path)
    interrupted = fake_model(context_window=800, reply=_tagging_reply, fail_after=4)  # 2 paragraphs, each retried
    with pytest.raises(KeyboardInterrupt):
        list(translate(_document(NOTES), interrupted, results))
    resumed = fake_model(context_window=800, reply=_tagging_reply)
    out = list(translate(_document(NOTES), resumed, results))
    assert len(_first_attempts(resumed)) == 1 and len(out) == 3


@pytest.mark.parametrize(
    "text, options, languages",
    [
        (NOTES, TranslateOptions(), ("zh", "en")),
        ("The keeper lit the lamp.", TranslateOptions(), ("en", "zh")),
        ("The keeper lit the lamp.", TranslateOptions(target="French"), ("en", "French")),
        (NOTES, TranslateOptions(source="zh", target="ja"), ("zh", "ja")),
    ],
)
def test_languages_are_detected_or_taken_as_given(text: str, options: TranslateOptions, languages: tuple[str, str]) -> None:
    assert resolve_languages(text, options) == languages


def test_missing_numbers_are_reported() -> None:
    assert missing_numbers("1898年，花了1,200两银子，3月出发。", "In 1898 it cost 1200 taels; they left in March.") == ()
    assert missing_numbers("1898年开店。", "The inn opened.") == ("1898",)


def test_a_hard_wrapped_paragraph_is_rejoined_without_spaces_inside_chinese(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=800, reply=_tagging_reply)
    out, _ = translate(_document("雾溪镇在青岚山\n南麓，the keeper\nlit it。\n\n第二段。\n"), model, ResultCache(tmp_path))
    assert out.text == "EN(雾溪镇在青岚山南麓，the keeper lit it。)"


def test_a_translation_that_leaves_chinese_characters_is_tried_once_more(fake_model, tmp_path: Path) -> None:
    def reply(prompt: str) -> str:  # leaks a name unless told not to
        return "Zhou Zhong taught here." if "leave nothing in" in prompt else "周仲 taught here."

    model = fake_model(context_window=800, reply=reply)
    document = Document(source="zh.txt", pages=(Page(1, "周仲在这里教书。"),))
    (paragraph,) = translate(document, model, ResultCache(tmp_path), TranslateOptions(source="zh", target="en"))
    assert paragraph.text == "Zhou Zhong taught here."
    assert len(model.prompts) == 2


def test_a_retry_that_leaks_more_keeps_the_first_attempt(fake_model, tmp_path: Path) -> None:
    def reply(prompt: str) -> str:
        return "周仲在这里教书。" if "leave nothing in" in prompt else "周仲 taught here."

    model = fake_model(context_window=800, reply=reply)
    document = Document(source="zh.txt", pages=(Page(1, "周仲在这里教书。"),))
    (paragraph,) = translate(document, model, ResultCache(tmp_path), TranslateOptions(source="zh", target="en"))
    assert paragraph.text == "周仲 taught here."


def test_english_to_chinese_output_is_not_retried(fake_model, tmp_path: Path) -> None:
    model = fake_model(context_window=800, reply=lambda prompt: "他在这里教书。")
    document = Document(source="en.txt", pages=(Page(1, "He taught here."),))
    (paragraph,) = translate(document, model, ResultCache(tmp_path), TranslateOptions(source="en", target="zh"))
    assert paragraph.text == "他在这里教书。" and len(model.prompts) == 1
