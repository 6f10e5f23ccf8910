"""The command line as a user meets it: exit codes, one-line errors, stdout/stderr, stdin, JSON."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import last_turn

from longdoc import __version__, cli

ROOT = Path(__file__).resolve().parent.parent


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, and good enough to find shared words."""

    id = "fake-bow-64"
    max_tokens = 256

    def __init__(self) -> None:
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + len(re.findall(r"[\u4e00-\u9fff]", text))

    def embed(self, texts, on_progress=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
        if on_progress:
            on_progress(len(texts))
        return vectors


@pytest.fixture
def embedder() -> FakeEmbedder:
    """An embedder to hand the CLI: `cli.run(..., embedder=embedder)`."""
    return FakeEmbedder()


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def _longdoc(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run the real console entry point in a fresh process, as a shell user would."""
    return subprocess.run([sys.executable, "-m", "longdoc", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120)


LEDGER = "\n\n".join(
    f"Entry {n}. The keeper wrote that the tide was {n % 5} feet and the lamp burned {n * 3} hours." for n in range(60)
) + "\n\nThe brass key to the lamp room hangs behind the chart cabinet in the north office.\n"


def test_version() -> None:
    result = _longdoc("--version")
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"longdoc {__version__}"


def test_help_lists_every_command() -> None:
    result = _longdoc("--help")
    assert result.returncode == 0
    for command in ("summarize", "ask", "translate", "index", "search", "chunk"):
        assert command in result.stdout.decode()


def test_chunk_json_lines_describe_each_chunk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["chunk", str(path), "--size", "40", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) > 5
    text = path.read_text()
    for row in rows:
        assert row["tokens"] <= 40
        assert text[row["start"] : row["end"]] == row["text"]
        assert row["source"] == str(path)


def test_chunk_reads_stdin_with_dash_or_when_piped(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["chunk", "-"], ["chunk"]):
        _stdin(monkeypatch, "第一段。第二段！\n\n第三段？".encode("gb18030"))
        assert cli.run(argv) == 0
        out = capsys.readouterr().out
        assert "第一段。第二段！" in out and "第三段？" in out


def test_no_file_and_a_terminal_on_stdin_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    assert cli.run(["chunk"]) == 2
    assert "FILE" in capsys.readouterr().err


def test_document_text_never_reaches_the_terminal_as_escapes_or_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.txt"
    path.write_text("Normal words. \x1b[2J\x1b]0;pwned\x07 [bold red]not markup[/] \u202etxt.exe end.")
    assert cli.run(["chunk", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "[bold red]not markup[/]" in out


@pytest.mark.parametrize(
    "name, content, code",
    [
        ("missing.txt", None, 3),
        ("folder", "dir", 4),
        ("blob.bin", bytes(range(256)) * 8, 6),
        ("picture.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 6),
        ("blank.txt", b"  \n\n \t\n", 7),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<", 10),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_its_own_exit_code(tmp_path: Path, name: str, content: object, code: int) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    result = _longdoc("chunk", str(path))
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert result.stdout == b""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("longdoc: error:")


def test_an_encoding_that_cannot_decode_the_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "zh.txt"
    path.write_bytes("中文文本，用的是 UTF-8。".encode())
    result = _longdoc("chunk", str(path), "--encoding", "ascii")
    assert result.returncode == 11
    assert "ascii" in result.stderr.decode()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _longdoc("--debug", "chunk", str(tmp_path / "missing.txt"))
    assert result.returncode == 3
    assert "Traceback" in result.stderr.decode()


def test_empty_query_and_question_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "doc.txt"
    path.write_text(LEDGER)
    assert _longdoc("search", str(path), "  ").returncode == 2
    assert _longdoc("ask", str(path), "").returncode == 2


@pytest.fixture
def model(fake_model):  # type: ignore[no-untyped-def]
    """A fake language model to hand every model-backed command: `cli.run(..., open_model=model.open)`."""
    return fake_model(context_window=1000)


def test_summarize_prints_the_summary_and_json_gives_the_tree(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["summarize", str(path), "--length", "40"], open_model=model.open) == 0
    out = capsys.readouterr().out
    assert out.startswith("Summary:") and out.count("\n") == 1
    assert cli.run(["summarize", str(path), "--length", "40", "--format", "json"], open_model=model.open) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"] == out.strip()
    assert payload["steps"]["generated"] == 0  # the second run found every step finished
    leaves = payload["levels"][0]
    assert leaves[0]["line_start"] == 1 and leaves[-1]["line_end"] == LEDGER.rstrip().count("\n") + 1
    assert all(node["location"].startswith("line") for node in leaves)
    # Every chunk reports its key points and whether the summary states them.
    assert [row["location"] for row in payload["coverage"]] == [node["location"] for node in leaves]
    assert any(row["covered"] for row in payload["coverage"])
    for row in payload["coverage"]:
        assert row["key_points"] and all(point["in_summary"] in (True, False) for point in row["key_points"])
        assert row["covered"] == any(point["chosen"] and point["in_summary"] for point in row["key_points"])
    assert payload["checks"]["facts_chosen"] >= payload["checks"]["facts_in_summary"] > 0


def test_summarize_reads_stdin_and_writes_markdown(monkeypatch: pytest.MonkeyPatch, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    _stdin(monkeypatch, LEDGER.encode())
    assert cli.run(["summarize", "-", "--format", "markdown"], open_model=model.open) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Summary of <stdin>") and "## Parts" in out


@pytest.mark.parametrize("option", [["--style", "haiku"], ["--format", "xml"], ["--length", "3"]])
def test_summarize_rejects_bad_options(tmp_path: Path, option: list[str], model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "doc.txt"
    path.write_text(LEDGER)
    assert cli.run(["summarize", str(path), *option], open_model=model.open) == 2
    assert model.calls == []


def test_ctrl_c_during_summarize_keeps_finished_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    interrupted = fake_model(context_window=1000, fail_after=1)
    long_run = ["--length", "1000", "--chunk-tokens", "64"]  # 11 paragraphs and an opening: two batches of 8
    assert cli.run(["summarize", str(path), *long_run], open_model=interrupted.open) == 130
    assert "interrupted" in capsys.readouterr().err
    resumed = fake_model(context_window=1000)
    assert cli.run(["summarize", str(path), *long_run, "--format", "json"], open_model=resumed.open) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["cached"] == len(interrupted.prompts) > 0


@pytest.mark.parametrize(
    "reply, heading",
    [
        ("Behind the chart cabinet in the north office [1].", "Sources:"),
        # No [n] written: the passage holding the answer's words is cited, and the output says so.
        ("Behind the chart cabinet in the north office.", "Sources (found by the answer's words; the model cited none that holds them):"),
    ],
)
def test_ask_answers_with_sources_and_pages(reply: str, heading: str, tmp_path: Path, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    fake = fake_model(context_window=800, reply=lambda prompt: reply)
    assert cli.run(["ask", str(path), "Where does the brass key to the lamp room hang?"], open_model=fake.open, embedder=embedder) == 0
    answer, sources = capsys.readouterr().out.split(f"\n\n{heading}\n")
    assert answer == reply
    assert sources.startswith(f"[1] {path} line") and "brass key" in sources
    assert cli.run(["ask", str(path), "Where does the brass key hang?", "--json"], open_model=fake.open, embedder=embedder) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["supported"] and payload["citations"] == [1]
    assert payload["citations_matched"] == ("[1]" not in reply)
    assert payload["sources"][0]["cited"] and "retrieve" in payload["timings"]


@pytest.mark.parametrize(
    "name, text, section, starts_in",
    [
        ("station.html", "<html><body><h1>Keeper's log</h1><h2>Winter</h2><h3>Keys</h3>"
         "<p>The brass key to the lamp room hangs behind the chart cabinet.</p></body></html>", "Winter › Keys", "Winter › Keys"),
        # One passage running over two sections: named by the one its shown sentence stands in.
        ("log.md", "# Log\n\n## Winter\n\nSnow closed the coast road for days.\n\n## Keys\n\n"
         "The brass key to the lamp room hangs behind the chart cabinet.\n", "Log › Keys", "Log › Winter"),
    ],
)
def test_ask_names_the_section_a_cited_source_stands_in(name: str, text: str, section: str, starts_in: str, tmp_path: Path, embedder: FakeEmbedder, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    fake = fake_model(context_window=800, reply=lambda prompt: "Behind the chart cabinet [1].")
    assert cli.run(["ask", str(path), "Where does the brass key to the lamp room hang?"], open_model=fake.open, embedder=embedder) == 0
    cited = capsys.readouterr().out.split("\n\nSources:\n")[1]
    assert cited.startswith(f"[1] {path} line") and f" ({section}): " in cited and "brass key" in cited
    assert cli.run(["ask", str(path), "Where does the brass key to the lamp room hang?", "--json"], open_model=fake.open, embedder=embedder) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["section"] == starts_in  # --json: where the passage starts


def test_an_english_answer_about_a_chinese_document_is_shown_with_unchecked_sources(tmp_path: Path, embedder: FakeEmbedder, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "tea.txt"
    path.write_text("马帮回程时，骡背上除了盐，还有布匹、铁器、红糖、药材和书籍。\n", encoding="utf-8")
    fake = fake_model(context_window=800, reply=lambda prompt: "Cloth, iron tools, sugar, medicine and books [1].")
    assert cli.run(["ask", str(path), "What did the caravans bring back besides salt?"], open_model=fake.open, embedder=embedder) == 0
    answer, sources = capsys.readouterr().out.split("\n\nSources (as the model cited them; not checked: the answer is in another language than the passages):\n")
    assert answer == "Cloth, iron tools, sugar, medicine and books [1]."
    assert sources.startswith(f"[1] {path} line")
    assert cli.run(["ask", str(path), "What did the caravans bring back besides salt?", "--json"], open_model=fake.open, embedder=embedder) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["supported"] and payload["citations"] == [1] and payload["citations_checked"] is False


def test_ask_says_when_the_document_has_no_answer(tmp_path: Path, embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    fake = fake_model(context_window=1500, reply=lambda prompt: "NOT IN DOCUMENT")
    assert cli.run(["ask", str(path), "What colour is the keeper's lamp?"], open_model=fake.open, embedder=embedder) == 0
    out = capsys.readouterr().out
    assert out.startswith("The document does not seem to answer this question.")
    assert "Closest passages (not cited):" in out
    assert fake.prompts and "never mentions" not in out  # the ledger speaks of the keeper: the model said no
    assert cli.run(["ask", str(path), "Which football team won the cup final?", "--json"], open_model=fake.open, embedder=embedder) == 0
    payload = json.loads(capsys.readouterr().out)
    assert not payload["supported"] and payload["unmentioned"] == ["football", "team", "won", "cup", "final"]
    assert cli.run(["ask", str(path), "Which football team won the cup final?"], open_model=fake.open, embedder=embedder) == 0
    assert "It never mentions: football, team, won, cup, final." in capsys.readouterr().out


def test_ask_read_mode_reads_every_passage_and_needs_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attending_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    entries = [f"Entry {n}. The keeper wrote that the tide was {n % 5} feet." for n in range(600)]
    path.write_text("\n\n".join(entries) + "\n\nThe brass key to the lamp room hangs behind the chart cabinet.\n")
    fake = attending_model(context_window=800, reply=lambda prompt: "Behind the chart cabinet [1].")
    monkeypatch.setattr("longdoc.memory.choice.open_embedder", lambda *args, **kwargs: pytest.fail("read mode must not build an index"))
    assert cli.run(["ask", str(path), "Where does the brass key hang?", "--mode", "read", "--json"], open_model=fake.open) == 0
    payload = json.loads(capsys.readouterr().out)
    assert "chart cabinet" in payload["answer"]
    (cited,) = payload["citations"]
    assert "chart cabinet" in next(s["text"] for s in payload["sources"] if s["number"] == cited)
    read = "".join(passage for window in fake.windows for passage in window)
    assert len(fake.windows) > 1 and "Entry 0." in read and "Entry 599." in read  # all of it, a window at a time
    assert "read" in payload["timings"]


def test_ask_rejects_an_unknown_mode(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["ask", str(path), "Where?", "--mode", "guess"], open_model=model.open) == 2
    assert model.calls == []


def test_translate_streams_paragraphs_from_stdin(monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    fake = fake_model(context_window=800, reply=lambda prompt: "EN: " + last_turn(prompt))
    _stdin(monkeypatch, "第一段，1898年。\n\n第二段。\n".encode("gb18030"))
    assert cli.run(["translate", "--src", "zh"], open_model=fake.open) == 0
    assert capsys.readouterr().out == "EN: 第一段，1898年。\n\nEN: 第二段。\n"


def test_translate_warns_when_numbers_go_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    fake = fake_model(context_window=800, reply=lambda prompt: "The inn opened.")
    path = tmp_path / "zh.txt"
    path.write_text("1898年，歇马店开张。", encoding="utf-8")
    assert cli.run(["translate", str(path)], open_model=fake.open) == 0
    assert "lacks 1898" in capsys.readouterr().err


def test_translate_with_a_missing_glossary_file_is_an_input_error(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "zh.txt"
    path.write_text("歇马店开张。", encoding="utf-8")
    result = _longdoc("translate", str(path), "--glossary", str(tmp_path / "terms.csv"))
    assert result.returncode == 3 and "terms.csv" in result.stderr.decode()


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "read_document", interrupted)
    assert cli.run(["chunk", str(tmp_path / "any.txt")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text(LEDGER * 40)
    result = subprocess.run(
        f"{sys.executable} -m longdoc chunk {path} | head -n 1", shell=True, capture_output=True, cwd=ROOT, timeout=120
    )
    assert result.stdout.decode().startswith("## chunk 0")
    assert result.stderr == b""


def test_search_finds_the_passage_and_cites_where_it_is(tmp_path: Path, embedder: FakeEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["search", str(path), "where is the brass key of the lamp room", "-k", "3"], embedder=embedder) == 0
    out = capsys.readouterr().out
    first = out.split("\n\n")[0]
    assert first.startswith(f"[1] {path} line")
    assert "brass key to the lamp room" in first


def test_search_json_and_the_second_run_reuses_the_index(tmp_path: Path, embedder: FakeEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["search", str(path), "brass key", "--json"], embedder=embedder) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli.run(["search", str(path), "brass key", "--json"], embedder=embedder) == 0
    second = json.loads(capsys.readouterr().out)
    assert (first["cached_index"], second["cached_index"]) == (False, True)
    assert embedder.calls == 3  # chunks once, then one query embedding per search
    assert second["hits"][0]["text"] == first["hits"][0]["text"]
    assert "brass key" in second["hits"][0]["text"]
    assert {"rank", "score", "location", "page_start", "line_start", "start", "end"} <= set(second["hits"][0])


def test_index_reports_each_file(tmp_path: Path, embedder: FakeEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for path in paths:
        path.write_text(LEDGER + path.name)
    assert cli.run(["index", *map(str, paths)], embedder=embedder) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(map(str, paths))
    assert all("built index" in line for line in lines)
    assert cli.run(["index", str(paths[0])], embedder=embedder) == 0
    assert "reused cached index" in capsys.readouterr().out


def test_readme_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:sh|bash)\n(.+?)\n```", readme, flags=re.S)[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(commands) == 2
    assert all(command.strip() in ci for command in commands)


def test_library_warnings_reach_stderr_and_other_libraries_only_with_debug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import warnings

    home = tmp_path / "home-is-a-file"
    home.write_text("not a directory")
    monkeypatch.setenv("LONGDOC_HOME", str(home))  # results cannot be saved: longdoc warns and goes on

    def noisy(prompt: str) -> str:
        warnings.warn("`past_key_values` is deprecated", FutureWarning)
        return "Summary: the keeper keeps the lamp."

    fake = fake_model(context_window=1000, reply=noisy)
    path = tmp_path / "ledger.txt"
    path.write_text(LEDGER)
    assert cli.run(["summarize", str(path), "--length", "40"], open_model=fake.open) == 0
    err = capsys.readouterr().err
    assert err.count("warning: cannot save results") == 1 and "past_key_values" not in err
    assert cli.run(["--debug", "summarize", str(path), "--length", "40"], open_model=fake.open) == 0
    assert "FutureWarning: `past_key_values` is deprecated" in capsys.readouterr().err
