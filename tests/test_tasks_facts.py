"""Key facts: candidate sentences, scoring, sharing the length out over the parts, and finding a
fact again in a summary."""

from __future__ import annotations

from longdoc.memory.lexical import tokenize
from longdoc.tasks.facts import Fact, covers, plan_parts, score_facts, sentence_facts
from longdoc.tasks.grounding import SourceFacts

BOILERPLATE = [
    "The committee met as planned and reviewed the usual procedures.",
    "All staff completed the mandatory annual refresher training on schedule.",
    "Records were retained for the standard period under Section 4 of the policy.",
]


def _chunks(count: int) -> list[str]:
    """Chunks of repeated boilerplate, each with one specific fact of its own in the middle."""
    return [" ".join(BOILERPLATE + [f"A depot opened in Town{n} for {n * 91 + 7} dollars."] + BOILERPLATE) for n in range(count)]


def _scored(texts: list[str]) -> list[Fact]:
    facts = sentence_facts(list(enumerate(texts)))
    score_facts(facts, texts)
    return facts


def test_candidates_are_the_sentences_and_list_items_not_headings_or_fragments() -> None:
    text = "## 3. Water quality\n\nAll 1,204 samples met the standard. See below.\n- Lead pipes were replaced in Millbrook.\n|a|b|"
    assert [fact.text for fact in sentence_facts([(0, text)])] == [
        "All 1,204 samples met the standard.", "Lead pipes were replaced in Millbrook."]


def test_initials_and_abbreviations_do_not_cut_a_sentence() -> None:
    # A gov report's "Section 420 of the Robert T." reached a summary as a fragment once.
    text = ("Section 420 of the Robert T. Stafford Act (P.L. 93-288) lets the President declare a grant. "
            "The U.S. Fish and Wildlife Service and Dr. Alvarez of Acme Co. agreed, e.g. on costs. Costs fell.")
    assert [fact.text for fact in sentence_facts([(0, text)])] == [
        "Section 420 of the Robert T. Stafford Act (P.L. 93-288) lets the President declare a grant.",
        "The U.S. Fish and Wildlife Service and Dr. Alvarez of Acme Co. agreed, e.g. on costs."]


def test_lines_wrapped_as_in_a_pdf_are_joined_and_table_rows_are_no_facts() -> None:
    text = ("Where our water comes from\nAlmost all of our water comes from the Corrie Reservoir, an upland lake formed by the Corrie\n"
            "Dam, built between 1961 and 1964. Of these, 4,391 were homes and 134 were churches\nand schools.\n"
            "Measure Limit 2025 average 2025 highest\nNitrate (mg/l) 50 6.1 11.4\n"
            "茶叶经鹰嘴垭运出山，骡帮每年往返四十余次，沿途\n经过九个驿站。\n第二章 茶路\n雾溪镇的茶叶由骡帮运出山外。")
    assert [fact.text for fact in sentence_facts([(0, text)])] == [
        "Almost all of our water comes from the Corrie Reservoir, an upland lake formed by the Corrie Dam, built between 1961 and 1964.",
        "Of these, 4,391 were homes and 134 were churches and schools.",
        "茶叶经鹰嘴垭运出山，骡帮每年往返四十余次，沿途经过九个驿站。",
        "雾溪镇的茶叶由骡帮运出山外。"]


def test_chinese_sentences_are_candidates() -> None:
    facts = sentence_facts([(0, "雾溪镇的茶叶经鹰嘴垭运出山。好。骡帮每年往返四十余次。")])
    assert [fact.text for fact in facts] == ["雾溪镇的茶叶经鹰嘴垭运出山。", "骡帮每年往返四十余次。"]


def test_specific_novel_facts_outscore_boilerplate_repeated_across_the_document() -> None:
    facts = _scored(_chunks(6))
    specific = [fact for fact in facts if fact.text.startswith("A depot")]
    routine = [fact for fact in facts if not fact.text.startswith("A depot")]
    assert len(specific) == 6 and max(f.score for f in routine) < min(f.score for f in specific)


def test_every_part_gets_its_share_and_no_fact_twice() -> None:
    texts = _chunks(12)
    texts = [text + f" The depot in Town{n} opened for {n * 91 + 7} dollars, the board said." for n, text in enumerate(texts)]
    facts = _scored(texts)
    plan = plan_parts(facts, [100] * 12, words=90, parts=3)
    assert [(part.chunks.start, part.chunks.stop) for part in plan] == [(0, 4), (4, 8), (8, 12)]
    assert all(2 <= len(part.facts) <= 4 for part in plan)  # about 30 words each, no part left out
    chosen = [fact.chunk for part in plan for fact in part.facts]
    assert len(chosen) == len(set(chosen))  # a fact and its rewording are never both chosen
    assert not any(fact.text in BOILERPLATE for part in plan for fact in part.facts)
    assert all(part.facts == sorted(part.facts, key=lambda f: (f.chunk, f.rank)) for part in plan)


def test_a_part_dense_with_facts_gets_more_of_the_length() -> None:
    texts = _chunks(8)
    texts[:4] = [text + f" Plant {n} in Port{n} shipped {n * 13 + 5} tonnes to Harbour{n}." for n, text in enumerate(texts[:4])]
    first, second = plan_parts(_scored(texts), [100] * 8, words=100, parts=2)
    assert first.words > second.words


def test_a_long_fact_is_not_passed_over_for_boilerplate_that_fits() -> None:
    texts = _chunks(2)
    texts[0] += " In March the board agreed to buy the Harrow Bend water works from the county for 4.2 million dollars after long talks."
    chosen = [fact.text for part in plan_parts(_scored(texts), [100, 100], words=30, parts=1) for fact in part.facts]
    assert not any(text in BOILERPLATE for text in chosen)


def test_covers_needs_the_figures_and_names_of_a_fact() -> None:
    fact = Fact("A new depot opened in Arden at a cost of 37,000 dollars.", 0, 0)
    fact.terms = frozenset(tokenize(fact.text))

    def said(summary: str) -> bool:
        return covers(SourceFacts(summary), frozenset(tokenize(summary)), fact)

    assert said("The board opened a depot in Arden, which cost 37000 dollars.")
    assert not said("The board opened a depot in Arden.")
    assert not said("A new depot opened at a cost of 37,000 dollars in Bexley.")


def test_a_late_part_is_not_left_out_for_being_late() -> None:
    """Regression: the lead bonus once pushed the facts of a document's last part under the weak
    floor, so a part as rich as the first got nothing."""
    plan = plan_parts(_scored(_chunks(16)), [100] * 16, words=120, parts=4)
    assert all(part.facts for part in plan)
