"""Quality on the development split in ../shared/eval/, per model preset, each against a baseline.

The metrics are bench/eval_tasks.py's, through the same library calls as the CLI, with a fresh
result cache and index home per model (nothing reused from earlier runs):

  summarize   ROUGE-L F1 on leval gov_report (shortest reports first)   vs  lead: the report's first 300 words
  ask, NQ     answer contains the reference                            vs  search only: the top 3 hits of
                                                                            `longdoc search` contain it (no model)
  ask, QuALITY  4-way accuracy                                          vs  chance (0.25)
  translate   chrF / BLEU on ntrex, zh->en and en->zh                   vs  plain loop: each line alone through
                                                                            transformers generate, same model
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness import Row, load_local, log, run_header, save_results

FULL = {"nq": 10, "quality": 10, "summarize": 3, "lines": 40}  # the sizes of bench/README.md's table
QUICK = {"nq": 2, "quality": 2, "summarize": 1, "lines": 2}  # lines are translated twice each way (longdoc, baseline)
LEAD_WORDS = 300  # eval_tasks asks longdoc for 300-word summaries
CHANCE = 0.25


def run_model(spec: str, sizes: dict[str, int], device: str) -> list[Row]:
    """Every metric for one preset, with its baseline measured beside it."""
    from bench import eval_tasks as tasks
    from bench.baselines import full_attention_generate, plain_translate
    from longdoc.memory.embedder import SentenceTransformerEmbedder
    from longdoc.tasks.results import ResultCache

    model, load_s = load_local(spec, device)
    embedder = SentenceTransformerEmbedder(None)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-home-") as scratch:
        home = Path(scratch)
        results = ResultCache(home)

        def timed(task: str, run):  # type: ignore[no-untyped-def]
            log(f"quality {spec}: {task}")
            started = time.perf_counter()
            value = run()
            return value, round(time.perf_counter() - started, 1)

        summary, seconds = timed("summarize", lambda: tasks.eval_summarize(model, results, sizes["summarize"]))
        lead = tasks.eval_summarize(model, results, sizes["summarize"], summarizer=lambda d: " ".join(d.text.split()[:LEAD_WORDS]))
        rows.append(_row(spec, "summarize (gov_report)", "ROUGE-L F1", summary["rougeL"], summary["n"], seconds,
                         f"lead {LEAD_WORDS} words", lead["rougeL"]))

        answer_with = tasks.answerer("retrieve", model, results, embedder, home=home)
        nq, seconds = timed("nq", lambda: tasks.eval_nq(answer_with, sizes["nq"]))
        search = tasks.eval_nq(_search_only(embedder, home), sizes["nq"])
        rows.append(_row(spec, "ask (NQ)", "answer contains reference", nq["accuracy"], nq["n"], seconds,
                         "search only: top 3 hits contain it", search["accuracy"]))

        quality, seconds = timed("quality", lambda: tasks.eval_quality(answer_with, sizes["quality"]))
        rows.append(_row(spec, "ask (QuALITY)", "4-way accuracy", quality["accuracy"], quality["n"], seconds,
                         "chance", CHANCE))

        translated, _ = timed("translate", lambda: tasks.eval_translate(model, results, sizes["lines"], reverse=True))
        generate = lambda prompt, tokens: full_attention_generate(model, prompt, tokens)  # noqa: E731
        plain, _ = timed("translate baseline", lambda: tasks.eval_translate(
            model, results, sizes["lines"], reverse=True, translator=lambda lines, _s, target: plain_translate(generate, lines, target)))
        for direction in ("zh-en", "en-zh"):
            ours, base = translated[direction], plain[direction]
            for metric in ("chrF", "BLEU"):
                rows.append(_row(spec, f"translate {direction} (ntrex)", metric, ours[metric], ours["lines"],
                                 round(ours["seconds"], 1), "plain loop, same model", base[metric],
                                 baseline_seconds=round(base["seconds"], 1)))
    for row in rows:
        row["load_s"] = load_s
    return rows


def _row(model: str, task: str, metric: str, value: float, n: int, seconds: float, baseline: str,
         baseline_value: float, **extra: object) -> Row:
    return {"model": model, "task": task, "metric": metric, "value": round(value, 4), "n": n, "seconds": seconds,
            "baseline": baseline, "baseline_value": round(baseline_value, 4), **extra}


def _search_only(embedder, home: Path):  # type: ignore[no-untyped-def]
    """An "answerer" whose answer is the text of the top 3 hits of `longdoc search`: no model at all."""
    from longdoc.memory.index import open_memory
    from longdoc.tasks.ask import Answer

    def answer(document, question: str) -> Answer:  # type: ignore[no-untyped-def]
        memory, _ = open_memory(document, embedder, home=home)
        hits = memory.search(question, k=3)
        return Answer(question, "\n".join(hit.chunk.text for hit in hits), True, [], [], "search")

    return answer


def run(args: argparse.Namespace) -> Row:
    sizes = QUICK if args.quick else FULL
    payload = {**run_header("quality", args), "models": args.models, "sizes": sizes, "rows": []}
    for spec in args.models:
        payload["rows"] += run_model(spec, sizes, args.device)
        save_results(args.out, "quality", payload)
    return payload
