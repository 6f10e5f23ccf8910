"""Single-stream decoding from the GGUF's own 4-bit weights, on the CPU.

Decoding one token reads every weight once, so on a CPU its speed is the bytes read per token. A
preset's GGUF stores most projections as Q4_K: 32-weight groups of 4-bit codes with a scale and an
offset each (w = scale * code - offset). torch's CPU int4 kernel computes exactly that form
(w = (code - 8) * scale + zero), so those tensors are carried over losslessly, code for code, and a
one-row product reads a quarter of the bf16 bytes. Prompts (many rows) and batched steps keep
using the bf16 weights, where the int4 kernel is slower (measured, Intel Xeon AMX, 2 cores: 1 row
0.35 vs 0.83 ms for a 1536x8960 projection; 8 rows 1.26 vs 0.91 ms). Q6_K tensors and the output
head stay bf16: no torch kernel takes their 16-weight groups.

The codes are unpacked once, when the GGUF is converted, into `int4.safetensors` beside the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
    from safetensors.torch import save_file

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
        tensors[f"{name}.codes"] = codes_t[:, 0::2] | (codes_t[:, 1::2] << 4)  # two codes a byte on disk
        tensors[f"{name}.scale"] = scale_t
        tensors[f"{name}.offset"] = offset_t
    if tensors:
        # Renamed into place: an interrupted write must not leave a file that looks finished.
        staging = target / f".{SIDE_FILE}.part"
        save_file(tensors, str(staging))
        os.replace(staging, target / SIDE_FILE)
    return len(tensors) // 3


def _hf_name(gguf_name: str) -> str | None:
    parts = gguf_name.split(".")
    if len(parts) != 4 or parts[0] != "blk" or parts[3] != "weight" or parts[2] not in _PROJECTIONS:
        return None
    return f"model.layers.{parts[1]}.{_PROJECTIONS[parts[2]]}.weight"


class Int4DecodeLinear(nn.Linear):
    """An `nn.Linear` that multiplies a single row with the int4 codes, more rows with `weight`."""

    int4_packed: torch.Tensor
    int4_scale_zero: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows != 1 or x.dtype != self.int4_scale_zero.dtype:
            return F.linear(x, self.weight, self.bias)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(x.reshape(1, -1), self.int4_packed, GROUP, self.int4_scale_zero)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def attach_int4(model: nn.Module, directory: Path) -> int:
    """Give `model`'s linears the int4 codes in `directory/int4.safetensors`; returns how many."""
    from safetensors import safe_open

    path = directory / SIDE_FILE
    if not path.is_file():
        return 0
    attached = 0
    with safe_open(str(path), "pt") as side:
        for key in side.keys():
            if not key.endswith(".codes"):
                continue
            name = key.removesuffix(".weight.codes")
            module = model.get_submodule(name)
            if type(module) is not nn.Linear:
                continue
            packed = side.get_tensor(key)
            codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1)
            scale = side.get_tensor(f"{name}.weight.scale")
            zero = 8 * scale - side.get_tensor(f"{name}.weight.offset")
            dtype = module.weight.dtype
            module.int4_packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 1)
            module.int4_scale_zero = torch.stack([scale.t(), zero.t()], dim=-1).to(dtype).contiguous()
            module.__class__ = Int4DecodeLinear
            attached += 1
    return attached
