"""What this machine's processor can do, where that decides how a model runs on it."""

from __future__ import annotations

import platform
from pathlib import Path

# Linux lists the CPU's features here; reading them imports no torch (a cached search needs none).
_CPUINFO = Path("/proc/cpuinfo")
# x86: AVX512-BF16 or AMX's bf16 tiles; Arm: the BF16 extension.
_NATIVE_BF16 = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# Intel's matrix tiles (Sapphire Rapids and later): bf16 products several times AVX-512's.
_AMX = frozenset({"amx_bf16", "amx_tile"})


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware: AVX512-BF16 or AMX on x86, the BF16 extension on Arm.

    The model loader and the embedder both ask this, so they choose bf16 on the same machines. On
    x86 oneDNN also takes bf16 on plain AVX-512 by emulating it; that does not count here.
    """
    flags = _linux_cpu_flags()
    if flags is None:
        return _torch_sees_native_bf16()
    return not flags.isdisjoint(_NATIVE_BF16)


def cpu_has_amx() -> bool:
    """True on CPUs with Intel's AMX tiles, where bf16 matrix products outrun int8 dot products on
    AVX-512 (the loader keeps the float weights for prompts there)."""
    flags = _linux_cpu_flags()
    if flags is None:
        import torch

        return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return not flags.isdisjoint(_AMX)


def _linux_cpu_flags() -> frozenset[str] | None:
    """The feature names Linux lists for the CPU ('flags' on x86, 'Features' on Arm); None elsewhere."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:
        return None
    lines = (line for line in text.splitlines() if line.startswith(("flags", "Features")))
    return frozenset(word for line in lines for word in line.partition(":")[2].split())


def _torch_sees_native_bf16() -> bool:
    """The same question put to torch's cpuinfo, where there is no /proc/cpuinfo (macOS, Windows)."""
    import torch

    try:
        if platform.machine().lower() in ("x86_64", "amd64"):
            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # Arm: cpuinfo's BF16 feature
    except (AttributeError, RuntimeError):
        return False  # a torch without these probes: fp32, which every CPU runs
