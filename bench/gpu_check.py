"""The engine on a GPU: correctness on tiny models, then speed and memory with the presets' real
architectures, randomly initialised (weights cannot travel to a lent GPU machine, and speed does
not depend on what the weights say).

    python -m bench.gpu_check                       # on a GPU: writes bench/REPORT-gpu.md and .json
    python -m bench.gpu_check --device cpu --quick  # the same steps, small, to prove the script here
    python -m bench.gpu_check --out $OUT            # where to write (the device tool returns $OUT)

Steps, each skipped once the time budget (--budget, default 7.5 min) is spent, results written
after each so a stopped run still reports what it measured:

  correct   tiny random Qwen2 / Llama / Gemma 3 models in fp32 and bf16: the engine's last-position
            logits against plain full attention (SDPA) on an input that fits its window, and on a
            longer one that it reads in several segments with everything still in the window;
            greedy generation through the engine against transformers' own generate()
  read      the 1.5B architecture (bench/gpu_configs/, read from the GGUF's metadata): tokens/s and
            peak GPU memory reading 32K, 128K and 1M tokens through the engine, and through one
            full-attention forward pass where it fits
  decode    greedy decoding, batch 1 and 8, tokens/s, with batch 1 against the memory-bandwidth
            bound (weight bytes read per token / the GPU's bandwidth)
  segments  engine read speed at 128K tokens for several segment sizes
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, LlamaConfig, Qwen2Config

from bench.harness import ROOT, cpu_model, script_parser
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.generation import generate_tokens
from longdoc.engine.reader import SegmentReader
from longdoc.model.protocol import GenerationOptions

CONFIGS = ROOT / "bench" / "gpu_configs"
# Memory bandwidth by GPU name, bytes/s (vendor figures), for the decode bound.
BANDWIDTH = {"H200": 4.8e12, "H100": 3.35e12, "A100": 2.0e12}
Row = dict[str, Any]


class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 1024**3, 2) if device.type == "cuda" else None


# -- correctness -----------------------------------------------------------------------------------


def tiny(kind: str, dtype: torch.dtype, device: torch.device) -> Any:
    torch.manual_seed(0)
    common = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2, eos_token_id=0, pad_token_id=0)
    config = {"qwen2": lambda: Qwen2Config(**common), "llama": lambda: LlamaConfig(**common),
              "gemma3": lambda: Gemma3TextConfig(**common, head_dim=16, sliding_window=12,
                                                 layer_types=["sliding_attention", "full_attention"])}[kind]()
    return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").to(device).eval()


def check_correct(device: torch.device) -> list[Row]:
    rows = []
    for dtype, tolerance in ((torch.float32, 1e-3), (torch.bfloat16, 0.15)):
        for kind in ("qwen2", "llama", "gemma3"):
            model = tiny(kind, dtype, device)
            ids = torch.randint(1, 97, (2, 200), generator=torch.Generator().manual_seed(1)).to(device)
            with torch.no_grad():
                full = model(ids).logits[:, -1].float()
            for segment in (200, 48):  # one segment, and several with the window holding all
                reader = SegmentReader(model, SegmentCacheConfig(sinks=8, window=256, segment=segment))
                engine = reader.read(reader.new_cache(), ids).float()
                error = (engine - full).abs().max().item() / max(full.abs().max().item(), 1e-6)
                rows.append({"check": f"{kind} {str(dtype).removeprefix('torch.')} segment {segment}: engine logits vs SDPA",
                             "relative_error": round(error, 5), "ok": error < tolerance})
            prompt = ids[:1, :40]
            reader = SegmentReader(model, SegmentCacheConfig(sinks=8, window=256, segment=16))
            ours = generate_tokens(reader, [prompt[0].tolist()], GenerationOptions(max_new_tokens=24, loop_tokens=0), {-1}, 0)[0]
            model.generation_config.eos_token_id = None  # both run the full 24 tokens
            with torch.no_grad():
                theirs = model.generate(prompt, max_new_tokens=24, do_sample=False, pad_token_id=0)[0, 40:].tolist()
            agree = sum(a == b for a, b in zip(ours, theirs)) / len(theirs)
            rows.append({"check": f"{kind} {str(dtype).removeprefix('torch.')}: greedy tokens vs generate()",
                         "agreement": round(agree, 3), "ok": agree == 1.0 or (dtype == torch.bfloat16 and ours[:8] == theirs[:8])})
    return rows


# -- speed ---------------------------------------------------------------------------------------


def preset_model(name: str, dtype: torch.dtype, device: torch.device) -> Any:
    config = Qwen2Config(**json.loads((CONFIGS / f"{name}.json").read_text()))
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def engine_read(model: Any, tokens: int, config: SegmentCacheConfig, device: torch.device) -> Row:
    reader = SegmentReader(model, config)
    ids = torch.randint(0, model.config.vocab_size, (1, tokens), device=device)
    reader.read(reader.new_cache(), ids[:, : config.segment * 2])  # warm-up: kernels, allocator
    reset_peak(device)
    synchronize(device)
    started = time.perf_counter()
    reader.read(reader.new_cache(), ids)
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"method": "engine", "tokens": tokens, "segment": config.segment, "window": config.window,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds), "peak_gb": peak_gb(device)}


def full_read(model: Any, tokens: int, device: torch.device) -> Row:
    """One forward pass over all tokens with a DynamicCache, logits for the last position only."""
    ids = torch.randint(0, model.config.vocab_size, (1, tokens), device=device)
    reset_peak(device)
    synchronize(device)
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            model.model(ids, use_cache=True)
        synchronize(device)
    except torch.OutOfMemoryError:
        return {"method": "full (SDPA)", "tokens": tokens, "error": "out of memory", "peak_gb": peak_gb(device)}
    seconds = time.perf_counter() - started
    return {"method": "full (SDPA)", "tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds),
            "peak_gb": peak_gb(device)}


def decode(model: Any, batch: int, prompt: int, new: int, config: SegmentCacheConfig, device: torch.device) -> Row:
    reader = SegmentReader(model, config)
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, model.config.vocab_size, (prompt,), generator=generator).tolist() for _ in range(batch)]
    options = GenerationOptions(max_new_tokens=new, batch_size=batch, loop_tokens=0)
    generate_tokens(reader, prompts, GenerationOptions(max_new_tokens=4, batch_size=batch, loop_tokens=0), {-1}, 0)  # warm-up
    read_started = time.perf_counter()
    reader.read(reader.new_cache(), torch.tensor(prompts, device=device))
    synchronize(device)
    read_s = time.perf_counter() - read_started
    started = time.perf_counter()
    outputs = generate_tokens(reader, prompts, options, {-1}, 0)
    synchronize(device)
    seconds = time.perf_counter() - started - read_s  # the prompt's read, timed apart, left out
    produced = sum(len(o) for o in outputs)
    return {"batch": batch, "prompt_tokens": prompt, "new_tokens": new, "tokens_per_s": round(produced / seconds, 1),
            "per_stream_tokens_per_s": round(produced / seconds / batch, 1)}


def bandwidth_bound(model: Any, device: torch.device) -> float | None:
    """Tokens/s a batch-1 decode would reach if reading the weights once per token were all it did."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(0)
    bandwidth = next((value for key, value in BANDWIDTH.items() if key in name), None)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return round(bandwidth / weight_bytes, 1) if bandwidth else None


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = script_parser("bench.gpu_check", __doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes and the 0.5B architecture (for a CPU)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all steps")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args()
    device = torch.device(args.device)
    budget = Budget(args.budget)
    quick = args.quick
    preset = "qwen2.5-0.5b" if quick else "qwen2.5-1.5b"
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    lengths = (1024, 2048) if quick else (32768, 131072, 1048576)
    full_lengths = (1024,) if quick else (32768, 131072)
    # A GPU wants long segments; the window is where each segment still sees its predecessors.
    gpu_config = SegmentCacheConfig(sinks=64, window=512, segment=256) if quick else SegmentCacheConfig(sinks=64, window=4096, segment=4096)
    report: Row = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({cpu_model()})",
                   "torch": torch.__version__, "preset_architecture": preset, "dtype": str(dtype).removeprefix("torch."),
                   "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": quick}
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        (args.out / "REPORT-gpu.json").write_text(json.dumps(report, indent=1))
        (args.out / "REPORT-gpu.md").write_text(markdown(report))

    def step(name: str, run) -> None:  # type: ignore[no-untyped-def]
        if budget.left() <= 0:
            report.setdefault("skipped", []).append(name)
            return
        started = time.perf_counter()
        try:
            report[name] = run()
        except Exception as error:  # noqa: BLE001 - a failed step is reported, the others still run
            report[name] = {"error": f"{type(error).__name__}: {error}"[:400]}
        print(f"[gpu_check] {name}: {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
        save()

    step("correct", lambda: check_correct(device))
    model = preset_model(preset, dtype, device)
    report["parameters_billion"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)

    def reads() -> list[Row]:
        rows = []
        for tokens in lengths:
            if budget.left() > 30:
                rows.append(engine_read(model, tokens, gpu_config, device))
        for tokens in full_lengths:
            if budget.left() > 60:
                rows.append(full_read(model, tokens, device))
        return rows

    step("read", reads)
    decode_config = SegmentCacheConfig(sinks=64, window=1536, segment=512)
    new = 16 if quick else 128
    step("decode", lambda: {"bandwidth_bound_tokens_per_s": bandwidth_bound(model, device),
                            "rows": [decode(model, b, 256, new, decode_config, device) for b in (1, 8)]})
    segment_tokens = lengths[0] if quick else lengths[1]
    step("segments", lambda: [engine_read(model, segment_tokens, SegmentCacheConfig(sinks=64, window=max(512, s), segment=s), device)
                              for s in ((128, 256, 512) if quick else (1024, 2048, 4096, 8192)) if budget.left() > 20])
    save()
    print(markdown(report))


def markdown(report: Row) -> str:
    lines = [f"# The engine on {report['device']}", "",
             f"bench/gpu_check.py{' --quick' if report['quick'] else ''}, {report['started']}, torch {report['torch']}, "
             f"{report['preset_architecture']} architecture ({report.get('parameters_billion', '?')}B parameters), "
             f"random weights, {report['dtype']}.", ""]
    correct = report.get("correct")
    if isinstance(correct, list):
        passed = sum(r["ok"] for r in correct)
        lines += [f"## Correctness: {passed} of {len(correct)} checks pass", "", "| check | result | ok |", "|---|---|---|"]
        lines += [f"| {r['check']} | {r.get('relative_error', r.get('agreement'))} | {'yes' if r['ok'] else '**no**'} |" for r in correct]
        lines.append("")
    for name, title in (("read", "Reading"), ("segments", "Segment size (engine)")):
        rows = report.get(name)
        if isinstance(rows, list) and rows:
            lines += [f"## {title}", "", "| method | tokens | segment | seconds | tokens/s | peak GPU GB |", "|---|---|---|---|---|---|"]
            lines += [f"| {r['method']} | {r['tokens']:,} | {r.get('segment', '-')} | {r.get('seconds', r.get('error'))} | "
                      f"{r.get('tokens_per_s', '-')} | {r.get('peak_gb') or '-'} |" for r in rows]
            lines.append("")
    decoded = report.get("decode")
    if isinstance(decoded, dict) and "rows" in decoded:
        bound = decoded["bandwidth_bound_tokens_per_s"]
        lines += ["## Decoding", "", f"Batch-1 bound from memory bandwidth: {bound or '-'} tokens/s.", "",
                  "| batch | tokens/s | per stream | share of the bound (batch 1) |", "|---|---|---|---|"]
        for r in decoded["rows"]:
            share = f"{r['tokens_per_s'] / bound:.0%}" if bound and r["batch"] == 1 else "-"
            lines.append(f"| {r['batch']} | {r['tokens_per_s']} | {r['per_stream_tokens_per_s']} | {share} |")
        lines.append("")
    for name in ("correct", "read", "segments", "decode"):
        if isinstance(report.get(name), dict) and "error" in report[name]:
            lines.append(f"- {name} failed: {report[name]['error']}")
    if report.get("skipped"):
        lines.append(f"- out of time before: {', '.join(report['skipped'])}")
    return "\n".join(lines) + "\n"



if __name__ == "__main__":
    main()
