"""Decoding from low-bit weights on the CPU: the GGUF's own 4-bit codes, int8 rows for the rest.

Decoding a token reads every weight once, so on a CPU its speed is the bytes read per token. A
preset's GGUF stores most projections as Q4_K: 32-weight groups of 4-bit codes with a scale and an
offset each (w = scale * code - offset). torch's CPU int4 kernel computes exactly that form
(w = (code - 8) * scale + zero), so those tensors are carried over losslessly, code for code: a
quarter of bf16's bytes. Tensors the GGUF keeps in other formats (Q6_K, Q5_0, Q8_0: no torch
kernel takes their groups) get int8 rows with one scale each (0.4% error, half of bf16's bytes).
The output head, the largest single read, is scored from 4-bit codes of its own and only its best
`SHORTLIST` rows are recomputed exactly from the float weights: the greedy token is the float
model's token, at a third of the bytes.

Both kernels take bf16 activations (the fast path on every x86 CPU we measured, with or without
native bf16), so an fp32 model converts the few rows in and out. Only few-row products go this way:
measured with 2 threads, 1536x8960 projection, ms for 1 / 8 / 16 rows:
- Intel Xeon (AMX bf16; bf16 model): bf16 linear 0.83 / 0.91, int4 0.35 / 1.26 -> 1 row only.
- AMD EPYC (AVX2, no bf16; fp32 model): fp32 weight-first 3.1 / 6.5 / 7.6, int4 1.25 / 4.2 / 8.6,
  int8 1.4 / 3.7 / 7.7. fbgemm's dynamic int8 (activations quantized per call, 7 bits) 0.44 / 1.0:
  an fp32 model takes that kernel for every linear and every row count, prompts too (`kernel_for`,
  `ALL_ROWS`).
Otherwise (the int4 kernel) prompts keep the float weights.

Where a C compiler is found, "auto" also gives every int8 linear a one-row product of our own
(lowbit.c, `lowbit_kernel.py`): the GGUF's Q4_K codes (int8 rows where the GGUF has other formats,
a 4-bit shortlisted head) against int8 activations, llama.cpp's arithmetic; decoding steps take it,
prompts and batches keep fbgemm.

The Q4_K codes are unpacked once, when the GGUF is converted, into `int4.safetensors` beside the
model; the int8 rows and the head's codes are derived from the float weights at the first load and
kept in `decode.safetensors` (quantizing them takes seconds); the dynamic kernel's int8 rows in
`decode-int8.safetensors`, packed for fbgemm at each load (about 5 s for the 0.5B on AMD EPYC).
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from longdoc.engine import lowbit_kernel
from longdoc.engine.cpu_linear import WeightFirstLinear, weight_first_linear
from longdoc.files import atomic_path
from longdoc.hardware import cpu_has_amx

SIDE_FILE = "int4.safetensors"
GROUP = 32
_Q4_K_BLOCK_BYTES = 144  # 256 weights: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 of codes
_PROJECTIONS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
# A carried tensor must reproduce the converted bf16 weight to bf16's own rounding (~0.2%); a
# layout the converter changed (Llama's permuted q/k rows, say) fails this and stays bf16.
_MATCH = 0.01


def unpack_q4_k(raw: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q4_K bytes -> codes uint8 (rows, cols) in 0..15, scale and offset f32 (rows, cols / 32)."""
    blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, _Q4_K_BLOCK_BYTES)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    dmin = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    packed = blocks[:, 4:16]
    scales = np.empty((len(blocks), 8), np.uint8)
    mins = np.empty_like(scales)
    # Sub-blocks 0-3 keep 6 bits in bytes 0-7; 4-7 take 4 low bits from bytes 8-11 and the top two
    # from the spare high bits of bytes 0-7.
    scales[:, :4] = packed[:, 0:4] & 63
    mins[:, :4] = packed[:, 4:8] & 63
    scales[:, 4:] = (packed[:, 8:12] & 0xF) | ((packed[:, 0:4] >> 6) << 4)
    mins[:, 4:] = (packed[:, 8:12] >> 4) | ((packed[:, 4:8] >> 6) << 4)
    nibbles = blocks[:, 16:].reshape(-1, 4, 32)
    # Each 32 bytes hold 64 weights: the low nibbles are the first 32, the high nibbles the next.
    codes = np.stack([nibbles & 0xF, nibbles >> 4], axis=2).reshape(rows, cols)
    scale = (d * scales.astype(np.float32)).reshape(rows, cols // GROUP)
    offset = (dmin * mins.astype(np.float32)).reshape(rows, cols // GROUP)
    return codes, scale, offset


def dequantize(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Float weight (rows, cols) from codes and per-group scale/offset."""
    rows, cols = codes.shape
    grouped = codes.float().reshape(rows, cols // GROUP, GROUP)
    return (grouped * scale[..., None] - offset[..., None]).reshape(rows, cols)


def extract_q4_k(gguf: Path, target: Path, weight: Callable[[str], torch.Tensor | None]) -> int:
    """Write the GGUF's Q4_K projections that match the converted weights (`weight(HF name)`, read
    one at a time) to `target/int4.safetensors`; returns how many were written (0 writes nothing)."""
    from gguf import GGUFReader

    tensors: dict[str, torch.Tensor] = {}
    for tensor in GGUFReader(gguf).tensors:
        name = _hf_name(tensor.name)
        reference = weight(name) if tensor.tensor_type.name == "Q4_K" and name is not None else None
        if reference is None:
            continue
        cols, rows = (int(n) for n in tensor.shape[:2])
        codes, scale, offset = unpack_q4_k(np.asarray(tensor.data), rows, cols)
        codes_t, scale_t, offset_t = torch.from_numpy(codes), torch.from_numpy(scale), torch.from_numpy(offset)
        reference = reference.float()
        if reference.shape != codes_t.shape:
            continue
        error = (dequantize(codes_t, scale_t, offset_t) - reference).norm() / reference.norm().clamp(min=1e-12)
        if error > _MATCH:
            continue
        tensors[f"{name}.codes"] = _two_codes_a_byte(codes_t)
        tensors[f"{name}.scale"] = scale_t
        tensors[f"{name}.offset"] = offset_t
    if tensors:
        _save_atomically(tensors, target / SIDE_FILE)
    return len(tensors) // 3


def _two_codes_a_byte(codes: torch.Tensor) -> torch.Tensor:
    """4-bit codes (rows, cols) packed as stored on disk: (rows, cols / 2) bytes, low nibble first."""
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def _save_atomically(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file renamed into place: an interrupted write never looks finished."""
    from safetensors.torch import save_file

    with atomic_path(path) as staging:
        save_file(tensors, str(staging), metadata=metadata)


def _hf_name(gguf_name: str) -> str | None:
    parts = gguf_name.split(".")
    if len(parts) != 4 or parts[0] != "blk" or parts[3] != "weight" or parts[2] not in _PROJECTIONS:
        return None
    return f"model.layers.{parts[1]}.{_PROJECTIONS[parts[2]]}.weight"


# -- derived at the first load ---------------------------------------------------------------------

DERIVED_FILE = "decode.safetensors"
DYNAMIC_FILE = "decode-int8.safetensors"  # every linear as int8 rows, for the "dynamic" kernel
LOWBIT_FILE = "decode-lowbit.safetensors"  # the same linears in lowbit.c's tiles, for one-row steps
DERIVED_FILES = (DERIVED_FILE, DYNAMIC_FILE, LOWBIT_FILE)
_DERIVED_FORMAT = "1"
SHORTLIST = 64  # head rows recomputed exactly per decoded row
_INT4_ROWS = 16  # the int4 kernel packs rows in sixteens
_CHUNK_ROWS = 8192  # rows quantized at a time: the head's 150K rows in fp32 would be 0.9 GB at once


def quantize_int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes (rows, cols) and one f32 scale a row (w = code * scale)."""
    codes, scales = [], []
    for part in weight.split(_CHUNK_ROWS):
        part = part.float()
        scale = part.abs().amax(1).clamp(min=1e-12) / 127
        codes.append(torch.round(part / scale[:, None]).clamp(-127, 127).to(torch.int8))
        scales.append(scale)
    return torch.cat(codes), torch.cat(scales)


def quantize_int4_groups(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """4-bit codes uint8 (rows, cols) and per-32 scale and offset (w = scale * code - offset), as Q4_K."""
    codes, scales, offsets = [], [], []
    for part in weight.split(_CHUNK_ROWS):
        groups = part.float().reshape(part.shape[0], -1, GROUP)
        low = groups.amin(-1)
        scale = ((groups.amax(-1) - low) / 15).clamp(min=1e-12)
        codes.append(torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.uint8).flatten(1))
        scales.append(scale)
        offsets.append(-low)
    return torch.cat(codes), torch.cat(scales), torch.cat(offsets)


# -- the layers ------------------------------------------------------------------------------------


class DecodeLinear(nn.Linear):
    """An `nn.Linear` that multiplies up to `decode_rows` rows with low-bit weights, more with `weight`."""

    decode_rows: int  # 0 switches the low-bit path off
    weight_first: bool  # the float path was WeightFirstLinear's (fp32 on CPU)
    one_row: Callable[[torch.Tensor], torch.Tensor] | None = None  # lowbit.c's product, where built

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if not 0 < rows <= self.decode_rows:
            if self.weight_first:
                return weight_first_linear(x, self.weight, self.bias)
            return F.linear(x, self.weight, self.bias)
        out = self.rows_product(x.reshape(rows, -1))
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def rows_product(self, x: torch.Tensor) -> torch.Tensor:
        """x (rows, in) -> (rows, out): one row (a decoding step) through `one_row` where set."""
        if self.one_row is not None and len(x) == 1:
            return self.one_row(x)
        return self.low_bit(x)

    def low_bit(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Int4DecodeLinear(DecodeLinear):
    int4_packed: torch.Tensor
    int4_scale_zero: torch.Tensor

    def low_bit(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.int4_packed, GROUP, self.int4_scale_zero)
        return out.to(x.dtype)


class Int8DecodeLinear(DecodeLinear):
    int8_weight: torch.Tensor
    int8_scale: torch.Tensor

    def low_bit(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), self.int8_weight, self.int8_scale).to(x.dtype)


class DynamicInt8Linear(DecodeLinear):
    """int8 rows against activations quantized on the fly (fbgemm's integer dot products)."""

    int8_packed: torch.ScriptObject

    def low_bit(self, x: torch.Tensor) -> torch.Tensor:
        return dynamic_product(x, self.int8_packed)


def dynamic_product(x: torch.Tensor, packed: torch.ScriptObject) -> torch.Tensor:
    """`x` (rows, in) times fbgemm-packed int8 rows, each row of `x` quantized with its own scale."""
    rows = x.float()
    if len(rows) == 1:  # fbgemm's one scale for its input is this row's own
        return torch.ops.quantized.linear_dynamic(rows, packed, True).to(x.dtype)
    # fbgemm quantizes its whole input with one scale, so in a batched step a row with an
    # outlier (Qwen has them) would flatten every other row to a few levels: measured on
    # qwen2.5-0.5b, 8 prompts x 40 greedy tokens, 4 of 8 came out as the float model's batched,
    # 7 of 8 one row at a time. Each row is brought to the same peak first and scaled back
    # after (the product is linear): per-row quantization in one call. A prompt's rows are its
    # tokens, so the attention sink's huge activations stay its own.
    peak = rows.abs().amax(dim=-1, keepdim=True).clamp_min(1e-12)  # (rows, 1)
    # reduce_range: 7-bit activations, so fbgemm's paired u8 x s8 sums never saturate int16.
    out = torch.ops.quantized.linear_dynamic(rows / peak, packed, True)  # (rows, out)
    return (out * peak).to(x.dtype)


class SharedInput:
    """Linears that take the same input (q/k/v, gate/up) multiplied as one matrix: one call, one
    quantization of the input, instead of one each. The first member called computes every
    member's product (`multiply`: input -> the members' outputs side by side); the others take
    theirs, and the products are let go once all have. One forward at a time, as the local model
    runs (`LocalModel.concurrency` is 1)."""

    def __init__(self, multiply: Callable[[torch.Tensor], torch.Tensor], sizes: list[int]) -> None:
        self.multiply, self.sizes = multiply, sizes
        self._input: torch.Tensor | None = None
        self._products: list[torch.Tensor] = []
        self._taken: set[int] = set()

    def product(self, x: torch.Tensor, part: int) -> torch.Tensor:
        if not self._holds(x) or part in self._taken:
            self._input, self._taken = x, set()
            self._products = list(self.multiply(x).split(self.sizes, dim=-1))
        self._taken.add(part)
        product = self._products[part]
        if len(self._taken) == len(self.sizes):  # a prompt's products are large: keep none
            self._input, self._products = None, []
        return product

    def _holds(self, x: torch.Tensor) -> bool:
        # The members see their input reshaped, a new tensor each time; the held one keeps its
        # memory alive, so the same address, shape and strides are the same input.
        held = self._input
        return held is not None and (held.data_ptr(), held.shape, held.stride()) == (x.data_ptr(), x.shape, x.stride())


class SharedInputInt8Linear(DynamicInt8Linear):
    """One member of a `SharedInput`: its rows are part `part` of the shared matrix."""

    shared: SharedInput
    part: int

    def low_bit(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared.product(x, self.part)


class _Shortlisted(DecodeLinear):
    """The output head: every logit from low-bit weights, then the `SHORTLIST` highest exactly.

    The token greedy decoding picks is the float head's; the other logits are close approximations
    (what sampling at a temperature sees)."""

    def rows_product(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().rows_product(x)
        best = logits.topk(min(SHORTLIST, self.out_features), dim=-1).indices
        exact = (self.weight[best] @ x[:, :, None]).squeeze(-1)
        return logits.scatter(-1, best, exact.to(logits.dtype))


class ShortlistHead(_Shortlisted, Int4DecodeLinear):
    """Scored from 4-bit codes."""


class DynamicShortlistHead(_Shortlisted, DynamicInt8Linear):
    """Scored from int8 rows."""


# -- attaching them --------------------------------------------------------------------------------


def kernel_for(dtype: torch.dtype, weights: str = "auto") -> str:
    """"dynamic" (int8 rows, int8 activations quantized a token at a time: fbgemm), which reads
    prompts too, wherever fbgemm runs, except "auto" on a bf16 model with Intel's AMX tiles; there,
    and with weights "int4", "int4" (the GGUF's codes, bf16 activations, one row at a time).

    Measured, 2 threads, one 1536x8960 projection:
    - AMD EPYC Zen 1 (AVX2, fp32 model), 1 / 8 rows: dynamic 0.44 / 1.0 ms against int4 1.25 / 4.2;
      prompts' 512-4096 rows ~1.5x the fp32 weights.
    - AMD EPYC Zen 4 (AVX-512 with bf16 and VNNI, no AMX; bf16 model), 1 row: dynamic 0.43 against
      int4 0.39 ms, but q/k/v and gate/up multiplied as one matrix each; 512-1024 rows 1.4-1.6x the
      bf16 weights. The 1.5B: a decoding step 60 against 66 ms, reading 1,024 tokens 174-182
      against 131-133 tokens/s (bench/README.md "Decoding from low-bit weights").
    - Intel Xeon (AMX bf16), 1 row: int4 0.35 ms; prompts through AMX's bf16 tiles, twice Zen 4's
      bf16 reading (fbgemm was not measured there).
    Answers on the dev split with either kernel: the same bench/README.md section.

    "lowbit" is "dynamic" with one-row products (decoding steps) through lowbit.c's 4-bit x int8
    kernel, where it builds: "auto" takes it there, and weights "lowbit" asks for it on AMX CPUs too
    (with fbgemm where it does not build). The 1.5B's step on Zen 4: bench/README.md
    "A 4-bit kernel of our own"."""
    if weights == "int4" or weights == "float" or not dynamic_int8_available():
        return "int4"
    amx_bf16 = dtype == torch.bfloat16 and cpu_has_amx()
    if weights == "auto" and amx_bf16:
        return "int4"  # the kernel is not measured on AMX CPUs yet: weights "lowbit" asks for it
    return "lowbit" if weights in ("auto", "lowbit") and lowbit_kernel.library() is not None else "dynamic"


@functools.cache
def dynamic_int8_available() -> bool:
    """Whether torch has its x86 quantized kernels (fbgemm) and they run here (probed once)."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        return False
    try:
        with _quantized_tensors():
            packed = _prepack(torch.ones(16, 64, dtype=torch.int8), torch.ones(16))
        torch.ops.quantized.linear_dynamic(torch.ones(1, 64), packed, True)
    except (RuntimeError, AttributeError, NotImplementedError):
        return False  # a torch without the (deprecated) quantized ops
    return True


# The dynamic kernel serves every row count: reading a prompt too. Measured on AMD EPYC (Zen 1,
# AVX2, fp32 model), 2 threads: one 1536x8960 projection 1.4-2.4x the fp32 product from 64 to
# 4096 rows; qwen2.5-1.5b reading 1,024 tokens 22-23 against 15 tokens/s, the next-token
# distribution after them 1e-5 nats (KL) from the fp32 model's.
ALL_ROWS = 1 << 30


def decode_rows_for(dtype: torch.dtype, kernel: str = "int4") -> int:
    """Up to how many rows the low-bit kernels beat the float weights (measured: module docstring)."""
    if kernel in ("dynamic", "lowbit"):
        return ALL_ROWS
    return 1 if dtype == torch.bfloat16 else 8


def _derived_files(kernel: str) -> tuple[str, ...]:
    return {"int4": (DERIVED_FILE,), "dynamic": (DYNAMIC_FILE,), "lowbit": (DYNAMIC_FILE, LOWBIT_FILE)}[kernel]


def derived_ready(directory: Path, kernel: str = "int4") -> bool:
    """Whether `directory` holds decode weights derived by this version (else attaching derives them)."""
    return all(_derived_file_ready(directory / name) for name in _derived_files(kernel))


def _derived_file_ready(path: Path) -> bool:
    from safetensors import safe_open

    if not path.is_file():
        return False
    try:
        with safe_open(str(path), "pt") as derived:
            return (derived.metadata() or {}).get("format") == _DERIVED_FORMAT
    except (OSError, ValueError, RuntimeError):
        return False


def attach_decode_weights(model: nn.Module, directory: Path, decode_rows: int, kernel: str = "int4") -> int:
    """Give `model`'s linears their low-bit decoding weights; returns how many layers got them.

    "int4": the Q4_K codes come from `int4.safetensors`; the other linears and the head get theirs
    from `decode.safetensors`. "dynamic": every linear gets int8 rows from `decode-int8.safetensors`.
    Derived files are made now from the float weights if missing (and kept when the directory is
    writable)."""
    head = model.get_output_embeddings()
    linears = {n: m for n, m in model.named_modules() if type(m) in (nn.Linear, WeightFirstLinear)}
    if kernel in ("dynamic", "lowbit"):
        attached, int8_rows = _attach_dynamic(linears, head, directory, decode_rows)
        if kernel == "lowbit":
            _attach_one_row(linears, head, directory, int8_rows)
        return attached
    attached = 0
    for name, tensors in _read(directory / SIDE_FILE).items():
        if name in linears and _attach_int4(linears[name], tensors, decode_rows, Int4DecodeLinear):
            attached += 1
            del linears[name]
    derived = _read(directory / DERIVED_FILE) if derived_ready(directory) else _derive(linears, head, directory)
    for name, module in linears.items():
        tensors = derived.get(name, {})
        if module is head and "codes" in tensors:
            attached += _attach_int4(module, tensors, decode_rows, ShortlistHead)
        elif "int8" in tensors:
            attached += _attach_int8(module, tensors, decode_rows)
    return attached


def drop_float_weights(model: nn.Module) -> int:
    """Let go of the float weights of linears that never use them (int8 rows at every row count);
    the output head keeps its own (tied to the embeddings, and its shortlist is recomputed from
    them). Returns how many were dropped."""
    head = model.get_output_embeddings()
    dropped = 0
    for module in model.modules():
        if isinstance(module, DynamicInt8Linear) and module is not head and module.decode_rows == ALL_ROWS:
            module.weight = nn.Parameter(module.weight.new_empty((0, module.in_features)), requires_grad=False)
            dropped += 1
    return dropped


def set_decode_rows(model: nn.Module, rows: int) -> None:
    """Up to how many rows the low-bit weights are used (0: float weights only); for benchmarks."""
    for module in model.modules():
        if isinstance(module, DecodeLinear):
            if rows < module.decode_rows and module.weight.numel() == 0:
                raise ValueError("this model's float weights were let go at load (load_model keep_float=True keeps them)")
            module.decode_rows = rows


def _read(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """{module name: {"codes"/"scale"/... : tensor}} from a side file, or {} when there is none."""
    from safetensors import safe_open

    if not path.is_file():
        return {}
    found: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(path), "pt") as side:
        for key in side.keys():
            name, _, part = key.rpartition(".weight.")
            found.setdefault(name, {})[part] = side.get_tensor(key)
    return found


def _derive(linears: dict[str, nn.Linear], head: nn.Module, directory: Path) -> dict[str, dict[str, torch.Tensor]]:
    derived: dict[str, dict[str, torch.Tensor]] = {}
    for name, module in linears.items():
        weight = module.weight.detach()
        if module is head and weight.shape[1] % GROUP == 0 and weight.shape[0] % _INT4_ROWS == 0:
            codes, scale, offset = quantize_int4_groups(weight)
            derived[name] = {"codes": _two_codes_a_byte(codes), "scale": scale, "offset": offset}
        else:
            codes, scale = quantize_int8_rows(weight)
            derived[name] = {"int8": codes, "int8_scale": scale}
    _keep(derived, directory / DERIVED_FILE)
    return derived


def _attach_dynamic(
    linears: dict[str, nn.Linear], head: nn.Module, directory: Path, decode_rows: int
) -> tuple[int, dict[str, dict[str, torch.Tensor]]]:
    """Returns how many linears got int8 rows, and those rows by name."""
    if derived_ready(directory, "dynamic"):
        derived = _read(directory / DYNAMIC_FILE)
    else:
        derived = {name: dict(zip(("int8", "int8_scale"), quantize_int8_rows(m.weight.detach()))) for name, m in linears.items()}
        _keep(derived, directory / DYNAMIC_FILE)
    usable = {n: t for n, t in derived.items() if n in linears and t["int8"].shape == linears[n].weight.shape}
    groups = _shared_input_groups({n: linears[n].in_features for n in usable if linears[n] is not head})
    grouped = {name for group in groups for name in group}
    alone = [name for name in usable if name not in grouped]
    stacked = [{part: torch.cat([usable[n][part] for n in group]) for part in ("int8", "int8_scale")} for group in groups]
    packed = _prepack_all([usable[name] for name in alone] + stacked)
    for name, weights in zip(alone, packed):
        module = linears[name]
        _switch(module, DynamicShortlistHead if module is head else DynamicInt8Linear, decode_rows)
        module.int8_packed = weights
    for group, weights in zip(groups, packed[len(alone) :]):
        shared = SharedInput(functools.partial(dynamic_product, packed=weights), [linears[name].out_features for name in group])
        for part, name in enumerate(group):
            _switch(linears[name], SharedInputInt8Linear, decode_rows)
            linears[name].shared, linears[name].part = shared, part  # type: ignore[assignment]
    return len(usable), usable


def _attach_one_row(linears: dict[str, nn.Linear], head: nn.Module, directory: Path, int8_rows: dict[str, dict[str, torch.Tensor]]) -> None:
    """Give the int8 linears their lowbit.c matrices for one-row products: the GGUF's Q4_K codes
    where it has them, a 4-bit head (shortlisted as before), the int8 rows elsewhere (Q6_K's
    tensors in the GGUF: llama.cpp reads those at 6.6 bits, not 4)."""
    if _derived_file_ready(directory / LOWBIT_FILE):
        stored = _read(directory / LOWBIT_FILE)
    else:
        stored = _derive_lowbit(linears, head, directory, int8_rows)
    matrices = {}
    for name, parts in stored.items():
        module = linears.get(name)
        if isinstance(module, DynamicInt8Linear):
            kind = "q4" if "q4" in parts else "q8"
            matrix = lowbit_kernel.Matrix(kind, parts.get(kind, torch.empty(0)), module.out_features, module.in_features, parts.get("q8_scale"))
            if matrix.whole:  # else this linear keeps fbgemm
                matrices[name] = matrix
    shared_groups: dict[int, list[tuple[SharedInputInt8Linear, lowbit_kernel.Matrix]]] = {}
    for name, matrix in matrices.items():
        module = linears[name]
        if isinstance(module, SharedInputInt8Linear):
            shared_groups.setdefault(id(module.shared), []).append((module, matrix))
        else:
            module.one_row = lowbit_kernel.OneRowProduct([matrix])
    for members in shared_groups.values():
        members.sort(key=lambda member: member[0].part)
        sizes = members[0][0].shared.sizes
        if len(members) != len(sizes):
            continue  # a member without its matrix: the group keeps fbgemm
        shared = SharedInput(lowbit_kernel.OneRowProduct([matrix for _, matrix in members]), sizes)
        for module, _ in members:
            module.one_row = functools.partial(shared.product, part=module.part)


def _derive_lowbit(
    linears: dict[str, nn.Linear], head: nn.Module, directory: Path, int8_rows: dict[str, dict[str, torch.Tensor]]
) -> dict[str, dict[str, torch.Tensor]]:
    q4_codes = _read(directory / SIDE_FILE)
    derived: dict[str, dict[str, torch.Tensor]] = {}
    for name, module in linears.items():
        if not lowbit_kernel.fits(module.out_features, module.in_features):
            continue
        shape = (module.out_features, module.in_features)
        gguf = q4_codes.get(name)
        if gguf is not None and module is not head:
            packed = gguf["codes"]
            codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
            if codes.shape == shape:
                derived[name] = {"q4": lowbit_kernel.pack_q4(codes, gguf["scale"], gguf["offset"]).tiles}
                continue
        if module is head and module.weight.shape == shape:
            derived[name] = {"q4": lowbit_kernel.pack_q4(*quantize_int4_groups(module.weight.detach())).tiles}
        elif name in int8_rows:
            matrix = lowbit_kernel.pack_q8(int8_rows[name]["int8"], int8_rows[name]["int8_scale"])
            derived[name] = {"q8": matrix.tiles, "q8_scale": matrix.row_scale}
    _keep(derived, directory / LOWBIT_FILE)
    return derived


def _prepack_all(weights: list[dict[str, torch.Tensor]]) -> list[torch.ScriptObject]:
    # fbgemm's packed form cannot be saved (only pickled): packed at each load, ~20 ms per 1M
    # weights on one core (AMD EPYC, Zen 1). Packing runs on one thread and lets go of the GIL,
    # so it runs on as many threads as torch uses: 33 s -> ~16 s for the 1.5B on 2 cores.
    with _quantized_tensors(), ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        return list(pool.map(lambda w: _prepack(w["int8"], w["int8_scale"]), weights))


# Projections a block multiplies by the same input, by their names in Llama-style models (Qwen2,
# Llama, Gemma 3). Multiplied as one: the 1.5B's 197 products a decoding step become 113, and a
# one-row step took 207 against 227 ms (1.10x; AMD EPYC Zen 1, 2 threads, alternating, bench.decode --apart).
_SHARED_INPUT = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _shared_input_groups(widths: dict[str, int]) -> list[list[str]]:
    """Names of sibling linears named in `_SHARED_INPUT` (whole groups, one input width), from
    {name: input width}."""
    groups = []
    for parent in {name.rpartition(".")[0] for name in widths}:
        for group in _SHARED_INPUT:
            members = [f"{parent}.{name}" if parent else name for name in group]
            if all(m in widths for m in members) and len({widths[m] for m in members}) == 1:
                groups.append(members)
    return sorted(groups)


@contextmanager
def _quantized_tensors() -> Iterator[None]:
    """Quantized tensors are deprecated, and warn so; their kernel is what we use. Entered on the
    calling thread only: warning filters are process-wide, and threads would restore them in turn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _prepack(codes: torch.Tensor, scale: torch.Tensor) -> torch.ScriptObject:
    quantized = torch._make_per_channel_quantized_tensor(codes, scale.double(), torch.zeros(len(scale), dtype=torch.long), 0)
    return torch.ops.quantized.linear_prepack(quantized, None)


def _keep(derived: dict[str, dict[str, torch.Tensor]], path: Path) -> None:
    flat = {f"{name}.weight.{part}": t.contiguous() for name, parts in derived.items() for part, t in parts.items()}
    try:
        _save_atomically(flat, path, metadata={"format": _DERIVED_FORMAT})
    except OSError:
        pass  # a read-only model directory: derived again next time


def _attach_int4(module: nn.Linear, tensors: dict[str, torch.Tensor], decode_rows: int, kind: type[Int4DecodeLinear]) -> bool:
    packed = tensors["codes"]
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
    if codes.shape != module.weight.shape:
        return False
    scale = tensors["scale"].float()
    zero = 8 * scale - tensors["offset"].float()
    try:
        int4_packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 1)
    except RuntimeError:
        return False  # a shape or torch build the kernel does not take: the float weights serve
    _switch(module, kind, decode_rows)
    module.int4_packed = int4_packed
    module.int4_scale_zero = torch.stack([scale.t(), zero.t()], dim=-1).to(torch.bfloat16).contiguous()
    return True


def _attach_int8(module: nn.Linear, tensors: dict[str, torch.Tensor], decode_rows: int) -> bool:
    if tensors["int8"].shape != module.weight.shape:
        return False
    _switch(module, Int8DecodeLinear, decode_rows)
    module.int8_weight = tensors["int8"]
    module.int8_scale = tensors["int8_scale"].to(torch.bfloat16)
    return True


def _switch(module: nn.Linear, kind: type[DecodeLinear], decode_rows: int) -> None:
    weight_first = type(module) is WeightFirstLinear
    module.__class__ = kind
    module.decode_rows = decode_rows
    module.weight_first = weight_first
