"""A bounded key/value cache: per attention layer, [sinks | retrieved blocks | window | segment].

The cache owns the positions. The first `sinks` tokens sit at positions 0..S-1 forever; the window
holds the latest tokens at the positions right after them; a new segment continues from there. When
the window overflows, its oldest tokens are dropped (or handed to the block memory, see
`block_memory`) and every remaining key is re-rotated `delta` positions (see `rotary.shift_keys`)
so that the window starts again right after the sinks and the R positions reserved for retrieved
blocks. Positions therefore never pass S + R + W + segment, and inputs of any length stay inside
the position range the model was trained on. Until the first slide nothing moves, so an input
that fits is read exactly as full attention would read it.

Keys are stored rotated, exactly as the model's attention hands them to `update()`: un-rotating on
the way in and rotating on every read would cost two rotations of the whole cache per segment, while
a stored key is shifted only when the window slides (at most ceil(W / segment) times in its life,
each in float32). Layers the model itself windows (Gemma 3 "sliding_attention") keep their native
window instead of sinks + W, and follow the same position shifts.

Rows of a batch may be left-padded: padding slots are marked invalid and masked, and each row's
positions start at 0 with its first real token. Sliding the window of a padded batch is refused,
because rows would need different sinks; the generator runs such prompts one at a time.

Usage per forward pass: `positions = cache.positions_for(valid)`, `masks = cache.prepare(positions,
valid)`, run the model with `attention_mask=masks, position_ids=positions, cache=cache`,
then `cache.commit()` and `cache.slide()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PretrainedConfig
from transformers.cache_utils import Cache, DynamicLayer

from longdoc.engine.block_memory import BlockMemory
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.rotary import shift_keys
from longdoc.engine.slot_buffer import SlotBuffer

FULL = "full_attention"
SLIDING = "sliding_attention"


@dataclass
class _SlotLayout:
    """What each cached slot of one layer type holds; identical for all layers of that type."""

    positions: torch.Tensor  # (B, n) long: position each cached key is rotated for
    valid: torch.Tensor  # (B, n) bool: False for padding slots


class WindowLayer(DynamicLayer):
    """Cached keys/values of one attention layer; `SegmentCache` decides which slots stay."""

    def __init__(
        self,
        layer_type: str,
        inv_freq: torch.Tensor,
        sliding_window: int | None,
        capacity: int,
        memory: BlockMemory | None = None,
    ) -> None:
        super().__init__()
        # Room for the most slots a forward pass stores, allocated once (see slot_buffer).
        self._key_slots = SlotBuffer(capacity)
        self._value_slots = SlotBuffer(capacity)
        self.layer_type = layer_type
        self.inv_freq = inv_freq  # (D/2,)
        self.sliding_window = sliding_window
        self.is_sliding = sliding_window is not None
        self.memory = memory
        # Set per forward pass by SegmentCache.prepare / the reader's query hook.
        self.retrieval: tuple[int, int] | None = None  # (sink slots, blocks to fetch)
        self.queries: torch.Tensor | None = None  # (B, H_q, L, D) un-rotated

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new keys/values; return what attention sees: [sinks | retrieved | window | new]."""
        if not self.is_initialized:
            self.dtype, self.device = key_states.dtype, key_states.device
            self.is_initialized = True
        keys = self.keys = self._key_slots.append(key_states)
        values = self.values = self._value_slots.append(value_states)
        if self.retrieval is None:
            return keys, values
        assert self.memory is not None and self.queries is not None, "retrieval needs memory and queries"
        sinks, count = self.retrieval
        chosen = self.memory.select(self.queries, count)  # (B, k)
        far_keys, far_values = self.memory.gather(chosen, start=sinks, device=keys.device)
        self.queries = None
        keys = torch.cat((keys[:, :, :sinks], far_keys, keys[:, :, sinks:]), dim=2)
        values = torch.cat((values[:, :, :sinks], far_values, values[:, :, sinks:]), dim=2)
        return keys, values

    def evict(self, count: int, start: int, positions: torch.Tensor) -> None:
        """Hand slots [start, start + count), at `positions` (B, count), to the block memory."""
        if self.memory is not None and self.is_initialized and count > 0:
            stop = start + count
            # A copy: these slots are overwritten in place once the window has moved on.
            self.memory.add(self.keys[:, :, start:stop], self.values[:, :, start:stop].clone(), positions)

    def keep(self, index: torch.Tensor, shift: int, shift_from: int) -> None:
        """Keep slots `index` (in order), then move slots >= `shift_from` `shift` positions earlier."""
        if not self.is_initialized:
            return
        keys = self.keys[:, :, index]  # (B, H, n_keep, D), a copy: the storage is rewritten below
        values = self.values[:, :, index]
        if shift:
            keys[:, :, shift_from:] = shift_keys(keys[:, :, shift_from:], -shift, self.inv_freq)
        self.keys = self._key_slots.replace(keys)
        self.values = self._value_slots.replace(values)

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only batch rows `rows`."""
        if self.is_initialized:
            self._key_slots.select_rows(rows)
            self._value_slots.select_rows(rows)
            self.keys, self.values = self._key_slots.view(), self._value_slots.view()
        if self.memory is not None:
            self.memory.select_rows(rows)

    def stack_rows(self, others: Sequence[WindowLayer], width: int) -> None:
        """Append the rows of `others` (same kind, none slid) after this layer's, every row
        left-padded with zero slots to `width` (the padding slots are masked)."""
        parts = [self, *others]
        self.keys = self._key_slots.assign(torch.cat([_left_padded(p.keys, width) for p in parts]))
        self.values = self._value_slots.assign(torch.cat([_left_padded(p.values, width) for p in parts]))

    def drop_newest(self, count: int) -> None:
        """Forget the last `count` cached slots (tokens a lookahead pass guessed wrong)."""
        if self.is_initialized:
            self.keys = self._key_slots.drop_newest(count)
            self.values = self._value_slots.drop_newest(count)

    @property
    def room(self) -> int:
        """Slots that can be appended before the storage must grow."""
        return self._key_slots.room if self.is_initialized else 0

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


class SegmentCache(Cache):
    """Bounded per-layer memory of sinks + window that positions and masks every forward pass."""

    def __init__(
        self, model_config: PretrainedConfig, frequencies: dict[str, torch.Tensor], config: SegmentCacheConfig
    ) -> None:
        self.config = config
        self.layer_types: list[str] = layer_types_of(model_config)
        native = getattr(model_config, "sliding_window", None)
        layers = [self._layer(kind, frequencies[kind], native) for kind in self.layer_types]
        super().__init__(layers=layers)
        self._native_window: int | None = native
        # Position of the first window token: S until the first slide, then S + retrieved.
        self._window_start = config.sinks
        self._boolean_masks = getattr(model_config, "_attn_implementation", "sdpa") != "eager"
        self._layouts: dict[str, _SlotLayout] = {}
        self._next_position: torch.Tensor | None = None  # (B,) long
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._padded = False
        self._slid = False

    def _layer(self, kind: str, inv_freq: torch.Tensor, native: int | None) -> WindowLayer:
        config = self.config
        if kind == SLIDING:
            assert native is not None, "sliding layers need the model's sliding_window"
            return WindowLayer(kind, inv_freq, native, capacity=native + config.segment)
        memory = None
        if config.blocks:
            memory = BlockMemory(inv_freq, config.block_size, config.representatives, config.block_device)
        return WindowLayer(kind, inv_freq, None, config.sinks + config.window + config.segment, memory)

    @property
    def blocks_stored(self) -> int:
        """Evicted blocks held by each full-attention layer's memory."""
        return max((layer.memory.blocks for layer in self.layers if layer.memory is not None), default=0)

    # -- one forward pass -------------------------------------------------------------------

    def positions_for(self, valid: torch.Tensor) -> torch.Tensor:
        """Positions (B, L) for the next tokens; padding gets its neighbour's position (it is masked)."""
        start = self._next_position
        if start is None:
            start = torch.zeros(valid.shape[0], dtype=torch.long, device=valid.device)
        positions = start[:, None] + valid.long().cumsum(dim=1) - 1
        return positions.clamp(min=0)

    def prepare(self, positions: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """Attention masks (B, 1, L, n + L) per layer type for new tokens at `positions` (B, L)."""
        assert self._pending is None, "prepare() called twice without commit()"
        self._pending = (positions, valid)
        masks = {}
        retrieval = self._plan_retrieval()
        for layer in self.layers:
            layer.retrieval = retrieval if layer.memory is not None else None
        for kind in set(self.layer_types):
            layout = self._layouts.get(kind)
            key_pos, key_valid = positions, valid
            if layout is not None:
                key_pos = torch.cat((layout.positions, positions), dim=1)  # (B, n + L)
                key_valid = torch.cat((layout.valid, valid), dim=1)
            if kind == FULL and retrieval is not None:
                key_pos, key_valid = self._with_retrieved(key_pos, key_valid, *retrieval)
            window = self._native_window if kind == SLIDING else None
            masks[kind] = self._mask(key_pos, key_valid, positions, window)
        return masks

    def _plan_retrieval(self) -> tuple[int, int] | None:
        """(sink slots, blocks) to fetch this pass, the same for every full-attention layer."""
        stored = self.blocks_stored
        if not self.config.blocks or stored == 0:
            return None
        return self.config.sinks, min(self.config.blocks, stored)

    def _with_retrieved(
        self, key_pos: torch.Tensor, key_valid: torch.Tensor, sinks: int, blocks: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        count = blocks * self.config.block_size
        batch = key_pos.shape[0]
        far = torch.arange(sinks, sinks + count, device=key_pos.device).expand(batch, count)  # (B, R)
        far_valid = torch.ones((batch, count), dtype=torch.bool, device=key_pos.device)
        key_pos = torch.cat((key_pos[:, :sinks], far, key_pos[:, sinks:]), dim=1)
        key_valid = torch.cat((key_valid[:, :sinks], far_valid, key_valid[:, sinks:]), dim=1)
        return key_pos, key_valid

    def _mask(
        self, key_pos: torch.Tensor, key_valid: torch.Tensor, query_pos: torch.Tensor, window: int | None
    ) -> torch.Tensor:
        queries = query_pos.shape[1]
        allowed = key_valid[:, None, :] & (key_pos[:, None, :] <= query_pos[:, :, None])  # (B, L, K)
        if window is not None:
            allowed &= key_pos[:, None, :] > query_pos[:, :, None] - window
        # Every query sees itself, so rows of padding never softmax over nothing (NaN).
        own = torch.eye(queries, dtype=torch.bool, device=allowed.device)
        allowed[:, :, -queries:] |= own
        allowed = allowed[:, None]  # (B, 1, L, K)
        if self._boolean_masks:
            return allowed
        zero = torch.zeros((), dtype=torch.float32, device=allowed.device)
        return torch.where(allowed, zero, torch.finfo(torch.float32).min)

    def commit(self) -> None:
        """Record the tokens of the forward pass just run; trim natively windowed layers."""
        assert self._pending is not None, "commit() without prepare()"
        positions, valid = self._pending
        self._pending = None
        for layer in self.layers:
            layer.retrieval, layer.queries = None, None
        self._padded = self._padded or not bool(valid.all())
        start = self._next_position if self._next_position is not None else torch.zeros_like(positions[:, 0])
        self._next_position = start + valid.long().sum(dim=1)
        for kind in set(self.layer_types):
            layout = self._layouts.get(kind)
            if layout is None:
                self._layouts[kind] = _SlotLayout(positions, valid)
            else:
                layout.positions = torch.cat((layout.positions, positions), dim=1)
                layout.valid = torch.cat((layout.valid, valid), dim=1)
        if SLIDING in self._layouts and self._native_window is not None:
            self._trim_sliding(self._native_window - 1)

    def _trim_sliding(self, keep: int) -> None:
        layout = self._layouts[SLIDING]
        cached = layout.positions.shape[1]
        if cached <= keep:
            return
        index = torch.arange(cached - keep, cached, device=layout.positions.device)
        self._keep(SLIDING, index, shift=0, shift_from=0)

    # -- sliding the window -----------------------------------------------------------------

    def slide(self, allowance: int = 0) -> int:
        """Once the window holds more than W + `allowance` tokens, drop the oldest down to W.

        Dropped tokens go to the block memory when it is on. The window then starts right after
        the sinks and the positions reserved for retrieved blocks. Returns the position shift
        applied to the remaining keys (0 when nothing moved).
        """
        if self._next_position is None:
            return 0
        newest = int(self._next_position.max())
        dropped = newest - self._window_start - self.config.window
        if dropped <= allowance:
            return 0
        if self._padded:
            raise ValueError("the window of a left-padded batch cannot slide; read such prompts one at a time")
        sinks = self.config.sinks
        delta = self._window_start + dropped - (sinks + self.config.retrieved)
        if FULL in self._layouts:
            layout = self._layouts[FULL]
            cached = layout.positions.shape[1]
            for layer in self.layers:
                if layer.layer_type == FULL:
                    layer.evict(dropped, sinks, layout.positions[:, sinks : sinks + dropped])
            device = layout.positions.device
            index = torch.cat(
                (torch.arange(sinks, device=device), torch.arange(sinks + dropped, cached, device=device))
            )
            self._keep(FULL, index, shift=delta, shift_from=sinks)
        if SLIDING in self._layouts:
            cached = self._layouts[SLIDING].positions.shape[1]
            index = torch.arange(cached, device=self._layouts[SLIDING].positions.device)
            self._keep(SLIDING, index, shift=delta, shift_from=0)
        self._next_position = self._next_position - delta
        self._window_start = sinks + self.config.retrieved
        self._slid = True
        return delta

    def _keep(self, kind: str, index: torch.Tensor, shift: int, shift_from: int) -> None:
        layout = self._layouts[kind]
        layout.positions = layout.positions[:, index]
        layout.valid = layout.valid[:, index]
        if shift:
            layout.positions[:, shift_from:] -= shift
        for layer in self.layers:
            if layer.layer_type == kind:
                layer.keep(index, shift, shift_from)

    # -- taking back guessed tokens ---------------------------------------------------------

    def can_take_back(self) -> bool:
        """Whether tokens one pass appends can be taken back exactly (`drop_newest`): not where
        natively windowed layers trim what they drop, nor where a pass fetches memory blocks (it
        picks them with every new token's query)."""
        return SLIDING not in self._layouts and self._plan_retrieval() is None and bool(self.layers)

    def rewind_room(self) -> int:
        """How many tokens one pass may append, without growing the storage, and later take back;
        0 when it cannot be done exactly (`can_take_back`)."""
        return min(layer.room for layer in self.layers) if self.can_take_back() else 0

    def drop_newest(self, count: int) -> None:
        """Forget the last `count` tokens appended, before the window slides past them."""
        if count == 0:
            return
        layout = self._layouts[FULL]
        assert self._next_position is not None and 0 < count <= layout.positions.shape[1], "nothing to drop"
        self._next_position = self._next_position - layout.valid[:, -count:].long().sum(dim=1)
        layout.positions, layout.valid = layout.positions[:, :-count], layout.valid[:, :-count]
        for layer in self.layers:
            layer.drop_newest(count)

    # -- batch housekeeping -----------------------------------------------------------------

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only batch rows `rows` (e.g. drop finished generations)."""
        for layer in self.layers:
            layer.select_rows(rows)
        for layout in self._layouts.values():
            layout.positions, layout.valid = layout.positions[rows], layout.valid[rows]
        if self._next_position is not None:
            self._next_position = self._next_position[rows]

    def stack(self, others: Sequence[SegmentCache]) -> None:
        """Take in the rows of `others`, after this cache's own, as one left-padded batch.

        For prompts read apart (reading padding costs as much as reading a token) and decoded
        together. None of the caches may have slid or stored blocks: positions then start at 0 in
        every row, so a stacked row sees exactly what it saw alone."""
        if not others:
            return
        parts = [self, *others]
        assert all(not c._slid and c._next_position is not None for c in parts), "only unslid, read caches stack"
        for kind, layout in self._layouts.items():
            width = max(c._layouts[kind].positions.shape[1] for c in parts)
            layout.positions = torch.cat([_left_padded(c._layouts[kind].positions, width, dim=1) for c in parts])
            layout.valid = torch.cat([_left_padded(c._layouts[kind].valid, width, dim=1) for c in parts])
            for index, layer in enumerate(self.layers):
                if layer.layer_type == kind:
                    layer.stack_rows([c.layers[index] for c in others], width)
        self._next_position = torch.cat([c._next_position for c in parts])  # type: ignore[misc]
        self._padded = any(not bool(layout.valid.all()) for layout in self._layouts.values())

    def lengths(self) -> list[int]:
        """Cached slots per layer (sinks + window, or the native window)."""
        return [layer.get_seq_length() for layer in self.layers]

    @property
    def max_position(self) -> int:
        """The largest position handed out so far (-1 before the first token)."""
        return -1 if self._next_position is None else int(self._next_position.max()) - 1


def _left_padded(items: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    """`items` with zeros (False) put before its slots along `dim` up to `width` slots."""
    missing = width - items.shape[dim]
    if missing == 0:
        return items
    shape = list(items.shape)
    shape[dim] = missing
    return torch.cat((items.new_zeros(shape), items), dim=dim)


def layer_types_of(model_config: PretrainedConfig) -> list[str]:
    """The attention kind of each layer; refuses kinds the cache cannot bound."""
    count = model_config.num_hidden_layers
    # Without layer_types, a config-wide sliding_window (Mistral v0.1) windows every layer.
    uniform = SLIDING if getattr(model_config, "sliding_window", None) is not None else FULL
    kinds = list(getattr(model_config, "layer_types", None) or [uniform] * count)[:count]
    unknown = sorted(set(kinds) - {FULL, SLIDING})
    if unknown:
        raise ValueError(f"unsupported attention layer types: {', '.join(unknown)}")
    return kinds
