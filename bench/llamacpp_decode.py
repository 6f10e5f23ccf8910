"""llama.cpp's decoding speed on a GGUF, through the prebuilt `xllamacpp` wheel, in this process.

The same request for every figure: a 400-token prompt (fixed token ids, no prompt cache), then
greedy decoding of a fixed number of tokens with end-of-text ignored; llama.cpp's own timings give
the decoding rate. Batched: that many requests at once into as many slots, timed by the wall clock
(requests start a little apart, so the rate is taken between the single-request and the batched
runs: batch * (steps - 1) extra tokens over the extra seconds). bench/decode.py uses it; alone:

    python -m bench.llamacpp_decode FILE.gguf
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.harness import script_parser

PROMPT_TOKENS = 400


def missing() -> str | None:
    """Why llama.cpp cannot be measured here, or None."""
    try:
        import xllamacpp  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "xllamacpp is not installed (pip install -e '.[bench]')"
    return None


def start(gguf: Path, slots: int, threads: int = 2, context: int = 1024) -> Any:
    """An in-process llama.cpp server on `gguf` with `slots` parallel sequences of `context` tokens."""
    import xllamacpp as xl  # type: ignore[import-not-found]

    params = xl.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = slots * context
    params.n_parallel = slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    return xl.Server(params)


def _complete(server: Any, steps: int, seed: int) -> dict[str, Any]:
    prompt = [100 + (seed * 7919 + i * 104729) % 20000 for i in range(PROMPT_TOKENS)]
    request = {"prompt": prompt, "n_predict": steps, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
    reply = server.handle_completions(request)
    if not isinstance(reply, dict) or "timings" not in reply:
        raise RuntimeError(f"llama.cpp did not complete: {str(reply)[:200]}")
    return reply


def single_ms(server: Any, steps: int) -> float:
    """Milliseconds per decoded token, one request (llama.cpp's own timing), best of two."""
    return min(1000 / float(_complete(server, steps, seed)["timings"]["predicted_per_second"]) for seed in (1, 2))


def batched_tokens_per_s(server: Any, batch: int, steps: int) -> float:
    """Decoded tokens per second with `batch` requests at once."""

    def wall(n: int) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(batch) as pool:
            list(pool.map(lambda seed: _complete(server, n, seed), range(batch)))
        return time.perf_counter() - started

    short, full = wall(1), wall(steps)
    return batch * (steps - 1) / max(full - short, 1e-9)


def main() -> None:
    parser = script_parser("bench.llamacpp_decode", __doc__)
    parser.add_argument("gguf", type=Path, help="the GGUF file to decode with")
    args = parser.parse_args()
    server = start(args.gguf, slots=8, threads=min(2, os.cpu_count() or 2))
    print({"single_ms": round(single_ms(server, 32), 1), "batched8_tok_s": round(batched_tokens_per_s(server, 8, 32), 1)})


if __name__ == "__main__":
    main()
