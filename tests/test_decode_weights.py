"""The low-bit decoding path: Q4_K codes carried over exactly, int8 rows and a shortlisted head for
the rest, and the same products (and the same greedy token) as the float weights."""

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

from longdoc.engine import decode_weights
from longdoc.engine.cpu_linear import WeightFirstLinear, use_weight_first_linears
from longdoc.engine.decode_weights import (
    DERIVED_FILE,
    SHORTLIST,
    DynamicInt8Linear,
    DynamicShortlistHead,
    SIDE_FILE,
    Int4DecodeLinear,
    Int8DecodeLinear,
    SharedInputInt8Linear,
    ShortlistHead,
    attach_decode_weights,
    dequantize,
    decode_rows_for,
    derived_ready,
    dynamic_product,
    dynamic_int8_available,
    extract_q4_k,
    kernel_for,
    quantize_int4_groups,
    quantize_int8_rows,
    unpack_q4_k,
)
from longdoc.engine.decode_weights import _prepack

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


class _Block(nn.Module):
    """The linears of a Llama-style block, named as Qwen2, Llama and Gemma name them."""

    def __init__(self) -> None:
        super().__init__()
        self.self_attn = nn.Module()
        self.mlp = nn.Module()
        for name, rows in (("q_proj", 64), ("k_proj", 16), ("v_proj", 16), ("o_proj", COLS)):
            setattr(self.self_attn, name, nn.Linear(COLS, rows, bias=name != "o_proj"))
        for name, rows in (("gate_proj", 96), ("up_proj", 96)):
            setattr(self.mlp, name, nn.Linear(COLS, rows, bias=False))
        self.mlp.down_proj = nn.Linear(96, COLS, bias=False)
        self.head = nn.Linear(COLS, 1024, bias=False)

    def get_output_embeddings(self) -> nn.Linear:
        return self.head


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_linears_that_share_an_input_are_multiplied_as_one_with_the_same_products(tmp_path: Path) -> None:
    torch.manual_seed(0)
    block = _Block()
    floats = {name: (m.weight.detach().clone(), m.bias) for name, m in block.named_modules() if isinstance(m, nn.Linear)}
    assert attach_decode_weights(block, tmp_path, decode_rows=decode_rows_for(torch.float32, "dynamic"), kernel="dynamic") == 8
    attn, mlp = block.self_attn, block.mlp
    assert all(type(m) is SharedInputInt8Linear for m in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj))
    assert attn.q_proj.shared is attn.v_proj.shared and mlp.gate_proj.shared is mlp.up_proj.shared
    assert type(attn.o_proj) is DynamicInt8Linear and type(mlp.down_proj) is DynamicInt8Linear
    x, other = torch.randn(3, 1, COLS), torch.randn(3, 1, COLS)

    def alone(name: str, rows: torch.Tensor) -> torch.Tensor:
        """The product of that linear packed by itself, as before the grouping."""
        weight, bias = floats[name]
        out = dynamic_product(rows.reshape(-1, COLS), _prepack(*quantize_int8_rows(weight)))
        return (out + bias if bias is not None else out).reshape(*rows.shape[:-1], -1)

    # In the model's order, out of order, repeated, and with another input between: each
    # member's own product every time.
    calls = [("q_proj", x), ("k_proj", x), ("v_proj", x), ("k_proj", x), ("v_proj", other), ("q_proj", x), ("q_proj", other)]
    for name, rows in calls:
        got = getattr(attn, name)(rows)
        assert torch.allclose(got, alone(f"self_attn.{name}", rows), atol=1e-5), name
    for name in ("gate_proj", "up_proj"):
        assert torch.allclose(getattr(mlp, name)(x), alone(f"mlp.{name}", x), atol=1e-5)
    assert mlp.gate_proj.shared._products == []  # every member took its part: none kept


class _Tiny(nn.Module):
    """A projection the GGUF stores as Q4_K, one it stores otherwise, and an output head."""

    def __init__(self, vocab: int = 1024) -> None:
        super().__init__()
        self.proj = nn.Linear(COLS, ROWS, bias=True, dtype=torch.bfloat16)
        self.other = nn.Linear(COLS, 96, bias=False, dtype=torch.bfloat16)
        self.head = nn.Linear(COLS, vocab, bias=False, dtype=torch.bfloat16)

    def get_output_embeddings(self) -> nn.Linear:
        return self.head


def _tiny_with_codes(directory: Path, dtype: torch.dtype) -> _Tiny:
    raw = random_q4_k(ROWS, COLS, seed=1)
    codes, scale, offset = (torch.from_numpy(a) for a in unpack_q4_k(raw, ROWS, COLS))
    torch.manual_seed(0)
    model = _Tiny().to(dtype)
    with torch.no_grad():
        model.proj.weight.copy_(dequantize(codes, scale, offset))
    save_file(
        {"proj.weight.codes": codes[:, 0::2] | (codes[:, 1::2] << 4), "proj.weight.scale": scale, "proj.weight.offset": offset},
        str(directory / SIDE_FILE),
    )
    return model


def _relative(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.detach().float() - expected).norm() / expected.norm())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_few_rows_through_low_bit_weights_equal_the_float_products(tmp_path: Path, dtype: torch.dtype) -> None:
    model = _tiny_with_codes(tmp_path, dtype)
    assert attach_decode_weights(model, tmp_path, decode_rows=1) == 3
    assert (type(model.proj), type(model.other), type(model.head)) == (Int4DecodeLinear, Int8DecodeLinear, ShortlistHead)
    one = torch.randn(1, 1, COLS, dtype=dtype)
    # The activations go through the kernels in bf16: about bf16's rounding, whatever the model's dtype.
    for layer in (model.proj, model.other):
        expected = F.linear(one.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())
        assert _relative(layer(one), expected) < 2e-2
    # More rows (a prompt, a batched step) take the float weights: exactly F.linear.
    many = torch.randn(3, 5, COLS, dtype=dtype)
    assert torch.equal(model.proj(many), F.linear(many, model.proj.weight, model.proj.bias))
    assert torch.equal(model.head(many), F.linear(many, model.head.weight))


def test_the_shortlisted_head_picks_the_float_heads_token(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.float32)
    attach_decode_weights(model, tmp_path, decode_rows=8)
    rows = torch.randn(8, COLS)
    logits = model.head(rows)
    expected = F.linear(rows, model.head.weight)
    assert torch.equal(logits.argmax(-1), expected.argmax(-1))
    # The leading logits are the float head's own (they lie in the shortlist); the rest are 4-bit
    # approximations.
    best = logits.topk(SHORTLIST // 8, dim=-1).indices
    torch.testing.assert_close(logits.gather(-1, best), expected.gather(-1, best), rtol=1e-5, atol=1e-5)
    assert _relative(logits, expected) < 0.1


def test_four_bit_groups_reconstruct_the_weight() -> None:
    weight = torch.randn(40, 256)
    codes, scale, offset = quantize_int4_groups(weight)
    assert int(codes.max()) <= 15
    # 16 levels over each group's range: a few percent, as Q4's own error.
    assert _relative(dequantize(codes, scale, offset), weight) < 0.1


def test_derived_weights_are_kept_and_reused(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.float32)
    attach_decode_weights(model, tmp_path, decode_rows=1)
    assert (tmp_path / DERIVED_FILE).is_file()
    one = torch.randn(1, COLS)
    first = model.other(one)
    # A second load reads them back instead of quantizing again: the same products.
    again = _Tiny().to(torch.float32)
    again.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        again.other.weight.zero_()  # a quantization now would give zeros
    attach_decode_weights(again, tmp_path, decode_rows=1)
    assert torch.equal(again.other(one), first)


def test_fp32_weight_first_layers_keep_their_product_for_more_rows(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.float32)
    use_weight_first_linears(model)
    attach_decode_weights(model, tmp_path, decode_rows=8)
    assert type(model.proj) is Int4DecodeLinear and model.proj.weight_first
    rows = torch.randn(20, COLS)  # more than decode_rows: the weight-first float product
    reference = WeightFirstLinear(COLS, ROWS, dtype=torch.float32)
    reference.load_state_dict(model.proj.state_dict())
    assert torch.equal(model.proj(rows), reference(rows))


def test_no_side_file_still_gets_derived_weights(tmp_path: Path) -> None:
    model = _Tiny()
    assert attach_decode_weights(model, tmp_path, decode_rows=1) == 3
    assert type(model.proj) is Int8DecodeLinear


def test_a_read_only_model_directory_still_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    model = _tiny_with_codes(tmp_path, torch.float32)
    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    assert attach_decode_weights(model, tmp_path, decode_rows=1) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [SIDE_FILE]  # nothing half-written left behind


def test_unknown_weights_setting_is_a_clear_error(tmp_path: Path) -> None:
    from longdoc.engine.loading import load_model
    from longdoc.errors import ModelError

    with pytest.raises(ModelError, match="unknown weights 'int3'"):
        load_model("qwen2.5-0.5b", tmp_path, weights="int3")


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_the_dynamic_kernel_gives_every_linear_int8_rows_and_the_float_heads_token(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.float32)
    assert attach_decode_weights(model, tmp_path, decode_rows=8, kernel="dynamic") == 3
    assert (type(model.proj), type(model.other), type(model.head)) == (DynamicInt8Linear, DynamicInt8Linear, DynamicShortlistHead)
    assert derived_ready(tmp_path, "dynamic")
    rows = torch.randn(8, COLS)
    for layer in (model.proj, model.other):
        expected = F.linear(rows, layer.weight, layer.bias)
        # 7-bit activations and int8 rows: a few percent, as llama.cpp's own 8-bit activations.
        assert _relative(layer(rows), expected) < 4e-2
    expected = F.linear(rows, model.head.weight)
    assert torch.equal(model.head(rows).argmax(-1), expected.argmax(-1))
    # Nine rows (a prompt) take the float weights exactly.
    many = torch.randn(9, COLS)
    assert torch.equal(model.proj(many), F.linear(many, model.proj.weight, model.proj.bias))


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
@pytest.mark.parametrize("amx", [False, True])
def test_int8_is_the_default_kernel_except_for_bf16_models_on_amx_cpus(monkeypatch: pytest.MonkeyPatch, amx: bool) -> None:
    monkeypatch.setattr(decode_weights, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(decode_weights.lowbit_kernel, "library", lambda: None)  # no compiler: fbgemm alone
    assert kernel_for(torch.float32) == kernel_for(torch.float32, "int8") == kernel_for(torch.bfloat16, "int8") == "dynamic"
    # AMX's bf16 tiles read prompts faster than int8 on AVX-512 (Zen 4 without them: the reverse).
    assert kernel_for(torch.bfloat16) == ("int4" if amx else "dynamic")
    assert kernel_for(torch.float32, "int4") == kernel_for(torch.bfloat16, "int4") == "int4"
    assert kernel_for(torch.float32, "float") == kernel_for(torch.bfloat16, "float") == "int4"  # never lean
    # Every row count goes through int8, a bf16 model's too; the codes serve few rows.
    assert decode_rows_for(torch.bfloat16, "dynamic") == decode_rows_for(torch.float32, "dynamic") >= 8 * 512
    assert decode_rows_for(torch.bfloat16, "int4") == 1


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_the_dynamic_kernel_takes_a_bf16_models_rows_and_gives_bf16_back(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.bfloat16)
    assert attach_decode_weights(model, tmp_path, decode_rows=decode_rows_for(torch.bfloat16, "dynamic"), kernel="dynamic") == 3
    for rows in (torch.randn(1, COLS), torch.randn(8, COLS), torch.randn(600, COLS)):  # a step, a batch, a prompt
        rows = rows.bfloat16()
        for layer in (model.proj, model.other):
            got = layer(rows)
            assert got.dtype == torch.bfloat16
            assert _relative(got, F.linear(rows.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())) < 4e-2
        assert torch.equal(model.head(rows).argmax(-1), F.linear(rows, model.head.weight).argmax(-1))


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_a_batched_row_with_an_outlier_does_not_flatten_the_others(tmp_path: Path) -> None:
    """Regression: fbgemm quantized a batched step's rows with one scale, so one row with a large
    activation (Qwen's outliers) left the other rows a few quantization levels."""
    model = _tiny_with_codes(tmp_path, torch.float32)
    attach_decode_weights(model, tmp_path, decode_rows=8, kernel="dynamic")
    rows = torch.randn(8, COLS)
    rows[0, 3] = 2000.0  # one outlier in the first row only
    expected = F.linear(rows, model.other.weight, model.other.bias)
    got = model.other(rows)
    for row in range(1, 8):  # every other row as exact as it is alone
        assert _relative(got[row], expected[row]) < 4e-2
    assert _relative(got[1:2], F.linear(rows[1:2], model.other.weight, model.other.bias)) < 4e-2


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_the_dynamic_kernel_reads_prompts_too_each_token_scaled_alone(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.float32)
    rows = decode_rows_for(torch.float32, "dynamic")
    assert rows >= 8 * 512  # a batch of eight prompts' segments
    attach_decode_weights(model, tmp_path, decode_rows=rows, kernel="dynamic")
    prompt = torch.randn(600, COLS)
    prompt[0] *= 300.0  # an attention-sink token with huge activations, as Qwen's first token has
    expected = F.linear(prompt, model.other.weight, model.other.bias)
    got = model.other(prompt)
    assert not torch.equal(got, expected)  # the int8 kernel did the work
    assert _relative(got[1:], expected[1:]) < 4e-2  # the other tokens keep their own scale
