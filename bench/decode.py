"""Decoding speed with the low-bit decoding weights (weights "auto") against the float weights and
llama.cpp, same run.

    python -m bench.decode [--models qwen2.5-1.5b,qwen2.5-0.5b] [--steps 32] [--weights auto|int8|int4|lowbit] [--read TOKENS] [--apart]
        [--batches 1,8] [--json-out FILE]

Per preset and mode: milliseconds per decoding step after a 400-token prompt, one stream and 8
streams batched, the same model object switched between modes (the float weights stay loaded
beside the low-bit ones), alternating so both modes see the same machine load; whether the first
greedy tokens of a real prompt come out the same; and llama.cpp (the `xllamacpp` wheel, 2 threads)
on the preset's own assembled GGUF, after longdoc's model is freed. With --apart, first the
int8 kernel's linears that share an input (q/k/v, gate/up) multiplied as one matrix against apart:
two models loaded, steps alternating. Figures are for this CPU only: name it.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from pathlib import Path

import torch

from bench import llamacpp_decode
from bench.harness import cpu_model, script_parser
from longdoc.engine import decode_weights
from longdoc.engine.decode_weights import DecodeLinear, decode_rows_for, kernel_for, set_decode_rows
from longdoc.engine.loading import assemble_preset, load_model
from longdoc.engine.presets import PRESETS

PROMPT = "Explain in a short paragraph why ships float, for a ten-year-old."
MODES = ("float", "auto")


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


def read_tokens_per_s(reader, tokens: int) -> float:  # type: ignore[no-untyped-def]
    """Prompt reading: tokens/s for one prompt of `tokens` ids (whole segments of the engine)."""
    ids = torch.randint(100, 20000, (1, tokens))
    with torch.inference_mode():
        started = time.perf_counter()
        reader.read(reader.new_cache(), ids)
    return tokens / (time.perf_counter() - started)


def measure(
    name: str, home: Path, steps: int, weights: str = "auto", read: int = 0, batches: tuple[int, ...] = (1, 8)
) -> dict[str, object]:
    local = load_model(name, home, weights=weights, keep_float=True)  # switched to float below
    rows = decode_rows_for(local.model.dtype, kernel_for(local.model.dtype, weights))
    kinds: dict[str, int] = {}
    for module in local.model.modules():
        if isinstance(module, DecodeLinear):
            kinds[type(module).__name__] = kinds.get(type(module).__name__, 0) + 1
    row: dict[str, object] = {"model": name, "low_bit_layers": kinds, "dtype": str(local.model.dtype)}
    outputs = {}
    for mode in MODES + MODES:  # alternate: both see the same load
        set_decode_rows(local.model, rows if mode == "auto" else 0)
        for batch in batches:
            key = f"{mode}_b{batch}_ms"
            row[key] = min(float(row.get(key, 1e9)), step_ms(local.reader, batch, steps))  # type: ignore[arg-type]
        if read:
            key = f"{mode}_read_tokens_per_s"
            row[key] = round(max(float(row.get(key, 0.0)), read_tokens_per_s(local.reader, read)), 1)  # type: ignore[arg-type]
        outputs[mode] = local.generate([PROMPT])[0][:400]
    del local
    gc.collect()
    row.update(_llama_cpp(name, steps))
    for batch in batches:
        tokens_per_s = {mode: round(batch * 1000 / row[f"{mode}_b{batch}_ms"], 2) for mode in MODES}  # type: ignore[operator]
        if f"llama_cpp_b{batch}_tokens_per_s" in row:
            tokens_per_s["llama.cpp"] = row.pop(f"llama_cpp_b{batch}_tokens_per_s")  # type: ignore[assignment]
            row[f"b{batch}_auto_vs_llama_cpp"] = round(tokens_per_s["auto"] / tokens_per_s["llama.cpp"], 2)
        row[f"b{batch}_tokens_per_s"] = tokens_per_s
        row[f"b{batch}_auto_vs_float"] = round(tokens_per_s["auto"] / tokens_per_s["float"], 2)
    row["same_greedy_text"] = outputs["float"] == outputs["auto"]
    row["texts"] = outputs
    return row


def grouped_vs_apart(name: str, home: Path, steps: int, weights: str, batches: tuple[int, ...]) -> dict[str, object]:
    """ms per step with the shared-input linears multiplied as one and apart."""
    grouped = load_model(name, home, weights=weights)
    shared, decode_weights._SHARED_INPUT = decode_weights._SHARED_INPUT, ()
    try:
        apart = load_model(name, home, weights=weights)
    finally:
        decode_weights._SHARED_INPUT = shared
    row: dict[str, float] = {}
    for _ in range(2):  # alternate: both see the same load
        for label, local in (("grouped", grouped), ("apart", apart)):
            for batch in batches:
                key = f"{label}_b{batch}_ms"
                row[key] = round(min(row.get(key, 1e9), step_ms(local.reader, batch, steps)), 1)
    texts = {label: local.generate([PROMPT])[0][:400] for label, local in (("grouped", grouped), ("apart", apart))}
    return {"model": name, **row, "same_greedy_text": texts["grouped"] == texts["apart"],
            **{f"b{b}_grouped_vs_apart": round(row[f"apart_b{b}_ms"] / row[f"grouped_b{b}_ms"], 2) for b in batches}}


def _llama_cpp(name: str, steps: int) -> dict[str, object]:
    why = llamacpp_decode.missing()
    if why:
        return {"llama_cpp": why}
    with tempfile.TemporaryDirectory() as scratch:
        gguf = assemble_preset(PRESETS[name], Path(scratch) / f"{name}.gguf")
        server = llamacpp_decode.start(gguf, slots=8)
        try:
            single = llamacpp_decode.single_ms(server, steps)
            batched = llamacpp_decode.batched_tokens_per_s(server, 8, steps)
        finally:
            del server
            gc.collect()
    return {"llama_cpp_b1_tokens_per_s": round(1000 / single, 2), "llama_cpp_b8_tokens_per_s": round(batched, 2)}


def main() -> None:
    parser = script_parser("bench.decode", __doc__)
    parser.add_argument("--models", default="qwen2.5-1.5b,qwen2.5-0.5b")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--weights", default="auto", help="the low-bit mode measured as \"auto\": auto, int8, int4 or lowbit")
    parser.add_argument("--read", type=int, default=0, help="also time reading a prompt of this many tokens per mode (int8 reads prompts too)")
    parser.add_argument("--apart", action="store_true", help="first: int8's shared-input linears multiplied as one against apart")
    parser.add_argument("--batches", default="1,8", help="rows a step: 8 reads 8 prompts first (minutes in fp32)")
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batches.split(","))
    torch.set_num_threads(2)
    report: dict[str, object] = {"cpu": cpu_model(), "torch": torch.__version__}
    if args.apart:
        report["grouped_vs_apart"] = [grouped_vs_apart(name, args.home, args.steps, "int8", batches) for name in args.models.split(",")]
        print(json.dumps(report["grouped_vs_apart"]))
        gc.collect()
    rows = [measure(name, args.home, args.steps, args.weights, args.read, batches) for name in args.models.split(",")]
    report["rows"] = rows
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "texts"}))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
