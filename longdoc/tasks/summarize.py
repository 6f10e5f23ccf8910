"""Summaries that keep every part of a document: key facts first, then a paragraph per part.

    chunks --every sentence a candidate, scored (code)--> facts --share out, pick (code)--> facts
           per part --write (model)--> opening + one paragraph per part --check (code)--> summary

Small models asked to compress a long text keep what they read last and what is routine, and
invent figures. So the model only writes, and code does the rest:

- facts (`facts.py`): every sentence of every chunk is a candidate, scored on what it says
  (figures and names few chunks share, phrasing the rest of the document does not repeat) and a
  little on being near the start;
- plan (`facts.py`): the document is cut into as many consecutive parts as the summary has
  paragraphs, each part is given its share of the length, and its best facts are picked;
- write: one prompt per part turns its facts into a paragraph, and one writes the opening from the
  document's beginning and headings; all go in one batch (in another language, every chosen fact
  is translated in the same batch);
- check: sentences with a number or name that the document does not hold are removed, facts a
  paragraph left out or garbled are put back as the document states them (in the garbled
  sentence's place), the opening is kept to its share, and the length is brought within reach of
  `words`.

Nothing is dropped unseen: every chunk is read, and `Summary.facts` says which facts of which chunk
were chosen and which the summary states.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from longdoc.chunking import Chunk, ChunkConfig, chunk_document
from longdoc.document import Document, TextSpan
from longdoc.errors import ModelError
from longdoc.model.protocol import GenerationOptions, Model, Prompt
from longdoc.progress import OnProgress
from longdoc.tasks.cleanup import sentences, tidy
from longdoc.tasks.facts import Fact, Part, covers, plan_parts, score_facts, sentence_facts
from longdoc.tasks.grounding import Dropped, SourceFacts, drop_unsupported, western_amounts
from longdoc.tasks.language import count_words, detect_language, is_chinese, language_name
from longdoc.tasks.prompts import PromptTemplate, load_prompt, prompt_text
from longdoc.tasks.replan import replanning
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import Step, run_steps, tracked

Style = Literal["paragraph", "bullets"]

# The opening's share of the length, in words (a fifth of a short summary); the rest goes to the
# parts. It says what the document is and covers, which a reader needs before any detail.
_OPENING_WORDS = 40
# Tokens a model writes per word, with room to finish the sentence: ~1.3 for English, ~1.5 per
# `count_words` word of Chinese for Qwen's tokenizer.
_TOKENS_PER_WORD = 1.6
# Words per paragraph: each part of the document becomes one paragraph of about this length.
_PARAGRAPH_WORDS = 90
# A paragraph written from facts comes out about this much shorter than the facts it states, so
# each part is given that much more material than its share of words.
_WRITTEN_SHARE = 0.8
# The beginning of the document shown to the opening-sentence step (title, date, author).
_OPENING_TOKENS = 300
_MAX_HEADINGS = 30
# A writing prompt's own words and chat template, beside the material it is given (measured: 85-113
# cl100k tokens), for cutting the material to a window a server turned out to have.
_TEMPLATE_TOKENS = 160
# A summary longer than the asked length by this factor is trimmed, shorter is topped up (with the
# best facts left, which in a document with little to say are routine ones: only just enough).
_TOO_LONG, _TOO_SHORT = 1.15, 0.8


@dataclass(frozen=True)
class SummaryOptions:
    """What summary to write and how to batch the work."""

    words: int = 250  # target length (Chinese: one word per 1.5 characters, see count_words)
    style: Style = "paragraph"
    language: str = "auto"  # output language; auto = the document's own
    # The unit of coverage and of the scores' statistics: a fact's figures and words count as
    # rare when few chunks hold them. Measured on bench/summary_facts.py (bench/README.md).
    chunk_tokens: int = 400
    batch_size: int = 8  # writing prompts the local engine decodes together (a server: its concurrency)

    def __post_init__(self) -> None:
        assert self.words >= 10, "words must be >= 10"
        assert self.chunk_tokens >= 16, "chunk_tokens must be >= 16"
        assert self.style in ("paragraph", "bullets"), f"unknown style {self.style!r}"


@dataclass
class SummaryNode(TextSpan):
    """A node of the summary tree: a chunk and its chosen facts (level 0), a part's paragraph (level 1)."""

    id: str  # "0.3" = level 0, position 3
    level: int
    text: str
    start: int  # character span of the document it covers, end exclusive
    end: int
    page_start: int
    page_end: int
    line_start: int
    line_end: int
    children: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """The summary, the tree below it and what the checks found."""

    text: str
    language: str
    model: str
    levels: list[list[SummaryNode]]  # levels[0] = chunks, levels[1] = the parts' paragraphs
    chunks: int
    facts: list[Fact] = field(default_factory=list)  # every candidate sentence, with its fate
    dropped: list[Dropped] = field(default_factory=list)  # sentences removed as unsupported
    restored: int = 0  # facts a paragraph left out, put back as written
    generated: int = 0  # steps the model computed in this run
    cached: int = 0  # steps found finished by an earlier run
    seconds: float = 0.0


def summarize(
    document: Document,
    model: Model,
    results: ResultCache,
    options: SummaryOptions = SummaryOptions(),
    on_progress: OnProgress | None = None,
) -> Summary:
    """Summarize `document` through `model`, reusing any steps `results` already holds."""
    started = time.perf_counter()
    own_language = language_name(detect_language(document.text))
    language = own_language if options.language == "auto" else language_name(options.language)
    chunks = chunk_document(document, ChunkConfig(size=options.chunk_tokens, overlap=0))
    if not chunks:
        raise ModelError(f"{document.source} has no text to summarize")
    facts = sentence_facts([(chunk.index, chunk.text) for chunk in chunks])
    score_facts(facts, [chunk.text for chunk in chunks])
    plan = plan_parts(facts, [chunk.tokens for chunk in chunks], _fact_words(options), _paragraphs(options, len(chunks)))
    source = SourceFacts(document.text)
    run = _Run(model, results, options, language, on_progress)
    translate_from = None if own_language == language else own_language
    # A server that refuses a prompt as too long has taught the model a smaller window: write again within it.
    opening, drafts = replanning(model, lambda window: run.write(document, plan, translate_from, window))
    if translate_from:
        _keep_faithful_translations(facts, source)
    checked = _check(opening, drafts, plan, facts, source, options, language)
    levels = [_chunk_nodes(chunks, facts), _part_nodes(chunks, plan, checked.paragraphs)]
    summary = Summary(checked.text, language, model.name, levels, len(chunks), facts, checked.dropped, checked.restored,
                      run.generated, run.cached)
    summary.seconds = time.perf_counter() - started
    return summary


def _keep_faithful_translations(facts: Sequence[Fact], source: SourceFacts) -> None:
    """A fact in another language than the document's stands in the summary only as a translation,
    and only as far as that translation invents no figure or name."""
    for fact in facts:
        fact.rendered = drop_unsupported(fact.rendered or "", source)[0]


def _paragraphs(options: SummaryOptions, chunks: int) -> int:
    wanted = 1 if options.style == "bullets" else round(options.words / _PARAGRAPH_WORDS)
    return max(1, min(wanted, chunks))


def _fact_words(options: SummaryOptions) -> int:
    """Words of facts to choose: the length less the opening, more where a writer condenses them."""
    words = max(10, options.words - _opening_words(options))
    return round(words / _WRITTEN_SHARE) if options.style == "paragraph" else words


def _opening_words(options: SummaryOptions) -> int:
    return max(10, min(_OPENING_WORDS, options.words // 5))


class _Run:
    """The writing steps of one summarization: prompts, cache keys and progress."""

    def __init__(
        self, model: Model, results: ResultCache, options: SummaryOptions, language: str, on_progress: OnProgress | None
    ) -> None:
        self.model, self.results, self.options, self.language = model, results, options, language
        self.on_progress = on_progress
        self.part_prompt = load_prompt("summarize_part")
        self.opening_prompt = load_prompt("summarize_overview")
        self.translate_prompt = load_prompt("translate_segment")
        self.generated = self.cached = 0

    def write(
        self, document: Document, plan: Sequence[Part], translate_from: str | None, window: int | None = None
    ) -> tuple[str, list[str]]:
        """The opening and one paragraph per part that has facts, in one batch. Bullets need no
        paragraphs: the facts are the bullets. In another language than the document's, every
        chosen fact is also translated (in the same batch), as bullets or to restore what a
        paragraph leaves out; amounts reach the model in Western notation ("480 million", not "4.8亿").
        `window`, once a server has refused a prompt as too long, is the tokens a prompt may take:
        the beginning, the headings and each part's facts are cut to fit it (the check puts facts
        left out back, as the document states them)."""
        shown = western_amounts if translate_from and not is_chinese(self.language) else (lambda text: text)
        words = _opening_words(self.options)
        room = _room(window, int(words * _TOKENS_PER_WORD) + 24)
        beginning = _beginning(document.text, self.model, _OPENING_TOKENS if room is None else min(_OPENING_TOKENS, room // 2))
        topic_lines = [f"- {heading}" for heading in headings(document.text)[:_MAX_HEADINGS]]
        topics = "\n".join(_leading(topic_lines, self.model, None if room is None else room // 2))
        rendered = self.opening_prompt.render(text=shown(beginning), topics=topics, language=self.language, words=words)
        steps, caps = [self._step(self.opening_prompt, rendered, beginning + topics, words)], [int(words * _TOKENS_PER_WORD) + 24]
        written = [part for part in plan if part.facts] if self.options.style == "paragraph" else []
        for part in written:
            words = round(part.words * _WRITTEN_SHARE)
            room = _room(window, int(words * _TOKENS_PER_WORD) + 40)
            facts = "\n".join(_leading([f"- {shown(fact.text)}" for fact in part.facts], self.model, room))
            rendered = self.part_prompt.render(facts=facts, language=self.language, words=words)
            caps.append(int(words * _TOKENS_PER_WORD) + 40)
            steps.append(self._step(self.part_prompt, rendered, facts, words))
        chosen = [fact for part in plan for fact in part.facts] if translate_from else []
        for fact in chosen:
            rendered = self.translate_prompt.render(source_language=translate_from, target_language=self.language,
                                                    glossary="(none)", reminder="", text=shown(fact.text))
            caps.append(int(fact.words * 2 * _TOKENS_PER_WORD) + 24)
            steps.append(self._step(self.translate_prompt, rendered, fact.text, 0))
        replies = iter(self._run("writing", steps, caps))
        opening = next(replies)
        drafts = [next(replies) if part in written else "" for part in plan]
        for fact in chosen:
            fact.rendered = next(replies)
        return opening, drafts

    def _step(self, prompt: PromptTemplate, rendered: Prompt, text: str, words: int) -> Step:
        key = result_key("summarize", self.model.name, prompt.sha256, self.language, words, text)
        return Step(key=key, prompt=rendered)

    def _run(self, phase: str, steps: list[Step], caps: list[int]) -> list[str]:
        """Every step's reply, tidied; one batch shares the largest cap, each reply is judged by its own."""
        pending = [step for step in steps if self.results.get(step.key) is None]
        cached = len(steps) - len(pending)
        reading = sum(self.model.count_tokens(prompt_text(step.prompt)) for step in pending) if self.on_progress else 0
        options = GenerationOptions(max_new_tokens=max(caps), batch_size=self.options.batch_size)
        options, on_done = tracked(phase, len(steps), sum(caps), options, self.on_progress, reading)
        outputs = run_steps(self.model, self.results, steps, options, on_done)
        self.cached += cached
        self.generated += len(steps) - cached
        return [tidy(text, truncated=self.model.count_tokens(text) >= cap - 2) for cap, text in zip(caps, outputs)]


# A heading line: Markdown hashes, then a section number ("3.", "2.1", "第二章"), then the title.
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+)?(?:\d+(?:\.\d+)*[.)]?\s+|第[一二三四五六七八九十百\d]+[章节部分]\s*)?(\S.{0,80}?)\s*$")


def headings(text: str) -> list[str]:
    """Lines that look like headings: Markdown '#' lines, or short lines standing alone between
    blank lines without sentence-ending punctuation. They tell the opening step what the parts are."""
    lines = text.splitlines()
    found = []
    for n, line in enumerate(lines):
        alone = (n == 0 or not lines[n - 1].strip()) and (n + 1 >= len(lines) or not lines[n + 1].strip())
        markdown = line.lstrip().startswith("#")
        short = 0 < count_words(line) <= 10 and not line.rstrip().endswith((".", "。", "!", "?", ":", "：", ",", "，"))
        match = _HEADING.match(line)
        if match and (markdown or (alone and short)):
            found.append(match.group(1).strip("#* "))
    return list(dict.fromkeys(heading for heading in found if heading))


def _room(window: int | None, answer_tokens: int) -> int | None:
    """Tokens of material a writing prompt may hold within `window` beside its template and its
    answer; None (any) when no window binds."""
    return None if window is None else max(16, window - _TEMPLATE_TOKENS - answer_tokens)


def _leading(lines: list[str], model: Model, tokens: int | None) -> list[str]:
    """The first of `lines` that fit in `tokens` together (at least one; all when `tokens` is None)."""
    if tokens is None:
        return lines
    kept, used = [], 0
    for line in lines:
        used += model.count_tokens(line) + 1
        if kept and used > tokens:
            break
        kept.append(line)
    return kept


def _beginning(text: str, model: Model, tokens: int = _OPENING_TOKENS) -> str:
    """The document's first sentences, up to about `tokens` tokens."""
    kept, used = [], 0
    for sentence in sentences(text.strip()):
        used += model.count_tokens(sentence)
        if kept and used > tokens:
            break
        kept.append(sentence)
    return "".join(kept).strip()


@dataclass
class _Checked:
    """The summary's text after the checks, its paragraphs, and what the checks changed."""

    text: str
    paragraphs: list[str]
    dropped: list[Dropped]
    restored: int


def _check(opening: str, drafts: Sequence[str], plan: Sequence[Part], facts: Sequence[Fact], source: SourceFacts,
           options: SummaryOptions, language: str) -> _Checked:
    """The checked summary: unsupported sentences out, left-out facts back in, length in range."""
    joiner = "" if is_chinese(language) else " "
    opening, dropped = drop_unsupported(opening, source, keep_chinese=is_chinese(language))
    opening = _first_sentences(opening, _opening_words(options) * _TOO_LONG)
    paragraphs, restored = [], 0
    for index, part in enumerate(plan):
        text = ""
        if options.style == "paragraph" and index < len(drafts):
            text, removed = drop_unsupported(drafts[index], source, keep_chinese=is_chinese(language))
            dropped += removed
        missing = [fact for fact in part.facts if not _states(text, fact)]
        if len(missing) * 2 > len(part.facts):
            text, missing = "", list(part.facts)  # a draft that lost most facts: the facts, in order
        restored += len(missing) if options.style == "paragraph" else 0
        text, missing = _replace_garbled(text, missing, part.facts)
        paragraphs.append(_with_facts(text, missing, joiner, options.style))
    paragraphs = _fit_length(paragraphs, plan, facts, opening, options, joiner)
    # The opening and a paragraph, or two paragraphs, may state the same sentence.
    text = tidy(_assemble(opening, paragraphs, options.style, joiner))
    index, terms = SourceFacts(text), _terms(text)
    for fact in facts:
        fact.in_summary = covers(index, terms, fact)
    return _Checked(text, paragraphs, dropped, restored)


def _first_sentences(text: str, words: float) -> str:
    """`text` cut after the last whole sentence within `words` (the first sentence at least): an
    opening that lists every heading would crowd out the facts."""
    kept: list[str] = []
    for sentence in sentences(text):
        if kept and count_words("".join(kept) + sentence) > words:
            break
        kept.append(sentence)
    return "".join(kept).strip()


# A draft sentence sharing this share of a left-out fact's terms is taken for a garbled telling
# of it ("The Rock and the Engineer was built on the skerry" for "The Board decided to build a
# lighthouse on the skerry"), and the fact replaces it rather than following it as a near-repeat.
_GARBLED_OVERLAP = 0.5


def _replace_garbled(text: str, missing: Sequence[Fact], facts: Sequence[Fact]) -> tuple[str, list[Fact]]:
    """The draft with each left-out fact put in place of the sentence that garbles it, if one does
    (and states no other fact); the facts that still need adding after it."""
    if not text or not missing:
        return text, list(missing)
    pieces = sentences(text)  # each with the space before it, so "".join gives the text back
    still: list[Fact] = []
    for fact in missing:
        wanted = _terms(fact.text)
        best, overlap = None, _GARBLED_OVERLAP
        for n, piece in enumerate(pieces):
            shared = len(wanted & _terms(piece)) / max(len(wanted), 1)
            if shared >= overlap and not any(other is not fact and _states(piece, other) for other in facts):
                best, overlap = n, shared
        if best is None or not fact.shown:
            still.append(fact)
        else:
            space = pieces[best][: len(pieces[best]) - len(pieces[best].lstrip())]
            pieces[best] = space + _sentence(fact.shown)
    return "".join(pieces).strip(), still


def _terms(text: str) -> frozenset[str]:
    from longdoc.memory.lexical import tokenize

    return frozenset(tokenize(text))


def _states(text: str, fact: Fact) -> bool:
    return bool(text) and covers(SourceFacts(text), _terms(text), fact)


def _with_facts(text: str, facts: Sequence[Fact], joiner: str, style: Style) -> str:
    """A paragraph with `facts` added after it as written (bullets: one line each)."""
    if style == "bullets":
        return "\n".join(line for line in [text, *(f"- {fact.shown}" for fact in facts if fact.shown)] if line)
    return joiner.join(piece for piece in [text, *(_sentence(fact.shown) for fact in facts if fact.shown)] if piece)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".!?。！？" else text + ("。" if count_words(text) > len(text.split()) * 2 else ".")


def _fit_length(paragraphs: list[str], plan: Sequence[Part], facts: Sequence[Fact], opening: str,
                options: SummaryOptions, joiner: str) -> list[str]:
    """Top a short summary up with the best facts not yet used; trim a long one from its weakest facts."""
    words = lambda: count_words(opening) + sum(count_words(p) for p in paragraphs)  # noqa: E731
    if words() < options.words * _TOO_SHORT:
        spare = sorted((fact for fact in facts if not fact.selected), key=lambda fact: -fact.score)
        for fact in spare:
            if words() >= options.words * _TOO_SHORT:
                break
            part = next((n for n, p in enumerate(plan) if fact.chunk in p.chunks), None)
            if part is None or any(_states(p, fact) for p in paragraphs):
                continue
            fact.selected = True
            plan[part].facts.append(fact)
            paragraphs[part] = _with_facts(paragraphs[part], [fact], joiner, options.style)
    while words() > options.words * _TOO_LONG:
        trimmed = _drop_weakest(paragraphs, plan, options.style)
        if trimmed is None:
            break
        paragraphs = trimmed
    return paragraphs


def _drop_weakest(paragraphs: list[str], plan: Sequence[Part], style: Style) -> list[str] | None:
    """The paragraphs less the one sentence (or bullet) that states the least important facts."""
    best: tuple[float, int, int] | None = None
    for n, (paragraph, part) in enumerate(zip(paragraphs, plan)):
        pieces = _pieces(paragraph, style)
        if len(pieces) < 2:
            continue
        for i, piece in enumerate(pieces):
            value = max((fact.score for fact in part.facts if _states(piece, fact)), default=0.0)
            if best is None or value < best[0]:
                best = (value, n, i)
    if best is None:
        return None
    _, n, i = best
    pieces = _pieces(paragraphs[n], style)
    del pieces[i]
    return [*paragraphs[:n], ("\n" if style == "bullets" else "").join(pieces).strip(), *paragraphs[n + 1:]]


def _pieces(paragraph: str, style: Style) -> list[str]:
    return paragraph.splitlines() if style == "bullets" else [s for s in sentences(paragraph) if s.strip()]


def _assemble(opening: str, paragraphs: Sequence[str], style: Style, joiner: str) -> str:
    if style == "bullets":
        lines = ([f"- {opening}"] if opening else []) + [line for p in paragraphs for line in p.splitlines() if line.strip()]
        return "\n".join(lines)
    body = [p for p in paragraphs if p]
    if opening and body:
        body[0] = joiner.join((opening, body[0]))
    elif opening:
        body = [opening]
    return "\n\n".join(body)


def _chunk_nodes(chunks: Sequence[Chunk], facts: Sequence[Fact]) -> list[SummaryNode]:
    """Level 0: every chunk, its text standing for the facts chosen from it."""
    return [
        SummaryNode(f"0.{c.index}", 0, " ".join(f.text for f in facts if f.chunk == c.index and f.selected),
                    c.start, c.end, c.page_start, c.page_end, c.line_start, c.line_end)
        for c in chunks
    ]


def _part_nodes(chunks: Sequence[Chunk], plan: Sequence[Part], paragraphs: Sequence[str]) -> list[SummaryNode]:
    nodes = []
    for n, (part, paragraph) in enumerate(zip(plan, paragraphs)):
        first, last = chunks[part.chunks[0]], chunks[part.chunks[-1]]
        nodes.append(SummaryNode(f"1.{n}", 1, paragraph, first.start, last.end, first.page_start, last.page_end,
                                 first.line_start, last.line_end, [f"0.{i}" for i in part.chunks]))
    return nodes
