"""Does a summary keep what matters? Planted key facts and gov_report, for code variants side by side.

    python -m bench.summary_facts --out DIR [--model qwen2.5-1.5b,qwen2.5-0.5b] \
        [--code new=.,main=/tmp/longdoc-main] [--task planted,gov] [--sizes 8,12,24] \
        [--langs en,zh,zh:en] [--seeds 1] [--gov-limit 5] [--length 250] [--case-timeout S] \
        [--resume] [--rescore] [--dry-run]

Each case runs the real CLI (`longdoc summarize FILE --format json`) in a fresh process, with the
variant's own code and prompts (PYTHONPATH and cwd = the variant's directory) and a fresh
LONGDOC_HOME (no step result reused) that links the converted models of the real home.

  planted  reports from bench/planted_reports.py (routine prose with one key fact in some
           sections): facts kept k/n (every key of a fact in the summary); `zh:en` is a Chinese
           report summarized with --lang en, scored on the facts' numbers only
  gov      leval gov_report_summ (shortest reports first): ROUGE-L F1 (stemmed) and fact recall
           (the reference summary's numbers and capitalised names found in ours), beside the lead
           baseline (the report's first --length words)
  every    unsupported: numbers and capitalised names in the summary that the source lacks (an
           amount may change its scale word: "480 million" for "4.8亿"; zh:en: numbers only, its
           names being translations)

Results go to DIR/summary_facts.json after every case (--resume skips the cases already there)
and the tables to DIR/summary_facts.md; --rescore scores the stored summaries again. --dry-run swaps the CLI for a fake that returns the
document's first words, to check the plumbing without a model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.harness import ROOT, leval_rows, log, script_parser, write_json_atomic
from bench.planted_reports import (
    NUMBER, PlantedFact, PlantedReport, make_report, name_in, number_value, numbers_in,
)
from longdoc.chunking import count_tokens
from longdoc.tasks.language import CHARACTERS_PER_WORD, count_words

RESULTS_FILE = "summary_facts.json"
TABLES_FILE = "summary_facts.md"
Row = dict[str, Any]

# -- scorers -------------------------------------------------------------------------------------

_SCALES = {"thousand": Decimal(10**3), "million": Decimal(10**6), "billion": Decimal(10**9),
           "trillion": Decimal(10**12), "万": Decimal(10**4), "亿": Decimal(10**8), "万亿": Decimal(10**12)}
_SCALED = re.compile(rf"(?P<number>{NUMBER.pattern})\s*(?P<scale>thousand|million|billion|trillion|万亿|亿|万)?",
                     re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_WORD_UNIT = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9]+(?:[.,'’-][A-Za-z0-9]+)*")  # a CJK character or a Latin word
_LINE_START = re.compile(r"[ \t>#]*(?:[-*•+]|\d+[.)])?[ \t\"'“‘(\[*]*")  # what may precede a line's first word
_SENTENCE_END = tuple(".!?:;。！？；：…")
# Sentence-initial words that are not part of a name ("The Department of Defense" -> the department).
_COMMON = frozenset(
    "the a an this that these those in on at for by with from to of and but or as if it its their our we they he "
    "she however also while since after before during although because when under both each all some many most "
    "according other such there what how why who which".split()
)
_CONNECTORS = frozenset({"of", "and", "for", "the"})  # inside a name: "Department of Defense"


def _scaled_numbers(text: str) -> list[tuple[Decimal, Decimal]]:
    """(value as written, value times its scale word) of every number in `text`: "4.8亿" -> (4.8, 480000000)."""
    found = []
    for match in _SCALED.finditer(text):
        value = number_value(match.group("number"))
        scale = _SCALES.get((match.group("scale") or "").lower(), Decimal(1))
        found.append((value, value * scale))
    return found


def _scale_in_sentence(key: str, sentence: str) -> Decimal:
    """The scale word that follows a number key in its fact sentence (1 when none)."""
    for value, absolute in _scaled_numbers(sentence):
        if value == number_value(key):
            return absolute / value if value else Decimal(1)
    return Decimal(1)


def _number_kept(key: str, sentence: str, found: list[tuple[Decimal, Decimal]]) -> bool:
    # "12.5" is kept by "12.5%" and "12.5 percent"; "4.8" written "4.8亿元" also by "480 million" (a
    # summary in English) or "0.48 billion": same value or same amount.
    value = number_value(key)
    amount = value * _scale_in_sentence(key, sentence)
    return any(written == value or absolute == amount for written, absolute in found)


def fact_kept(summary: str, fact: PlantedFact, numbers_only: bool = False) -> bool:
    """Whether every key of `fact` (only its numbers with `numbers_only`, when it has any) is in `summary`."""
    found = _scaled_numbers(summary)
    keys = fact.number_keys if numbers_only and fact.number_keys else fact.keys
    return bool(keys) and all(
        _number_kept(key, fact.sentence, found) if key in fact.number_keys else name_in(key, summary) for key in keys
    )


def facts_kept(summary: str, report: PlantedReport, numbers_only: bool = False) -> list[bool]:
    """For each planted fact of `report`, whether `summary` kept it (see `fact_kept`)."""
    return [fact_kept(summary, fact, numbers_only) for fact in report.facts]


def _sentence_initial(text: str, start: int) -> bool:
    """Whether the word at `start` begins a sentence, a line or a list item (where any word is capitalised)."""
    line = text[text.rfind("\n", 0, start) + 1:start]
    if _LINE_START.fullmatch(line):
        return True
    return line.rstrip(" \t\"'“‘([*").endswith(_SENTENCE_END)


def _list_number(text: str, start: int, end: int) -> bool:
    """Whether the number at text[start:end] is a list item's marker ("1. ", "2) " at a line's start), not a figure."""
    line = text[text.rfind("\n", 0, start) + 1:start]
    after = text[end:end + 2]
    return re.fullmatch(r"[ \t>#]*", line) is not None and re.match(r"[.)]\s", after) is not None


def _latin_words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def _bare(word: str) -> str:
    """A word without its possessive: "FEMA's" -> "FEMA"."""
    return re.sub(r"['’]s$", "", word)


def unsupported(summary: str, source: str, names: bool = True) -> list[str]:
    """Numbers and capitalised Latin words of `summary` that `source` lacks: a strict, simple check.

    A number must occur in the source as a number (thousands separators ignored), or as the same
    amount with its scale word: "480 million" matches "4.8亿", "200,000" matches "20万". A capitalised
    word that does not begin a sentence (and is not "I") must occur in the source as a whole word,
    any case; `names=False` skips that, for an English summary of a Chinese source, whose names are
    translations. Works on Chinese summaries too (their Latin words and numbers). Each offending
    string once, in order of appearance.
    """
    source_numbers = numbers_in(source)
    source_amounts = {absolute for _, absolute in _scaled_numbers(source)}
    source_words = {_bare(match.group()).lower() for match in _latin_words(source)}
    offending: list[tuple[int, str]] = []
    for match in _SCALED.finditer(summary):
        number = match.group("number")
        value = number_value(number)
        amount = value * _SCALES.get((match.group("scale") or "").lower(), Decimal(1))
        supported = value in source_numbers or amount in source_amounts
        if not supported and not _list_number(summary, match.start(), match.end("number")):
            offending.append((match.start(), number))
    for match in _latin_words(summary) if names else []:
        word = _bare(match.group())
        a_name = word[0].isupper() and word != "I" and not _sentence_initial(summary, match.start())
        if a_name and word.lower() not in source_words:
            offending.append((match.start(), word))
    return list(dict.fromkeys(text for _, text in sorted(offending)))


def _connects(words: list[re.Match[str]], capital: list[bool], j: int) -> bool:
    """Whether words[j] joins two parts of one name: "Department of Defense", not "CRDP and CRSC"."""
    if words[j].group().lower() not in _CONNECTORS or j + 1 >= len(words) or not capital[j + 1]:
        return False
    return not words[j - 1].group().isupper()  # acronyms joined by "and" are two names


def _name_sequences(text: str) -> list[list[re.Match[str]]]:
    """Runs of capitalised words, joined by spaces or hyphens, with "of"/"and"/"for"/"the" inside."""
    words = _latin_words(text)
    capital = [match.group()[0].isupper() for match in words]

    def joined(a: int, b: int) -> bool:
        return re.fullmatch(r"[ \t]+|-", text[words[a].end():words[b].start()]) is not None

    runs: list[list[re.Match[str]]] = []
    i = 0
    while i < len(words):
        if not capital[i]:
            i += 1
            continue
        run, j = [words[i]], i + 1
        while j < len(words) and joined(j - 1, j):
            if capital[j]:
                run, j = run + [words[j]], j + 1
            elif _connects(words, capital, j) and joined(j, j + 1):
                run, j = run + [words[j], words[j + 1]], j + 2
            else:
                break
        runs.append(run)
        i = j
    return runs


def reference_names(text: str) -> list[str]:
    """The capitalised names of `text`, each once (case-insensitive); a multi-word name counts as one.

    A lone capitalised word that starts a sentence is left out (it may be any word), and a common
    word starting a sentence is dropped from the name it precedes ("The Army" -> "Army").
    """
    names: dict[str, str] = {}
    for run in _name_sequences(text):
        if _sentence_initial(text, run[0].start()):
            if len(run) == 1:
                continue
            if run[0].group().lower() in _COMMON:
                run = run[1:]
        while run and run[0].group().lower() in _CONNECTORS:
            run = run[1:]
        name = _bare(" ".join(text[run[0].start():run[-1].end()].split())) if run else ""
        if len(name) > 1 and name != "I":
            names.setdefault(name.lower(), name)
    return list(names.values())


def _phrase_in(name: str, text: str) -> bool:
    words = [re.escape(word) for word in re.split(r"[\s-]+", name)]
    return re.search(r"(?<![A-Za-z])" + r"[\s-]+".join(words) + r"(?![A-Za-z])", text, re.IGNORECASE) is not None


def fact_recall(summary: str, reference: str) -> float:
    """The share of the reference summary's numbers and names (deduplicated) that `summary` contains."""
    numbers, names = numbers_in(reference), reference_names(reference)
    if not numbers and not names:
        return 1.0  # nothing to miss
    found = len(numbers & numbers_in(summary)) + sum(_phrase_in(name, summary) for name in names)
    return found / (len(numbers) + len(names))


def rouge_l(summary: str, reference: str) -> float:
    """ROUGE-L F1 with stemming, as bench/eval_tasks.py scores gov_report."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, summary)["rougeL"].fmeasure


def word_count(text: str) -> int:
    """Words as `longdoc summarize --length` counts them (Chinese: one word per 1.5 characters)."""
    return count_words(text)


def lead(text: str, words: int) -> str:
    """The first `words` words of `text` (as `word_count` counts them), cut where the last one ends."""
    units = list(_WORD_UNIT.finditer(text))
    han = 0
    for n, unit in enumerate(units):
        han += len(unit.group(0)) == 1 and "\u3400" <= unit.group(0) <= "\u9fff"
        if (n + 1 - han) + han / CHARACTERS_PER_WORD >= words:
            return text[: unit.end()].strip()
    return text.strip()


# -- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One document to summarize, with what its summary is scored against."""

    id: str
    task: str  # "planted", "gov" or "long"
    text: str
    lang: str | None = None  # --lang for the CLI; None: the document's own language
    numbers_only: bool = False  # summary in another language: only numbers can be checked
    report: PlantedReport | None = None
    reference: str | None = None
    info: Row = field(default_factory=dict)  # recorded with each result: size, language, seed, index


def planted_cases(sizes: list[int], langs: list[str], seeds: list[int]) -> list[Case]:
    """A case per size x language spec ("en", "zh", or "zh:en" = Chinese report, English summary) x seed."""
    cases = []
    for sections in sizes:
        for spec in langs:
            document_lang, _, summary_lang = spec.partition(":")
            for seed in seeds:
                report = make_report(sections, document_lang, seed)
                other = bool(summary_lang) and summary_lang != document_lang
                info = {"sections": sections, "lang": spec, "seed": seed, "doc_tokens": count_tokens(report.text),
                        "planted_facts": len(report.facts)}
                cases.append(Case(f"planted-{sections}-{spec}-s{seed}", "planted", report.text,
                                  summary_lang if other else None, other, report, info=info))
    return cases


def gov_cases(limit: int) -> list[Case]:
    """The `limit` shortest gov_report_summ reports (as bench/eval_tasks.py takes them)."""
    rows = leval_rows("gov_report_summ")
    order = sorted(range(len(rows)), key=lambda n: len(rows[n]["input"]))
    cases = []
    for index, row_number in enumerate(order[:limit]):
        row = rows[row_number]
        info = {"gov_index": index, "row": row_number, "doc_tokens": count_tokens(row["input"])}
        cases.append(Case(f"gov-{index}", "gov", row["input"], reference=row["outputs"][0], info=info))
    return cases


def long_cases() -> list[Case]:
    """samples/lighthouse.txt: a ~24K-token chronicle, for the time a long document takes (and a
    summary of narrative text, checked for unsupported figures and names)."""
    text = (ROOT / "samples" / "lighthouse.txt").read_text(encoding="utf-8")
    return [Case("long-lighthouse", "long", text, info={"doc_tokens": count_tokens(text)})]


def score(case: Case, summary: str) -> Row:
    """Every metric of `case` for one summary."""
    # An English summary of a Chinese report translates its names: only its numbers can be checked.
    row: Row = {"words": word_count(summary), "unsupported": unsupported(summary, case.text, names=not case.numbers_only)}
    if case.report is not None:
        kept = facts_kept(summary, case.report, case.numbers_only)
        row.update(kept=kept, facts_kept=sum(kept), facts=len(kept))
    if case.reference is not None:
        row.update(rougeL=round(rouge_l(summary, case.reference), 4),
                   fact_recall=round(fact_recall(summary, case.reference), 4))
    return row


# -- running the CLI -----------------------------------------------------------------------------

CLI_CODE = 'import sys; from longdoc.cli import main; sys.argv[0]="longdoc"; main()'
# --dry-run: answers like `summarize --format json` with the document's first --length words, and
# says which longdoc package it would have run, so the variant plumbing is checked too.
FAKE_CLI_CODE = """
import json, re, sys
import longdoc
args = sys.argv[1:]
text = open(args[1], encoding="utf-8").read()
words, seen, end = int(args[args.index("--length") + 1]), 0.0, len(text)
for unit in re.finditer(r"[\\u3400-\\u9fff]|[A-Za-z0-9]+(?:[.,'’-][A-Za-z0-9]+)*", text):
    seen += 1 / 1.5 if len(unit.group(0)) == 1 and "\\u3400" <= unit.group(0) <= "\\u9fff" else 1
    if seen >= words:
        end = unit.end()
        break
summary = text[:end].strip()
print(json.dumps({"source": args[1], "model": "dry-run", "summary": summary, "longdoc": longdoc.__file__, "argv": args}))
"""


@dataclass(frozen=True)
class Variant:
    """A checkout of longdoc whose code and prompts a run uses."""

    name: str
    path: Path
    args: tuple[str, ...] = ()  # extra CLI flags, e.g. ("--chunk-tokens=500",)


@dataclass(frozen=True)
class CliRun:
    """What one CLI process did."""

    seconds: float
    output: Row | None = None
    timed_out: bool = False
    error: str | None = None


def parse_variants(spec: str) -> list[Variant]:
    """ "new=.,main=/tmp/longdoc-main" -> variants, each directory holding longdoc/ and prompts/;
    "c500=.@--chunk-tokens=500" also gives the variant's CLI extra flags (separated by @)."""
    variants = []
    for item in spec.split(","):
        name, _, rest = item.partition("=")
        folder, *args = rest.split("@")
        path = Path(folder or ".").resolve()
        if not (path / "longdoc" / "cli.py").is_file() or not (path / "prompts").is_dir():
            raise SystemExit(f"--code {item}: {path} holds no longdoc/cli.py and prompts/")
        variants.append(Variant(name.strip(), path, tuple(args)))
    return variants


def variant_env(variant: Variant, home: Path) -> dict[str, str]:
    # PYTHONPATH is replaced, not extended: a path to another checkout in it would mix the variants.
    return {**os.environ, "PYTHONPATH": str(variant.path), "LONGDOC_HOME": str(home)}


def check_variant(variant: Variant) -> None:
    """Fail early unless a process set up like a case imports longdoc from the variant's directory."""
    env = variant_env(variant, Path(tempfile.gettempdir()))
    done = subprocess.run([sys.executable, "-c", "import longdoc; print(longdoc.__file__)"], cwd=variant.path, env=env,
                          capture_output=True, text=True, check=False)
    imported = Path(done.stdout.strip() or "?").resolve()
    if variant.path not in imported.parents:
        raise SystemExit(f"variant {variant.name}: longdoc imports from {imported}, not {variant.path}")


def shared_home() -> Path:
    """The real longdoc home ($LONGDOC_HOME, else the user cache dir), where converted models are."""
    from longdoc.memory.store import default_home

    return default_home()


def fresh_home(scratch: Path, shared: Path, create: bool) -> Path:
    """An empty longdoc home that links the shared converted-model caches (so nothing is converted again)."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    for name in ("models", "gguf"):
        if create:  # a first conversion then lands in the real home, for the next case too
            (shared / name).mkdir(parents=True, exist_ok=True)
        if (shared / name).is_dir():
            (home / name).symlink_to(shared / name, target_is_directory=True)
    return home


def cli_command(code: str, file: Path, length: int, lang: str | None, model: str | None) -> list[str]:
    command = [sys.executable, "-c", code, "summarize", str(file), "--format", "json", "--length", str(length)]
    return command + (["--lang", lang] if lang else []) + (["--model", model] if model else [])


def _stop(process: subprocess.Popen[str]) -> None:
    # The CLI runs in its own session: killing the group also ends any worker it started.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def run_cli(command: list[str], variant: Variant, home: Path, timeout: float | None) -> CliRun:
    """Run one CLI process in the variant's directory; its JSON output, or why there is none."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=variant.path, env=variant_env(variant, home), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        return CliRun(round(time.perf_counter() - started, 2), timed_out=True, error=f"timed out after {timeout:g} s")
    except BaseException:  # Ctrl-C: no orphan left running
        _stop(process)
        raise
    seconds = round(time.perf_counter() - started, 2)
    if process.returncode != 0:
        return CliRun(seconds, error=f"exit {process.returncode}: {stderr.strip()[-2000:]}")
    try:
        return CliRun(seconds, output=json.loads(stdout))
    except json.JSONDecodeError:
        return CliRun(seconds, error=f"output is not JSON: {stdout[:300]!r}")


# -- one case ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    """What every case of a run shares."""

    length: int
    timeout: float | None
    dry_run: bool
    shared: Path


def _file_name(case: Case) -> str:
    return case.id.replace(":", "-to-") + ".txt"


def run_case(case: Case, variant: Variant, model: str, settings: RunSettings) -> Row:
    """Summarize `case` with one variant and model in a fresh process and home, and score the summary."""
    row: Row = {"variant": variant.name, "model": model, "task": case.task, "case": case.id, **case.info}
    with tempfile.TemporaryDirectory(prefix="summary-facts-") as scratch:
        document = Path(scratch) / _file_name(case)
        document.write_text(case.text, encoding="utf-8")
        home = fresh_home(Path(scratch), settings.shared, create=not settings.dry_run)
        code = FAKE_CLI_CODE if settings.dry_run else CLI_CODE
        command = cli_command(code, document, settings.length, case.lang, model) + list(variant.args)
        run = run_cli(command, variant, home, settings.timeout)
    row.update(seconds=run.seconds, timed_out=run.timed_out, error=run.error)
    if run.output is not None:
        row.update(score(case, str(run.output.get("summary", ""))), cli=run.output)
    return row


def lead_row(case: Case, length: int) -> Row:
    """The lead baseline of `case`: its first `length` words, scored like a summary (no model)."""
    summary = lead(case.text, length)
    return {"variant": "lead", "model": "", "task": case.task, "case": case.id, **case.info, "seconds": 0.0,
            "timed_out": False, "error": None, **score(case, summary), "summary": summary}


# -- the results file ----------------------------------------------------------------------------


def cpu_info() -> Row:
    """lscpu's model name and whether the CPU has the bf16 matrix instructions torch can use."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        listing = ""
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in listing.splitlines())}
    flags = set(fields.get("Flags", "").split())
    return {"cpu": fields.get("Model name", "unknown"), "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags,
            "amx": sorted(flag for flag in flags if flag.startswith("amx"))}


def _revision(path: Path) -> str | None:
    """The variant's git commit, "+dirty" when its tree has changes (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    return None if commit is None else commit + ("+dirty" if git("status", "--porcelain") else "")


def run_header(args: argparse.Namespace, argv: list[str], variants: list[Variant]) -> Row:
    now = datetime.now(timezone.utc)
    return {
        "started": now.strftime("%Y-%m-%d %H:%M UTC"), "date": now.strftime("%Y-%m-%d"),
        "command": "python -m bench.summary_facts " + " ".join(argv), "machine": cpu_info(),
        "models": args.models, "variants": {v.name: str(v.path) for v in variants},
        "revisions": {v.name: _revision(v.path) for v in variants}, "length": args.length,
        "case_timeout": args.case_timeout, "dry_run": args.dry_run,
    }


def load_payload(path: Path, resume: bool, header: Row) -> Row:
    """The results so far (with --resume), else a new file; an old file not resumed is kept as .bak."""
    if path.exists() and resume:
        payload = json.loads(path.read_text(encoding="utf-8"))
        header["resumed_from"] = payload.get("header", {}).get("started")
        return {"header": header, "cases": payload.get("cases", [])}
    if path.exists():
        os.replace(path, path.with_suffix(".json.bak"))
    return {"header": header, "cases": []}


# -- tables --------------------------------------------------------------------------------------


def _finished(row: Row | None) -> bool:
    return row is not None and not row.get("timed_out") and not row.get("error")


def _status(row: Row | None) -> str | None:
    """ "-" (not run), "timeout" or "failed" for a row without scores, else None."""
    if row is None:
        return "-"
    if row.get("timed_out"):
        return "timeout"
    return "failed" if row.get("error") else None


def _percent(kept: int, total: int) -> str:
    return f"{kept}/{total} ({100 * kept / total:.0f}%)" if total else "-"


def _planted_cells(row: Row | None) -> list[str]:
    status = _status(row)
    if status or row is None:
        return [status or "-", "", f"{row['seconds']:.0f}" if row else "", ""]
    kept = f"{row['facts_kept']}/{row['facts']}"
    return [kept, str(len(row["unsupported"])), f"{row['seconds']:.0f}", str(row["words"])]


def _gov_cells(row: Row | None, with_seconds: bool = True) -> list[str]:
    status = _status(row)
    if status or row is None:
        cells = [status or "-", "", ""]
    else:
        cells = [f"{row['rougeL']:.3f}", f"{row['fact_recall']:.2f}", str(row["words"])]
    return cells + ([f"{row['seconds']:.0f}" if row else ""] if with_seconds else [])


def _planted_totals(rows: list[Row | None]) -> list[str]:
    # A case that timed out or failed keeps none of its facts: a variant cannot gain by failing.
    done = [row for row in rows if _finished(row)]
    facts = sum(row["planted_facts"] for row in rows if row)
    kept = sum(row["facts_kept"] for row in done)
    words = f"{sum(row['words'] for row in done) / len(done):.0f}" if done else "-"
    seconds = sum(row["seconds"] for row in rows if row)
    return [_percent(kept, facts), str(sum(len(row["unsupported"]) for row in done)), f"{seconds:.0f}", words]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _index(rows: list[Row]) -> dict[tuple[str, str, str], Row]:
    return {(row["variant"], row["model"], row["case"]): row for row in rows}


def _case_ids(rows: list[Row], task: str) -> list[str]:
    return list(dict.fromkeys(row["case"] for row in rows if row["task"] == task))


def planted_table(rows: list[Row], model: str, variants: list[str]) -> list[str]:
    """Facts kept, unsupported count, seconds and words per planted case and variant, with totals."""
    cases = _case_ids(rows, "planted")
    if not cases:
        return []
    index = _index(rows)
    header = ["case"] + [f"{v} {col}" for v in variants for col in ("facts", "unsup", "s", "words")] + ["lead facts"]
    body = []
    for case in cases:
        lead_cell = index.get(("lead", "", case))
        cells = [case] + [cell for v in variants for cell in _planted_cells(index.get((v, model, case)))]
        body.append(cells + [f"{lead_cell['facts_kept']}/{lead_cell['facts']}" if lead_cell else "-"])
    lang_of = {row["case"]: row["lang"] for row in rows if row["task"] == "planted"}
    groups = {"all planted": cases}
    langs = list(dict.fromkeys(lang_of[case] for case in cases))
    if len(langs) > 1:
        groups.update({f"total {lang}": [case for case in cases if lang_of[case] == lang] for lang in langs})
    for label, members in groups.items():
        leads = [row for case in members if (row := index.get(("lead", "", case)))]
        lead_total = _percent(sum(r["facts_kept"] for r in leads), sum(r["facts"] for r in leads))
        totals = [cell for v in variants for cell in _planted_totals([index.get((v, model, c)) for c in members])]
        body.append([f"**{label}**", *totals, lead_total])
    return _table(header, body) + [""]


def gov_table(rows: list[Row], model: str, variants: list[str]) -> list[str]:
    """ROUGE-L, fact recall, words and seconds per gov report and variant, beside the lead baseline."""
    cases = _case_ids(rows, "gov")
    if not cases:
        return []
    index = _index(rows)
    header = ["case"] + [f"{v} {col}" for v in variants for col in ("R-L", "recall", "words", "s")] + [
        "lead R-L", "lead recall", "lead words"]
    body = [[case] + [cell for v in variants for cell in _gov_cells(index.get((v, model, case)))]
            + _gov_cells(index.get(("lead", "", case)), with_seconds=False) for case in cases]
    means = ["**mean**"]
    for variant in [*variants, "lead"]:
        done = [r for c in cases if _finished(r := index.get((variant, "" if variant == "lead" else model, c)))]
        mean = [sum(r[k] for r in done) / len(done) if done else 0.0 for k in ("rougeL", "fact_recall", "words")]
        means += [f"{mean[0]:.3f}", f"{mean[1]:.2f}", f"{mean[2]:.0f}"] if done else ["-", "", ""]
        if variant != "lead":
            means.append(f"{sum(r['seconds'] for c in cases if (r := index.get((variant, model, c)))):.0f}")
    return _table(header, body + [means]) + [""]


def long_table(rows: list[Row], model: str, variants: list[str]) -> list[str]:
    """The long-document timing cases: seconds, words and unsupported items per variant."""
    cases = _case_ids(rows, "long")
    if not cases:
        return []
    index = _index(rows)

    def cells(row: Row | None) -> list[str]:
        status = _status(row)
        if status or row is None:
            return [status or "-", "", ""]
        return [f"{row['seconds']:.0f}", str(row["words"]), str(len(row["unsupported"]))]

    header = ["case"] + [f"{v} {col}" for v in variants for col in ("s", "words", "unsup")]
    return _table(header, [[case] + [c for v in variants for c in cells(index.get((v, model, case)))] for case in cases]) + [""]


def time_ratio(rows: list[Row], model: str, variants: list[str]) -> str | None:
    """Total seconds of new over main (else the first two variants), on the cases both finished."""
    if len(variants) < 2:
        return None
    a, b = ("new", "main") if {"new", "main"} <= set(variants) else variants[:2]
    index = _index(rows)
    pairs = [(index.get((a, model, c)), index.get((b, model, c))) for c in dict.fromkeys(r["case"] for r in rows)]
    both = [(x, y) for x, y in pairs if _finished(x) and _finished(y)]
    if not both:
        return f"Time {a}/{b}: no case finished in both."
    sa, sb = sum(x["seconds"] for x, _ in both), sum(y["seconds"] for _, y in both)  # type: ignore[index]
    return f"Time {a}/{b}: {sa / sb:.2f} ({sa:.0f} s vs {sb:.0f} s, over the {len(both)} cases both finished)."


def summary_tables(payload: Row) -> str:
    """The Markdown report of a results payload: a planted and a gov table per model, with totals."""
    header, rows = payload["header"], payload["cases"]
    machine = header.get("machine", {})
    variants = list(header.get("variants") or dict.fromkeys(r["variant"] for r in rows if r["variant"] != "lead"))
    models = list(dict.fromkeys(r["model"] for r in rows if r["variant"] != "lead"))
    amx = ", ".join(machine.get("amx", [])) or "no"
    lines = [
        f"# Summary facts, {header.get('date', '?')}, {machine.get('cpu', 'unknown CPU')}", "",
        f"CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; avx512_bf16: "
        f"{'yes' if machine.get('avx512_bf16') else 'no'}; AMX: {amx}. Started {header.get('started', '?')}"
        f"{' (dry run: fake summarizer)' if header.get('dry_run') else ''}.", "",
        f"`{header.get('command', '')}`", "",
        f"Summary length asked: {header.get('length', '?')} words. Variants: "
        + ", ".join(f"{name} = {path} ({header.get('revisions', {}).get(name) or 'no git'})"
                    for name, path in header.get("variants", {}).items()) + ".",
        "facts: planted facts kept (all keys in the summary; zh:en on numbers only); unsup: numbers and "
        "capitalised names not in the source; a case that timed out or failed keeps 0 facts in the totals; "
        "lead: the document's first words, as many as asked.", "",
    ]
    for model in models:
        lines += [f"## {model}", ""]
        lines += planted_table(rows, model, variants)
        lines += gov_table(rows, model, variants)
        lines += long_table(rows, model, variants)
        ratio = time_ratio(rows, model, variants)
        lines += [ratio, ""] if ratio else []
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser("bench.summary_facts", __doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for summary_facts.json and .md")
    parser.add_argument("--model", dest="models", type=_names, default=["qwen2.5-1.5b"],
                        help="comma-separated presets or model paths")
    parser.add_argument("--code", default="new=.", help="name=directory of each longdoc checkout to compare")
    parser.add_argument("--task", dest="tasks", type=_names, default=["planted", "gov"])
    parser.add_argument("--sizes", type=_ints, default=[8, 12, 24], help="sections per planted report")
    parser.add_argument("--langs", type=_names, default=["en", "zh", "zh:en"],
                        help="report language[:summary language]")
    parser.add_argument("--seeds", type=_ints, default=[1], help="comma-separated report seeds")
    parser.add_argument("--gov-limit", type=int, default=5, help="gov reports, shortest first")
    parser.add_argument("--length", type=int, default=250, help="--length for the CLI, and the lead baseline's words")
    parser.add_argument("--case-timeout", type=float, default=None, help="seconds before a case is killed")
    parser.add_argument("--resume", action="store_true", help="keep DIR's results and skip the cases already there")
    parser.add_argument("--run", type=_names, default=[],
                        help="run only these variants of --code this time (the others stay in the tables)")
    parser.add_argument("--rescore", action="store_true",
                        help="score DIR's stored summaries of the chosen cases again (after a scorer changes); runs nothing")
    parser.add_argument("--dry-run", action="store_true", help="a fake summarizer (first words) instead of the CLI")
    return parser.parse_args(argv)


def build_cases(args: argparse.Namespace) -> list[Case]:
    unknown = set(args.tasks) - {"planted", "gov", "long"}
    if unknown:
        raise SystemExit(f"--task: unknown {', '.join(sorted(unknown))} (planted, gov)")
    cases = planted_cases(args.sizes, args.langs, args.seeds) if "planted" in args.tasks else []
    cases += gov_cases(args.gov_limit) if "gov" in args.tasks else []
    return cases + (long_cases() if "long" in args.tasks else [])


def _describe(row: Row) -> str:
    if row.get("error"):
        return row["error"].splitlines()[0][:200]
    scores = [f"{row['facts_kept']}/{row['facts']} facts" if "facts" in row else "",
              f"ROUGE-L {row['rougeL']:.3f}, recall {row['fact_recall']:.2f}" if "rougeL" in row else "",
              f"{len(row['unsupported'])} unsupported, {row['words']} words, {row['seconds']:.0f} s"]
    return ", ".join(s for s in scores if s)


def _save(out: Path, payload: Row) -> None:
    write_json_atomic(out / RESULTS_FILE, payload)
    (out / TABLES_FILE).write_text(summary_tables(payload) + "\n", encoding="utf-8")


def rescore(payload: Row, cases: list[Case]) -> int:
    """Score the stored summaries of `cases` again with the current scorers; how many rows changed."""
    by_id = {case.id: case for case in cases}
    changed = 0
    for row in payload["cases"]:
        case = by_id.get(row["case"])
        summary = row.get("summary") if row["variant"] == "lead" else (row.get("cli") or {}).get("summary")
        if case is None or summary is None:
            continue
        scores = score(case, str(summary))
        changed += any(row.get(key) != value for key, value in scores.items())
        row.update(scores)
    return changed


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    variants = parse_variants(args.code)
    for variant in variants:
        check_variant(variant)
    cases = build_cases(args)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = load_payload(args.out / RESULTS_FILE, args.resume or args.rescore, run_header(args, argv, variants))
    if args.rescore:
        log(f"rescored: {rescore(payload, cases)} rows changed")
        _save(args.out, payload)
        print(summary_tables(payload))
        return
    done = {(row["variant"], row["model"], row["case"]) for row in payload["cases"]}
    payload["cases"] += [lead_row(case, args.length) for case in cases if ("lead", "", case.id) not in done]
    _save(args.out, payload)
    settings = RunSettings(args.length, args.case_timeout, args.dry_run, shared_home())
    # Variants alternate within each case, so a run stopped early leaves comparable pairs, and a
    # busy spell on the machine falls on both.
    try:
        for model in args.models:
            for case in cases:
                for variant in variants:
                    if (variant.name, model, case.id) in done or (args.run and variant.name not in args.run):
                        continue
                    row = run_case(case, variant, model, settings)
                    row["revision"] = payload["header"]["revisions"].get(variant.name)  # a resumed file may mix commits
                    payload["cases"].append(row)
                    _save(args.out, payload)
                    log(f"{variant.name} {model} {case.id}: {_describe(row)}")
    except KeyboardInterrupt:
        log(f"stopped; the finished cases are in {args.out / RESULTS_FILE} (rerun with --resume)")
        raise SystemExit(130) from None
    print(summary_tables(payload))


if __name__ == "__main__":
    main()
