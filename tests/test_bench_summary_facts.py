"""The summary-facts benchmark without a model: planted reports, the scorers, the runner's plumbing."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from bench import planted_reports as planted
from bench.harness import EVAL
from bench.planted_reports import PlantedFact, PlantedReport, make_report, report_tokens
from bench.summary_facts import (
    ROOT, Variant, fact_recall, facts_kept, gov_cases, lead, main, reference_names, rouge_l, run_cli,
    summary_tables, unsupported, word_count,
)

LANGUAGES = ("en", "zh")


def _sections(report: PlantedReport) -> list[str]:
    """The text of each section (heading to next heading), in order."""
    return re.split(r"^## \d+\. .*$", report.text, flags=re.MULTILINE)[1:]


# -- the generator -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("sections", "low", "high"), [(8, 2500, 3500), (12, 10000, 12000), (24, 35000, 40000)])
def test_report_sizes_hit_their_token_targets(language: str, sections: int, low: int, high: int) -> None:
    for seed in (1, 2):
        assert low <= report_tokens(make_report(sections, language, seed)) <= high


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("sections", "facts"), [(8, 8), (12, 8), (24, 12)])
def test_each_chosen_section_gets_one_fact(language: str, sections: int, facts: int) -> None:
    report = make_report(sections, language, 5)
    assert len(report.facts) == facts
    assert len({fact.section for fact in report.facts}) == facts
    assert report.text.startswith("# ")
    assert len(re.findall(r"^## \d+\. \S", report.text, flags=re.MULTILINE)) == sections


@pytest.mark.parametrize("language", LANGUAGES)
def test_facts_stand_verbatim_in_their_section_with_their_keys(language: str) -> None:
    report = make_report(24, language, 3)
    sections = _sections(report)
    for fact in report.facts:
        assert report.text.count(fact.sentence) == 1
        assert fact.sentence in sections[fact.section - 1]
        assert fact.keys and set(fact.number_keys) <= set(fact.keys)
        for key in fact.keys:
            assert key in fact.sentence


@pytest.mark.parametrize("language", LANGUAGES)
def test_fact_positions_are_start_middle_or_end_of_the_section(language: str) -> None:
    report = make_report(24, language, 4)
    for fact in report.facts:
        body = _sections(report)[fact.section - 1].strip()
        if fact.position == "start":
            assert body.startswith(fact.sentence)
        elif fact.position == "end":
            assert body.endswith(fact.sentence)
        else:
            assert fact.sentence in body and not body.startswith(fact.sentence) and not body.endswith(fact.sentence)


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_occur_nowhere_but_in_their_fact(language: str) -> None:
    # Otherwise a summary of routine text (or of another fact) would be credited with the fact.
    for seed in range(1, 6):
        report = make_report(24, language, seed)
        for fact in report.facts:
            rest = report.text.replace(fact.sentence, "")
            for key in fact.keys:
                assert not planted.key_in(key, key in fact.number_keys, rest), (seed, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_facts_of_one_report_use_distinct_templates_and_names(language: str) -> None:
    report = make_report(24, language, 7)
    assert len({fact.label for fact in report.facts}) == len(report.facts)
    keys = [key for fact in report.facts for key in fact.keys]
    assert len(keys) == len(set(keys))


def test_chinese_facts_can_be_checked_on_numbers_alone() -> None:
    for seed in range(1, 4):
        assert all(fact.number_keys for fact in make_report(24, "zh", seed).facts)


def test_a_seed_gives_the_same_report_and_another_seed_another() -> None:
    assert make_report(12, "en", 3) == make_report(12, "en", 3)
    assert make_report(12, "zh", 3).text != make_report(12, "zh", 4).text


def test_pools_are_large_enough() -> None:
    for facts, routine, topics in ((planted.EN_FACTS, planted.EN_ROUTINE, planted.EN_TOPICS),
                                   (planted.ZH_FACTS, planted.ZH_ROUTINE, planted.ZH_TOPICS)):
        assert len({text for _, text in facts}) >= 30
        assert len(set(routine)) >= 60
        assert len(set(topics)) >= 24


# -- facts_kept ----------------------------------------------------------------------------------

EN_FACT = PlantedFact(1, "Revenue reached $1,140.5 million after the plant in Tulsa opened.", ["1,140.5", "Tulsa"], ["1,140.5"])
PCT_FACT = PlantedFact(2, "Margin narrowed to 12.5 percent.", ["12.5"], ["12.5"])
ZH_FACT = PlantedFact(1, "本年度集团营业收入达到4.8亿元，临溪市工厂投产。", ["4.8", "临溪"], ["4.8"])
WAN_FACT = PlantedFact(2, "公司支付和解金3,600万元。", ["3,600"], ["3,600"])


def _report(*facts: PlantedFact, language: str = "en") -> PlantedReport:
    return PlantedReport(" ".join(fact.sentence for fact in facts), list(facts), language, len(facts), 0, "Org")


@pytest.mark.parametrize(("summary", "kept"), [
    ("Revenue was 1140.5 million; a Tulsa plant opened. Margin fell to 12.5%.", [True, True]),
    ("Revenue was $1,140.5 million, the plant in tulsa opened, margin 12.5 percent.", [True, True]),
    ("Revenue was $1,140.5 million. Margin was 12.50 percent.", [False, True]),  # no Tulsa
    ("Revenue was $1.1405 billion in Tulsa. Margin was 112.5 percent.", [True, False]),
    ("Tulsans saw 1,140 million. Margin 12.55%.", [False, False]),
])
def test_a_fact_is_kept_when_all_its_keys_are_in_the_summary(summary: str, kept: list[bool]) -> None:
    assert facts_kept(summary, _report(EN_FACT, PCT_FACT)) == kept


def test_numbers_only_ignores_the_names() -> None:
    assert facts_kept("Revenue was 1,140.5 million.", _report(EN_FACT), numbers_only=True) == [True]


@pytest.mark.parametrize(("summary", "numbers_only", "kept"), [
    ("集团营业收入4.8亿元，临溪工厂投产；和解金3600万元。", False, [True, True]),
    ("集团营业收入4.8亿元；和解金3,600万元。", False, [False, True]),  # no 临溪
    ("Revenue was 480 million yuan and the settlement 36 million yuan.", True, [True, True]),
    ("Revenue was 0.48 billion yuan; the settlement cost 36,000,000 yuan.", True, [True, True]),
    ("Revenue was 4.9亿元 and the settlement 360 million.", True, [False, False]),
])
def test_chinese_facts_and_their_numbers_in_english(summary: str, numbers_only: bool, kept: list[bool]) -> None:
    assert facts_kept(summary, _report(ZH_FACT, WAN_FACT, language="zh"), numbers_only) == kept


# -- unsupported ---------------------------------------------------------------------------------

SOURCE = "Revenue rose 12.5% to $1,140 million at the Tulsa plant. The board met in March."


def test_supported_numbers_and_names_pass() -> None:
    summary = "Revenue rose 12.5 percent to 1140 million at the tulsa plant, the Board said. I agree."
    assert unsupported(summary, SOURCE) == []


def test_invented_numbers_and_names_are_reported_once_in_order() -> None:
    summary = "Revenue rose 13.5% at the Tulsa plant, says Okafor of Brantwick.\nProfit hit 99; Okafor left."
    assert unsupported(summary, SOURCE) == ["13.5", "Okafor", "Brantwick", "99"]


def test_sentence_initial_and_list_item_words_are_not_checked() -> None:
    summary = "Profits fell.\n- Growth stalled\n1. Overall it was fine: Nothing else."
    assert unsupported(summary, SOURCE) == []


def test_chinese_summary_is_checked_on_latin_words_and_numbers() -> None:
    source = "营业收入达到4.8亿元，Tulsa工厂投产。"
    assert unsupported("营业收入为4.8亿元，Tulsa工厂投产，由Okafor负责，共5家。", source) == ["Okafor", "5"]



def test_an_amount_may_change_its_scale_word_but_not_its_value() -> None:
    source = "营业收入达到4.8亿元，客户增加了20万户，Tulsa工厂投产。"
    assert unsupported("Revenue was 480 million yuan; 200,000 new customers.", source) == []
    assert unsupported("Revenue was 0.48 billion yuan.", source) == []
    assert unsupported("Revenue was 48 million yuan; 480 customers.", source) == ["48", "480"]


def test_names_are_skipped_only_when_asked() -> None:
    source = "青石镇的茶厂营业收入达到4.8亿元。"
    summary = "The tea works at Qingshi Town earned 480 million yuan, says Okafor; 7 plants."
    assert unsupported(summary, source) == ["Qingshi", "Town", "Okafor", "7"]
    assert unsupported(summary, source, names=False) == ["7"]  # an English summary of a Chinese report


# -- gov: fact recall, ROUGE-L -------------------------------------------------------------------

REFERENCE = ("The Department of Defense (DOD) spent $4.2 billion in 2019. GAO found that DOD lacked a plan. "
             "Officials in Texas agreed.")


def test_reference_names_join_multi_word_names_and_skip_lone_sentence_starts() -> None:
    assert reference_names(REFERENCE) == ["Department of Defense", "DOD", "Texas"]


def test_acronyms_joined_by_and_are_two_names() -> None:
    assert reference_names("It covers CRDP and CRSC under the Energy Independence and Security Act.") == [
        "CRDP", "CRSC", "Energy Independence and Security Act"]


def test_fact_recall_is_the_share_of_numbers_and_names_found() -> None:
    assert fact_recall("DOD spent 4.2 billion dollars; Texas agreed.", REFERENCE) == pytest.approx(3 / 5)
    assert fact_recall("In 2019 the department of defense spent $4.2 billion; DOD, Texas.", REFERENCE) == 1.0
    assert fact_recall("Nothing here.", REFERENCE) == 0.0


def test_rouge_l_of_identical_texts_is_one() -> None:
    assert rouge_l(REFERENCE, REFERENCE) == pytest.approx(1.0)
    assert rouge_l("completely unrelated words", REFERENCE) < 0.1


def test_words_count_cjk_characters_and_latin_words() -> None:
    assert word_count("营业收入4.8亿元 up 5%") == 7  # 6 characters count as 4 words, then 4.8, up, 5
    assert word_count("Revenue rose 12.5 percent, to $1,140 million.") == 7


def test_lead_takes_the_first_words_in_either_language() -> None:
    assert lead("one two, three four", 3) == "one two, three"
    assert lead("营业收入增长", 3) == "营业收入增"  # 5 characters: 3.3 words
    assert lead("short", 10) == "short"


@pytest.mark.skipif(not (EVAL / "leval" / "gov_report_summ.dev.jsonl").exists(), reason="no ../shared/eval here")
def test_gov_cases_come_shortest_first_with_their_reference() -> None:
    cases = gov_cases(2)
    assert [case.id for case in cases] == ["gov-0", "gov-1"]
    assert len(cases[0].text) <= len(cases[1].text) and cases[0].reference


# -- the runner ----------------------------------------------------------------------------------


def _row(variant: str, case: str, task: str = "planted", **fields: object) -> dict:  # type: ignore[type-arg]
    base = {"variant": variant, "model": "" if variant == "lead" else "m1", "task": task, "case": case,
            "seconds": 0.0 if variant == "lead" else 100.0, "timed_out": False, "error": None, "unsupported": []}
    if task == "planted":
        base.update(lang=case.split("-")[2], planted_facts=8)
    return {**base, **fields}


def _payload() -> dict:  # type: ignore[type-arg]
    planted_row = {"facts": 8, "words": 240}
    rows = [
        _row("lead", "planted-8-en-s1", facts_kept=1, **planted_row),
        _row("new", "planted-8-en-s1", facts_kept=6, seconds=50.0, unsupported=["Okafor"], **planted_row),
        _row("main", "planted-8-en-s1", facts_kept=4, **planted_row),
        _row("lead", "planted-8-zh-s1", facts_kept=0, **planted_row),
        _row("new", "planted-8-zh-s1", facts_kept=5, **planted_row),
        _row("main", "planted-8-zh-s1", timed_out=True, error="timed out after 600 s", seconds=600.0),
        _row("lead", "gov-0", "gov", rougeL=0.2, fact_recall=0.3, words=250),
        _row("new", "gov-0", "gov", rougeL=0.25, fact_recall=0.5, words=230, seconds=30.0),
        _row("main", "gov-0", "gov", rougeL=0.21, fact_recall=0.4, words=260, seconds=60.0),
    ]
    header = {"date": "2026-12-01", "started": "2026-12-01 10:00 UTC", "command": "python -m bench.summary_facts --out X",
              "machine": {"cpu": "Test CPU", "cores": 2, "avx512_bf16": True, "amx": ["amx_bf16", "amx_tile"]},
              "variants": {"new": ".", "main": "/tmp/longdoc-main"}, "revisions": {"new": "abc123"}, "length": 250}
    return {"header": header, "cases": rows}


def test_tables_show_each_variant_the_baseline_and_totals() -> None:
    text = summary_tables(_payload())
    assert "Test CPU" in text and "2026-12-01" in text and "avx512_bf16: yes" in text and "amx_bf16" in text
    assert "| planted-8-en-s1 | 6/8 | 1 | 50 | 240 | 4/8 | 0 | 100 | 240 | 1/8 |" in text
    assert "| planted-8-zh-s1 | 5/8 | 0 | 100 | 240 | timeout |  | 600 |  | 0/8 |" in text
    # the timed-out case counts as 0 kept of its 8 facts
    assert "| **all planted** | 11/16 (69%) | 1 | 150 | 240 | 4/16 (25%) | 0 | 700 | 240 | 1/16 (6%) |" in text
    assert "| **total zh** | 5/8 (62%) |" in text
    assert "| gov-0 | 0.250 | 0.50 | 230 | 30 | 0.210 | 0.40 | 260 | 60 | 0.200 | 0.30 | 250 |" in text
    # the ratio is taken on the cases both variants finished: planted-8-en and gov-0
    assert "Time new/main: 0.50 (80 s vs 160 s, over the 2 cases both finished)." in text


def test_dry_run_runs_every_variant_in_its_own_directory_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--out", str(out), "--task", "planted", "--sizes", "8", "--langs", "en,zh:en", "--dry-run", "--length", "40"]
    main(argv)
    payload = json.loads((out / "summary_facts.json").read_text(encoding="utf-8"))
    rows = {(row["variant"], row["case"]): row for row in payload["cases"]}
    assert set(rows) == {(v, c) for v in ("lead", "new") for c in ("planted-8-en-s1", "planted-8-zh:en-s1")}
    run = rows[("new", "planted-8-zh:en-s1")]
    assert Path(run["cli"]["longdoc"]).resolve().parent.parent == ROOT
    assert run["cli"]["argv"][-4:] == ["--lang", "en", "--model", "qwen2.5-1.5b"]
    assert abs(run["words"] - 40) <= 1 and run["facts"] == 8  # Chinese characters count 1/1.5 word each
    assert (out / "summary_facts.md").read_text(encoding="utf-8").count("planted-8-en-s1") == 1
    main([*argv, "--resume"])
    assert len(json.loads((out / "summary_facts.json").read_text(encoding="utf-8"))["cases"]) == len(rows)


def test_a_case_that_runs_too_long_is_killed_and_marked(tmp_path: Path) -> None:
    run = run_cli([sys.executable, "-c", "import time; time.sleep(60)"], Variant("x", ROOT), tmp_path, timeout=1)
    assert run.timed_out and run.output is None and run.seconds < 30


def test_a_failing_cli_is_recorded_with_its_error(tmp_path: Path) -> None:
    run = run_cli([sys.executable, "-c", "import sys; print('bad', file=sys.stderr); sys.exit(3)"],
                  Variant("x", ROOT), tmp_path, timeout=30)
    assert not run.timed_out and run.error == "exit 3: bad"
