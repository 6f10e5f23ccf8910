"""The `longdoc` command line: parse, call one library function, render; the only error boundary."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from longdoc import __version__, render
from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.console import advance, progress, stderr, warn
from longdoc.document import Document
from longdoc.errors import LongdocError
from longdoc.ingest import read_document

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Summarize, question and translate documents far longer than a model's context, offline.",
)

_debug = os.environ.get("LONGDOC_DEBUG", "") not in ("", "0")

FileArg = Annotated[
    Optional[str], typer.Argument(help="A PDF, text, Markdown or HTML file; '-' or omitted reads stdin.", show_default=False)
]
EncodingOpt = Annotated[
    Optional[str], typer.Option("--encoding", help="Text encoding of the input (default: detected).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
EmbedderOpt = Annotated[
    Optional[Path], typer.Option("--embedder", help="A local sentence-transformers model directory.")
]
RebuildOpt = Annotated[bool, typer.Option("--rebuild", help="Ignore the cached index and build it again.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"longdoc {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    global _debug
    _debug = _debug or debug


def _load(file: str | None, encoding: str | None) -> Document:
    """Read the document named on the command line, or stdin when it is '-' or omitted and piped."""
    if file is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise typer.BadParameter("give a FILE, or '-' / a pipe for stdin", param_hint="FILE")
        file = "-"
    document = read_document(file, encoding=encoding)
    for message in document.warnings:
        warn(message)
    return document


@app.command()
def chunk(
    file: FileArg = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Chunk size in tokens (cl100k).")] = ChunkConfig.size,
    overlap: Annotated[int, typer.Option("--overlap", min=0, help="Tokens shared by neighbouring chunks.")] = ChunkConfig.overlap,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Split a document into token-counted chunks with page and line spans."""
    if overlap >= size:
        raise typer.BadParameter(f"must be smaller than --size ({size})", param_hint="--overlap")
    document = _load(file, encoding)
    chunks = chunk_document(document, ChunkConfig(size=size, overlap=overlap))
    render.chunks(document, chunks, as_json)


@app.command()
def index(
    files: Annotated[Optional[list[str]], typer.Argument(help="Documents to index; '-' reads stdin.", show_default=False)] = None,
    embedder_path: EmbedderOpt = None,
    rebuild: RebuildOpt = False,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Build (or reuse) the external memory of documents: embeddings, FAISS and BM25 indexes."""
    embedder = _embedder(embedder_path)
    for file in files or [None]:
        started = time.perf_counter()
        document = _load(file, encoding)
        memory, cached = _open_memory(document, embedder, rebuild)
        render.indexed(document, memory, cached, time.perf_counter() - started, as_json)


@app.command()
def search(
    file: Annotated[str, typer.Argument(help="The document to search; '-' reads stdin.", show_default=False)],
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.", show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many chunks to show.")] = 5,
    embedder_path: EmbedderOpt = None,
    rebuild: RebuildOpt = False,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Find the chunks of a document that best match a query (no language model needed)."""
    if not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="QUERY")
    started = time.perf_counter()
    document = _load(file, encoding)
    embedder = _embedder(embedder_path)
    memory, cached = _open_memory(document, embedder, rebuild)
    hits = memory.search(query, k=k)
    render.hits(document, query, hits, cached, time.perf_counter() - started, as_json)


ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="A preset (see `longdoc models`), a Hugging Face model directory or a .gguf file."),
]
FastOpt = Annotated[bool, typer.Option("--fast", help="Use the fast preset (qwen2.5-0.5b): ~3x quicker, less accurate.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]


@app.command()
def summarize(
    file: FileArg = None,
    length: Annotated[int, typer.Option("--length", "-l", min=10, help="Target length of the summary in words.")] = 250,
    style: Annotated[str, typer.Option("--style", help="paragraph or bullets.")] = "paragraph",
    lang: Annotated[str, typer.Option("--lang", help="Output language (en, zh, French, ...); auto = the document's.")] = "auto",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, markdown or json (json includes the summary tree).")] = "text",
    model_spec: ModelOpt = None,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    encoding: EncodingOpt = None,
) -> None:
    """Summarize a document of any length (hierarchical map-reduce through the local model)."""
    from longdoc.tasks.summarize import SummaryOptions, summarize as summarize_document

    _choice(style, ("paragraph", "bullets"), "--style")
    _choice(fmt, ("text", "markdown", "json"), "--format")
    document = _load(file, encoding)
    model = _model(model_spec, fast, device)
    options = SummaryOptions(words=length, style=style, language=lang)  # type: ignore[arg-type]
    with progress(f"summarizing {document.source}", total=None) as bar:

        def on_progress(phase: str, done: int, total: int) -> None:
            bar.update(bar.task_ids[0], description=f"summarizing {document.source}: {phase}", completed=done, total=total)

        result = summarize_document(document, model, _results(), options, on_progress)
    render.summary(document, result, fmt)


@app.command()
def ask(
    file: Annotated[str, typer.Argument(help="The document; '-' reads stdin.", show_default=False)],
    question: Annotated[str, typer.Argument(help="Your question.", show_default=False)],
    model_spec: ModelOpt = None,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    embedder_path: EmbedderOpt = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="retrieve: answer from the best-matching passages (fast). read: the model reads the whole "
            "document with block memory, the question first (slow: every token passes through the model).",
        ),
    ] = "retrieve",
) -> None:
    """Answer a question about a document, citing the pages the answer comes from."""
    from longdoc.engine.segment_cache import reading_config
    from longdoc.tasks.ask import ask as answer_question
    from longdoc.tasks.ask import ask_by_reading

    _choice(mode, ("retrieve", "read"), "--mode")
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    document = _load(file, encoding)
    if mode == "read":
        model = _model(model_spec, fast, device, cache=reading_config())
        with progress("reading the whole document", total=None):
            result = ask_by_reading(document, question.strip(), model, _results())
    else:
        memory, _ = _open_memory(document, _embedder(embedder_path), rebuild=False)
        model = _model(model_spec, fast, device)
        with progress("answering", total=None):
            result = answer_question(document, memory, question.strip(), model, _results())
    render.answer(document, result, as_json)


@app.command()
def translate(
    file: FileArg = None,
    src: Annotated[str, typer.Option("--src", help="Source language: zh, en, another name, or auto (detect zh/en).")] = "auto",
    tgt: Annotated[Optional[str], typer.Option("--tgt", help="Target language (default: en from Chinese, zh from English).")] = None,
    glossary: Annotated[
        Optional[str], typer.Option("--glossary", help="CSV of 'source,translation' rows: terms to translate exactly so.")
    ] = None,
    model_spec: ModelOpt = None,
    fast: FastOpt = False,
    device: DeviceOpt = "auto",
    encoding: EncodingOpt = None,
) -> None:
    """Translate a document paragraph by paragraph, keeping its layout and terminology; streams to stdout."""
    from longdoc.tasks.translate import TranslateOptions, load_glossary_csv, split_paragraphs, translate as translate_document

    pinned = load_glossary_csv(read_document(glossary).text) if glossary else {}
    document = _load(file, encoding)
    model = _model(model_spec, fast, device)
    options = TranslateOptions(source=src, target=tgt, glossary=pinned)
    total = len(split_paragraphs(document.text))
    with progress(f"translating {document.source}", total=total) as bar:
        for paragraph in translate_document(document, model, _results(), options):
            advance(bar)
            render.translated(paragraph)
            if paragraph.missing_numbers:
                warn(f"paragraph {paragraph.index + 1}: the translation lacks {', '.join(paragraph.missing_numbers)}")


def _choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=name)


def _model(spec: str | None, fast: bool, device: str, cache=None):  # type: ignore[no-untyped-def]
    """The language model named on the command line (default preset unless --fast or --model);
    `cache` (a SegmentCacheConfig) overrides the engine's memory sizes."""
    from longdoc.engine.loading import load_model
    from longdoc.engine.presets import DEFAULT_PRESET, FAST_PRESET

    if spec is not None and fast:
        raise typer.BadParameter("give either --model or --fast, not both", param_hint="--fast")
    name = spec or (FAST_PRESET if fast else DEFAULT_PRESET)
    with progress(f"loading {name}", total=None):
        return load_model(name, _home(), device=device, cache=cache)


def _results():  # type: ignore[no-untyped-def]
    from longdoc.tasks.results import ResultCache

    return ResultCache(_home())


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """Show the model presets, which are installed and cached, and the device they would run on."""
    from longdoc.engine.inventory import device_status, preset_statuses

    render.inventory(preset_statuses(_home()), device_status(), _home(), as_json)


def _home() -> Path:
    from longdoc.memory.store import default_home

    return default_home()


def _embedder(path: Path | None):  # type: ignore[no-untyped-def]
    from longdoc.memory.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(path)


def _open_memory(document: Document, embedder, rebuild: bool):  # type: ignore[no-untyped-def]
    """Load the document's index from the cache or build it, with a progress bar while embedding."""
    from longdoc.memory.index import open_memory

    home = _home()
    with progress(f"indexing {document.source}", total=None) as bar:

        def on_progress(done: int, total: int | None = None) -> None:
            if total is not None:
                bar.update(bar.task_ids[0], total=total)
            advance(bar, done)

        return open_memory(document, embedder, home=home, rebuild=rebuild, on_progress=on_progress)


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; every error becomes one line on stderr."""
    try:
        # Invoke the command ourselves rather than through Typer's main(), which would turn Ctrl-C
        # and a closed pipe into exit codes before we could report them our way.
        command = typer.main.get_command(app)
        with command.make_context("longdoc", list(sys.argv[1:] if argv is None else argv)) as context:
            command.invoke(context)
        return 0
    except (KeyboardInterrupt, typer.Abort):
        stderr.print("longdoc: interrupted; finished work is kept in the cache", markup=False)
        return 130
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as usage:  # Typer's usage errors: they print themselves like click's
        usage.show(file=sys.stderr)  # type: ignore[attr-defined]
        return usage.exit_code  # type: ignore[attr-defined]
    except LongdocError as error:
        if _debug:
            traceback.print_exc()
        stderr.print(f"longdoc: error: {error}", markup=False, style="red")
        return error.exit_code
    except BrokenPipeError:
        # The reader of our stdout went away (`| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # noqa: BLE001 - the boundary: no traceback unless asked for
        if _debug:
            traceback.print_exc()
        stderr.print(
            f"longdoc: internal error: {type(error).__name__}: {error} (run with --debug for details)",
            markup=False,
            style="red",
        )
        return 1


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
