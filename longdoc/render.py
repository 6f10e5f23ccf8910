"""Results as the user sees them on stdout: plain text for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from longdoc.chunking import Chunk
from longdoc.console import clean, emit
from longdoc.document import Document

if TYPE_CHECKING:
    from pathlib import Path

    from longdoc.engine.inventory import DeviceStatus, PresetStatus
    from longdoc.memory.index import DocumentMemory, Hit
    from longdoc.tasks.ask import Answer
    from longdoc.tasks.facts import Fact
    from longdoc.tasks.summarize import Summary
    from longdoc.tasks.translate import TranslatedParagraph


def _json(payload: object) -> None:
    # ensure_ascii keeps control characters and odd code points escaped: safe for any terminal.
    sys.stdout.write(json.dumps(payload, ensure_ascii=True) + "\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def chunks(document: Document, items: Sequence[Chunk], as_json: bool) -> None:
    """Print chunks: JSON lines, or a header and the text of each."""
    for chunk in items:
        if as_json:
            _json({"source": document.source, **chunk.to_dict()})
        else:
            emit(f"## chunk {chunk.index} · {chunk.location(document.kind)} · {chunk.tokens} tokens")
            emit(chunk.text)
            emit()


def indexed(document: Document, memory: DocumentMemory, cached: bool, seconds: float, as_json: bool) -> None:
    """Print what `index` did for one document."""
    count = len(memory.chunks)
    if as_json:
        _json({"source": document.source, "chunks": count, "cached": cached, "seconds": round(seconds, 3)})
        return
    how = "reused cached index" if cached else "built index"
    emit(f"{document.source}: {how}, {count} chunks, {seconds:.1f}s")


def hits(document: Document, query: str, found: Sequence[Hit], cached: bool, seconds: float, as_json: bool) -> None:
    """Print search hits best first, each with where it is in the document and its score."""
    if as_json:
        _json(
            {
                "source": document.source,
                "query": query,
                "cached_index": cached,
                "seconds": round(seconds, 3),
                "hits": [{"rank": hit.rank, "score": hit.score, "dense": hit.dense, "lexical": hit.lexical,
                          "location": hit.chunk.location(document.kind), **hit.chunk.to_dict()} for hit in found],
            }
        )
        return
    for hit in found:
        emit(f"[{hit.rank}] {document.source} {hit.chunk.location(document.kind)} (score {hit.score:.3f})")
        emit(f"    {_one_line(hit.chunk.text)}")
        emit()


def inventory(presets: Sequence[PresetStatus], device: DeviceStatus, home: Path, as_json: bool) -> None:
    """Print the presets table, the device and where caches live."""
    if as_json:
        _json({"presets": [p.to_dict() for p in presets], "device": vars(device), "home": str(home)})
        return
    emit(f"{'preset':14} {'role':8} {'installed':10} {'cached':8} description")
    for preset in presets:
        cached = f"{preset.cache_bytes / 1e9:.1f} GB" if preset.cached else "no"
        emit(f"{preset.name:14} {preset.role:8} {'yes' if preset.installed else 'no':10} {cached:8} {preset.description}")
        if preset.install_hint:
            emit(f"{'':14} to install: {preset.install_hint}")
    emit()
    emit(f"device: {device.device} ({device.dtype}), {device.detail}, torch {device.torch_version}")
    emit(f"cache:  {home}")


def summary(document: Document, result: Summary, fmt: str) -> None:
    """Print a summary: plain text, Markdown with the top-level parts and their pages, or JSON with the tree."""
    sys.stdout.write(summary_text(document, result, fmt))


def summary_text(document: Document, result: Summary, fmt: str) -> str:
    """A summary as `summary` prints it (and batch mode writes it to a file), control characters removed."""
    if fmt == "json":
        payload = {
            "source": document.source,
            "model": result.model,
            "language": result.language,
            "summary": result.text,
            "chunks": result.chunks,
            "steps": {"generated": result.generated, "cached": result.cached},
            "seconds": round(result.seconds, 3),
            "levels": [[{**asdict(node), "location": node.location(document.kind)} for node in level]
                       for level in result.levels],
            "coverage": _coverage(document, result),
            "checks": {
                "candidates": len(result.facts),
                "facts_chosen": sum(fact.selected for fact in result.facts),
                "facts_in_summary": sum(fact.in_summary for fact in result.facts if fact.selected),
                "restored": result.restored,
                "dropped_unsupported": [asdict(dropped) for dropped in result.dropped],
            },
        }
        # ensure_ascii keeps control characters and odd code points escaped: safe for any terminal.
        return json.dumps(payload, ensure_ascii=True) + "\n"
    lines = [result.text]
    if fmt == "markdown":
        lines = [f"# Summary of {document.source}", "", result.text]
        if result.levels:
            lines += ["", "## Parts", ""]
            lines += [f"- **{node.location(document.kind)}**: {_one_line(node.text)}" for node in result.levels[-1]]
    return "".join(clean(line) + "\n" for line in lines)


def _coverage(document: Document, result: Summary) -> list[dict[str, object]]:
    """Per chunk: where it is, its key points (the facts chosen from it, else its best three
    candidates), and whether each survived into the summary."""
    by_chunk: dict[int, list[Fact]] = {}
    for fact in sorted(result.facts, key=lambda fact: -fact.score):
        by_chunk.setdefault(fact.chunk, []).append(fact)
    rows = []
    for node in result.levels[0] if result.levels else []:
        index = int(node.id.split(".")[1])
        own = by_chunk.get(index, [])
        points = [fact for fact in own if fact.selected] or own[:3]
        rows.append({
            "chunk": index,
            "location": node.location(document.kind),
            "covered": any(fact.selected and fact.in_summary for fact in own),
            "key_points": [{"text": f.text, "score": round(f.score, 3), "chosen": f.selected, "in_summary": f.in_summary}
                           for f in points],
        })
    return rows


def answer(document: Document, result: Answer, as_json: bool) -> None:
    """Print an answer and the sources it cites, with pages (or lines) a reader can check."""
    if as_json:
        _json(
            {
                "source": document.source,
                "question": result.question,
                "answer": result.text,
                "supported": result.supported,
                "model": result.model,
                "citations": result.cited,
                "citations_matched": result.matched,
                "citations_checked": result.checked,  # False: another language than the passages, nothing to look up
                "unverified_answer": result.unverified,  # a reply set aside: no passage holds its words
                "unmentioned": result.unmentioned,  # what the question names and the document never does
                "sources": [{**asdict(s), "location": s.location(document.kind), "cited": s.number in result.cited}
                            for s in result.sources],
                "timings": {name: round(seconds, 3) for name, seconds in result.timings.items()},
            }
        )
        return
    if not result.supported:
        emit("The document does not seem to answer this question.")
        if result.unmentioned:
            emit(f"It never mentions: {', '.join(result.unmentioned)}.")
    else:
        emit(result.text)
    shown = [s for s in result.sources if s.number in result.cited] if result.cited else result.sources[:3]
    if not shown:
        return
    emit()
    if not result.checked:
        emit("Sources (as the model cited them; not checked: the answer is in another language than the passages):")
    elif result.matched:
        emit("Sources (found by the answer's words; the model cited none that holds them):")
    else:
        emit("Sources:" if result.cited else "Closest passages (not cited):")
    from longdoc.tasks.ask import excerpt, excerpt_offset

    for source in shown:
        # The section of the sentence shown, not of the passage's start: a passage can run on
        # into the next section, where the cited sentence stands.
        section = document.section_at(source.start + excerpt_offset(document.text[source.start : source.end], result.question))
        named = f" ({section})" if section else ""
        emit(f"[{source.number}] {document.source} {source.location(document.kind)}{named}: {excerpt(source.text, result.question)}")


def translated(paragraph: TranslatedParagraph) -> None:
    """Write one translated paragraph and the source's separator, at once (the output streams)."""
    sys.stdout.write(clean(paragraph.text) + paragraph.separator)
    sys.stdout.flush()
