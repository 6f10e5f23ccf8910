"""Each shown passage read alone: does answering from one passage at a time, then keeping one of
the answers, beat one answer over all the passages together?

    python -m bench.passage_alone --tasks nq --limit 30 --json-out bench/results/passage_alone_nq.json
    python -m bench.passage_alone --report --json-out bench/results/passage_alone_nq.json

bench/holder_alone.py found the default model right far more often given the passage that answers
alone than among seven others. Here every passage `longdoc ask` shows (its retrieval and packing,
retrieval's order) is put to `ask`'s answer prompt alone, numbered [1], the replies greedy and
batched; each goes through `ask`'s support check (`verify`: a reply no passage holds the words of is
set aside, as is a refusal). The replies are independent, so the report can keep the first k
passages for any k. Kept per question: the first supported reply in retrieval's order, the one most
other supported replies agree with (bench/order_vote.py `winner`), and whether any holds a reference.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from bench.answers import Probe, answer_prompt, contains, probe_parser
from bench.harness import cpu_model, write_json_atomic
from bench.order_vote import agree, winner


def main() -> None:
    parser = probe_parser("bench.passage_alone", __doc__, "nq")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.json_out.read_text())["rows"])
        return
    from longdoc.model.protocol import GenerationOptions
    from longdoc.tasks.ask import AskOptions, _own_terms, attribute, interpret, verify
    from longdoc.tasks.cleanup import tidy
    from longdoc.tasks.prompts import load_prompt

    probe = Probe(args)
    template = load_prompt("ask_answer")
    for item, _, passages, started in probe.pending():
        alone = [[replace(p, number=1)] for p in passages]
        prompts = [answer_prompt(template, item.question, given) for given in alone]
        options = GenerationOptions(max_new_tokens=AskOptions().answer_tokens, batch_size=len(prompts))
        replies = probe.model.generate(prompts, options)
        answers = [verify(attribute(interpret(item.question, tidy(r), given, args.model))) for r, given in zip(replies, alone)]
        row = {
            "key": item.key, "task": item.task, "question": item.question,
            "passages": [{"holds": contains(p.text, item.answers), "reply": r[:300], "supported": a.supported,
                          "right": a.supported and contains(a.text, item.answers),
                          "terms": sorted(_own_terms(a)) if a.supported else None}
                         for p, r, a in zip(passages, replies, answers)],
            "seconds": round(time.perf_counter() - started, 1),
        }
        probe.keep(row)
        kept = _kept(row, len(passages))
        print(f"{row['seconds']:6.1f}s first {kept['first']} voted {kept['voted']} any {kept['any']}  {item.question[:60]!r}", flush=True)
    write_json_atomic(args.json_out, {**probe.done, "model": args.model, "cpu": cpu_model()})
    report(probe.done["rows"])


def _kept(row: dict, k: int) -> dict[str, bool]:  # type: ignore[type-arg]
    """Whether each way of keeping one reply, over the first `k` passages, holds a reference."""
    passages = row["passages"][:k]
    terms = [set(p["terms"]) if p["terms"] is not None else None for p in passages]
    first = next((p for p in passages if p["supported"]), None)
    best = winner(terms)
    return {"first": bool(first and first["right"]), "voted": best is not None and passages[best]["right"],
            "any": any(p["right"] for p in passages)}


def report(rows: list[dict]) -> None:  # type: ignore[type-arg]
    print(f"n={len(rows)}; reply right, per way of keeping one, over the first k passages:")
    for k in (1, 2, 3, 4, 6, 8):
        kept = [_kept(row, k) for row in rows]
        print(f"  k={k}: " + ", ".join(f"{way} {sum(x[way] for x in kept)}" for way in ("first", "voted", "any")))
    agreeing = sum(1 for row in rows for a in row["passages"] for b in row["passages"]
                   if a is not b and a["terms"] and b["terms"] and agree(set(a["terms"]), set(b["terms"])))
    print(f"  seconds a question {sum(r['seconds'] for r in rows) / max(len(rows), 1):.1f}; agreeing pairs {agreeing}")


if __name__ == "__main__":
    main()
