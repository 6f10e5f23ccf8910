"""Whether the model, shown the different answers it wrote to one question as lettered options,
picks a right one more often than its first answer is right.

Reads the replies of a `bench.order_vote` run (--replies); per question, the supported replies are
grouped by agreement (bench/order_vote.py `agree`), and where two or more groups remain, their first
replies become options (A), (B), ... of the question, put with retrieval's passages to the letters'
scores over every rotation (tasks/choice.py `choose`, as `ask` answers a multiple-choice question).

    python -m bench.candidate_choice --replies bench/results/order_vote_nq.json --tasks nq --limit 30 \\
        --json-out bench/results/candidate_choice_nq.json
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from bench.answers import Probe, contains, probe_parser
from bench.harness import cpu_model, write_json_atomic
from bench.order_vote import agree

_LETTERS = "ABCD"


def main() -> None:
    parser = probe_parser("bench.candidate_choice", __doc__, "nq")
    parser.add_argument("--replies", type=Path, required=True, help="a bench.order_vote JSON")
    args = parser.parse_args()
    from longdoc.tasks.ask import _evidence, format_sources
    from longdoc.tasks.choice import choose
    from longdoc.tasks.results import ResultCache

    written = {row["key"]: row for row in json.loads(args.replies.read_text())["rows"]}
    probe = Probe(args)
    results = ResultCache(Path(tempfile.mkdtemp(prefix="candidate-choice-")))
    for item, _, passages, started in probe.pending():
        source = written[item.key]
        groups: list[tuple[set[str], str]] = []
        for reply in source["replies"]:
            if not reply["supported"]:
                continue
            text = " ".join(re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", reply["text"]).split())
            own = _evidence(text) - _evidence(item.question)
            if not any(agree(own, seen) for seen, _ in groups):
                groups.append((own, text))
        options = {letter: text[:200] for letter, (_, text) in zip(_LETTERS, groups)}
        picked = ""
        if len(options) >= 2:
            asked = "\n".join([item.question, *(f"({k}) {v}" for k, v in options.items())])
            picked = options[choose(asked, options, format_sources(passages, "text"), probe.model, results)]
        elif options:
            picked = options["A"]
        row = {
            "key": item.key, "task": item.task, "question": item.question, "options": options,
            "first_ok": source["first_ok"], "any_ok": source["any_ok"], "voted_ok": source["voted_ok"],
            "chosen": picked, "chosen_ok": bool(picked) and contains(picked, item.answers),
            "seconds": round(time.perf_counter() - started, 1),
        }
        probe.keep(row)
        print(f"{item.question[:60]!r}: {len(options)} options, first {row['first_ok']} chosen {row['chosen_ok']}", flush=True)
    rows = probe.done["rows"]
    summary = {k: sum(r[k] for r in rows) for k in ("first_ok", "any_ok", "voted_ok", "chosen_ok")}
    write_json_atomic(args.json_out, {**probe.done, "summary": summary, "model": args.model, "cpu": cpu_model()})
    print(f"n={len(rows)}: {summary}")


if __name__ == "__main__":
    main()
