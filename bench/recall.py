"""Long-context recall: a needle in a haystack of Paul Graham essays, by length x depth, per method.

The needle is bench/recall_blocks.py's first fact (the observatory safe's combination, 7-3-9-1),
planted at each relative depth of a haystack cut to the target length in model tokens (the
essays repeat past ~180K tokens). A cell is found when the answer contains the combination.

Methods:
  retrieval       `ask` as the CLI runs it: index the document (MiniLM + BM25, a fresh home), hybrid
                  search, answer from the packed passages
  engine+blocks   the whole prompt read by the segment engine with block memory (`reading_config()`,
                  as `ask --mode read` loads it), through `LocalModel.generate`
  engine window   the same prompt, engine with the window only (`SegmentCacheConfig()`, blocks=0)
  full attention  the same prompt, plain transformers generation; only within the trained context

The three model methods read the identical prompt (recall_blocks.build_prompt). Each (method,
length) runs in a fresh process over all depths. Cells outside the run's sizes, past the trained
context, or after a shorter length of the same method ran out of time are kept as "not run" with
the reason, never as misses.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from bench.harness import Row, essays_dir, load_local, log, measured, run_header, run_in_fresh_process, save_results
from bench.recall_blocks import FACTS, build_prompt, filler_text, plant_fact

METHODS = {
    "retrieval": "ask: index + hybrid retrieval + answer",
    "engine+blocks": "engine read, block memory (reading_config)",
    "engine window": "engine read, window only (blocks=0)",
    "full attention": "plain transformers generate, DynamicCache",
}
FULL_LENGTHS = (8192, 32768, 131072, 524288, 1048576)
FULL_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
# --quick, for a 2-core CPU, where the 0.5B model reads ~30-150 tokens/s (fp32, or sharing the
# CPU): one length past the 1,600-token window, so depths 10% and 50% lie beyond it and 90% inside.
QUICK_LENGTHS = (4096,)
# Retrieval's answer costs the same at any length and indexing runs ~3,500 tokens/s: the longest it can do in minutes too.
QUICK_RETRIEVAL_LENGTHS = (4096, 131072)
QUICK_DEPTHS = (0.1, 0.5, 0.9)
ANSWER_TOKENS = 32
FACT, QUESTION, KEYS = FACTS[0]


def plan(quick: bool, trained_context: int) -> list[Row]:
    """Every (method, length) of the grid: either to run (with its depths) or not run, and why."""
    lengths = sorted({*FULL_LENGTHS, *(QUICK_RETRIEVAL_LENGTHS if quick else ())})
    cases = []
    for method in METHODS:
        wanted = (QUICK_RETRIEVAL_LENGTHS if method == "retrieval" else QUICK_LENGTHS) if quick else FULL_LENGTHS
        for tokens in lengths:
            case: Row = {"method": method, "tokens": tokens}
            if method == "full attention" and trained_context and tokens + 256 > trained_context:
                case["skip"] = f"beyond the model's trained context ({trained_context:,} tokens)"
            elif tokens not in wanted:
                case["skip"] = "outside the --quick sizes (too long for this CPU in the time)"
            cases.append(case)
    return cases


def haystack(essays: Path, tokens: int) -> str:
    """The essays, repeated enough to give at least `tokens` model tokens."""
    text = filler_text(essays)
    return text * max(1, math.ceil(tokens * 6 / len(text)))  # English runs ~4-5 characters a token


def run_case(case: Row) -> list[Row]:
    """One method at one length, every depth (runs in a fresh process)."""
    from longdoc.engine.cache_config import SegmentCacheConfig, reading_config

    method = case["method"]
    local, load_s = load_local(case["model"], case["device"], reading_config() if method == "engine+blocks" else SegmentCacheConfig())
    filler = haystack(Path(case["essays"]), case["tokens"])
    rows = []
    for depth in case["depths"]:
        row: Row = {"method": method, "tokens": case["tokens"], "depth": depth, "load_s": load_s}
        with measured(row):
            answer, prompt_tokens, retrieved = _answer(method, local, filler, case["tokens"], depth)
        row.update(prompt_tokens=prompt_tokens, answer=answer[:200], found=any(k in answer.lower() for k in KEYS))
        if retrieved is not None:
            row["retrieved"] = retrieved
        rows.append(row)
        print(json.dumps(row), flush=True)  # kept by the parent even if a later depth runs out of time
        log(f"recall {method} {case['tokens']} depth {depth}: {row['found']} in {row['seconds']} s: {answer[:60]!r}")
    return rows


def _answer(method: str, local, filler: str, tokens: int, depth: float) -> tuple[str, int, bool | None]:  # type: ignore[no-untyped-def]
    """The answer, the prompt's tokens, and (retrieval only) whether the needle was among the passages."""
    if method == "retrieval":
        return ask_by_retrieval(local, plant_fact(local.tokenizer, filler, FACT, tokens, depth))
    from bench.baselines import full_attention_generate
    from longdoc.model.protocol import GenerationOptions

    prompt = build_prompt(local.tokenizer, filler, FACT, QUESTION, tokens, depth)
    if method == "full attention":
        return full_attention_generate(local, prompt, ANSWER_TOKENS), len(local.encode(prompt)), None
    (answer,) = local.generate([prompt], GenerationOptions(max_new_tokens=ANSWER_TOKENS))
    return answer.strip(), len(local.encode(prompt)), None


def ask_by_retrieval(local, text: str) -> tuple[str, int, bool]:  # type: ignore[no-untyped-def]
    """`longdoc ask` on `text` with a fresh home: the answer, the document's tokens, and whether
    the needle was among the passages given to the model."""
    from longdoc.document import Document, Page
    from longdoc.memory.embedder import SentenceTransformerEmbedder
    from longdoc.memory.index import open_memory
    from longdoc.tasks.ask import ask
    from longdoc.tasks.results import ResultCache

    document = Document(source="haystack.txt", pages=(Page(1, text),))
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        memory, _ = open_memory(document, SentenceTransformerEmbedder(None), home=Path(home))
        answer = ask(document, memory, QUESTION, local, ResultCache(Path(home)))
    return answer.text, local.count_tokens(text), any(FACT[:40] in source.text for source in answer.sources)


def trained_context_of(spec: str) -> int:
    """The model's trained positions, from its converted config (no weights loaded)."""
    from longdoc.engine.loading import resolve_model
    from longdoc.memory.store import default_home

    config = json.loads((resolve_model(spec, default_home()).directory / "config.json").read_text())
    return int(config.get("max_position_embeddings") or 0)


def run(args: argparse.Namespace) -> Row:
    """The whole suite; writes results/recall.json after every case so an interrupted run keeps its cells."""
    model = args.models[0]
    essays = essays_dir(args.essays)
    depths = QUICK_DEPTHS if args.quick else FULL_DEPTHS
    payload = {**run_header("recall", args), "model": model, "methods": METHODS, "depths": list(depths),
               "needle": FACT, "question": QUESTION, "rows": []}
    stopped: dict[str, str] = {}  # method -> why its longer lengths are not run
    for case in plan(args.quick, trained_context_of(model)):
        method, tokens = case["method"], case["tokens"]
        reason = case.get("skip") or stopped.get(method)
        if reason:
            payload["rows"] += [{**case, "depth": d, "not_run": reason} for d in depths]
            continue
        log(f"recall: {method} at {tokens} tokens, depths {list(depths)}")
        job = {"suite": "recall", "method": method, "tokens": tokens, "depths": list(depths),
               "model": model, "device": args.device, "essays": str(essays)}
        result = run_in_fresh_process(job, args.case_timeout)
        if isinstance(result, dict):  # the process failed: the depths it had not finished, and longer lengths
            why, finished = result["error"], result.get("partial", [])
            done = {row["depth"] for row in finished}
            payload["rows"] += finished + [{"method": method, "tokens": tokens, "depth": d, "not_run": why}
                                           for d in depths if d not in done]
            stopped[method] = f"a shorter length ({tokens:,} tokens) already {why}"
        else:
            payload["rows"] += result
        save_results(args.out, "recall", payload)
    save_results(args.out, "recall", payload)
    return payload
