"""Defaults from a `longdoc.toml` file, which command-line flags override.

The file is the first of: $LONGDOC_CONFIG (a path), `./longdoc.toml`, and `longdoc.toml` in the
user config directory (e.g. ~/.config/longdoc/). Top-level keys are the model flags; sections hold
settings of one command:

    backend = "openai"                      # local or openai
    base_url = "http://gpu-box:8000/v1"
    api_model = "Qwen/Qwen2.5-7B-Instruct"
    context_window = 32768
    concurrency = 16

    [summarize]
    chunk_tokens = 2000

An unknown key, a wrong type or a value out of range is a `ConfigError` naming the file and key;
API keys are refused: they come from the environment only, never from a file that gets shared.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from longdoc.errors import ConfigError

FILE_NAME = "longdoc.toml"
BACKENDS = ("local", "openai")
WEIGHTS = ("auto", "float", "int8", "int4", "lowbit")  # see engine/decode_weights.py


@dataclass(frozen=True)
class ModelSettings:
    """Which model runs the tasks and how to reach it; None means "not set" (the default applies).

    `longdoc.model.spec.model_spec` turns these into the typed spec a model is opened from."""

    backend: str | None = None  # local or openai
    model: str | None = None  # local backend: preset, Hugging Face directory or .gguf
    device: str | None = None
    weights: str | None = None  # "auto" (low-bit weights on the CPU: int8 + our kernel, int4 on AMX CPUs), "float", "int8", "int4", "lowbit"
    base_url: str | None = None  # openai backend
    api_model: str | None = None
    context_window: int | None = None  # None: the server's own, where it says
    concurrency: int | None = None
    timeout: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class SummarizeSettings:
    chunk_tokens: int | None = None


@dataclass(frozen=True)
class TranslateSettings:
    piece_tokens: int | None = None


@dataclass(frozen=True)
class ChunkSettings:
    size: int | None = None
    overlap: int | None = None


@dataclass(frozen=True)
class Settings:
    """Everything longdoc.toml may set, by section; flags override it section by section."""

    source: Path | None = None  # the file these came from, if any
    model: ModelSettings = ModelSettings()
    summarize: SummarizeSettings = SummarizeSettings()
    translate: TranslateSettings = TranslateSettings()
    chunk: ChunkSettings = ChunkSettings()

    def overridden(self, section: str, **flags: object) -> Settings:
        """These settings with every flag of `section` that was given (not None) taking precedence."""
        given = {name: value for name, value in flags.items() if value is not None}
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **given)})


# TOML key -> (section, field, type, smallest allowed value or the allowed choices). Top-level keys
# are the model's; a [section] holds the settings of one command.
_SCHEMA: dict[str, tuple[str, str, type, object]] = {
    "backend": ("model", "backend", str, BACKENDS),
    "model": ("model", "model", str, None),
    "device": ("model", "device", str, None),
    "weights": ("model", "weights", str, WEIGHTS),
    "base_url": ("model", "base_url", str, None),
    "api_model": ("model", "api_model", str, None),
    "context_window": ("model", "context_window", int, 256),
    "concurrency": ("model", "concurrency", int, 1),
    "timeout": ("model", "timeout", float, 0.001),
    "retries": ("model", "retries", int, 0),
    "summarize.chunk_tokens": ("summarize", "chunk_tokens", int, 64),
    "translate.piece_tokens": ("translate", "piece_tokens", int, 16),
    "chunk.size": ("chunk", "size", int, 8),
    "chunk.overlap": ("chunk", "overlap", int, 0),
}
_KINDS = {int: "an integer", float: "a number", str: "a string"}


def config_path(cwd: Path | None = None) -> Path | None:
    """The configuration file in effect, or None when there is none."""
    explicit = os.environ.get("LONGDOC_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"LONGDOC_CONFIG names {path}, which is not a file")
        return path
    local = (cwd or Path.cwd()) / FILE_NAME
    if local.is_file():
        return local
    import platformdirs

    user = Path(platformdirs.user_config_dir("longdoc")) / FILE_NAME
    return user if user.is_file() else None


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path`, or from the file `config_path()` finds; empty when there is none."""
    path = path or config_path()
    if path is None:
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from error
    return parse_settings(text, path)


def parse_settings(text: str, source: Path) -> Settings:
    """Settings from the text of a configuration file; `source` names it in error messages."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from error
    settings = Settings(source=source)
    for key, value in _flatten(table):
        if key.rsplit(".", 1)[-1] in ("api_key", "key", "token"):
            raise ConfigError(f"{source}: {key}: API keys are not read from files; set LONGDOC_API_KEY instead")
        if key not in _SCHEMA:
            raise ConfigError(f"{source}: unknown setting {key!r} (known: {', '.join(_SCHEMA)})")
        section, name, kind, limit = _SCHEMA[key]
        settings = settings.overridden(section, **{name: _checked(source, key, value, kind, limit)})
    return settings


def _flatten(table: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _checked(source: Path, key: str, value: object, kind: type, limit: object) -> object:
    # bool is an int to Python, but `concurrency = true` is a mistake, not 1.
    fits = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, fits = float(value), True
    if not fits:
        raise ConfigError(f"{source}: {key} must be {_KINDS[kind]}, not {value!r}")
    if isinstance(limit, tuple) and value not in limit:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(limit)}, not {value!r}")
    if isinstance(limit, (int, float)) and value < limit:  # type: ignore[operator]
        raise ConfigError(f"{source}: {key} must be at least {limit}, not {value!r}")
    return value
