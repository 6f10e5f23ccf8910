"""Which layers' attention picks a planted fact's passage: the probe behind read mode's scoring layers.

    python -m bench.read_layers --essays DIR [--model qwen2.5-1.5b] [--trials 2] [--windows 2]
        [--passages 7] --json-out F

Each trial plants one fact of bench/read_recall.FACTS and its two look-alikes among passages of
the essays (~250 tokens each), frames each window of passages with the question as the scan does,
runs the model to its top layer and keeps, for every layer, each passage's share of the attention
the closing question pays its window's passages. Printed: the fact passage's rank among all the
trial's passages per layer, and its lead over the best other passage for a few layer ranges.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench.harness import Row, essays_dir, load_local, log, script_parser, write_json_atomic
from bench.read_recall import FACTS, paragraphs

RANGES = ((0.3, 0.35), (0.3, 0.5), (0.3, 0.6), (0.5, 0.7), (0.3, 0.9))


def trial(model: object, pieces: list[str], number: int, windows: int, per: int, rng: random.Random) -> Row:
    """Per-layer shares of every passage for one planted fact."""
    import torch

    from longdoc.engine.passage_attention import PassageAttention, ScoringConfig

    fact = FACTS[number % len(FACTS)]
    tokenizer = model.tokenizer  # type: ignore[attr-defined]
    count = model.count_tokens  # type: ignore[attr-defined]
    passages, current, index = [], "", rng.randrange(len(pieces) - 400)
    while len(passages) < windows * per:
        current = f"{current} {pieces[index]}".strip()
        index += 1
        if count(current) >= 250:
            passages, current = [*passages, current], ""
    target = rng.randrange(len(passages))
    passages[target] += " " + fact.text
    for look_alike in fact.look_alikes:
        other = rng.choice([i for i in range(len(passages)) if i != target])
        passages[other] += " " + look_alike
    scorer = PassageAttention(model.model, ScoringConfig(first=0.0, last=1.0))  # type: ignore[attr-defined]
    text = model._text(f"Question: {fact.question}\n\n<document>\n\x00\n</document>\n\nQuestion: {fact.question}")  # type: ignore[attr-defined]
    before, _, after = text.partition("\x00")
    shares: list[list[list[float]]] = []  # window, layer, passage
    for start in range(0, len(passages), per):
        encoded = [tokenizer.encode(f"[{start + n + 1}] {p}\n\n", add_special_tokens=False) for n, p in enumerate(passages[start : start + per])]
        prefix, suffix = tokenizer.encode(before, add_special_tokens=False), tokenizer.encode(after, add_special_tokens=False)
        ids = [*prefix, *(t for e in encoded for t in e), *suffix]
        with torch.inference_mode():
            caught = scorer._run(ids)
        bounds, at = [], len(prefix)
        for e in encoded:
            bounds.append((at, at + len(e)))
            at += len(e)
        per_layer = []
        for layer in scorer.layers:
            mass = scorer._attention_to_keys(layer, caught[layer], len(ids) - len(suffix))
            masses = [float(mass[a:b].sum()) for a, b in bounds]
            per_layer.append([m / sum(masses) for m in masses])
        shares.append(per_layer)
    return {"fact": fact.text, "target": target, "shares": shares}


def rank_and_lead(row: Row, layers: list[int]) -> tuple[int, float]:
    """The fact passage's rank among all the trial's passages for the summed layers, and its lead."""
    flat: list[float] = []
    for window in row["shares"]:
        summed = [sum(window[layer][p] for layer in layers) for p in range(len(window[0]))]
        flat += [value / sum(summed) for value in summed]
    target = row["target"]
    other = max(value for i, value in enumerate(flat) if i != target)
    return 1 + sum(value > flat[target] for value in flat), flat[target] / other


def main() -> None:
    parser = script_parser("bench.read_layers", __doc__)
    parser.add_argument("--essays")
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--passages", type=int, default=7)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()
    model, _ = load_local(args.model, cache=None)
    pieces = paragraphs(essays_dir(args.essays))
    rng = random.Random(7)
    rows = []
    for number in range(args.trials):
        rows.append(trial(model, pieces, number, args.windows, args.passages, rng))
        log(f"trial {number} done")
        write_json_atomic(args.json_out, {"model": args.model, "rows": rows})
    layers = len(rows[0]["shares"][0])
    for layer in range(layers):
        print(f"layer {layer:2d}: rank {[rank_and_lead(r, [layer])[0] for r in rows]}")
    for first, last in RANGES:
        span = list(range(int(layers * first), int(layers * last) + 1))
        print(f"layers {span[0]}-{span[-1]}: " + json.dumps([f"rank {k}, lead {v:.2f}x" for k, v in (rank_and_lead(r, span) for r in rows)]))


if __name__ == "__main__":
    main()
