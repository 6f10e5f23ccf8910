"""Which language a text is in, and the names prompts use for languages."""

from __future__ import annotations

import re

from longdoc.script import HAN, HAN_CHARACTER, HANGUL, KANA

_LETTER = re.compile(r"[^\W\d_]")

# Codes users type -> the name a prompt gives the model. Anything else is passed through as typed
# ("French", "Deutsch"), so every language the model knows works without a table entry.
_NAMES = {
    "en": "English",
    "zh": "Simplified Chinese",
    "zh-cn": "Simplified Chinese",
    "zh-hans": "Simplified Chinese",
    "zh-tw": "Traditional Chinese",
    "zh-hant": "Traditional Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ru": "Russian",
}


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up at least a fifth of the letters, else 'en'.

    A fifth rather than a half: Chinese technical text mixes in Latin words and numbers, while
    English text with a few Chinese names stays far below it.
    """
    sample = text[:20000]
    letters = len(_LETTER.findall(sample))
    return "zh" if letters and len(HAN_CHARACTER.findall(sample)) / letters >= 0.2 else "en"


_KANA = re.compile(f"[{KANA}]")
_HANGUL = re.compile(f"[{HANGUL}]")


def reply_language(question: str) -> str:
    """The language the answer prompts ask an answer in: named for a question in Chinese, Japanese
    or Korean, whose English instructions around it pull a small model into English (told "in the
    language of the question", qwen2.5-1.5b answered 3 of 30 CMRC questions in English)."""
    if _KANA.search(question):
        return "Japanese, the language of the question"
    if _HANGUL.search(question):
        return "Korean, the language of the question"
    if detect_language(question) == "zh":
        return "Chinese, the language of the question"
    return "the language of the question"


def language_name(code: str) -> str:
    """The language's name for a prompt: 'zh' -> 'Simplified Chinese'; unknown values as given."""
    return _NAMES.get(code.strip().lower(), code.strip())


def is_chinese(code: str) -> bool:
    """Whether a language code or name means Chinese (which joins sentences without spaces)."""
    return code.strip().lower().startswith("zh") or "chinese" in code.lower()


_WORDLIKE = re.compile(rf"[{HAN}]|[^\W_{HAN}]+(?:['’.,-][^\W_{HAN}]+)*")


# Chinese is written without spaces; a word segmenter finds about one word per 1.5 characters,
# and a text carries about as much in 1.5 Chinese characters as in one English word.
CHARACTERS_PER_WORD = 1.5


def count_words(text: str) -> int:
    """Words as `--length` counts them: Latin words and numbers, and one per 1.5 Chinese characters."""
    found = _WORDLIKE.findall(text)
    han = sum(len(piece) == 1 and bool(HAN_CHARACTER.match(piece)) for piece in found)
    return round(len(found) - han + han / CHARACTERS_PER_WORD)
