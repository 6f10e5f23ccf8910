"""Answers quoted from one passage at a time, each quote then checked against its sentence.

Each retrieved passage is put to the model alone, with the question, and the model copies the
words that answer it or says NONE. A quote counts only where its own passage holds its words.
A small model quotes a date or a name from nearly every passage, whether it is about the question
or not (NQ dev, "when did season 2 start": eight passages, eight dates, most from a reference
list), so each quote is then shown to it with the one sentence it came from and the question, and
it says whether that sentence gives this answer; the best-ranked confirmed quote is the answer.
Shown the candidate sentences side by side and asked to pick one, the 1.5B picked by shared words
("Season 2, Episode 12" for "how many episodes in season two"): 0 of the first 4 NQ questions,
where checking each alone got 2. Given eight whole passages at once, it answers from the wrong one
or mixes them; given one passage, then one sentence, it reads little at a time, and a copied
answer can be checked against its passage in code, which an answer in its own words cannot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from longdoc.model.protocol import GenerationOptions, Model, Prompt
from longdoc.progress import OnProgress
from longdoc.script import CJK, HAN
from longdoc.tasks.cleanup import sentences
from longdoc.tasks.prompts import load_prompt, prompt_text
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.scope import MULTIPLE_CHOICE
from longdoc.tasks.steps import Step, run_steps, tracked

NONE_MARKER = "NONE"
# What a model puts around a quote: "Answer:", quotation marks, a citation, a final full stop.
_LABEL = re.compile(r"^\s*(?:answer|quote|the answer is)\s*[:：]\s*", re.I)
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;，]\s*\d+)*\]")
_QUOTES = "\"'“”‘’「」『』`"
_CJK_CHARACTER = re.compile(f"[{CJK}]")
# A question answered yes or no: "Is ...", "Did ...", "...吗？", "是否", "是不是", "有没有".
_YES_NO = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|shall|may|must)\b(?!.*\bor\b)"
    r"|[吗嘛][?？]?$|是否|是不是|有没有|能不能|会不会",
    re.I | re.S,
)
_CHECK_TOKENS = 3  # "yes" or "no"
# A quote must be a quote: at most this share of its terms may be missing from its passage (an
# inflection, a word the model added to join the words up).
_MAX_UNHELD = 0.2


@dataclass(frozen=True)
class Quote:
    """A reply that its passage holds: the words, and the number of the passage."""

    text: str
    source: int
    sentence: str = ""  # the passage's sentence that holds it: what the check shows

    @property
    def terms(self) -> frozenset[str]:
        return frozenset(evidence(self.text))


@dataclass(frozen=True)
class Quoted:
    """What quoting found: the chosen answer and the passages that agree on it, or nothing."""

    text: str  # "" when no passage answered
    sources: tuple[int, ...]  # the passages whose quotes agree with it, best-ranked first
    replies: tuple[tuple[int, str, bool], ...]  # (passage, reply, whether it counted), in rank order
    unheld: str = ""  # the first reply whose passage does not hold it (set aside)


def quotable(question: str, document_text: str) -> bool:
    """Whether the answer to `question` is words the document has: not a yes or no nor a pick
    among options, and question and document both in Chinese, or neither (an English question
    about a Chinese text wants an answer in English, not a copied phrase)."""
    if _YES_NO.search(question.strip()) or MULTIPLE_CHOICE.search(question):
        return False
    asks_cjk = bool(_CJK_CHARACTER.search(question))
    sample = document_text[:20_000]
    written_cjk = len(_CJK_CHARACTER.findall(sample)) >= 0.1 * max(len(sample.split()), 1)
    return asks_cjk == written_cjk


def quote(
    question: str, passages: Sequence[tuple[int, str]], model: Model, results: ResultCache, max_tokens: int,
    on_progress: OnProgress | None = None,
) -> Quoted:
    """Ask the model for the words of each (number, text) passage, in rank order, that answer
    `question`; then, of the sentence each held quote came from, whether it says so."""
    prompt = load_prompt("ask_quote")
    rendered = [prompt.render(source=text, question=question) for _, text in passages]
    replies = [clean(r) for r in _generate("ask-quote", prompt.sha256, rendered, max_tokens, "answering", model, results, on_progress)]
    quotes: list[Quote] = []
    unheld = ""
    for (number, text), reply in zip(passages, replies):
        if not reply or is_none(reply):
            continue
        if echoes(reply, question) or not held(reply, text):
            unheld = unheld or reply
            continue
        quotes.append(Quote(reply, number, holding_sentence(reply, text)))
    counted = tuple((n, r, any(q.source == n for q in quotes)) for (n, _), r in zip(passages, replies))
    if not quotes:
        return Quoted("", (), counted, unheld)
    distinct = list({q.terms: q for q in reversed(quotes)}.values())[::-1]  # the best-ranked of each
    picked = confirm(question, distinct, model, results, on_progress)
    if picked is None:  # no sentence says it: the best-ranked quote is set aside
        return Quoted("", (), counted, distinct[0].text)
    agreeing = tuple(q.source for q in quotes if q.terms == picked.terms)
    return Quoted(picked.text, agreeing, counted, unheld)


def confirm(
    question: str, candidates: list[Quote], model: Model, results: ResultCache, on_progress: OnProgress | None = None,
) -> Quote | None:
    """The best-ranked candidate whose sentence the model, asked of each alone, says answers `question`."""
    prompt = load_prompt("ask_check")
    rendered = [prompt.render(sentence=q.sentence, quote=q.text, question=question) for q in candidates]
    verdicts = _generate("ask-check", prompt.sha256, rendered, _CHECK_TOKENS, "checking", model, results, on_progress)
    return next((q for q, verdict in zip(candidates, verdicts) if re.match(r"\W*(yes|是)", verdict, re.I)), None)


def _generate(
    step: str, prompt_hash: str, rendered: list[Prompt], max_tokens: int, phase: str, model: Model, results: ResultCache,
    on_progress: OnProgress | None,
) -> list[str]:
    """The replies to `rendered` prompts, decoded side by side, cached under `step` and the prompt's hash."""
    steps = [Step(result_key(step, model.name, prompt_hash, max_tokens, r), r) for r in rendered]
    options = GenerationOptions(max_new_tokens=max_tokens, batch_size=len(steps))
    reading = sum(model.count_tokens(prompt_text(r)) for r in rendered) if on_progress is not None else 0
    options, on_done = tracked(phase, len(steps), max_tokens * len(steps), options, on_progress, reading)
    return run_steps(model, results, steps, options, on_done)


def holding_sentence(reply: str, passage: str, min_words: int = 8, max_chars: int = 400) -> str:
    """The sentence of `passage` that holds most of the reply's terms, with the one before it when
    it is short ("It premiered on April 25." says what "it" is only with its neighbour)."""
    pieces = [p for p in sentences(" ".join(passage.split())) if p.strip()] or [passage]
    terms = evidence(reply)
    best = max(range(len(pieces)), key=lambda i: len(terms & evidence(pieces[i])))
    text = pieces[best].strip()
    if best and len(text.split()) < min_words and not _CJK_CHARACTER.search(text):
        text = pieces[best - 1].strip() + " " + text
    return text[:max_chars]


def clean(reply: str) -> str:
    """A reply without labels, citations, quotation marks or a final full stop; its first line only."""
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    text = _CITATION.sub("", _LABEL.sub("", lines[0])).strip()
    while True:  # '"Musso".' and '「1997年」。' alike
        stripped = text.strip(_QUOTES).strip()
        if stripped.endswith((".", "。")) and not stripped.endswith(".."):
            stripped = stripped[:-1].rstrip()
        if stripped == text:
            return text
        text = stripped


def is_none(reply: str) -> bool:
    """Whether a reply says the passage does not answer."""
    return reply.upper().rstrip(".!").strip() in (NONE_MARKER, "NOT IN DOCUMENT", "N/A", "无")


def held(reply: str, passage: str) -> bool:
    """Whether `passage` holds the reply's terms (all but a fifth of them); a reply of no terms is not a quote."""
    terms = evidence(reply)
    if not terms:
        return False
    missing = terms - evidence(passage)
    return len(missing) <= _MAX_UNHELD * len(terms)


def echoes(reply: str, question: str) -> bool:
    """Whether a reply only repeats the question's own terms (says nothing the question did not)."""
    return evidence(reply) <= evidence(question)


# Words that occur in nearly every passage, so they show nothing about where a reply came from.
_COMMON = frozenset(
    "the and was were that this with from for are has have had its his her their they them which who whom "
    "what when where how not but into than then also been being would could should there these those "
    "according passage passages document text".split()
)


def evidence(text: str) -> set[str]:
    """A text's distinctive terms: words of 3+ letters, numbers (7-3-9-1 kept whole), Chinese character pairs."""
    lowered = text.lower()
    words = re.findall(r"[a-z0-9]+(?:[-./:][a-z0-9]+)*", lowered)
    kept = {w for w in words if (len(w) > 2 or any(ch.isdigit() for ch in w)) and w not in _COMMON}
    runs = re.findall(f"[{HAN}]+", lowered)
    return kept | {run[i : i + 2] for run in runs for i in range(len(run) - 1)}
