"""longdoc.toml: where it is found, what it may hold, how flags override it, and how mistakes read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chat_server import ChatServer

from longdoc import cli
from longdoc.config import ChunkSettings, ModelSettings, Settings, SummarizeSettings, TranslateSettings, config_path, load_settings, parse_settings
from longdoc.errors import ConfigError

FULL = """
backend = "openai"
base_url = "http://127.0.0.1:8000/v1"
api_model = "served-model"
context_window = 32768
concurrency = 16
timeout = 30
retries = 2

[summarize]
chunk_tokens = 2000

[translate]
piece_tokens = 300

[chunk]
size = 120
overlap = 10
"""


def test_every_setting_is_read() -> None:
    settings = parse_settings(FULL, Path("longdoc.toml"))
    assert settings == Settings(
        source=Path("longdoc.toml"),
        model=ModelSettings(backend="openai", base_url="http://127.0.0.1:8000/v1", api_model="served-model",
                            context_window=32768, concurrency=16, timeout=30.0, retries=2),
        summarize=SummarizeSettings(chunk_tokens=2000), translate=TranslateSettings(piece_tokens=300),
        chunk=ChunkSettings(size=120, overlap=10),
    )


def test_flags_that_were_given_override_the_file() -> None:
    settings = parse_settings(FULL, Path("longdoc.toml")).overridden("model", api_model="other", concurrency=None, backend="local")
    assert (settings.model.api_model, settings.model.concurrency, settings.model.backend) == ("other", 16, "local")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurency = 4", "unknown setting 'concurency'"),
        ("[summarize]\nchunk_size = 4", "unknown setting 'summarize.chunk_size'"),
        ("backend = 'cloud'", "backend must be one of local, openai, not 'cloud'"),
        ("concurrency = '8'", "concurrency must be an integer, not '8'"),
        ("concurrency = true", "concurrency must be an integer, not True"),
        ("concurrency = 0", "concurrency must be at least 1, not 0"),
        ("timeout = 'slow'", "timeout must be a number"),
        ("api_key = 'sk-123'", "API keys are not read from files; set LONGDOC_API_KEY"),
        ("backend = openai", "not valid TOML: Invalid value (at line 1, column 11)"),
        ("[chunk\nsize = 3", "not valid TOML"),
    ],
)
def test_a_mistake_names_the_file_and_the_setting(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^longdoc.toml: .*" + re.escape(message)):
        parse_settings(text, Path("longdoc.toml"))


def test_the_working_directorys_file_comes_before_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user-config" / "longdoc" / "longdoc.toml"
    user.parent.mkdir(parents=True)
    user.write_text('backend = "openai"\n')
    project = tmp_path / "project"
    project.mkdir()
    assert config_path(project) == user
    (project / "longdoc.toml").write_text('backend = "local"\n')
    assert config_path(project) == project / "longdoc.toml"
    monkeypatch.setenv("LONGDOC_CONFIG", str(user))
    assert config_path(project) == user


def test_no_file_means_built_in_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings() == Settings()


def test_a_broken_config_is_one_line_with_its_own_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text("The keeper lit the lamp at dusk.")
    (tmp_path / "longdoc.toml").write_text("backend = 'openai'\nconcurency = 4\n")
    assert cli.run(["summarize", "doc.txt"]) == 14
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "longdoc.toml: unknown setting 'concurency'" in err and "Traceback" not in err


def test_a_missing_file_named_by_longdoc_config_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGDOC_CONFIG", str(tmp_path / "nowhere.toml"))
    with pytest.raises(ConfigError, match="nowhere.toml, which is not a file"):
        load_settings()


def test_the_backend_comes_from_the_file_and_a_flag_overrides_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text("The keeper lit the lamp at dusk and wrote the tide in the ledger.")
    with ChatServer(respond=lambda messages, body: "The keeper lit the lamp.") as server:
        (tmp_path / "longdoc.toml").write_text(f'backend = "openai"\nbase_url = "{server.url}"\napi_model = "from-file"\n')
        assert cli.run(["summarize", "doc.txt"]) == 0
        # The reply opens the summary; the fact it left out is put back as the document states it.
        assert capsys.readouterr().out == "The keeper lit the lamp. The keeper lit the lamp at dusk and wrote the tide in the ledger.\n"
        assert cli.run(["summarize", "doc.txt", "--api-model", "from-flag"]) == 0
    assert {body["model"] for body in server.requests[:2]} == {"from-file"}  # the opening and the paragraph
    assert {body["model"] for body in server.requests[2:]} == {"from-flag"}


def test_chunk_sizes_come_from_the_file_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text(" ".join(f"Sentence {n} is about the tide." for n in range(200)))
    (tmp_path / "longdoc.toml").write_text("[chunk]\nsize = 40\noverlap = 0\n")
    assert cli.run(["chunk", "doc.txt", "--json"]) == 0
    from_file = [json.loads(line)["tokens"] for line in capsys.readouterr().out.splitlines()]
    assert cli.run(["chunk", "doc.txt", "--json", "--size", "100"]) == 0
    from_flag = [json.loads(line)["tokens"] for line in capsys.readouterr().out.splitlines()]
    assert max(from_file) <= 40 < max(from_flag) <= 100


def test_the_readme_example_is_a_valid_config() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)  # type: ignore[union-attr]
    settings = parse_settings(example, Path("README.md"))
    assert settings.model.backend == "openai" and settings.model.concurrency == 16 and settings.chunk.overlap == 30
