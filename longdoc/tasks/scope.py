"""Whether a document mentions what a question asks about, checked before any model is asked.

A small model asked about something a document never names answers anyway: from what it knows, or
by copying a passage on another subject (qwen2.5-1.5b refused none of six Chinese questions about
things absent from a 50-article document; bench/answers.py, task unanswerable). The question's own
terms settle it without a model: when fewer than `min_share` of them occur anywhere in the
document, in any form, the answer is "not in the document". Every answerable development question
(Natural Questions, CMRC 2018) had at least 57% of its terms in its document; 17 of the 30
questions asked of the wrong document had under 40%.
"""

from __future__ import annotations

import re

from longdoc.memory.lexical import Vocabulary, tokenize
from longdoc.script import CJK

# Words that ask rather than name ("how many", "what is it called"), and words about the document
# itself ("what does the author conclude"), which a document need not contain to answer.
_ASKING = frozenset(
    """many much name named called mean means meaning kind sort type document text author passage
    article book report chapter page section story novel essay piece paper character narrator
    writer reader mention mentioned say says said according tell explain describe describes summary
    summarize summarise main point idea please""".split()
)
# Chinese question words and particles, and the commonest function characters: a character pair
# holding one of them ("是什", "的职") crosses a word boundary and names nothing.
_ASKING_CHARACTERS = frozenset("什么哪谁几多少吗呢嘛呀吧的是了在有和与")
# A question that lists options: "(A) ..." / "B) ..." / "（C）..." on their own lines, at least two of them.
MULTIPLE_CHOICE = re.compile(r"(?m)^\s*[(（]?[A-Da-d][).）．、].+\n\s*[(（]?[A-Da-d][).）．、]")
_CJK_RUN = re.compile(f"[{CJK}]+")
_CJK_CHARACTER = re.compile(f"[{CJK}]")
_LETTER = re.compile(rf"[^\W\d_{CJK}]")
_WORD = re.compile(rf"[^\W_{CJK}]+")


def question_terms(question: str) -> list[str]:
    """The search terms of `question` that name something, in order, without repeats."""
    terms = [t for t in tokenize(question) if t not in _ASKING and not _ASKING_CHARACTERS.intersection(t)]
    return list(dict.fromkeys(terms))


def unmentioned(question: str, document_text: str, vocabulary: Vocabulary, min_share: float = 0.4) -> list[str]:
    """What the question names that the document never does, when that is most of it; else [].

    Only terms in a script the document is written in count: an English question about a Chinese
    text is left to retrieval by meaning, its words could not be in it. A multiple-choice question
    is always put to the model: it asks for a pick, and may name a kind of thing ("the most powerful
    weapon") that a story only shows (QuALITY: a question no word of which the story has).
    """
    if MULTIPLE_CHOICE.search(question):
        return []
    written = _scripts(document_text[:20_000])
    terms = [t for t in question_terms(question) if _script(t) in written]
    if not terms:
        return []
    absent = [t for t in terms if not vocabulary.mentions(t)]
    if len(terms) - len(absent) >= min_share * len(terms):
        return []
    return _as_written(question, absent)


def _script(term: str) -> str:
    return "cjk" if _CJK_RUN.fullmatch(term) else "alphabetic"


def _scripts(text: str, min_share: float = 0.1) -> set[str]:
    """The scripts that make up at least `min_share` of a text's letters."""
    cjk = len(_CJK_CHARACTER.findall(text))
    letters = len(_LETTER.findall(text))
    total = max(cjk + letters, 1)
    return {name for name, count in (("cjk", cjk), ("alphabetic", letters)) if count / total >= min_share}


def _as_written(question: str, absent: list[str]) -> list[str]:
    """The absent terms as the question writes them: Chinese character pairs joined back into runs."""
    missing = set(absent)
    words = list(dict.fromkeys(w for w in _WORD.findall(question) if (term := tokenize(w)) and term[0] in missing))
    for run in _CJK_RUN.findall(question.lower()):
        flags = [run[i : i + 2] in missing for i in range(len(run) - 1)]
        start = None
        for i, flag in enumerate([*flags, False]):
            if flag and start is None:
                start = i
            elif not flag and start is not None:
                words.append(run[start : i + 1])
                start = None
    return words
