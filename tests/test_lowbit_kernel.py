"""lowbit.c, the one-row 4-bit x int8 product a decoding step uses: built here, the same products
as the weights it packs (to int8 activations' rounding), on both of its vector paths, and wired
into the int8 layers so that one-row steps take it and prompts keep fbgemm."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from longdoc.engine import decode_weights, lowbit_kernel
from longdoc.engine.decode_weights import (
    LOWBIT_FILE,
    DynamicShortlistHead,
    attach_decode_weights,
    decode_rows_for,
    dequantize,
    derived_ready,
    dynamic_int8_available,
    dynamic_product,
    kernel_for,
    quantize_int4_groups,
    quantize_int8_rows,
)
from longdoc.engine.lowbit_kernel import OneRowProduct, pack_q4, pack_q8
from tests.test_decode_weights import COLS, _Block, _prepack, _relative, _tiny_with_codes

# Activations quantized to int8 per group of 32, as llama.cpp's Q8 rows: ~0.5% on random rows.
ROUNDING = 1.5e-2


def _variants() -> list[tuple[str, ctypes.CDLL]]:
    """Each vector path this CPU can run, built separately: AVX2 everywhere, AVX-512 VNNI where it is."""
    found: dict[int, tuple[str, ctypes.CDLL]] = {}
    for march in ("haswell", "native"):
        built = lowbit_kernel.build(march)
        lib = None if built is None else lowbit_kernel.load(built)
        if lib is not None:
            found.setdefault(lib.lowbit_isa(), (march, lib))
    return list(found.values())


VARIANTS = _variants() if lowbit_kernel.library() is not None else []
needs_kernel = pytest.mark.skipif(not VARIANTS, reason="no C compiler or no AVX2 here: the kernel is not used")


@needs_kernel
@pytest.mark.parametrize("march, lib", VARIANTS, ids=[m for m, _ in VARIANTS])
@pytest.mark.parametrize("rows, cols", [(16, 32), (48, 96), (256, 1536), (1536, 896)])
def test_four_bit_rows_give_the_product_of_the_weights_they_code(march: str, lib: ctypes.CDLL, rows: int, cols: int) -> None:
    torch.manual_seed(rows + cols)
    weight = torch.randn(rows, cols) * 0.05 + 0.01  # an offset: the groups' minimums matter
    codes, scale, offset = quantize_int4_groups(weight)
    x = torch.randn(1, cols)
    expected = x @ dequantize(codes, scale, offset).t()
    got = OneRowProduct([pack_q4(codes, scale, offset)], lib)(x)
    assert got.shape == (1, rows) and got.dtype == torch.float32
    assert _relative(got, expected) < ROUNDING


@needs_kernel
@pytest.mark.parametrize("march, lib", VARIANTS, ids=[m for m, _ in VARIANTS])
def test_int8_rows_give_their_product_even_at_the_extremes(march: str, lib: ctypes.CDLL) -> None:
    torch.manual_seed(0)
    weight = torch.randn(64, 256)
    weight[3, 7], weight[9, 100] = 40.0, -40.0  # codes at +-127: AVX2's sign trick and AVX-512's shift
    codes, scale = quantize_int8_rows(weight)
    x = torch.randn(1, 256)
    x[0, 5] = 30.0  # an outlier: only its own group of 32 is quantized coarsely
    rows = codes.float() * scale[:, None]
    expected = x @ rows.t()
    got = _relative(OneRowProduct([pack_q8(codes, scale)], lib)(x), expected)
    step = x.abs().max() / 127  # one scale for the whole row, as fbgemm quantizes it
    one_scale = _relative((torch.round(x / step) * step) @ rows.t(), expected)
    assert got < 3e-2 and got < one_scale / 2


@needs_kernel
def test_matrices_sharing_an_input_come_out_side_by_side_as_each_alone() -> None:
    torch.manual_seed(1)
    q4 = pack_q4(*quantize_int4_groups(torch.randn(64, 128)))
    q8 = pack_q8(*quantize_int8_rows(torch.randn(32, 128)))
    x = torch.randn(1, 128).bfloat16()
    together = OneRowProduct([q4, q8, q4])(x)
    assert together.dtype == torch.bfloat16 and together.shape == (1, 160)
    assert torch.equal(together[:, :64], OneRowProduct([q4])(x))
    assert torch.equal(together[:, 64:96], OneRowProduct([q8])(x))
    assert torch.equal(together[:, 96:], together[:, :64])
    with pytest.raises(ValueError, match="input width"):
        OneRowProduct([q4, pack_q8(*quantize_int8_rows(torch.randn(16, 64)))])


def test_only_whole_tiles_and_groups_fit() -> None:
    assert lowbit_kernel.fits(16, 32) and lowbit_kernel.fits(151936, 1536)
    assert not lowbit_kernel.fits(24, 32) and not lowbit_kernel.fits(16, 48) and not lowbit_kernel.fits(0, 32)


def test_no_compiler_means_no_kernel_and_the_int8_kernel_serves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGDOC_HOME", str(tmp_path))
    monkeypatch.setattr(lowbit_kernel.shutil, "which", lambda name: None)
    assert lowbit_kernel.build() is None
    monkeypatch.setattr(lowbit_kernel, "library", lambda: None)
    if dynamic_int8_available():
        assert kernel_for(torch.float32) == kernel_for(torch.bfloat16, "int8") == "dynamic"


def test_a_broken_build_is_no_kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGDOC_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails
    monkeypatch.setattr(lowbit_kernel.shutil, "which", lambda name: "/bin/false" if name == "false" else None)
    assert lowbit_kernel.build("haswell") is None
    assert not list((tmp_path / "kernels").glob("*.so"))  # nothing half-built is left to load


@needs_kernel
@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_auto_takes_the_kernel_for_steps_and_int8_keeps_fbgemm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_weights, "cpu_has_amx", lambda: False)
    assert kernel_for(torch.float32) == kernel_for(torch.bfloat16) == "lowbit"
    assert kernel_for(torch.float32, "int8") == "dynamic"
    assert decode_rows_for(torch.bfloat16, "lowbit") == decode_rows_for(torch.bfloat16, "dynamic")
    monkeypatch.setattr(decode_weights, "cpu_has_amx", lambda: True)
    assert kernel_for(torch.bfloat16) == "int4"  # AMX CPUs keep their path: the kernel is not measured there
    assert kernel_for(torch.bfloat16, "lowbit") == "lowbit"  # unless asked for


@needs_kernel
@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_one_row_steps_take_the_gguf_codes_and_prompts_keep_fbgemm(tmp_path: Path) -> None:
    model = _tiny_with_codes(tmp_path, torch.bfloat16)  # proj has Q4_K codes; other and head do not
    assert attach_decode_weights(model, tmp_path, decode_rows=decode_rows_for(torch.bfloat16, "lowbit"), kernel="lowbit") == 3
    assert derived_ready(tmp_path, "lowbit") and (tmp_path / LOWBIT_FILE).is_file()
    assert type(model.head) is DynamicShortlistHead
    assert all(layer.one_row is not None for layer in (model.proj, model.other, model.head))
    step = torch.randn(1, COLS).bfloat16()
    for layer in (model.proj, model.other):
        expected = F.linear(step.float(), layer.weight.float(), None if layer.bias is None else layer.bias.float())
        got = layer(step)
        assert got.dtype == torch.bfloat16 and _relative(got, expected) < ROUNDING + 1e-2  # bf16 output too
        # Not fbgemm's product: the kernel did this step.
        assert not torch.equal(got, layer.low_bit(step) + (0 if layer.bias is None else layer.bias))
    assert torch.equal(model.head(step).argmax(-1), F.linear(step, model.head.weight).argmax(-1))
    # The carried Q4_K codes are the weights themselves: the step matches them to the activations' rounding.
    assert _relative(model.proj.one_row(step.float()), step.float() @ model.proj.weight.float().t()) < ROUNDING
    batch = torch.randn(4, COLS).bfloat16()  # several rows: fbgemm, each row scaled alone
    expected = dynamic_product(batch, _prepack(*quantize_int8_rows(model.other.weight)))
    assert torch.allclose(model.other(batch).float(), expected.float(), atol=1e-2)


@needs_kernel
@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_a_block_shares_one_quantized_row_and_reuses_its_derived_tiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    block = _Block()
    rows = decode_rows_for(torch.float32, "lowbit")
    attach_decode_weights(block, tmp_path, decode_rows=rows, kernel="lowbit")
    attn = block.self_attn
    x = torch.randn(1, 1, COLS)
    got = {name: getattr(attn, name)(x) for name in ("k_proj", "q_proj", "v_proj", "o_proj")}  # any order
    for name, out in got.items():
        layer = getattr(attn, name)
        expected = F.linear(x, layer.weight, layer.bias)
        assert out.shape == expected.shape and _relative(out, expected) < ROUNDING, name
    down = block.mlp.down_proj(torch.randn(1, 96))
    assert down.shape == (1, COLS)
    # A second load reads the tiles kept beside the model (not derived again from its weights).
    torch.manual_seed(5)
    other = _Block()
    attach_decode_weights(other, tmp_path, decode_rows=rows, kernel="lowbit")
    row = x.reshape(1, COLS)
    assert torch.equal(other.self_attn.q_proj.one_row(row), attn.q_proj.one_row(row))


@needs_kernel
@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
def test_tiles_of_another_shape_are_never_handed_to_the_kernel(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = _tiny_with_codes(tmp_path, torch.float32)
    # A kept file from another model: proj's tiles a tile short, other's scales missing.
    short = pack_q4(*quantize_int4_groups(torch.randn(48, COLS)))
    int8 = pack_q8(*quantize_int8_rows(torch.randn(96, COLS)))
    save_file({"proj.weight.q4": short.tiles, "other.weight.q8": int8.tiles}, str(tmp_path / LOWBIT_FILE), metadata={"format": "1"})
    attach_decode_weights(model, tmp_path, decode_rows=decode_rows_for(torch.float32, "lowbit"), kernel="lowbit")
    assert model.proj.one_row is None and model.other.one_row is None  # both keep fbgemm
    step = torch.randn(1, COLS)
    assert _relative(model.proj(step), F.linear(step, model.proj.weight, model.proj.bias)) < 4e-2
