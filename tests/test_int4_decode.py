"""The 4-bit decoding path: Q4_K codes carried over exactly, and the same products as the float weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize as gguf_dequantize
from safetensors.torch import save_file
from torch import nn

from longdoc.engine.int4_decode import (
    SIDE_FILE,
    Int4DecodeLinear,
    attach_int4,
    dequantize,
    extract_q4_k,
    unpack_q4_k,
)

ROWS, COLS = 64, 512  # two Q4_K blocks per row


def random_q4_k(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Q4_K bytes with random codes and scales, and small finite d / dmin (random f16 bits could be NaN)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(rows * cols // 256, 144), dtype=np.uint8)
    blocks[:, 0:2] = rng.uniform(0.001, 0.01, len(blocks)).astype(np.float16).view(np.uint8).reshape(-1, 2)
    blocks[:, 2:4] = rng.uniform(0.001, 0.01, len(blocks)).astype(np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1)


def test_unpacked_codes_give_the_weights_gguf_itself_decodes() -> None:
    raw = random_q4_k(ROWS, COLS)
    codes, scale, offset = unpack_q4_k(raw, ROWS, COLS)
    assert codes.min() >= 0 and codes.max() <= 15
    ours = dequantize(torch.from_numpy(codes), torch.from_numpy(scale), torch.from_numpy(offset))
    reference = torch.from_numpy(gguf_dequantize(raw, GGMLQuantizationType.Q4_K).reshape(ROWS, COLS))
    torch.testing.assert_close(ours, reference.float(), rtol=1e-5, atol=1e-6)


def _write_gguf(path: Path, raw: np.ndarray) -> None:
    writer = GGUFWriter(str(path), "qwen2")
    writer.add_tensor("blk.0.attn_q.weight", raw, raw_shape=raw.shape, raw_dtype=GGMLQuantizationType.Q4_K)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_extract_keeps_a_tensor_only_where_it_matches_the_converted_weight(tmp_path: Path) -> None:
    raw = random_q4_k(ROWS, COLS)
    _write_gguf(tmp_path / "m.gguf", raw)
    weight = torch.from_numpy(gguf_dequantize(raw, GGMLQuantizationType.Q4_K).reshape(ROWS, COLS)).to(torch.bfloat16)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert extract_q4_k(tmp_path / "m.gguf", tmp_path, {name: weight}.get) == 1
    assert (tmp_path / SIDE_FILE).is_file()
    # The converter reordered rows (as Llama's q/k are): the codes would be wrong, so none are kept.
    other = tmp_path / "other"
    other.mkdir()
    assert extract_q4_k(tmp_path / "m.gguf", other, {name: weight.flip(0)}.get) == 0
    assert not (other / SIDE_FILE).exists()


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(COLS, ROWS, bias=True, dtype=torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_one_row_through_the_codes_equals_the_float_product(tmp_path: Path, dtype: torch.dtype) -> None:
    raw = random_q4_k(ROWS, COLS, seed=1)
    codes, scale, offset = (torch.from_numpy(a) for a in unpack_q4_k(raw, ROWS, COLS))
    model = _Tiny().to(dtype)
    with torch.no_grad():
        model.proj.weight.copy_(dequantize(codes, scale, offset))
    save_file(
        {"proj.weight.codes": codes[:, 0::2] | (codes[:, 1::2] << 4), "proj.weight.scale": scale, "proj.weight.offset": offset},
        str(tmp_path / SIDE_FILE),
    )
    assert attach_int4(model, tmp_path) == 1
    assert type(model.proj) is Int4DecodeLinear
    torch.manual_seed(0)
    one = torch.randn(1, 1, COLS, dtype=dtype)
    many = torch.randn(3, 5, COLS, dtype=dtype)
    expected_one = F.linear(one.float(), model.proj.weight.float(), model.proj.bias.float())
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-3
    relative = (model.proj(one).float() - expected_one).norm() / expected_one.norm()
    assert relative < tolerance
    # More rows (a prompt, a batched step) take the float weights: exactly F.linear.
    assert torch.equal(model.proj(many), F.linear(many, model.proj.weight, model.proj.bias))


def test_no_side_file_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    model = _Tiny()
    assert attach_int4(model, tmp_path) == 0
    assert type(model.proj) is nn.Linear


def test_unknown_weights_setting_is_a_clear_error(tmp_path: Path) -> None:
    from longdoc.engine.loading import load_model
    from longdoc.errors import ModelError

    with pytest.raises(ModelError, match="unknown weights 'int3'"):
        load_model("qwen2.5-0.5b", tmp_path, weights="int3")
