"""bench/rerank.py's scoring: where each way of ranking puts the passage holding the answer."""

from __future__ import annotations

import re

import pytest

from bench.rerank import report


def test_calibration_can_lift_the_passage_a_question_alone_draws_less_to(capsys: pytest.CaptureFixture[str]) -> None:
    # passage 1 draws more of the question's attention, but a content-free question draws twice that
    # to it: it is where a window's attention goes anyway. Passage 2 holds the answer.
    layer = {"question": [3.0, 1.0], "calibration": [6.0, 1.0]}
    row = {"task": "nq", "holds": [False, True], "tokens": [10, 10], "layers": {"8": layer, "9": layer}}
    report({"rows": [row, {**row, "holds": [False, False]}]})
    out = capsys.readouterr().out
    assert "1 of 2 questions" in out

    def rank(name: str) -> str:
        return re.search(rf"^  {re.escape(name)}\s+@1 (\S+)", out, re.M).group(1)  # type: ignore[union-attr]

    assert rank("retrieval order") == "0.00" and rank("density L8+9") == "0.00"
    assert rank("calib ratio L8+9") == "1.00" and rank("calibrated L8+9") == "1.00"  # 3/6 < 1/1, 3-6 < 1-1
