"""Guessing the next tokens of a greedy continuation by copying, for decoding several per pass.

Answers, summaries and extracted facts repeat the document's own words: names, figures, whole
phrases. When the last few tokens of a row already occurred earlier in its prompt or output, the
tokens that followed them then are a likely continuation now. The generator feeds such a guess
through the model in the same pass as the current token and keeps the longest prefix the model
would have chosen itself, plus the model's own next token (generation.py). On a CPU a decoding
pass costs about what its weights take to read, whether it carries one row or a few, so every
confirmed guess is a token for close to nothing; a wrong guess costs the extra rows of one pass.
No second model, nothing to train, and greedy output stays the model's own (up to the rounding of
a many-row product).
"""

from __future__ import annotations

from collections.abc import Sequence


class CopyLookahead:
    """The tokens that followed the latest earlier occurrence of a sequence's last n tokens."""

    def __init__(self, tokens: Sequence[int], longest: int = 3, shortest: int = 2) -> None:
        assert 1 <= shortest <= longest, "need 1 <= shortest <= longest"
        self.tokens = list(tokens)
        self.sizes = range(longest, shortest - 1, -1)
        # n-gram -> where the token after its latest occurrence stands, for n in `sizes`. Filled up
        # to (not including) the sequence's own last n-gram, which must match an earlier one.
        self._after: dict[tuple[int, ...], int] = {}
        self._indexed = 0  # n-grams ending before this index are in `_after`

    def extend(self, tokens: Sequence[int]) -> None:
        """Tokens appended to the sequence (generated ones)."""
        self.tokens.extend(tokens)

    def guess(self, count: int) -> list[int]:
        """Up to `count` tokens that followed the latest earlier occurrence of the longest suffix
        found (longest n first); [] when none occurred."""
        if count <= 0:
            return []
        self._index_up_to(len(self.tokens) - 1)
        for size in self.sizes:
            if len(self.tokens) < size:
                continue
            start = self._after.get(tuple(self.tokens[-size:]))
            if start is not None:
                return self.tokens[start : start + count]
        return []

    def _index_up_to(self, end: int) -> None:
        """Record every n-gram ending before `end` (the token after it stands at its end)."""
        tokens = self.tokens
        for stop in range(self._indexed + 1, end + 1):
            for size in self.sizes:
                if stop >= size:
                    self._after[tuple(tokens[stop - size : stop])] = stop
        self._indexed = max(self._indexed, end)
