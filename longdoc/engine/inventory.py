"""What a user has for running models: presets installed and cached, the device, the embedder.

Answers `longdoc models` without loading any model; only the device check imports torch.
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from longdoc.engine.presets import DEFAULT_PRESET, FAST_PRESET, PRESETS, Preset


@dataclass(frozen=True)
class PresetStatus:
    """One preset as this machine has it."""

    name: str
    description: str
    role: str  # "default", "fast" or ""
    installed: bool  # every weight package importable
    cached: bool  # converted to safetensors already: loads in seconds
    cache_bytes: int
    install_hint: str  # the pip command that installs it; empty when installed

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class DeviceStatus:
    """Where models would run with --device auto."""

    device: str
    dtype: str
    detail: str  # GPU name, or the CPU's architecture and core count
    torch_version: str


def preset_statuses(cache_root: Path) -> list[PresetStatus]:
    """Every preset with whether it is installed and cached under `cache_root`."""
    return [_status(preset, cache_root) for preset in PRESETS.values()]


def _status(preset: Preset, cache_root: Path) -> PresetStatus:
    modules = preset.parts or ((preset.assembler,) if preset.assembler else ())
    installed = all(importlib.util.find_spec(module) is not None for module in modules)
    directory = cache_root / "models" / preset.name
    cached = (directory / "config.json").is_file()
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) if cached else 0
    role = {DEFAULT_PRESET: "default", FAST_PRESET: "fast"}.get(preset.name, "")
    hint = "" if installed else "pip install " + " ".join(preset.requirements)
    return PresetStatus(preset.name, preset.description, role, installed, cached, size, hint)


def device_status() -> DeviceStatus:
    """The device and dtype `--device auto` picks (imports torch)."""
    import os

    import torch

    from longdoc.engine.loading import choose_device

    device, dtype = choose_device("auto")
    if device.type == "cuda":
        detail = torch.cuda.get_device_name(device)
    else:
        detail = f"{platform.machine()}, {os.cpu_count()} cores"
    return DeviceStatus(device.type, str(dtype).removeprefix("torch."), detail, torch.__version__)
