"""`longdoc summarize a b c --out-dir DIR`, and the openai backend as a user meets it on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chat_server import ChatServer

from longdoc import cli

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-batch-3e8a5d0c41"


def _documents(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"minutes{n}.txt"
        path.write_text(f"Meeting {n}. The council voted to repair bridge number {n} before the spring floods.\n")
        paths.append(str(path))
    return paths


@pytest.fixture
def model(fake_model):  # type: ignore[no-untyped-def]
    """A fake local model to hand the CLI (`open_model=model.open`); `loads` counts how often a command asked for one."""
    return fake_model(context_window=1000)


def test_each_input_gets_its_own_summary_file_equal_to_what_stdout_shows(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    files = _documents(tmp_path / "docs", 3)
    out = tmp_path / "summaries"
    assert cli.run(["summarize", *files, "--out-dir", str(out)], open_model=model.open) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # results went to the files
    assert sorted(p.name for p in out.iterdir()) == [f"minutes{n}.summary.txt" for n in range(3)]
    assert model.loads == 1
    assert cli.run(["summarize", files[1]], open_model=model.open) == 0
    assert (out / "minutes1.summary.txt").read_text() == capsys.readouterr().out


def test_json_format_writes_json_files(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    files = _documents(tmp_path / "docs", 2)
    assert cli.run(["summarize", *files, "-o", str(tmp_path / "out"), "--format", "json"], open_model=model.open) == 0
    payload = json.loads((tmp_path / "out" / "minutes0.summary.json").read_text())
    assert payload["source"] == files[0] and payload["summary"].startswith("Summary:")


def test_one_file_with_out_dir_is_written_to_a_file(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    (file,) = _documents(tmp_path / "docs", 1)
    assert cli.run(["summarize", file, "-o", str(tmp_path / "out"), "--format", "markdown"], open_model=model.open) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "out" / "minutes0.summary.md").read_text().startswith(f"# Summary of {file}")


def test_failed_inputs_are_reported_and_skipped_and_the_exit_code_says_so(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    good = _documents(tmp_path / "docs", 2)
    binary = tmp_path / "docs" / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    missing = str(tmp_path / "docs" / "gone.txt")
    out = tmp_path / "out"
    assert cli.run(["summarize", good[0], missing, str(binary), good[1], "--out-dir", str(out)], open_model=model.open) == 15
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["minutes0.summary.txt", "minutes1.summary.txt"]
    lines = err.strip().splitlines()
    assert sum("(skipped)" in line for line in lines) == 2
    assert any("gone.txt: no such file" in line for line in lines) and any("photo.txt" in line for line in lines)
    assert lines[-1] == f"longdoc: error: 2 of 4 inputs failed; the other summaries are in {out}"


def test_inputs_that_share_a_name_do_not_overwrite_each_other(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    (first,) = _documents(tmp_path / "a", 1)
    (second,) = _documents(tmp_path / "b", 1)
    other = tmp_path / "a" / "minutes0.md"
    other.write_text("Minutes in Markdown: the ferry timetable changes in May.")
    assert cli.run(["summarize", first, second, str(other), "-o", str(tmp_path / "out")], open_model=model.open) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "minutes0.md.summary.txt", "minutes0.txt.1.summary.txt", "minutes0.txt.2.summary.txt",
    ]


@pytest.mark.parametrize(
    ("args", "hint"),
    [(["a.txt", "b.txt"], "--out-dir"), (["a.txt", "-", "--out-dir", "x"], "FILES")],
)
def test_several_inputs_need_an_out_dir_and_no_stdin(tmp_path: Path, model, args: list[str], hint: str, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert cli.run(["summarize", *args], open_model=model.open) == 2
    assert hint in capsys.readouterr().err and model.loads == 0


def test_an_out_dir_that_cannot_be_made_is_reported(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    files = _documents(tmp_path / "docs", 2)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.run(["summarize", *files, "-o", str(blocker / "out")], open_model=model.open) == 16
    assert "cannot create the output directory" in capsys.readouterr().err


def test_a_batch_through_a_server_runs_inputs_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _documents(tmp_path / "docs", 8)
    with ChatServer(respond=lambda messages, body: "The council repairs a bridge.", delay=0.1) as server:
        code = cli.run(["summarize", *files, "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", server.url,
                        "--api-model", "m", "--concurrency", "4"])
    assert code == 0
    assert len(server.requests) == 16 and server.max_in_flight == 4  # an opening and a paragraph each
    # The reply opens the summary; the fact it left out is put back as the document states it.
    assert (tmp_path / "out" / "minutes7.summary.txt").read_text() == (
        "The council repairs a bridge. The council voted to repair bridge number 7 before the spring floods.\n")


def test_the_openai_backend_needs_a_base_url_and_a_served_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (file,) = _documents(tmp_path / "docs", 1)
    assert cli.run(["summarize", file, "--backend", "openai", "--api-model", "m"]) == 2
    assert "--base-url" in capsys.readouterr().err
    assert cli.run(["summarize", file, "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--api-model" in capsys.readouterr().err
    assert cli.run(["summarize", file, "--backend", "openai", "--base-url", "127.0.0.1:9", "--api-model", "m"]) == 2
    assert cli.run(["summarize", file, "--backend", "cloud"]) == 2
    assert cli.run(["ask", file, "Which bridge?", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                    "--api-model", "m", "--mode", "read"]) == 2


def _longdoc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "longdoc", *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, **env})


def test_a_silent_server_ends_in_one_line_and_exit_code_13(tmp_path: Path) -> None:
    (file,) = _documents(tmp_path / "docs", 1)
    with ChatServer() as server:
        server.hang = True
        result = _longdoc("summarize", file, "--backend", "openai", "--base-url", server.url, "--api-model", "m",
                          "--timeout", "0.3", "--retries", "0", env={"LONGDOC_HOME": str(tmp_path / "home")})
    assert result.returncode == 13 and result.stdout == ""
    # First the window planned against (this server does not say its own), then the one-line error.
    assert result.stderr == (
        "context window of m: 8192 tokens, from the default (the server does not say)\n"
        f"longdoc: error: the model server at {server.url}/chat/completions gave no answer within 0.3 s (1 attempt); check that it is running, or raise --timeout / --retries\n"
    )


def test_the_api_key_is_sent_but_never_printed_even_with_debug(tmp_path: Path) -> None:
    (file,) = _documents(tmp_path / "docs", 1)
    with ChatServer() as server:
        server.fail_next(401, body=json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode())
        result = _longdoc("--debug", "summarize", file, "--backend", "openai", "--base-url", server.url, "--api-model", "m",
                          env={"LONGDOC_HOME": str(tmp_path / "home"), "LONGDOC_API_KEY": KEY})
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert result.returncode == 13 and "HTTP 401" in result.stderr
    assert KEY not in result.stderr and KEY not in result.stdout


def test_translate_through_a_server_streams_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "zh.txt"
    path.write_text("\n\n".join(f"第{n}段，渡船在{n}点离港。" for n in range(1, 9)), encoding="utf-8")
    with ChatServer(respond=lambda messages, body: "EN " + messages[-1]["content"], delay=0.05) as server:
        assert cli.run(["translate", str(path), "--backend", "openai", "--base-url", server.url, "--api-model", "m", "-j", "4"]) == 0
    assert capsys.readouterr().out == "\n\n".join(f"EN 第{n}段，渡船在{n}点离港。" for n in range(1, 9)) + "\n"
    assert server.max_in_flight > 1


def test_ctrl_c_while_requests_are_in_flight_exits_at_once(tmp_path: Path) -> None:
    """A regression guard: pool threads that the interpreter joins at exit would keep the process
    alive until every request in flight timed out (here 30 s)."""
    import signal
    import time

    files = _documents(tmp_path / "docs", 6)
    with ChatServer() as server:
        server.hang = True
        process = subprocess.Popen(
            [sys.executable, "-m", "longdoc", "summarize", *files, "-o", str(tmp_path / "out"), "--backend", "openai",
             "--base-url", server.url, "--api-model", "m", "--timeout", "30", "-j", "3"],
            cwd=ROOT, env={**os.environ, "LONGDOC_HOME": str(tmp_path / "home")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while len(server.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.requests) == 3  # three files waiting on the silent server
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        seconds = time.monotonic() - interrupted
    assert process.returncode == 130 and "interrupted" in err
    assert seconds < 5


def test_a_batch_stops_when_the_server_is_gone_instead_of_failing_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _documents(tmp_path / "docs", 6)
    with ChatServer() as server:
        server.hang = True
        code = cli.run(["summarize", *files, "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", server.url,
                        "--api-model", "m", "-j", "1", "--timeout", "0.2", "--retries", "0"])
    assert code == 13 and len(server.requests) == 1
    assert capsys.readouterr().err.strip().endswith(f"stopped with 0 of 6 summaries written to {tmp_path / 'out'}")


def test_a_request_the_server_rejects_fails_only_that_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _documents(tmp_path / "docs", 3)
    with ChatServer() as server:
        server.fail_next(400, body=b'{"error": {"message": "prompt too long"}}')
        code = cli.run(["summarize", *files, "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", server.url,
                        "--api-model", "m", "-j", "1"])
    assert code == 15
    assert "minutes0.txt: the model server at" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["minutes1.summary.txt", "minutes2.summary.txt"]
