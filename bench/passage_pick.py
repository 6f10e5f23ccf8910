"""Does the model, asked which passage answers the question, name the one holding the answer?

    python -m bench.passage_pick --tasks nq --limit 30 --json-out bench/results/passage_pick_nq.json

For each answerable question of bench/answers.py, the passages `longdoc ask` would show the model
(its retrieval, its packing) are numbered and put to the model with the question and "Which
passage answers the question?"; the reply is begun for it ("The answer is in passage [") and the
passages' numbers are compared as its next token, nothing decoded (as multiple choice is scored,
tasks/choice.py). The passages are shown in retrieval's order and reversed, so a liking for a place
(the first passage, the last) shows and can be cancelled: a passage's score is its number's
log-probability, normalised over the numbers, summed over both orders. `--report` prints the share
of questions whose holder each ranking puts first, within 2 and within 3, against retrieval's order.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from bench.answers import Probe, contains, probe_parser


def main() -> None:
    parser = probe_parser("bench.passage_pick", __doc__, "nq")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.json_out.read_text()))
        return
    from longdoc.tasks.ask import source_body
    from longdoc.tasks.pick import PREFIX, numbered, orders
    from longdoc.tasks.prompts import load_prompt

    probe = Probe(args)
    prompt = load_prompt("ask_pick")
    for item, document, sources, started in probe.pending():
        asked = orders(len(sources))
        prompts = [prompt.render(question=item.question, sources=numbered([source_body(sources[i], document.kind) for i in order]))
                   for order in asked]
        labels = [str(n) for n in range(1, len(sources) + 1)]
        scores = [probe.model.score_next([p], PREFIX, labels)[0] for p in prompts]
        row = {"key": item.key, "task": item.task, "question": item.question,
               "holds": [contains(s.text, item.answers) for s in sources],
               "orders": asked, "scores": [[round(v, 3) for v in s] for s in scores],
               "seconds": round(time.perf_counter() - started, 1)}
        probe.keep(row)
        first = row["holds"].index(True) + 1 if any(row["holds"]) else None
        print(f"{item.task:5} {row['seconds']:6.1f}s holder at {first} of {len(sources)}, picked "
              f"{_ranks(row)['both']}  {item.question[:60]!r}", flush=True)
    report(probe.done)


def _ranks(row: dict) -> dict[str, int | None]:  # type: ignore[type-arg]
    """The rank of the first passage holding the answer under each ranking."""
    from longdoc.tasks.choice import order_totals

    count = len(row["holds"])
    per_order = [order_totals([scores], [order]) for order, scores in zip(row["orders"], row["scores"])]
    both = order_totals(row["scores"], row["orders"])
    rankings = {"retrieval": [-i for i in range(count)], "as retrieved": per_order[0], "reversed": per_order[1], "both": both}
    out: dict[str, int | None] = {}
    for name, scores in rankings.items():
        order = sorted(range(count), key=lambda i: -scores[i])
        out[name] = next((r for r, i in enumerate(order, 1) if row["holds"][i]), None)
    return out


def report(done: dict) -> None:  # type: ignore[type-arg]
    rows = [r for r in done["rows"] if any(r["holds"])]
    print(f"{len(rows)} of {len(done['rows'])} questions have a passage holding the answer among those shown")
    if not rows:
        return
    ranks = [_ranks(r) for r in rows]
    for name in ranks[0]:
        mine = [r[name] for r in ranks]
        print(f"  {name:14} @1 {sum(v == 1 for v in mine) / len(mine):.2f}  @2 {sum(v <= 2 for v in mine) / len(mine):.2f}  "
              f"@3 {sum(v <= 3 for v in mine) / len(mine):.2f}  median {statistics.median(mine)}")


if __name__ == "__main__":
    sys.exit(main())
