"""Which model runs the tasks, as a typed spec, and the one place a `Model` is made from it.

A spec is either `LocalSpec` (a preset, Hugging Face directory or GGUF file for the local engine)
or `RemoteConfig` (an OpenAI-compatible server). `model_spec` builds it from the settings and is
the only place that checks the choice (backend, served name, no local model named for a server);
the server URL is checked where it is kept, by `RemoteConfig` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from longdoc.config import BACKENDS, ModelSettings
from longdoc.errors import ModelChoiceError
from longdoc.model.chat_api import RemoteConfig
from longdoc.model.protocol import Model
from longdoc.progress import OnProgress

if TYPE_CHECKING:
    from longdoc.engine.cache_config import SegmentCacheConfig

API_KEY_VARIABLE = "LONGDOC_API_KEY"


@dataclass(frozen=True)
class LocalSpec:
    """A model the local engine loads: a preset name, a Hugging Face model directory or a .gguf file."""

    model: str
    device: str = "auto"  # auto, cpu or cuda
    weights: str = "auto"  # see engine/decode_weights.py


ModelSpec = LocalSpec | RemoteConfig


def model_spec(settings: ModelSettings) -> ModelSpec:
    """The spec `settings` name; a `ModelChoiceError` names the option that is wrong or missing."""
    backend = settings.backend or "local"
    if backend not in BACKENDS:
        raise ModelChoiceError(f"{backend!r} is not one of {', '.join(BACKENDS)}", "--backend")
    if backend == "local":
        from longdoc.engine.presets import DEFAULT_PRESET

        return LocalSpec(settings.model or DEFAULT_PRESET, settings.device or "auto", settings.weights or "auto")
    if settings.model is not None:
        raise ModelChoiceError("--model and --fast pick a local model; name the served one with --api-model", "--model")
    for value, flag in ((settings.base_url, "--base-url"), (settings.api_model, "--api-model")):
        if not value:
            raise ModelChoiceError(f"the openai backend needs {flag} (or {flag[2:].replace('-', '_')} in longdoc.toml)", flag)
    given = {
        "context_window": settings.context_window,
        "concurrency": settings.concurrency,
        "timeout": settings.timeout,
        "retries": settings.retries,
    }
    return RemoteConfig(
        base_url=settings.base_url,  # type: ignore[arg-type]
        model=settings.api_model,  # type: ignore[arg-type]
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
        **{name: value for name, value in given.items() if value is not None},  # type: ignore[arg-type]
    )


def open_model(
    spec: ModelSpec, home: Path, cache: SegmentCacheConfig | None = None, on_progress: OnProgress | None = None
) -> Model:
    """The model `spec` names; `cache` sizes the local engine's memory (a server has its own), and
    `on_progress` hears of the local model's one-time preparation."""
    if isinstance(spec, RemoteConfig):
        from longdoc.model.server import OpenAIModel

        return OpenAIModel(spec)
    from longdoc.engine.loading import load_model

    return load_model(spec.model, home, device=spec.device, cache=cache, weights=spec.weights, on_progress=on_progress)
