"""The read-mode needle benchmark without a model: the grid, planting, scoring and heat maps."""

from __future__ import annotations

from bench.read_recall import FACTS, cells, found, heat_maps, plant


def test_each_cell_plants_its_fact_and_two_look_alikes_that_do_not_answer() -> None:
    grid = cells([8192, 16384], [0.0, 0.5, 1.0], multi=True)
    singles = [c for c in grid if c["kind"] == "single"]
    assert len(singles) == 6 and len(grid) == 12
    assert len({c["question"] for c in singles}) >= 3  # the cells take the facts in turn
    for cell in singles:
        fact = next(f for f in FACTS if f.question == cell["question"])
        assert cell["placed"][0] == (cell["depth"], fact.text)
        assert all(not found(look_alike, cell["keys"]) for look_alike in fact.look_alikes)
        assert found(fact.text, cell["keys"])


def test_a_two_fact_question_needs_both_keys() -> None:
    cell = next(c for c in cells([8192], [0.25], multi=True) if c["kind"] == "two facts")
    first, second = cell["placed"][0][1], cell["placed"][1][1]
    assert not found(first, cell["keys"]) and not found(second, cell["keys"])
    assert found(first + " " + second, cell["keys"])
    assert abs(cell["placed"][1][0] - cell["placed"][0][0]) == 0.5  # half the document apart


def test_planted_sentences_land_at_their_depths() -> None:
    stack = [f"paragraph {n}" for n in range(100)]
    text = plant(stack, [(0.0, "FIRST"), (0.5, "MIDDLE"), (1.0, "LAST")]).split("\n\n")
    assert text[0] == "FIRST" and text[-1] == "LAST" and text.index("MIDDLE") in (50, 51)
    assert len(text) == 103


def test_heat_map_marks_each_cell() -> None:
    rows = [{"method": "read", "kind": "single", "tokens": 8192, "depth": d, "found": d < 0.5} for d in (0.0, 0.5)]
    table = heat_maps(rows)
    assert "read, single: 1 of 2 found" in table
    assert "| 0.00 | found |" in table and "| 0.50 | missed |" in table
