"""How well can the model answer when it is given the passage that holds the answer? A ceiling for
every passage-ranking idea: if the reader misses with the right passage alone, no ranking of the
passages reaches past it.

    python -m bench.holder_alone --tasks nq --limit 30 --json-out bench/results/holder_alone_nq.json

For each answerable question of bench/answers.py, the passages `longdoc ask` shows (its retrieval,
its packing, in retrieval's order) are put to the model with `ask`'s answer prompt four ways: as
shown; the first passage holding a reference moved to the front ("holder first"); that passage
alone ("holder alone"); and, alone, the chunk of the whole document that holds a reference and
ranks best among the first 100 hits of its search ("document holder alone": retrieval made
perfect, as far as it can tell the chunks holding a reference apart). The replies are decoded in
batches (greedy, `ask`'s token limit) and counted when they hold a reference. Only the first look: no second look, no support check
(bench/answers.py scores the whole path). A question with no holder among the shown passages
counts as a miss in the arms that need one.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from bench.answers import Probe, answer_prompt, contains, probe_parser
from bench.harness import cpu_model, write_json_atomic

ARMS = ("as_shown", "holder_first", "holder_alone", "document_holder_alone")
SEARCHED = 100  # hits searched for the document's holder


def main() -> None:
    parser = probe_parser("bench.holder_alone", __doc__, "nq")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.json_out.read_text())["arms"])
        return
    from longdoc.model.protocol import GenerationOptions
    from longdoc.tasks.ask import AskOptions, answer_overhead, select_passages
    from longdoc.tasks.prompts import load_prompt

    probe = Probe(args)
    prompt = load_prompt("ask_answer")
    shown, found = [], []
    for item, document, passages, _ in probe.pending():
        shown.append((item, passages))
        memory = probe.memory(item)[1]
        hit = next((h for h in memory.search(item.question, k=SEARCHED) if contains(h.chunk.text, item.answers)), None)
        budget = probe.model.context_window - answer_overhead(item.question, probe.model) - AskOptions().answer_tokens
        found.append(select_passages(document, [hit], probe.model, budget, 1) if hit else [])
    options = GenerationOptions(max_new_tokens=AskOptions().answer_tokens, batch_size=args.batch_size)
    results = probe.done.setdefault("arms", {})
    for arm in ARMS:
        if arm in results:
            continue
        started = time.perf_counter()
        given = found if arm == "document_holder_alone" else [_arranged(arm, item.answers, passages) for item, passages in shown]
        prompts = [answer_prompt(prompt, item.question, passages) for (item, _), passages in zip(shown, given)]
        asked = [i for i, passages in enumerate(given) if passages]
        replies = dict(zip(asked, probe.model.generate([prompts[i] for i in asked], options)))
        right = [contains(replies.get(i, ""), item.answers) for i, (item, _) in enumerate(shown)]
        results[arm] = {
            "n": len(shown), "with_holder": len(asked), "holds_reference": sum(right),
            "seconds": round(time.perf_counter() - started, 1),
            "replies": [{"question": item.question, "right": ok, "reply": replies.get(i, "")[:300]}
                        for i, ((item, _), ok) in enumerate(zip(shown, right))],
        }
        write_json_atomic(args.json_out, {**probe.done, "model": args.model, "cpu": cpu_model()})
    report(results)


def report(arms: dict) -> None:  # type: ignore[type-arg]
    for arm, result in arms.items():
        print(f"{arm}: {result['holds_reference']} of {result['n']} replies hold a reference "
              f"({result['with_holder']} asked, {result['seconds']:.0f}s)", flush=True)


def _arranged(arm: str, answers: tuple[str, ...], passages: list) -> list:  # type: ignore[type-arg]
    """The passages `arm` shows, numbered 1.. (none where the arm needs a holder and none holds)."""
    holder = next((p for p in passages if contains(p.text, answers)), None)
    if arm == "as_shown":
        order = passages
    elif holder is None:
        return []
    elif arm == "holder_first":
        order = [holder] + [p for p in passages if p is not holder]
    else:
        order = [holder]
    return [replace(p, number=n) for n, p in enumerate(order, start=1)]


if __name__ == "__main__":
    main()
