"""Which CPU kernel and model dtype decode and read fastest here, each as `load_model` would set it up.

    python -m bench.kernel_variants [--model qwen2.5-1.5b] [--variants int4-bf16,int8-bf16,int8-fp32] [--json-out FILE]

Each variant loads the model in a fresh process, as a user's run would (lean: the int8 kernel lets
the float weights go): int4-bf16 is the GGUF's codes with bf16 prompts (the default on AMX CPUs),
int8-bf16 fbgemm's dynamic int8 on a bf16 model, int8-fp32 the same on an fp32 model (the default
on CPUs without native bf16). Per variant, two rounds of: ms per one-row decoding step after a
400-token prompt, and tokens/s reading 1,024 tokens; plus the load time, resident memory and the
greedy reply's opening. Variants a CPU cannot run (bf16 without native bf16) are skipped.
Figures are for this CPU only: name it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import cpu_model, script_parser

VARIANTS = {"int4-bf16": ("int4", "bf16"), "int8-bf16": ("int8", "bf16"), "int8-fp32": ("int8", "fp32")}


def run_variant(model: str, weights: str, dtype: str, home: Path) -> dict[str, object]:
    """One variant in this process: load, then time steps and reading."""
    import psutil

    from bench.decode import PROMPT, read_tokens_per_s, step_ms
    from longdoc.engine import loading

    if dtype == "fp32":  # what a CPU without native bf16 gets
        loading.cpu_has_native_bf16 = lambda: False
    started = time.perf_counter()
    local = loading.load_model(model, home, weights=weights)
    row: dict[str, object] = {"load_s": round(time.perf_counter() - started, 1), "dtype": str(local.model.dtype),
                              "rss_gb": round(psutil.Process().memory_info().rss / 1e9, 2)}
    for round_ in range(2):
        row[f"b1_ms_{round_}"] = round(step_ms(local.reader, 1, 32), 1)
        row[f"read_1024_tokens_per_s_{round_}"] = round(read_tokens_per_s(local.reader, 1024), 1)
    row["reply"] = local.generate([PROMPT])[0][:200]
    return row


def main() -> None:
    parser = script_parser("bench.kernel_variants", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if args.one:  # the child process of one variant
        weights, dtype = VARIANTS[args.one]
        print(json.dumps(run_variant(args.model, weights, dtype, args.home)))
        return
    from longdoc.hardware import cpu_has_native_bf16

    rows: dict[str, object] = {"model": args.model, "cpu": cpu_model()}
    for name in args.variants.split(","):
        if VARIANTS[name][1] == "bf16" and not cpu_has_native_bf16():
            rows[name] = "skipped: no native bf16 on this CPU"
            continue
        child = subprocess.run([sys.executable, "-m", "bench.kernel_variants", "--model", args.model, "--home", str(args.home),
                                "--one", name], capture_output=True, text=True, check=True)
        rows[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(name, json.dumps(rows[name]), flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
