"""Which embedder finds the passage that holds the answer: recall@k per embedder, English and Chinese.

    python -m bench.embedders [--embedders minilm,e5,use] [--weights 0.25,0.5,1] [--json-out FILE]
    python -m bench.embedders --rerank      # English: MiniLM hybrid's top 30 re-ranked by e5

Every embedder searches the same chunks (200 cl100k tokens, 30 overlapping, as `longdoc index`
cuts them), dense only and hybrid (dense + BM25, z-score fusion, as `longdoc search` ranks):

  english  leval natural_question dev: the 7 Wikipedia pages (HTML read as `longdoc ask page.html`
           would), 36 questions; a chunk holds the answer when it contains a reference answer
  chinese  cmrc2018 dev100: the 100 articles joined into one ~100K-character document, every
           question of every article (366); a chunk holds the answer when it contains the span

recall@k: the share of questions with an answer-holding chunk among the top k. Also the seconds
to embed the chunks (chunks/s) and one query, on this machine (name it beside the figures).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import cmrc_articles, leval_rows, script_parser
from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.document import Document, Page
from longdoc.ingest.html import html_to_text
from longdoc.memory import index as index_module
from longdoc.memory.index import DocumentMemory

KS = (1, 3, 8)


@dataclass(frozen=True)
class Question:
    document: int  # index into the task's documents
    text: str
    answers: tuple[str, ...]


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def english() -> tuple[list[Document], list[Question]]:
    documents, questions = [], []
    for n, row in enumerate(leval_rows("natural_question")):
        documents.append(Document(source=f"nq{n}", pages=(Page(1, html_to_text(row["input"])),)))
        questions += [Question(n, q, (a,) if isinstance(a, str) else tuple(a)) for q, a in zip(row["instructions"], row["outputs"])]
    return documents, questions


def chinese() -> tuple[list[Document], list[Question]]:
    contexts, questions = [], []
    for article in cmrc_articles():
        for paragraph in article["paragraphs"]:
            contexts.append(paragraph["context"])
            questions += [Question(0, qa["question"], tuple(a["text"] for a in qa["answers"])) for qa in paragraph["qas"]]
    return [Document(source="cmrc", pages=(Page(1, "\n\n".join(contexts)),))], questions


def make_embedder(name: str):  # type: ignore[no-untyped-def]
    if name == "minilm":
        from longdoc.memory.embedder import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(None)
    if name == "e5":
        from longdoc.memory.e5 import E5Embedder

        return E5Embedder()
    if name == "use":
        from bench.use_embedder import USEEmbedder

        return USEEmbedder()
    raise SystemExit(f"unknown embedder {name!r} (minilm, e5, use)")


def evaluate(embedder, documents: list[Document], questions: list[Question], weights: list[float]) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """One row per BM25 weight in hybrid search (the embeddings are computed once)."""
    chunked = [chunk_document(d, ChunkConfig(size=200, overlap=30)) for d in documents]
    started = time.perf_counter()
    memories = [DocumentMemory(chunks, embedder.embed([c.text for c in chunks]), embedder) for chunks in chunked]
    embed_s = time.perf_counter() - started
    rows = []
    for weight in weights:
        index_module.LEXICAL_WEIGHT = weight
        rows.append({"lexical_weight": weight, **_recall(memories, questions), "embed_s": round(embed_s, 1),
                     "chunks_per_s": round(sum(len(c) for c in chunked) / embed_s, 1)})
    return rows


def _recall(memories: list[DocumentMemory], questions: list[Question]) -> dict:  # type: ignore[type-arg]
    found = {(method, k): 0 for method in ("dense", "hybrid") for k in KS}
    answerable = 0
    query_s = 0.0
    for question in questions:
        memory = memories[question.document]
        answers = [_normalise(a) for a in question.answers if a.strip()]
        if not any(any(a in _normalise(c.text) for a in answers) for c in memory.chunks):
            continue  # the answer is in no chunk at all (the HTML reader dropped it): not a retrieval question
        answerable += 1
        for method in ("dense", "hybrid"):
            started = time.perf_counter()
            hits = memory.search(question.text, k=max(KS), method=method)  # type: ignore[arg-type]
            query_s += time.perf_counter() - started
            ranks = [hit.rank for hit in hits if any(a in _normalise(hit.chunk.text) for a in answers)]
            for k in KS:
                found[(method, k)] += bool(ranks) and min(ranks) <= k
    return {
        "questions": answerable, "chunks": sum(len(m.chunks) for m in memories),
        "query_ms": round(1000 * query_s / max(1, 2 * answerable), 1),
        **{f"{method}@{k}": round(found[(method, k)] / max(1, answerable), 3) for method, k in found},
    }


def rerank(pool: int = 30) -> dict:  # type: ignore[type-arg]
    """recall@k on NQ of MiniLM hybrid search, and of its top `pool` re-ranked by adding e5's
    z-scored cosine (embedded at query time), at weights 1 and 0.5."""
    import numpy as np

    from longdoc.memory.e5 import E5Embedder

    documents, questions = english()
    minilm, e5 = make_embedder("minilm"), E5Embedder()
    chunked = [chunk_document(d, ChunkConfig(size=200, overlap=30)) for d in documents]
    memories = [DocumentMemory(chunks, minilm.embed([c.text for c in chunks]), minilm) for chunks in chunked]
    found: dict[str, int] = {}
    answerable, rerank_s = 0, 0.0
    for question in questions:
        memory = memories[question.document]
        answers = [_normalise(a) for a in question.answers if a.strip()]
        if not any(any(a in _normalise(c.text) for a in answers) for c in memory.chunks):
            continue
        answerable += 1
        hits = memory.search(question.text, k=pool)
        started = time.perf_counter()
        cosine = e5.embed([hit.chunk.text for hit in hits]) @ e5.embed_queries([question.text])[0]  # (pool,)
        rerank_s += time.perf_counter() - started
        base = np.array([hit.score for hit in hits])
        z = lambda x: (x - x.mean()) / (x.std() + 1e-9)  # noqa: E731
        for name, scores in (("hybrid", base), ("hybrid+e5", z(base) + z(cosine)), ("hybrid+e5/2", z(base) + 0.5 * z(cosine))):
            order = np.argsort(-scores, kind="stable")
            ranks = [rank for rank, i in enumerate(order, 1) if any(a in _normalise(hits[i].chunk.text) for a in answers)]
            for k in (1, 3, 5, 8):
                found[f"{name}@{k}"] = found.get(f"{name}@{k}", 0) + (bool(ranks) and ranks[0] <= k)
        found[f"pool@{pool}"] = found.get(f"pool@{pool}", 0) + any(any(a in _normalise(h.chunk.text) for a in answers) for h in hits)
    return {"questions": answerable, "rerank_s_per_question": round(rerank_s / max(1, answerable), 1),
            **{key: round(value / max(1, answerable), 3) for key, value in found.items()}}


def main() -> None:
    parser = script_parser("bench.embedders", __doc__)
    parser.add_argument("--embedders", default="minilm,e5,use")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--weights", default="1", help="BM25 weights to try in hybrid search, e.g. 0.25,0.5,1")
    parser.add_argument("--rerank", action="store_true", help="only the e5 re-ranking of MiniLM's hybrid results (English)")
    args = parser.parse_args()
    if args.rerank:
        result = rerank()
        print(json.dumps(result))
        if args.json_out:
            args.json_out.write_text(json.dumps(result, indent=1))
        return
    tasks = {"english (NQ dev)": english(), "chinese (CMRC dev100)": chinese()}
    rows = []
    for name in args.embedders.split(","):
        embedder = make_embedder(name)
        for task, (documents, questions) in tasks.items():
            for result in evaluate(embedder, documents, questions, [float(w) for w in args.weights.split(",")]):
                row = {"embedder": name, "id": embedder.id, "task": task, **result}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| task | embedder | BM25 weight | n | dense @1 | @3 | @8 | hybrid @1 | @3 | @8 | chunks/s | query ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['embedder']} | {r['lexical_weight']:g} | {r['questions']} | {r['dense@1']:.2f} | {r['dense@3']:.2f} | {r['dense@8']:.2f} "
              f"| {r['hybrid@1']:.2f} | {r['hybrid@3']:.2f} | {r['hybrid@8']:.2f} | {r['chunks_per_s']} | {r['query_ms']} |")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
