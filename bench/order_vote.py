"""Whether answers written over several orders of the same passages, then voted on, hold a
reference more often than the one answer over retrieval's order (`longdoc ask`'s first look).

Each question's shown passages (as bench/answers.py) are put to the answer prompt in `--orders`
rotations (the first is retrieval's order), numbered afresh in each, each reply greedy; with
`--samples K`, K more replies over retrieval's order are sampled (one read); every reply goes through the
support check (`verify`); the vote keeps the supported reply whose own terms most others share.
Counted per question: the reference held by the first order's reply, by any order's (the ceiling
of any vote), and by the voted reply.

    python -m bench.order_vote --tasks nq --limit 30 --json-out bench/results/order_vote_nq.json
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench.answers import Probe, answer_prompt, contains, probe_parser
from bench.harness import cpu_model, write_json_atomic


# Two answers agree where the smaller one's own terms are at least this share inside the other's.
_AGREE = 0.5


def agree(a: set[str], b: set[str]) -> bool:
    """Whether two answers' own terms say the same: the smaller set mostly inside the larger."""
    return bool(a and b) and len(a & b) >= _AGREE * min(len(a), len(b))


def winner(terms: list[set[str] | None]) -> int | None:
    """The index of the answer most others agree with (ties: the earliest); None where every
    answer is None (refused or set aside)."""
    standing = [i for i, t in enumerate(terms) if t is not None]
    votes = {i: sum(agree(terms[i], terms[j]) for j in standing if j != i) for i in standing}  # type: ignore[arg-type]
    return max(standing, key=lambda i: (votes[i], -i)) if standing else None


def rotations(count: int, orders: int) -> list[list[int]]:
    """`orders` rotations of range(count), spread evenly; the first is the identity."""
    steps = sorted({round(k * count / orders) % count for k in range(orders)}) if count else [0]
    return [[(i + step) % count for i in range(count)] for step in steps]


def main() -> None:
    parser = probe_parser("bench.order_vote", __doc__, "nq")
    parser.add_argument("--orders", type=int, default=4)
    parser.add_argument("--samples", type=int, default=0, help="replies sampled over retrieval's order besides the greedy ones")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from longdoc.model.protocol import GenerationOptions
    from longdoc.tasks.ask import AskOptions, attribute, interpret, verify
    from longdoc.tasks.cleanup import tidy
    from longdoc.tasks.prompts import load_prompt
    from longdoc.tasks.ask import _own_terms

    probe = Probe(args)
    template = load_prompt("ask_answer")
    greedy = GenerationOptions(max_new_tokens=AskOptions().answer_tokens, batch_size=args.batch_size)
    sampled = replace(greedy, temperature=args.temperature, top_p=0.95)
    for item, _, passages, started in probe.pending():
        orders = rotations(len(passages), args.orders)
        shown = [[replace(passages[i], number=n) for n, i in enumerate(order, 1)] for order in orders]
        prompts = [answer_prompt(template, item.question, s) for s in shown]
        replies = probe.model.generate(prompts, greedy)
        if args.samples:  # copies of retrieval's order, read once (engine/generation.py), sampled
            replies += probe.model.generate([prompts[0]] * args.samples, replace(sampled, seed=len(probe.done["rows"])))
            shown += [shown[0]] * args.samples
        answers = []
        for given, reply in zip(shown, replies):
            answer = verify(attribute(interpret(item.question, tidy(reply), given, args.model)))
            answers.append(answer)
        best = winner([_own_terms(a) if a.supported else None for a in answers])
        chosen = answers[best] if best is not None else None
        row = {
            "key": item.key, "task": item.task, "question": item.question,
            "first_ok": answers[0].supported and contains(answers[0].text, item.answers),
            "any_ok": any(a.supported and contains(a.text, item.answers) for a in answers),
            "voted_ok": chosen is not None and contains(chosen.text, item.answers),
            "replies": [{"text": r[:300], "supported": a.supported} for r, a in zip(replies, answers)],
            "voted": chosen.text[:300] if chosen is not None else "",
            "seconds": round(time.perf_counter() - started, 1),
        }
        probe.keep(row)
        print(f"{item.question[:60]!r}: first {row['first_ok']} any {row['any_ok']} voted {row['voted_ok']}", flush=True)
    rows = probe.done["rows"]
    summary = {k: sum(r[k] for r in rows) for k in ("first_ok", "any_ok", "voted_ok")}
    write_json_atomic(args.json_out, {**probe.done, "summary": summary, "model": args.model, "cpu": cpu_model()})
    print(f"n={len(rows)}: {summary}")


if __name__ == "__main__":
    main()
