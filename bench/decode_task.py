"""One-stream decoding on the prompts `longdoc translate` really sends: longdoc with copy lookahead
off and on, and llama.cpp on the same GGUF and the same prompt tokens, in one run.

    python -m bench.decode_task [--model qwen2.5-1.5b] [--chars 1500] [--lookahead 5] [--json-out FILE]

bench/decode.py times steps on random tokens, where nothing can be copied; a translation, answer
or summary repeats its own names and the document's, which copy lookahead (engine/lookahead.py)
guesses and checks several to a pass. Here the translate task runs once on the first --chars
characters of samples/tea_road.zh.txt with a recording model, to collect its prompts as sent
(chat template applied, glossary and previous piece included). Each prompt is then decoded greedily
by longdoc with lookahead 0 and --lookahead (alternating), and by llama.cpp (`xllamacpp`, 2
threads) for as many tokens as longdoc's first output had, end-of-text ignored. Decoding rate for
each: tokens after the first over the seconds after the first (longdoc: from its token callback;
llama.cpp: its own `predicted_per_second`), so prompt reading is left out of all three. Outputs
of the two longdoc settings are compared word for word (greedy: equal up to the rounding of a
many-row pass). Name the CPU beside the figures.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.harness import ROOT, cpu_model, script_parser, write_json_atomic
from bench import llamacpp_decode
from longdoc.document import Document, Page
from longdoc.engine.loading import assemble_preset, load_model
from longdoc.engine.presets import PRESETS
from longdoc.model.protocol import GenerationOptions
from longdoc.tasks.results import ResultCache
from longdoc.tasks.translate import translate


class _Recorder:
    """The local model, keeping each prompt it is asked to continue and the options it came with."""

    def __init__(self, model: Any) -> None:
        self._model, self.calls = model, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, prompts: Any, options: GenerationOptions | None = None, **kwargs: Any) -> list[str]:
        options = options or GenerationOptions()
        self.calls += [(prompt, options) for prompt in prompts]
        return self._model.generate(prompts, options, **kwargs)


def task_prompts(local: Any, chars: int) -> list[tuple[Any, GenerationOptions]]:
    text = (ROOT / "samples" / "tea_road.zh.txt").read_text(encoding="utf-8")[:chars]
    recorder = _Recorder(local)
    with tempfile.TemporaryDirectory() as scratch:
        list(translate(Document(source="tea_road.zh.txt", pages=(Page(1, text),)), recorder, ResultCache(Path(scratch))))
    return recorder.calls


def longdoc_rate(local: Any, prompt: Any, options: GenerationOptions, lookahead: int) -> tuple[float, int, str]:
    """(tokens a second after the first, tokens generated, the output)."""
    stamps: list[float] = []

    def on_token(count: int) -> None:
        stamps.extend([time.perf_counter()] * count)

    (text,) = local.generate([prompt], replace(options, lookahead=lookahead, on_token=on_token, on_read=None, on_reply=None))
    seconds = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    return (len(stamps) - 1) / seconds, len(stamps), text


def llama_rate(server: Any, ids: list[int], tokens: int) -> float:
    request = {"prompt": ids, "n_predict": tokens, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
    reply = server.handle_completions(request)
    return float(reply["timings"]["predicted_per_second"])


def main() -> None:
    parser = script_parser("bench.decode_task", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--chars", type=int, default=1500)
    parser.add_argument("--lookahead", type=int, default=5)
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    local = load_model(args.model, args.home)
    calls = task_prompts(local, args.chars)
    rows: list[dict[str, Any]] = []
    for prompt, options in calls:
        row: dict[str, Any] = {"prompt_tokens": len(local.encode(prompt))}
        for setting in (0, args.lookahead, 0, args.lookahead):  # alternating, best of two each
            rate, count, text = longdoc_rate(local, prompt, options, setting)
            row[f"tokens_per_s_{setting}"] = round(max(rate, row.get(f"tokens_per_s_{setting}", 0.0)), 2)
            row.setdefault(f"tokens_{setting}", count)
            row.setdefault(f"text_{setting}", text)
        row["same_output"] = row["text_0"] == row[f"text_{args.lookahead}"]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not k.startswith("text")}), flush=True)
    encoded = [local.encode(prompt) for prompt, _ in calls]
    del local
    gc.collect()
    why = llamacpp_decode.missing()
    if why is None:
        with tempfile.TemporaryDirectory() as scratch:
            gguf = assemble_preset(PRESETS[args.model], Path(scratch) / f"{args.model}.gguf")
            server = llamacpp_decode.start(gguf, slots=1, context=4096)
            for row, ids in zip(rows, encoded):
                row["llama_cpp_tokens_per_s"] = round(max(llama_rate(server, ids, row["tokens_0"]) for _ in range(2)), 2)
            del server
    total = {key: sum(r[f"tokens_{s}"] for r in rows) / sum(r[f"tokens_{s}"] / r[f"tokens_per_s_{s}"] for r in rows)
             for key, s in (("off", 0), ("on", args.lookahead))}
    summary: dict[str, Any] = {f"longdoc_{k}_tokens_per_s": round(v, 2) for k, v in total.items()}
    summary["lookahead_speedup"] = round(total["on"] / total["off"], 2)
    summary["same_outputs"] = f"{sum(r['same_output'] for r in rows)} of {len(rows)}"
    if why is None:
        llama = sum(r["tokens_0"] for r in rows) / sum(r["tokens_0"] / r["llama_cpp_tokens_per_s"] for r in rows)
        summary.update(llama_cpp_tokens_per_s=round(llama, 2), off_vs_llama_cpp=round(total["off"] / llama, 2),
                       on_vs_llama_cpp=round(total["on"] / llama, 2))
    else:
        summary["llama_cpp"] = why
    print(json.dumps(summary))
    if args.json_out:
        write_json_atomic(args.json_out, {"cpu": cpu_model(), "model": args.model, "lookahead": args.lookahead,
                                          "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
