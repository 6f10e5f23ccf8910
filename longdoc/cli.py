"""The `longdoc` command line: parse, call one library function, render; the only error boundary."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from longdoc import __version__, render
from longdoc.chunking import ChunkConfig, chunk_document
from longdoc.config import Settings, load_settings
from longdoc.console import advance, info, progress, reporter, stderr, warn
from longdoc.document import Document
from longdoc.errors import LongdocError, ModelChoiceError, ServerUnavailable, SomeInputsFailed
from longdoc.ingest import read_document
from longdoc.model.chat_api import RemoteConfig
from longdoc.progress import LongdocWarning

if TYPE_CHECKING:
    from longdoc.engine.cache_config import SegmentCacheConfig
    from longdoc.memory.embedder import Embedder
    from longdoc.model.protocol import Model
    from longdoc.model.spec import ModelSpec
    from longdoc.tasks.summarize import SummaryOptions

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
    Optional[str],
    typer.Option(
        "--embedder",
        help="minilm (English), e5 (multilingual) or a local sentence-transformers directory; "
        "default: minilm for English documents, e5 for others.",
    ),
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
    size: Annotated[
        Optional[int], typer.Option("--size", min=8, help=f"Chunk size in tokens (cl100k; default {ChunkConfig.size}).")
    ] = None,
    overlap: Annotated[
        Optional[int], typer.Option("--overlap", min=0, help=f"Tokens shared by neighbouring chunks (default {ChunkConfig.overlap}).")
    ] = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
) -> None:
    """Split a document into token-counted chunks with page and line spans."""
    settings = load_settings().overridden("chunk", size=size, overlap=overlap).chunk
    size = settings.size or ChunkConfig.size
    overlap = ChunkConfig.overlap if settings.overlap is None else settings.overlap
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
    for file in files or [None]:
        started = time.perf_counter()
        document = _load(file, encoding)
        memory, cached = _open_memory(document, _embedder(embedder_path, document), rebuild)
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
    memory, cached = _open_memory(document, _embedder(embedder_path, document), rebuild)
    hits = memory.search(query, k=k)
    render.hits(document, query, hits, cached, time.perf_counter() - started, as_json)


ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="A preset (see `longdoc models`), a Hugging Face model directory or a .gguf file."),
]
FastOpt = Annotated[bool, typer.Option("--fast", help="Use the fast preset (qwen2.5-0.5b): ~3x quicker, less accurate.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda (default auto).")]
BackendOpt = Annotated[
    Optional[str],
    typer.Option("--backend", help="local (default: this machine) or openai (an OpenAI-compatible server: vLLM, TGI, llama.cpp, Ollama)."),
]
BaseUrlOpt = Annotated[
    Optional[str], typer.Option("--base-url", help="The server's API root, e.g. http://127.0.0.1:8000/v1 (openai backend).")
]
ApiModelOpt = Annotated[Optional[str], typer.Option("--api-model", help="The model name the server serves (openai backend).")]
ContextOpt = Annotated[
    Optional[int],
    typer.Option("--context-window", min=256, help="Tokens the served model accepts (openai backend; default: what the server says, else 8192)."),
]
ConcurrencyOpt = Annotated[
    Optional[int],
    typer.Option("--concurrency", "-j", min=1, help=f"Requests in flight at once (openai backend; default {RemoteConfig.concurrency})."),
]
TimeoutOpt = Annotated[
    Optional[float],
    typer.Option("--timeout", min=0.001, help=f"Seconds to wait for each reply (openai backend; default {RemoteConfig.timeout:g})."),
]
RetriesOpt = Annotated[
    Optional[int],
    typer.Option("--retries", min=0, help=f"Further attempts after 429, 5xx, a lost connection or a timeout (default {RemoteConfig.retries})."),
]


@dataclass(frozen=True)
class ModelFlags:
    """The model and server options every model-backed command takes, as given on the command line."""

    model: Optional[str] = None
    fast: bool = False
    device: Optional[str] = None
    backend: Optional[str] = None
    base_url: Optional[str] = None
    api_model: Optional[str] = None
    context_window: Optional[int] = None
    concurrency: Optional[int] = None
    timeout: Optional[float] = None
    retries: Optional[int] = None

    def settings(self) -> Settings:
        """longdoc.toml's settings with these flags, where given, taking precedence."""
        from longdoc.engine.presets import FAST_PRESET

        if self.model is not None and self.fast:
            raise typer.BadParameter("give either --model or --fast, not both", param_hint="--fast")
        flags = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fast"}
        flags["model"] = self.model or (FAST_PRESET if self.fast else None)
        return load_settings().overridden("model", **flags)


# The command-line spelling of each ModelFlags field, with its help.
_MODEL_OPTIONS: dict[str, Any] = {
    "model": ModelOpt, "fast": FastOpt, "device": DeviceOpt, "backend": BackendOpt, "base_url": BaseUrlOpt,
    "api_model": ApiModelOpt, "context_window": ContextOpt, "concurrency": ConcurrencyOpt, "timeout": TimeoutOpt,
    "retries": RetriesOpt,
}


def model_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the model and server options, declared once here; it receives them as one
    `flags: ModelFlags` argument. Typer reads the options from the wrapper's signature."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "flags"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=getattr(ModelFlags, name))
        for name, annotation in _MODEL_OPTIONS.items()
    ]

    @functools.wraps(command)
    def with_flags(**given: Any) -> None:
        command(flags=ModelFlags(**{name: given.pop(name) for name in _MODEL_OPTIONS}), **given)

    del with_flags.__wrapped__  # Typer must see the signature below, not the command's own
    with_flags.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    with_flags.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
    return with_flags


_SUMMARY_SUFFIX = {"text": ".summary.txt", "markdown": ".summary.md", "json": ".summary.json"}


@app.command()
@model_options
def summarize(
    flags: ModelFlags,
    files: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="PDF, text, Markdown or HTML files; '-' or none reads stdin. With several, or --out-dir, "
            "each summary goes to a file of its own.",
            show_default=False,
        ),
    ] = None,
    length: Annotated[int, typer.Option("--length", "-l", min=10, help="Target length of the summary in words.")] = 250,
    style: Annotated[str, typer.Option("--style", help="paragraph or bullets.")] = "paragraph",
    lang: Annotated[str, typer.Option("--lang", help="Output language (en, zh, French, ...); auto = the document's.")] = "auto",
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, markdown or json (json includes the summary tree).")] = "text",
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out-dir", "-o", help="Write one summary per input here (a.pdf -> a.summary.txt / .md / .json)."),
    ] = None,
    chunk_tokens: Annotated[
        Optional[int],
        typer.Option("--chunk-tokens", min=64, help="Chunk size in tokens for choosing and tracking key facts (default 400)."),
    ] = None,
    encoding: EncodingOpt = None,
) -> None:
    """Summarize documents of any length (hierarchical map-reduce), one or many at a time."""
    from longdoc.tasks.summarize import SummaryOptions

    _choice(style, ("paragraph", "bullets"), "--style")
    _choice(fmt, ("text", "markdown", "json"), "--format")
    sources = files or [None]
    if len(sources) > 1 and out_dir is None:
        raise typer.BadParameter("several files need --out-dir, where each summary is written", param_hint="--out-dir")
    if out_dir is not None and any(source in (None, "-") for source in sources):
        raise typer.BadParameter("stdin cannot be summarized into --out-dir; give file names", param_hint="FILES")
    settings = flags.settings().overridden("summarize", chunk_tokens=chunk_tokens)
    options = SummaryOptions(
        words=length, style=style, language=lang,  # type: ignore[arg-type]
        chunk_tokens=settings.summarize.chunk_tokens or SummaryOptions.chunk_tokens,
    )
    if out_dir is None:
        _summarize_one(sources[0], settings, options, fmt, encoding)
    else:
        _summarize_many([s for s in sources if s], out_dir, settings, options, fmt, encoding)


def _summarize_one(file: str | None, settings: Settings, options: SummaryOptions, fmt: str, encoding: str | None) -> None:
    from longdoc.tasks.summarize import summarize as summarize_document

    document = _load(file, encoding)
    model = _model(settings)
    with progress(f"summarizing {document.source}", total=None) as bar:
        result = summarize_document(document, model, _results(), options, reporter(bar, f"summarizing {document.source}"))
    render.summary(document, result, fmt)


def _summarize_many(sources: list[str], out_dir: Path, settings: Settings, options: SummaryOptions, fmt: str, encoding: str | None) -> None:
    """Batch mode: every input to a file of its own in `out_dir`; a failed input is reported and skipped."""
    from longdoc.batch import run_batch
    from longdoc.tasks.summarize import summarize as summarize_document

    model = _model(settings)  # once, for every file
    results = _results()

    def job(source: str) -> str:
        document = read_document(source, encoding=encoding)
        for message in document.warnings:
            warn(f"{source}: {message}")
        return render.summary_text(document, summarize_document(document, model, results, options), fmt)

    failed = written = 0
    with progress(f"summarizing {len(sources)} files", total=len(sources)) as bar:
        batch = run_batch(sources, job, out_dir, _SUMMARY_SUFFIX[fmt], parallel=model.concurrency, fatal=(ServerUnavailable,))
        try:
            for outcome in batch:
                advance(bar)
                if outcome.error is not None:
                    failed += 1
                    _report_skipped(outcome.source, outcome.error)
                written += outcome.error is None
        except ServerUnavailable as gone:  # every input left would fail the same way
            raise ServerUnavailable(f"{gone}; stopped with {written} of {len(sources)} summaries written to {out_dir}") from gone
    if failed:
        raise SomeInputsFailed(f"{failed} of {len(sources)} inputs failed; the other summaries are in {out_dir}")
    info(f"{len(sources)} summaries written to {out_dir}")


def _report_skipped(source: str, error: LongdocError) -> None:
    if _debug:
        traceback.print_exception(error)
    message = str(error) if str(error).startswith(source) else f"{source}: {error}"
    stderr.print(f"longdoc: error: {message} (skipped)", markup=False, style="red")


@app.command()
@model_options
def ask(
    flags: ModelFlags,
    file: Annotated[str, typer.Argument(help="The document; '-' reads stdin.", show_default=False)],
    question: Annotated[str, typer.Argument(help="Your question.", show_default=False)],
    embedder_path: EmbedderOpt = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="retrieve: answer from the best-matching passages (fast). read: the model reads the whole "
            "document a window at a time and answers from the passages its attention to the question picks "
            "(slow: every token passes through the model's first layers).",
        ),
    ] = "retrieve",
) -> None:
    """Answer a question about a document, citing the pages the answer comes from."""
    from longdoc.engine.cache_config import answering_config
    from longdoc.tasks.ask import ask as answer_question
    from longdoc.tasks.ask import ask_by_reading

    _choice(mode, ("retrieve", "read"), "--mode")
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    settings = flags.settings()
    if mode == "read" and settings.model.backend == "openai":
        raise typer.BadParameter("read mode needs the local engine's attention; use --backend local", param_hint="--mode")
    document = _load(file, encoding)
    if mode == "read":
        model = _model(settings, cache=answering_config())
        with progress("reading the whole document", total=None) as bar:
            result = ask_by_reading(document, question.strip(), model, _results(), on_progress=reporter(bar, "asking"))
    else:
        memory, _ = _open_memory(document, _embedder(embedder_path, document), rebuild=False)
        model = _model(settings, cache=answering_config())
        with progress("answering", total=None) as bar:
            result = answer_question(document, memory, question.strip(), model, _results(), on_progress=reporter(bar, "asking"))
    render.answer(document, result, as_json)


@app.command()
@model_options
def translate(
    flags: ModelFlags,
    file: FileArg = None,
    src: Annotated[str, typer.Option("--src", help="Source language: zh, en, another name, or auto (detect zh/en).")] = "auto",
    tgt: Annotated[Optional[str], typer.Option("--tgt", help="Target language (default: en from Chinese, zh from English).")] = None,
    glossary: Annotated[
        Optional[str], typer.Option("--glossary", help="CSV of 'source,translation' rows: terms to translate exactly so.")
    ] = None,
    piece_tokens: Annotated[
        Optional[int], typer.Option("--piece-tokens", min=16, help="Source tokens per translation request (default 350).")
    ] = None,
    encoding: EncodingOpt = None,
) -> None:
    """Translate a document paragraph by paragraph, keeping its layout and terminology; streams to stdout."""
    from longdoc.tasks.glossary import load_glossary_csv
    from longdoc.tasks.paragraphs import split_paragraphs
    from longdoc.tasks.translate import TranslateOptions, translate as translate_document

    settings = flags.settings().overridden("translate", piece_tokens=piece_tokens)
    pinned = load_glossary_csv(read_document(glossary).text) if glossary else {}
    document = _load(file, encoding)
    model = _model(settings)
    options = TranslateOptions(
        source=src, target=tgt, glossary=pinned,
        piece_tokens=settings.translate.piece_tokens or TranslateOptions.piece_tokens,
    )
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


# Makes the model a command runs on, from the checked spec and the engine memory sizes it wants.
ModelOpener = Callable[["ModelSpec", "SegmentCacheConfig | None"], "Model"]
# What `run(..., open_model=, embedder=)` hands every command instead of loading its own.
_given: dict[str, Any] = {}


def _model(settings: Settings, cache: SegmentCacheConfig | None = None) -> Model:
    """The language model the settings name: a server (openai backend) or a local model, loaded
    with a progress bar; `cache` overrides the local engine's memory sizes."""
    from longdoc.model.spec import LocalSpec, model_spec, open_model

    try:
        spec = model_spec(settings.model)
    except ModelChoiceError as wrong:
        raise typer.BadParameter(str(wrong), param_hint=wrong.option) from None
    if "open_model" in _given:
        return _given["open_model"](spec, cache)  # type: ignore[no-any-return]
    if not _debug:  # transformers logs its notices instead of warning them; read at its import
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if not isinstance(spec, LocalSpec):
        served = open_model(spec, _home())
        if spec.context_window is None:  # not configured: say what the server told us, and where
            window, source = served.served_window, served.context_source  # type: ignore[attr-defined]
            info(f"context window of {spec.model}: {window} tokens, from {source}")
        return served
    with progress(f"loading {spec.model}", total=None) as bar:
        return open_model(spec, _home(), cache=cache, on_progress=reporter(bar, f"loading {spec.model}"))


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


_EMBEDDERS: dict[tuple[str | None, bool], object] = {}


def _embedder(spec: str | None, document: Document) -> Embedder:
    """The embedder for this document, opened once per kind: `index` of many files reuses it."""
    from longdoc.memory.choice import open_embedder, reads_as_english

    if "embedder" in _given:
        return _given["embedder"]  # type: ignore[no-any-return]
    english = spec in (None, "", "auto") and reads_as_english(document.text)
    key = (spec, english)
    if key not in _EMBEDDERS:
        # The text is read once: an English document's default is MiniLM, by name.
        embedder, warning = open_embedder("minilm") if english else open_embedder(spec, document.text, english=False)
        if warning:
            warn(warning)
        _EMBEDDERS[key] = embedder
    return _EMBEDDERS[key]


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


def run(argv: list[str] | None = None, *, open_model: ModelOpener | None = None, embedder: Embedder | None = None) -> int:
    """Run the command line and return its exit code; every error becomes one line on stderr.

    `open_model(spec, cache)`, when given, makes the model each command asks for in place of
    loading the one the flags name (after they are checked), and `embedder` serves in place of the
    default ones: how tests, and programs that hold a model already, drive the CLI."""
    global _debug
    _debug = os.environ.get("LONGDOC_DEBUG", "") not in ("", "0")  # --debug sets it again for this run
    _given.clear()
    _given.update({name: value for name, value in (("open_model", open_model), ("embedder", embedder)) if value is not None})
    try:
        # Invoke the command ourselves rather than through Typer's main(), which would turn Ctrl-C
        # and a closed pipe into exit codes before we could report them our way.
        command = typer.main.get_command(app)
        with _warnings_shown(), command.make_context("longdoc", list(sys.argv[1:] if argv is None else argv)) as context:
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
    finally:
        _given.clear()


@contextlib.contextmanager
def _warnings_shown() -> Iterator[None]:
    """longdoc's own warnings as one line each on stderr; other libraries' (transformers, torch,
    pypdf) only with --debug, where they help find a fault and otherwise only alarm."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object) -> None:
        if issubclass(category, LongdocWarning):
            warn(str(message))
        elif _debug:
            stderr.print(f"debug: {category.__name__}: {message} ({filename}:{lineno})", markup=False, style="dim")

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # `show` decides: --debug is known only once the command runs
        warnings.showwarning = show
        yield


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
