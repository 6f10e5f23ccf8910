"""One-row decoding steps through lowbit.c's two vector paths and through fbgemm alone, same run.

    python -m bench.lowbit_isa [--model qwen2.5-1.5b] [--steps 32] [--json-out FILE]

Two copies of the model are loaded: weights "auto" (the kernel, built for this CPU) and "int8"
(fbgemm). The auto model's products are switched between the `-march=native` build (AVX-512 VNNI
where the CPU has it) and a `-march=haswell` build (AVX2, what CPUs without AVX-512 run), so an
AVX-512 machine also measures the AVX2 code. Milliseconds a step after a 400-token prompt, the
three alternating, best of two. Figures are for this CPU only: name it.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

from bench.decode import step_ms
from bench.harness import cpu_model, script_parser
from longdoc.engine import lowbit_kernel
from longdoc.engine.loading import load_model


def main() -> None:
    parser = script_parser("bench.lowbit_isa", __doc__)
    parser.add_argument("--model", default="qwen2.5-1.5b")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--home", type=Path, default=Path.home() / ".cache" / "longdoc")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    native = lowbit_kernel.library()
    built = lowbit_kernel.build("haswell")
    avx2 = None if built is None else lowbit_kernel.load(built)
    if native is None or avx2 is None:
        raise SystemExit("the kernel does not build here (no C compiler, or no AVX2)")
    auto = load_model(args.model, args.home, weights="auto")
    int8 = load_model(args.model, args.home, weights="int8")
    products = [p for p in gc.get_objects() if isinstance(p, lowbit_kernel.OneRowProduct)]
    best: dict[str, float] = {}
    for _ in range(2):
        for label, local, lib in (("native", auto, native), ("avx2", auto, avx2), ("fbgemm_int8", int8, None)):
            for product in products if lib is not None else ():
                product.lib = lib
            best[label] = round(min(best.get(label, 1e9), step_ms(local.reader, 1, args.steps)), 1)
    row = {"cpu": cpu_model(), "model": args.model, "native_isa": native.lowbit_isa(), "products": len(products),
           "one_row_step_ms": best, "fbgemm_over_native": round(best["fbgemm_int8"] / best["native"], 2),
           "fbgemm_over_avx2": round(best["fbgemm_int8"] / best["avx2"], 2)}
    print(json.dumps(row))
    if args.json_out:
        args.json_out.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
