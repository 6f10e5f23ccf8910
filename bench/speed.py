"""Speed and memory: end-to-end summarize / ask / translate at growing sizes, against baselines.

Each (task, method, size) runs in a fresh process with a fresh result cache and index home, so its
time is uncached work and its peak memory is its own (the model is loaded before timing; load time
is recorded apart). Documents: the Paul Graham essays cut to N model tokens (summarize; ask, with
the recall needle planted at half depth), and CMRC 2018 Chinese articles from ../shared/eval/ cut
to N tokens (translate zh->en).

  summarize  longdoc (writing prompts batched 8 a call) | unbatched (batch_size=1, bench/summarize_speed.py's
             baseline) | full attention: one "summarize this" prompt | llama.cpp: the same prompt
  ask        longdoc retrieve | longdoc read (`ask --mode read`: the attention scan, then an answer) |
             full attention: the whole document + question | llama.cpp: the same prompt
  translate  longdoc (context + glossary, piece after piece) | plain loop: each paragraph alone
             through transformers generate | llama.cpp: the same loop
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.harness import (
    Row, cmrc_articles, cut_to_tokens, essays_dir, load_local, log, measured, run_header, run_in_fresh_process, save_results,
)

METHODS = {  # in the order the suite runs them
    "ask": ("longdoc retrieve", "longdoc read", "full attention", "llama.cpp"),
    "summarize": ("longdoc", "unbatched map", "full attention", "llama.cpp"),
    "translate": ("longdoc", "plain loop", "llama.cpp"),
}
# The first baseline is what the report's ratios divide by; the others get a column when measured.
BASELINES = {
    "summarize": ("full attention", "unbatched map", "llama.cpp"),
    "ask": ("full attention", "llama.cpp"),
    "translate": ("plain loop", "llama.cpp"),
}
FULL_SIZES = {"summarize": (1024, 4096, 16384, 32768), "ask": (1024, 4096, 16384, 32768), "translate": (1024, 4096)}
# --quick: a 2-core CPU decodes ~1-5 tokens/s here (fp32, shared), and a translation writes as many tokens as it reads.
QUICK_SIZES = {"summarize": (512, 1024), "ask": (1024, 4096), "translate": (16, 32)}
# Summary length asked of longdoc and the baselines alike: shorter than longdoc's default (250) because
# writing the final summary dominates a small document's time on a CPU, and the point is how time grows.
SUMMARY_WORDS = 120
SUMMARY_TOKENS = 200  # the baselines' cap: ~160 tokens make 120 words
ANSWER_TOKENS = 64


def source_text(task: str, essays: Path) -> str:
    if task == "translate":
        return "\n\n".join(p["context"] for article in cmrc_articles() for p in article["paragraphs"])
    from bench.recall import haystack

    return haystack(essays, 40_000)


def run_case(case: Row) -> Row:
    """One task, one method, one size (runs in a fresh process)."""
    from longdoc.engine.cache_config import SegmentCacheConfig, answering_config

    task, method, tokens = case["task"], case["method"], case["tokens"]
    config = answering_config() if method == "longdoc read" else SegmentCacheConfig()  # as the CLI loads it
    local, load_s = load_local(case["model"], case["device"], config)
    text = source_text(task, Path(case["essays"]))
    row: Row = {"task": task, "method": method, "tokens": tokens, "load_s": load_s}
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        perform = {"summarize": _summarize, "ask": _ask, "translate": _translate}[task]
        if method == "llama.cpp":
            from bench.baselines import LlamaCpp

            llama = LlamaCpp(case["model"], context=tokens * 2 + 1024)  # loaded before timing, like the model
            with measured(row):
                output = perform(local, text, tokens, method, Path(home), llama.generate)
        else:
            with measured(row):
                output = perform(local, text, tokens, method, Path(home), None)
    row["output_words"] = len(output.split())
    row["output"] = output[:200]
    if task == "ask":
        from bench.recall import KEYS

        row["found"] = any(k in output.lower() for k in KEYS)
    return row


def _full_generate(local):  # type: ignore[no-untyped-def]
    from bench.baselines import full_attention_generate

    return lambda prompt, max_new_tokens: full_attention_generate(local, prompt, max_new_tokens)


def _summarize(local, text: str, tokens: int, method: str, home: Path, generate) -> str:  # type: ignore[no-untyped-def]
    from bench.baselines import SUMMARY_PROMPT
    from longdoc.document import Document, Page
    from longdoc.tasks.results import ResultCache
    from longdoc.tasks.summarize import SummaryOptions, summarize

    document_text = cut_to_tokens(local.tokenizer, text, tokens)
    if method in ("longdoc", "unbatched map"):
        options = SummaryOptions(words=SUMMARY_WORDS, batch_size=8 if method == "longdoc" else 1)
        document = Document(source="essays.txt", pages=(Page(1, document_text),))
        return summarize(document, local, ResultCache(home), options).text
    generate = generate or _full_generate(local)
    return generate(SUMMARY_PROMPT.format(words=SUMMARY_WORDS, document=document_text), SUMMARY_TOKENS)


def _ask(local, text: str, tokens: int, method: str, home: Path, generate) -> str:  # type: ignore[no-untyped-def]
    from bench.recall import FACT, QUESTION, ask_by_retrieval
    from bench.recall_blocks import build_prompt, plant_fact
    from longdoc.document import Document, Page
    from longdoc.tasks.ask import ask_by_reading
    from longdoc.tasks.results import ResultCache

    if method == "longdoc retrieve":
        return ask_by_retrieval(local, plant_fact(local.tokenizer, text, FACT, tokens, 0.5))[0]
    if method == "longdoc read":
        document = Document(source="haystack.txt", pages=(Page(1, plant_fact(local.tokenizer, text, FACT, tokens, 0.5)),))
        return ask_by_reading(document, QUESTION, local, ResultCache(home)).text
    generate = generate or _full_generate(local)
    return generate(build_prompt(local.tokenizer, text, FACT, QUESTION, tokens, 0.5), ANSWER_TOKENS)


def _translate(local, text: str, tokens: int, method: str, home: Path, generate) -> str:  # type: ignore[no-untyped-def]
    from bench.baselines import plain_translate
    from longdoc.document import Document, Page
    from longdoc.tasks.results import ResultCache
    from longdoc.tasks.translate import TranslateOptions, translate

    source = cut_to_tokens(local.tokenizer, text, tokens)
    if method == "longdoc":
        document = Document(source="cmrc.zh.txt", pages=(Page(1, source),))
        pieces = translate(document, local, ResultCache(home), TranslateOptions(source="zh", target="en"))
        return "\n\n".join(p.text for p in pieces)
    return "\n\n".join(plain_translate(generate or _full_generate(local), source.split("\n\n"), "en"))


def _skip_reason(task: str, method: str, tokens: int, trained_context: int, llama_missing: str | None) -> str | None:
    if method == "llama.cpp" and llama_missing:
        return llama_missing
    if method == "full attention" and trained_context and tokens + 1024 > trained_context:
        return f"beyond the model's trained context ({trained_context:,} tokens)"
    return None


def task_sizes(value: str) -> tuple[str, tuple[int, ...]]:
    """`--sizes ask=1024,4096` -> ("ask", (1024, 4096)); an argparse type, so bad values get its one-line error."""
    task, _, numbers = value.partition("=")
    if task not in METHODS or not numbers:
        raise argparse.ArgumentTypeError(f"expected TASK=N[,N...] with TASK one of {', '.join(METHODS)}")
    try:
        return task, tuple(int(n) for n in numbers.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are whole numbers of tokens") from None


def run(args: argparse.Namespace) -> Row:
    """The whole suite; writes results/speed.json after every case."""
    from bench.baselines import llama_cpp_missing
    from bench.recall import trained_context_of

    model = args.models[0]
    essays = essays_dir(args.essays)
    sizes = {**(QUICK_SIZES if args.quick else FULL_SIZES), **dict(getattr(args, "sizes", None) or ())}
    trained, llama_missing = trained_context_of(model), llama_cpp_missing()
    payload = {**run_header("speed", args), "model": model, "methods": METHODS, "baselines": BASELINES,
               "sizes": sizes, "summary_words": SUMMARY_WORDS,
               "answer_tokens": ANSWER_TOKENS, "rows": []}
    for task, methods in METHODS.items():
        stopped: dict[str, str] = {}
        for tokens in sizes[task]:
            for method in methods:
                row: Row = {"task": task, "method": method, "tokens": tokens}
                reason = _skip_reason(task, method, tokens, trained, llama_missing) or stopped.get(method)
                if reason:
                    payload["rows"].append({**row, "not_run": reason})
                    continue
                log(f"speed: {task} / {method} at {tokens} tokens")
                job = {"suite": "speed", **row, "model": model, "device": args.device, "essays": str(essays)}
                result = run_in_fresh_process(job, args.case_timeout)
                if "error" in result:
                    stopped[method] = f"a smaller size ({tokens:,} tokens) already {result['error']}"
                    result = {**row, "not_run": result["error"]}
                payload["rows"].append(result)
                save_results(args.out, "speed", payload)
    save_results(args.out, "speed", payload)
    return payload
