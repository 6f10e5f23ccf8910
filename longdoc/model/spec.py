"""The one place a `Model` is made: the local engine or an OpenAI-compatible server, from settings."""

from __future__ import annotations

import os
from pathlib import Path

from longdoc.config import Settings
from longdoc.model.chat_api import RemoteConfig
from longdoc.model.protocol import Model
from longdoc.model.server import OpenAIModel

API_KEY_VARIABLE = "LONGDOC_API_KEY"


def open_model(settings: Settings, home: Path, cache: object | None = None) -> Model:
    """The model `settings` name; `cache` (a SegmentCacheConfig) sizes the local engine's memory."""
    if (settings.backend or "local") == "openai":
        return OpenAIModel(remote_config(settings))
    from longdoc.engine.loading import load_model
    from longdoc.engine.presets import DEFAULT_PRESET

    return load_model(
        settings.model or DEFAULT_PRESET,
        home,
        device=settings.device or "auto",
        cache=cache,  # type: ignore[arg-type]
        weights=settings.weights or "auto",
    )


def remote_config(settings: Settings) -> RemoteConfig:
    """The server settings, with built-in defaults for what is not set and the key from the environment."""
    assert settings.base_url and settings.api_model, "the openai backend needs base_url and api_model"
    given = {
        "context_window": settings.context_window,
        "concurrency": settings.concurrency,
        "timeout": settings.timeout,
        "retries": settings.retries,
    }
    return RemoteConfig(
        base_url=settings.base_url,
        model=settings.api_model,
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
        **{name: value for name, value in given.items() if value is not None},  # type: ignore[arg-type]
    )


def is_remote(model: Model) -> bool:
    """Whether `model` is served over HTTP (its calls fan out as concurrent requests)."""
    return isinstance(model, OpenAIModel)


def concurrency(model: Model) -> int:
    """How many requests a model serves at once: a server's limit, 1 for the local engine (which
    batches prompts in one forward pass instead)."""
    return model.concurrency if isinstance(model, OpenAIModel) else 1
