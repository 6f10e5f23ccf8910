"""Would the best sentences of the passages `ask` shows hold the answer as often as the passages do?

    python -m bench.sentence_rank --tasks nq --json-out bench/results/sentence_rank_probe_nq.json

For each answerable question, the passages `longdoc ask` shows the model are cut into sentences
(and lines), ranked by the embedder's similarity to the question, by the share of the question's
search terms each holds, and by the two summed; the rank of the first sentence holding a reference
answer is compared with the rank of the first passage holding one. Nothing is decoded.
"""

from __future__ import annotations

import time

import numpy as np

from bench.answers import Probe, contains, probe_parser


def main() -> None:
    parser = probe_parser("bench.sentence_rank", __doc__, "nq")
    args = parser.parse_args()
    if args.report:
        import json

        report(json.loads(args.json_out.read_text()))
        return
    from longdoc.memory.embedder import embed_query
    from longdoc.memory.lexical import tokenize
    from longdoc.tasks.cleanup import sentences

    probe = Probe(args)
    for item, document, passages, started in probe.pending():
        memory = probe._memories[item.document]
        pieces = [s.strip() for p in passages for s in sentences(p.text) if len(s.strip()) > 2]
        embedder = memory.embedder  # type: ignore[attr-defined]
        dense = embedder.embed(pieces) @ embed_query(embedder, item.question)[0]
        terms = set(tokenize(item.question))
        words = np.array([len(terms & set(tokenize(s))) / max(len(terms), 1) for s in pieces])
        holds = [contains(s, item.answers) for s in pieces]
        first = next((n for n, p in enumerate(passages, 1) if contains(p.text, item.answers)), None)
        row = {"key": item.key, "task": item.task, "question": item.question, "sentences": len(pieces), "passage": first,
               **{name: _first_holder(score, holds) for name, score in (("dense", dense), ("words", words), ("both", dense + words))},
               "seconds": round(time.perf_counter() - started, 1)}
        probe.keep(row)
        print(row, flush=True)
    report(probe.done)


def _first_holder(scores: np.ndarray, holds: list[bool]) -> int | None:
    """The rank (from 1) of the best-scored sentence that holds a reference, if any does."""
    return next((rank for rank, i in enumerate(np.argsort(-scores), 1) if holds[i]), None)


def report(done: dict) -> None:  # type: ignore[type-arg]
    rows = done["rows"]
    for name in ("passage", "dense", "words", "both"):
        ranks = [r[name] for r in rows]
        counts = ", ".join(f"top {k}: {sum(v is not None and v <= k for v in ranks)}" for k in (1, 3, 8))
        print(f"{name:8} {counts} of {len(rows)}")


if __name__ == "__main__":
    main()
