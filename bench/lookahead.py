"""Decoding speed of real answers with copy lookahead (engine/lookahead.py) on and off, and
llama.cpp on the same prompts, same run.

    python -m bench.lookahead [--model qwen2.5-1.5b] [--limit 15] [--lookahead 0,4,8] [--weights auto] [--json-out FILE]

The prompts are the ones `longdoc ask` writes (retrieval mode, its default options) for the first
`--limit` NQ dev questions (English Wikipedia pages) and as many CMRC dev questions (Chinese
articles): caught at the model call, so what is decoded is exactly what a user's question decodes.
Each prompt is read once; every lookahead setting then decodes greedily from a copy of that
memory (up to ask's answer cap), alternating, so all see the same machine load. Reported: decoding
tokens/s per setting (all prompts' tokens over all their seconds), whether each output is the
same as with lookahead off, and llama.cpp (`xllamacpp` wheel, 2 threads, one slot) decoding as
many tokens after the same prompt tokens on the preset's own GGUF (its own timings). Figures are
for this CPU only: name it.
"""

from __future__ import annotations

import copy
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench import llamacpp_decode
from bench.answers import build_items, memory_of
from bench.harness import cpu_model, script_parser, write_json_atomic
from longdoc.engine.cache_config import answering_config
from longdoc.engine.generation import decode_from, left_pad
from longdoc.engine.loading import assemble_preset, load_model
from longdoc.engine.presets import PRESETS
from longdoc.model.protocol import GenerationOptions
from longdoc.tasks.ask import AskOptions, ask
from longdoc.tasks.results import ResultCache


class _Caught(Exception):
    """Raised by `_PromptCatcher` to stop `ask` once its first prompt is known."""


class _PromptCatcher:
    """The local model, except that `generate` records its prompts and options and stops."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.caught: tuple[Any, GenerationOptions] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, prompts: Any, options: GenerationOptions | None = None, **_: Any) -> list[str]:
        self.caught = (prompts[0], options or GenerationOptions())
        raise _Caught


def ask_prompts(local: Any, limit: int, home: Path) -> list[dict[str, Any]]:
    """The first prompt `ask` decodes for the first `limit` NQ and CMRC questions."""
    texts, items = build_items()
    chosen = [i for i in items if i.task == "nq"][:limit] + [i for i in items if i.task == "cmrc"][:limit]
    catcher, memories, prompts = _PromptCatcher(local), {}, []
    with tempfile.TemporaryDirectory() as scratch:
        results = ResultCache(Path(scratch))
        for item in chosen:
            document, memory = memory_of(item.document, texts, memories, home)
            catcher.caught = None
            try:
                ask(document, memory, item.question, catcher, results, AskOptions())
            except _Caught:
                pass
            if catcher.caught is not None:  # None: answered without the model (the scope check)
                prompt, options = catcher.caught
                prompts.append({"task": item.task, "question": item.question, "ids": local.encode(prompt),
                                "max_new_tokens": options.max_new_tokens})
    return prompts


def decode_settings(local: Any, prompt: dict[str, Any], settings: list[int]) -> dict[str, Any]:
    """Read the prompt once; decode it greedily with each lookahead setting from a copy."""
    reader = local.reader
    ids, valid = left_pad([prompt["ids"]], local.pad_id)
    cache = reader.new_cache()
    logits = reader.read(cache, ids, valid)
    row: dict[str, Any] = {"task": prompt["task"], "question": prompt["question"], "prompt_tokens": len(prompt["ids"])}
    for setting in settings:
        options = GenerationOptions(max_new_tokens=prompt["max_new_tokens"], lookahead=setting)
        mine = copy.deepcopy(cache)
        started = time.perf_counter()
        tokens = decode_from(reader, mine, logits.clone(), [prompt["ids"]], options, local.eos_ids, torch.Generator())[0]
        row[f"seconds_{setting}"] = round(time.perf_counter() - started, 3)
        row[f"tokens_{setting}"] = len(tokens)
        row[f"text_{setting}"] = local.tokenizer.decode(tokens, skip_special_tokens=True)
    return row


def llama_cpp_rates(name: str, prompts: list[dict[str, Any]], counts: list[int]) -> list[float | None]:
    """llama.cpp's decoding tokens/s after each prompt's tokens, `counts` tokens each."""
    if llamacpp_decode.missing():
        return [None] * len(prompts)
    rates: list[float | None] = []
    with tempfile.TemporaryDirectory() as scratch:
        gguf = assemble_preset(PRESETS[name], Path(scratch) / f"{name}.gguf")
        server = llamacpp_decode.start(gguf, slots=1, context=16384)
        try:
            for prompt, count in zip(prompts, counts):
                if count < 2:
                    rates.append(None)
                    continue
                request = {"prompt": prompt["ids"], "n_predict": count, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
                reply = server.handle_completions(request)
                rates.append(float(reply["timings"]["predicted_per_second"]) if "timings" in reply else None)
        finally:
            del server
            gc.collect()
    return rates


def summary(rows: list[dict[str, Any]], settings: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in ("nq", "cmrc", "all"):
        mine = [r for r in rows if task in ("all", r["task"])]
        if not mine:
            continue
        rates = {s: sum(r[f"tokens_{s}"] for r in mine) / sum(r[f"seconds_{s}"] for r in mine) for s in settings}
        part: dict[str, Any] = {"n": len(mine), "tokens_per_s": {s: round(v, 2) for v, s in zip(rates.values(), settings)}}
        for s in settings[1:]:
            part[f"speedup_{s}"] = round(rates[s] / rates[settings[0]], 2)
            part[f"same_text_{s}"] = sum(r[f"text_{s}"] == r[f"text_{settings[0]}"] for r in mine)
        timed = [r for r in mine if r.get("llama_cpp_tokens_per_s")]
        if timed:
            # llama.cpp's rate over the same tokens: total tokens over total seconds
            seconds = sum(r[f"tokens_{settings[0]}"] / r["llama_cpp_tokens_per_s"] for r in timed)
            llama = sum(r[f"tokens_{settings[0]}"] for r in timed) / seconds
            part["llama_cpp_tokens_per_s"] = round(llama, 2)
            for s in settings:
                ours = sum(r[f"tokens_{s}"] for r in timed) / sum(r[f"seconds_{s}"] for r in timed)
                part[f"vs_llama_cpp_{s}"] = round(ours / llama, 2)
        out[task] = part
    return out


def main() -> None:
    parser = script_parser("bench.lookahead", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--limit", type=int, default=15, help="questions per task (nq, cmrc)")
    parser.add_argument("--lookahead", default="0,4,8", help="settings to compare; the first is the baseline")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--index-home", type=Path, default=Path.home() / ".cache" / "longdoc-bench")
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    settings = [int(s) for s in args.lookahead.split(",")]
    local = load_model(args.model, args.home, cache=answering_config(), weights=args.weights)
    prompts = ask_prompts(local, args.limit, args.index_home)
    rows = []
    for prompt in prompts:
        rows.append(decode_settings(local, prompt, settings))
        print(json.dumps({k: v for k, v in rows[-1].items() if not k.startswith("text")}, ensure_ascii=False), flush=True)
        if args.json_out:
            write_json_atomic(args.json_out, {"cpu": cpu_model(), "model": args.model, "rows": rows})
    del local
    gc.collect()
    rates = llama_cpp_rates(args.model, prompts, [r[f"tokens_{settings[0]}"] for r in rows])
    for row, rate in zip(rows, rates):
        row["llama_cpp_tokens_per_s"] = rate
    report = {"cpu": cpu_model(), "torch": torch.__version__, "model": args.model, "weights": args.weights,
              "settings": settings, "summary": summary(rows, settings), "rows": rows}
    print(json.dumps(report["summary"], indent=1))
    if args.json_out:
        write_json_atomic(args.json_out, report)


if __name__ == "__main__":
    main()
