"""Evicted keys/values kept as fixed-size blocks, and top-k retrieval by query-key score (InfLLM).

Tokens that leave the local window of a full-attention layer are grouped into blocks of
`block_size` tokens and moved to `store_device` (the CPU, so GPU memory stays bounded). Each block
keeps `representatives` keys on the compute device: the means of equal sub-blocks, cheap to compute
and, unlike a single mean, able to notice one strong passage inside a block.

Stored keys are un-rotated (RoPE at position 0), which makes scoring position-free: a segment's
un-rotated queries are compared with every representative key; each query token and head votes
for blocks by a softmax over their best-representative scores, and the votes are summed. The
top-k blocks are returned in reading order, rotated to the positions the cache reserves for them
right after the sink tokens.
"""

from __future__ import annotations

import torch

from longdoc.engine.rotary import shift_keys
from longdoc.engine.slot_buffer import SlotBuffer

# Query tokens scored at once when voting for blocks; bounds the scoring memory.
_VOTE_SLICE = 256
# Blocks of room allocated up front; storage doubles beyond it, so a long read copies its blocks
# a few times in all instead of once per segment.
_INITIAL_BLOCKS = 64


class BlockMemory:
    """Evicted keys/values of one attention layer, as blocks with representative keys."""

    def __init__(
        self, inv_freq: torch.Tensor, block_size: int, representatives: int, store_device: torch.device | str
    ) -> None:
        assert block_size % representatives == 0, "block_size must be a multiple of representatives"
        self.inv_freq = inv_freq  # (D/2,)
        self.block_size = block_size
        self.representatives = representatives
        self.store_device = torch.device(store_device)
        self._keys = SlotBuffer(_INITIAL_BLOCKS)  # (B, H, n_blocks, block_size, D) on store_device
        self._values = SlotBuffer(_INITIAL_BLOCKS)
        self._summaries = SlotBuffer(_INITIAL_BLOCKS)  # (B, H, n_blocks, representatives, D)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # < 1 block, (B, H, p, D)

    @property
    def blocks(self) -> int:
        return self._keys.length

    @property
    def keys(self) -> torch.Tensor | None:
        """Stored keys (B, H, n_blocks, block_size, D), un-rotated; None before the first block."""
        return self._keys.view() if self.blocks else None

    def add(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> None:
        """Take evicted keys/values (B, H, T, D), rotated for `positions` (B, T), in reading order."""
        keys = shift_keys(keys, -positions, self.inv_freq)  # (B, H, T, D) at position 0
        if self._pending is not None:
            keys = torch.cat((self._pending[0], keys), dim=2)
            values = torch.cat((self._pending[1], values), dim=2)
        full = keys.shape[2] // self.block_size * self.block_size
        self._pending = (keys[:, :, full:], values[:, :, full:]) if full < keys.shape[2] else None
        if full:
            self._append(keys[:, :, :full], values[:, :, :full])

    def _append(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        batch, heads, tokens, dim = keys.shape
        shape = (batch, heads, tokens // self.block_size, self.block_size, dim)
        block_keys, block_values = keys.reshape(shape), values.reshape(shape)
        parts = block_keys.reshape(*shape[:3], self.representatives, -1, dim)
        summaries = parts.float().mean(dim=4).to(keys.dtype)  # (B, H, n, representatives, D)
        self._keys.append(block_keys.to(self.store_device))
        self._values.append(block_values.to(self.store_device))
        self._summaries.append(summaries)

    def select(self, queries: torch.Tensor, count: int) -> torch.Tensor:
        """Indices (B, k) of the `count` best blocks for un-rotated queries (B, H_q, L, D), ascending."""
        assert self.blocks, "no blocks to select from"
        batch, query_heads, _, dim = queries.shape
        kv_heads = self._summaries.view().shape[1]
        # Score per query token and head rather than for a mean query: a mean over the segment
        # drowns the few tokens (the question) that point at one passage. Each token's vote is a
        # softmax over blocks, so no single token or head dominates; tokens go in slices so the
        # (tokens x blocks x representatives) scores stay small however many blocks there are.
        query = queries.float().reshape(batch, kv_heads, -1, dim)  # (B, H, G * L, D)
        summaries = self._summaries.view().float()
        per_block = torch.zeros(batch, self.blocks, device=summaries.device)
        for part in query.split(_VOTE_SLICE, dim=2):
            scores = torch.einsum("bhqd,bhnrd->bhqnr", part, summaries).amax(dim=-1)  # (B, H, q, n)
            per_block += scores.softmax(dim=-1).sum(dim=(1, 2))
        best = per_block.topk(min(count, self.blocks), dim=-1).indices
        return best.sort(dim=-1).values

    def gather(self, indices: torch.Tensor, start: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values (B, H, k * block_size, D) of blocks `indices` (B, k), keys rotated to
        positions start, start + 1, ... on `device`."""
        stored_keys, stored_values = self._keys.view(), self._values.view()
        batch, heads, _, size, dim = stored_keys.shape
        picked = indices.to(self.store_device)[:, None, :, None, None].expand(batch, heads, -1, size, dim)
        keys = stored_keys.gather(2, picked).reshape(batch, heads, -1, dim).to(device)
        values = stored_values.gather(2, picked).reshape(batch, heads, -1, dim).to(device)
        positions = torch.arange(start, start + keys.shape[2], device=device)[None]  # (1, k * block_size)
        return shift_keys(keys, positions, self.inv_freq), values

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only batch rows `rows`."""
        for slots in (self._keys, self._values, self._summaries):
            slots.select_rows(rows)
        if self._pending is not None:
            self._pending = (self._pending[0][rows], self._pending[1][rows])
