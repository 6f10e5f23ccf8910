"""Decoding speed with the GGUF's 4-bit codes (weights "auto") against the float weights, same run.

    python bench/decode.py [--models qwen2.5-1.5b,qwen2.5-0.5b] [--steps 32] [--json-out FILE]

Per preset and mode: milliseconds per decoding step after a 400-token prompt, one stream and 8
streams batched, the same model object switched between modes (the float weights stay loaded
beside the codes), alternating so both modes see the same machine load; and whether the first 32
greedy tokens of a real prompt come out the same. Figures are for this CPU only: name it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.harness import cpu_model  # noqa: E402
from longdoc.engine.int4_decode import Int4DecodeLinear  # noqa: E402
from longdoc.engine.loading import load_model  # noqa: E402

PROMPT = "Explain in a short paragraph why ships float, for a ten-year-old."


def set_mode(model: nn.Module, int4: bool) -> None:
    """Switch the linears that carry codes between the int4 path and plain `nn.Linear`."""
    for module in model.modules():
        if hasattr(module, "int4_packed"):
            module.__class__ = Int4DecodeLinear if int4 else nn.Linear


def step_ms(reader, batch: int, steps: int) -> float:  # type: ignore[no-untyped-def]
    ids = torch.randint(100, 20000, (1, 400)).expand(batch, -1).contiguous()
    with torch.inference_mode():
        cache = reader.new_cache()
        token = reader.read(cache, ids).argmax(-1)[:, None]
        mask = torch.ones_like(token, dtype=torch.bool)
        for _ in range(2):
            reader.step(cache, token, mask)
        started = time.perf_counter()
        for _ in range(steps):
            reader.step(cache, token, mask)
    return (time.perf_counter() - started) / steps * 1000


def measure(name: str, home: Path, steps: int) -> dict[str, object]:
    local = load_model(name, home)
    carried = sum(hasattr(m, "int4_packed") for m in local.model.modules())
    row: dict[str, object] = {"model": name, "int4_linears": carried, "dtype": str(local.model.dtype)}
    outputs = {}
    for mode in ("float", "int4", "float", "int4"):  # alternate: both see the same load
        set_mode(local.model, mode == "int4")
        for batch in (1, 8):
            key = f"{mode}_b{batch}_ms"
            row[key] = min(float(row.get(key, 1e9)), step_ms(local.reader, batch, steps))  # type: ignore[arg-type]
        outputs[mode] = local.generate([PROMPT])[0][:400]
    for batch in (1, 8):
        f, q = row[f"float_b{batch}_ms"], row[f"int4_b{batch}_ms"]
        row[f"b{batch}_tokens_per_s"] = {"float": round(batch * 1000 / f, 2), "int4": round(batch * 1000 / q, 2)}  # type: ignore[operator]
        row[f"b{batch}_speedup"] = round(f / q, 2)  # type: ignore[operator]
    row["same_greedy_text"] = outputs["float"] == outputs["int4"]
    row["texts"] = outputs
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-1.5b,qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = [measure(name, args.home, args.steps) for name in args.models.split(",")]
    report = {"cpu": cpu_model(), "torch": torch.__version__, "rows": rows}
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "texts"}))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
