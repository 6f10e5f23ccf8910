"""Does the model's own attention rank the passage holding the answer above where retrieval put it?

    python -m bench.rerank --tasks nq,cmrc --json-out bench/results/rerank_probe_amd.json

For each answerable question of bench/answers.py (NQ, CMRC), the passages `longdoc ask` would show
the model (its retrieval, its packing) go through the model once, framed like read mode's scan
(prompts/ask_scan.txt): the question before them and after them. Recorded per passage, per layer
from --first to --last of the depth: the attention mass the closing question pays its tokens, and
the mass a content-free question ("N/A") placed between the passages and the real question pays
them (the calibration of in-context re-ranking: what a passage draws for its place alone, not for
the question). Which passages hold a reference answer is recorded too, so every way of ranking
(retrieval, attention per token or in sum, calibrated or not, one layer or several) is scored
afterwards from the same forward passes: `--report` prints the rank of the first passage that
holds the answer under each. Rows are written after each question; a re-run resumes.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from bench.answers import Probe, contains, probe_parser
from longdoc.model.protocol import Prompt

CALIBRATION = "N/A"


def main() -> None:
    parser = probe_parser("bench.rerank", __doc__, "nq,cmrc")
    parser.add_argument("--first", type=float, default=0.15)
    parser.add_argument("--last", type=float, default=0.5)
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.json_out.read_text()))
        return
    from longdoc.tasks.ask import format_sources
    from longdoc.tasks.prompts import load_prompt
    from longdoc.tasks.scan import MARKER

    probe = Probe(args)
    model = probe.model
    scan_prompt = load_prompt("ask_scan")
    for item, document, sources, started in probe.pending():
        passages = [format_sources([s], document.kind) for s in sources]
        rendered = scan_prompt.render(question=item.question, passages=MARKER)
        calibration = scan_prompt.render(question=CALIBRATION, passages=MARKER)
        layers = _masses(model, rendered, calibration, passages, args.first, args.last)
        row = {"key": item.key, "task": item.task, "question": item.question,
               "holds": [contains(s.text, item.answers) for s in sources],
               "retrieval": [s.score for s in sources], "tokens": [model.count_tokens(p) for p in passages],
               "layers": layers, "seconds": round(time.perf_counter() - started, 1)}
        probe.keep(row)
        first = row["holds"].index(True) + 1 if any(row["holds"]) else None
        print(f"{item.task:5} {row['seconds']:6.1f}s holder at {first} of {len(sources)}  {item.question[:60]!r}", flush=True)
    report(probe.done)


def _masses(model, rendered: Prompt, calibration: Prompt, passages: list[str], first: float, last: float) -> dict[str, dict[str, list[float]]]:  # type: ignore[no-untyped-def]
    """Per layer: the closing question's and the calibration question's attention mass on each passage."""
    from longdoc.engine.passage_attention import PassageAttention, ScoringConfig
    from longdoc.tasks.scan import MARKER, _closing

    scorer = PassageAttention(model.model, ScoringConfig(first=first, last=last))
    scorer.layers = list(range(scorer.layers[0], scorer.layers[-1] + 1))
    text = model._text(rendered)
    before, _, after = text.partition(MARKER)
    # The calibration's closing lines (no chat end), then the real closing lines: the real question
    # sees the calibration, the calibration never sees the real question (as `rerank` reads them).
    calib_after = _closing(calibration) + "\n"
    encode = model.tokenizer.encode
    prefix = encode(before, add_special_tokens=not model.chat)
    encoded = [encode(p, add_special_tokens=False) for p in passages]
    calib = encode(calib_after, add_special_tokens=False)
    suffix = encode(after, add_special_tokens=False)
    ids = [*prefix, *(t for p in encoded for t in p), *calib, *suffix]
    bounds, at = [], len(prefix)
    for p in encoded:
        bounds.append((at, at + len(p)))
        at += len(p)
    calib_start, question_start = at, at + len(calib)
    with torch.inference_mode():
        caught = scorer._run(ids)
    out: dict[str, dict[str, list[float]]] = {}
    for index in scorer.layers:
        question = scorer._attention_to_keys(index, caught[index], question_start)
        both = scorer._attention_to_keys(index, caught[index], calib_start)
        calib_mass = both - question  # the calibration's rows alone: sums are additive over query rows
        out[str(index)] = {"question": [float(question[a:b].sum()) for a, b in bounds],
                           "calibration": [float(calib_mass[a:b].sum()) for a, b in bounds]}
    return out


def _rank_of_holder(scores: list[float], holds: list[bool]) -> int | None:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranks = [r for r, i in enumerate(order, 1) if holds[i]]
    return ranks[0] if ranks else None


def report(done: dict) -> None:  # type: ignore[type-arg]
    rows = [r for r in done["rows"] if any(r["holds"])]
    print(f"{len(rows)} of {len(done['rows'])} questions have a passage holding the answer among those shown")
    if not rows:
        return
    layers = sorted(set.intersection(*(set(r["layers"]) for r in rows)), key=int)
    ways: dict[str, list[int]] = {"retrieval order": [r["holds"].index(True) + 1 for r in rows]}

    def ranks(score) -> list[int]:  # type: ignore[no-untyped-def]
        return [_rank_of_holder(score(r), r["holds"]) for r in rows]  # type: ignore[misc]

    def per(r, layer, name):  # type: ignore[no-untyped-def]
        return r["layers"][layer][name]

    for group in [[l] for l in layers] + [layers[i : i + 3] for i in range(0, len(layers), 3)] + [layers] + [["8", "9"]]:
        tag = "+".join(group)
        ways[f"density L{tag}"] = ranks(lambda r, g=group: [sum(per(r, l, "question")[i] for l in g) / r["tokens"][i] for i in range(len(r["holds"]))])
        ways[f"calibrated L{tag}"] = ranks(lambda r, g=group: [sum(per(r, l, "question")[i] - per(r, l, "calibration")[i] for l in g) for i in range(len(r["holds"]))])
        ways[f"calib ratio L{tag}"] = ranks(lambda r, g=group: [sum(per(r, l, "question")[i] for l in g) / max(1e-9, sum(per(r, l, "calibration")[i] for l in g)) for i in range(len(r["holds"]))])
    for task in sorted({r["task"] for r in rows}):
        picks = [n for n, r in enumerate(rows) if r["task"] == task]
        print(f"\n{task} (n={len(picks)}): share with the answer's passage at rank 1 / within 3 / within 4 (shown); median rank")
        for name, values in ways.items():
            mine = [values[n] for n in picks]
            print(f"  {name:28} @1 {sum(v == 1 for v in mine) / len(mine):.2f}  @3 {sum(v <= 3 for v in mine) / len(mine):.2f}  @4 {sum(v <= 4 for v in mine) / len(mine):.2f}  median {statistics.median(mine)}")


if __name__ == "__main__":
    sys.exit(main())
