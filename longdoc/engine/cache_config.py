"""Sizes of the local engine's bounded attention memory, and the sizes each task reads with.

No torch here: the command line picks a configuration before deciding whether to load a model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentCacheConfig:
    """Sizes of the bounded attention memory, in tokens."""

    # StreamingLLM shows a few initial tokens absorb the attention "sink". Measured on
    # qwen2.5-0.5b reading 1840 tokens through a 256-token window, the next-token KL to full
    # attention was 0.44 nats with 4 sinks and 0.22 with 32; 64 also keeps the chat preamble
    # (~30 tokens for Qwen) and the start of the task instruction always visible.
    sinks: int = 64
    # Recent context every token sees exactly. S + W = 1600 holds a ~1000-token chunk prompt plus
    # a 256-token answer, so map-phase prompts batch without sliding; S + W + segment = 2112 stays
    # far inside every preset's 32k trained positions. Attention cost grows linearly with it.
    window: int = 1536
    # Tokens per forward pass. Measured reading 4096 tokens with qwen2.5-0.5b, bf16, 2-core CPU:
    # 137 tok/s at 128 per pass, ~380 tok/s at 256, 512 and 1024 alike (matmuls saturate). Again
    # in fp32 (a CPU without native bf16), reading 8192: 117, 126 and 113 tok/s at 512, 1024 and
    # 2048, peak +135, +270 and +469 MB. 512 sits on the plateau with half the peak memory of
    # 1024 (bench/engine_read.py --segment). GPUs want thousands.
    segment: int = 512
    # Stage 2, InfLLM block memory: how many evicted blocks each forward pass also attends to.
    # 0 turns it off (tokens that leave the window are gone): evicted keys/values cost host memory
    # (~12 KB per token for qwen2.5-0.5b), worth it for questions, not for summaries.
    # With 4 blocks of 64, qwen2.5-0.5b answers a question about a fact 1600 tokens behind a
    # 512-token window, which it cannot without (tests/test_engine_real.py).
    blocks: int = 0
    # Tokens per block, as in InfLLM's setup: bigger blocks mean fewer scores per pass but
    # coarser recall (each fetched block spends block_size positions).
    block_size: int = 128
    # Keys summarizing a block for scoring (InfLLM also uses 4); several, so that one strong
    # passage is not averaged away.
    representatives: int = 4
    # Where evicted blocks live: "cpu" keeps accelerator memory bounded however long the input.
    block_device: str = "cpu"

    def __post_init__(self) -> None:
        assert self.sinks >= 0, "sinks must be >= 0"
        assert self.window >= 1, "window must be >= 1"
        assert self.segment >= 1, "segment must be >= 1"
        assert self.blocks >= 0, "blocks must be >= 0"
        assert self.block_size % self.representatives == 0, "block_size must be a multiple of representatives"

    @property
    def retrieved(self) -> int:
        """Positions reserved for retrieved blocks, right after the sinks."""
        return self.blocks * self.block_size

    @property
    def span(self) -> int:
        """The most positions any forward pass uses: sinks + retrieved blocks + window + segment."""
        return self.sinks + self.retrieved + self.window + self.segment


def answering_config() -> SegmentCacheConfig:
    """For answering a question from retrieved passages (`ask`): an 8,192-token exact window. The
    default 1,600 holds three or four passages; eight fit in 4K (the top 3 search hits hold a
    Natural Questions answer 53% of the time, the top 8 86%: bench/embedders.py), and a story of
    up to ~7K tokens is read whole. Attention costs what the prompt uses, not the window."""
    return SegmentCacheConfig(window=8192 - SegmentCacheConfig.sinks)


def reading_config() -> SegmentCacheConfig:
    """For answering a question from a whole document given in one prompt (what `ask --mode read`
    did before its scan, tasks/scan.py; the benches still compare with it): block memory on, as
    measured in bench/recall_blocks.py (8 blocks of 64 recalled a fact 19.7K tokens back with
    qwen2.5-1.5b; without blocks it was lost), and sinks wide enough to keep the chat preamble and
    a question of up to ~100 tokens, which precede the document, in view for the whole read."""
    return SegmentCacheConfig(sinks=192, blocks=8, block_size=64)
