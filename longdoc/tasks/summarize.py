"""Hierarchical map-reduce summarization of documents of any length.

    chunks --map--> part summaries --reduce (groups under budget)--> ... --final--> summary

Every prompt fits the model's context window: chunks are cut to what a map prompt can hold, and
reduce groups are packed by token count. Part summaries are capped in tokens, so every group holds
at least two of them and each level is at most half as long as the one below: the tree always ends.
No input is dropped: every chunk is summarized, and every summary of a level goes into the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from longdoc.chunking import ChunkConfig, chunk_document, span_location
from longdoc.console import warn
from longdoc.document import Document
from longdoc.engine.model import GenerationOptions, Model, Prompt
from longdoc.errors import ModelError
from longdoc.tasks.cleanup import tidy
from longdoc.tasks.language import detect_language, language_name
from longdoc.tasks.prompts import PromptTemplate, load_prompt, prompt_text
from longdoc.tasks.results import ResultCache, result_key
from longdoc.tasks.steps import Step, run_steps

Style = Literal["paragraph", "bullets"]
# (done, total) steps of the current phase, and the phase's name ("map", "reduce 1", "final").
SummaryProgress = Callable[[str, int, int], None]

# Chat templates and the separators between parts add tokens the template text does not show.
_PROMPT_MARGIN = 48
_PART_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class SummaryOptions:
    """What summary to write and how to batch the work."""

    words: int = 250  # target length of the final summary
    style: Style = "paragraph"
    language: str = "auto"  # output language; auto = the document's own
    # Part summaries (map and reduce) are capped near this many words: long enough to keep a
    # chunk's facts, short enough that a reduce prompt holds several of them.
    part_words: int = 100
    # Chunks larger than this gain little for a summary even where the context would allow it,
    # while smaller ones cost more calls; this bounds chunk size for long-context (remote) models.
    max_chunk_tokens: int = 3000
    batch_size: int = 8  # map and reduce prompts decoded together

    def __post_init__(self) -> None:
        assert self.words >= 10, "words must be >= 10"
        assert self.part_words >= 10, "part_words must be >= 10"
        assert self.style in ("paragraph", "bullets"), f"unknown style {self.style!r}"


@dataclass
class SummaryNode:
    """A summary in the tree: a chunk's (level 0) or a group of summaries' (level >= 1)."""

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

    def location(self, kind: str) -> str:
        return span_location(kind, self.page_start, self.page_end, self.line_start, self.line_end)


@dataclass
class Summary:
    """The final summary with the tree of intermediate summaries below it."""

    text: str
    language: str
    model: str
    levels: list[list[SummaryNode]]  # levels[0] = chunk summaries; empty when one prompt held it all
    chunks: int
    generated: int = 0  # steps the model computed in this run
    cached: int = 0  # steps found finished by an earlier run
    seconds: float = 0.0


@dataclass(frozen=True)
class _Budget:
    """Token budgets derived from the model's window and the prompts' own length."""

    part_tokens: int  # max new tokens of a map or reduce step
    final_tokens: int  # max new tokens of the final step
    chunk_tokens: int  # document text per map prompt
    reduce_tokens: int  # summaries per reduce prompt
    final_input: int  # text the final prompt can hold


def summarize(
    document: Document,
    model: Model,
    results: ResultCache,
    options: SummaryOptions = SummaryOptions(),
    on_progress: SummaryProgress | None = None,
) -> Summary:
    """Summarize `document` through `model`, reusing any steps `results` already holds."""
    started = time.perf_counter()
    language = language_name(detect_language(document.text) if options.language == "auto" else options.language)
    run = _Run(model, results, options, language, on_progress)
    text = document.text.strip()
    if model.count_tokens(text) <= run.budget.final_input:
        summary = Summary(run.final(text), language, model.name, [], chunks=1)
    else:
        chunks = chunk_document(document, ChunkConfig(size=run.budget.chunk_tokens, overlap=0), counter=model.count_tokens)
        levels = [run.map(chunks)]
        while sum(run.tokens(node.text) for node in levels[-1]) > run.budget.final_input and len(levels[-1]) > 1:
            levels.append(run.reduce(levels[-1], len(levels)))
        summary = Summary(run.final(_joined(levels[-1])), language, model.name, levels, chunks=len(chunks))
    summary.generated, summary.cached = run.generated, run.cached
    summary.seconds = time.perf_counter() - started
    return summary


class _Run:
    """One summarization: prompts, budgets and the step runner shared by its phases."""

    def __init__(
        self, model: Model, results: ResultCache, options: SummaryOptions, language: str, on_progress: SummaryProgress | None
    ) -> None:
        self.model, self.results, self.options, self.language = model, results, options, language
        self.on_progress = on_progress
        self.map_prompt = load_prompt("summarize_map")
        self.reduce_prompt = load_prompt("summarize_reduce")
        self.final_prompt = load_prompt(f"summarize_final_{options.style}")
        self._token_counts: dict[str, int] = {}
        self.budget = self._budget()
        self.generated = self.cached = 0

    def tokens(self, text: str) -> int:
        if text not in self._token_counts:
            self._token_counts[text] = self.model.count_tokens(text)
        return self._token_counts[text]

    def _budget(self) -> _Budget:
        window = self.model.context_window
        # ~1.5 tokens per English word and ~1 per Chinese character, plus room to finish a sentence.
        part = int(self.options.part_words * 1.5) + 32
        final = int(self.options.words * 1.5) + 64
        if final > window // 2:
            warn(f"--length {self.options.words} is more than {self.model.name} can write in one pass; the summary will be shorter")
            final = window // 2
        overhead = {p.name: self.tokens(prompt_text(self._render(p, "", self.options.part_words))) + _PROMPT_MARGIN
                    for p in (self.map_prompt, self.reduce_prompt, self.final_prompt)}
        chunk = min(window - overhead[self.map_prompt.name] - part, self.options.max_chunk_tokens)
        reduce = window - overhead[self.reduce_prompt.name] - part
        if chunk < 64 or reduce < 2 * part:
            raise ModelError(f"{self.model.name}'s context of {window} tokens is too small to summarize in parts of {self.options.part_words} words")
        return _Budget(part, final, chunk, reduce, window - overhead[self.final_prompt.name] - final)

    def _render(self, prompt: PromptTemplate, text: str, words: int) -> Prompt:
        return prompt.render(text=text, language=self.language, words=words)

    def map(self, chunks: Sequence) -> list[SummaryNode]:  # type: ignore[type-arg]
        texts = self._steps("map", self.map_prompt, [c.text for c in chunks], self.options.part_words, self.budget.part_tokens)
        return [
            SummaryNode(f"0.{c.index}", 0, text, c.start, c.end, c.page_start, c.page_end, c.line_start, c.line_end)
            for c, text in zip(chunks, texts)
        ]

    def reduce(self, nodes: list[SummaryNode], level: int) -> list[SummaryNode]:
        sizes = [self.tokens(node.text) for node in nodes]
        groups = [[nodes[i] for i in group] for group in group_by_budget(sizes, self.budget.reduce_tokens)]
        if any(sum(self.tokens(node.text) + 2 for node in group) > self.budget.reduce_tokens for group in groups):
            warn(f"some level-{level} summaries are longer than asked; the model reads them past its exact window")
        merging = [group for group in groups if len(group) > 1]
        texts = iter(self._steps(
            f"reduce {level}", self.reduce_prompt, [_joined(group) for group in merging], self.options.part_words, self.budget.part_tokens
        ))
        # A group of one has nothing to combine: its summary moves up a level as it is.
        return [
            _parent(f"{level}.{n}", level, next(texts) if len(group) > 1 else group[0].text, group)
            for n, group in enumerate(groups)
        ]

    def final(self, text: str) -> str:
        return self._steps("final", self.final_prompt, [text], self.options.words, self.budget.final_tokens)[0]

    def _steps(self, phase: str, prompt: PromptTemplate, inputs: list[str], words: int, max_tokens: int) -> list[str]:
        steps = [
            Step(
                key=result_key("summarize", self.model.name, prompt.sha256, self.language, words, max_tokens, text),
                prompt=self._render(prompt, text, words),
            )
            for text in inputs
        ]
        done = 0

        def on_done(count: int) -> None:
            nonlocal done
            done += count
            if self.on_progress is not None:
                self.on_progress(phase, done, len(steps))

        cached = sum(self.results.get(step.key) is not None for step in steps)
        outputs = run_steps(self.model, self.results, steps, self._options(max_tokens), on_done)
        self.cached += cached
        self.generated += len(steps) - cached
        return [tidy(text, truncated=self.tokens(text) >= max_tokens - 2) for text in outputs]

    def _options(self, max_tokens: int) -> GenerationOptions:
        return GenerationOptions(max_new_tokens=max_tokens, batch_size=self.options.batch_size)


def group_by_budget(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive groups of item indices whose sizes (plus separators) fit `budget`.

    A group takes a second item even past the budget, so that every level shrinks; part summaries
    are capped well below half the budget, so this happens only with runaway model output. A lone
    last item stays a group of its own (it passes up unchanged).
    """
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and used + size + 2 > budget and len(current) >= 2:
            groups.append(current)
            current, used = [], 0
        current.append(index)
        used += size + 2
    if current:
        groups.append(current)
    return groups


def _parent(node_id: str, level: int, text: str, children: list[SummaryNode]) -> SummaryNode:
    first, last = children[0], children[-1]
    return SummaryNode(
        node_id, level, text, first.start, last.end, first.page_start, last.page_end,
        first.line_start, last.line_end, [child.id for child in children],
    )


def _joined(nodes: Sequence[SummaryNode]) -> str:
    return _PART_SEPARATOR.join(node.text for node in nodes)
