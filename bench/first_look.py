"""How often `longdoc ask`'s first look refuses, per answer prompt: each template is put to the
model over the passages `ask` shows (retrieval and packing as in bench/answers.py), the replies
decoded in batches, and the first replies that refuse are counted beside those that hold a
reference answer. Nothing after the first look runs (no second look, no support check): what the
question's full path scores is bench/answers.py's job.

    python -m bench.first_look --template prompts/ask_answer.txt --template OLD.txt \\
        --tasks nq --limit 30 --json-out bench/results/first_look_nq.json

A template's name is its file's stem; a re-run with the same --json-out skips templates already there.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.answers import Probe, answer_prompt, contains, probe_parser
from bench.harness import cpu_model, write_json_atomic


def main() -> None:
    parser = probe_parser("bench.first_look", __doc__, "nq")
    parser.add_argument("--template", type=Path, action="append", required=True, help="an answer prompt file (repeatable)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from longdoc.model.protocol import GenerationOptions
    from longdoc.tasks.ask import AskOptions, interpret
    from longdoc.tasks.prompts import parse_prompt

    probe = Probe(args)
    shown = [(item, passages) for item, _, passages, _ in probe.pending()]
    done = probe.done.setdefault("templates", {})
    options = GenerationOptions(max_new_tokens=AskOptions().answer_tokens, batch_size=args.batch_size)
    for path in args.template:
        if path.stem in done:
            continue
        template = parse_prompt(path.stem, path.read_text(encoding="utf-8"))
        started = time.perf_counter()
        replies = probe.model.generate([answer_prompt(template, item.question, passages) for item, passages in shown], options)
        refused = [not interpret(item.question, reply, passages, args.model).supported for (item, passages), reply in zip(shown, replies)]
        done[path.stem] = {
            "template": template.sha256, "n": len(shown), "refused": sum(refused),
            "holds_reference": sum(contains(r, item.answers) for (item, _), r in zip(shown, replies)),
            "seconds": round(time.perf_counter() - started, 1),
            "replies": [{"question": item.question, "reply": reply[:300]} for (item, _), reply in zip(shown, replies)],
        }
        write_json_atomic(args.json_out, {**probe.done, "model": args.model, "cpu": cpu_model()})
        print(f"{path.stem}: first look refused {sum(refused)} of {len(shown)}, "
              f"{done[path.stem]['holds_reference']} hold a reference", flush=True)


if __name__ == "__main__":
    main()
