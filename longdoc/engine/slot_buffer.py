"""Key/value storage that grows along the sequence axis into preallocated room, written in place.

Concatenating a segment onto the cache allocates a new tensor of a slightly different size for
every layer on every forward pass; over hundreds of segments the allocator's heap fragments and
the process's peak memory creeps up with input length although the cache itself is bounded. A
`SlotBuffer` allocates its storage once (or, when it must grow, doubles it) and writes new slots
into it, so reading a long input allocates the same few sizes over and over.
"""

from __future__ import annotations

import torch


class SlotBuffer:
    """A (B, H, capacity, ...) tensor of which the first `length` slots along dim 2 are in use."""

    def __init__(self, capacity: int) -> None:
        assert capacity >= 1, "capacity must be >= 1"
        self._capacity_hint = capacity
        self._data: torch.Tensor | None = None
        self.length = 0

    @property
    def capacity(self) -> int:
        return 0 if self._data is None else self._data.shape[2]

    def view(self) -> torch.Tensor:
        """The slots in use, (B, H, length, ...): a view of the storage, valid until the next change."""
        assert self._data is not None, "the buffer holds nothing yet"
        return self._data[:, :, : self.length]

    def append(self, items: torch.Tensor) -> torch.Tensor:
        """Write `items` (B, H, n, ...) after the slots in use; return the new view."""
        count = items.shape[2]
        self._reserve(items, self.length + count)
        assert self._data is not None
        self._data[:, :, self.length : self.length + count].copy_(items)
        self.length += count
        return self.view()

    def replace(self, items: torch.Tensor) -> torch.Tensor:
        """Make `items` (B, H, n, ...) the whole content; `items` must not alias the storage."""
        self.length = 0
        return self.append(items)

    def assign(self, items: torch.Tensor) -> torch.Tensor:
        """Make `items` (B', H, n, ...) the whole content, B' free to differ from the rows held."""
        self._data, self.length = None, 0
        return self.append(items)

    @property
    def room(self) -> int:
        """Slots that can still be appended without growing the storage."""
        return self.capacity - self.length

    def drop_newest(self, count: int) -> torch.Tensor:
        """Forget the last `count` slots in use; return the new view."""
        assert 0 <= count <= self.length, "cannot drop more slots than are in use"
        self.length -= count
        return self.view()

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only batch rows `rows`."""
        if self._data is not None:
            self._data = self._data[rows.to(self._data.device)]

    def _reserve(self, like: torch.Tensor, needed: int) -> None:
        if self._data is not None and needed <= self.capacity:
            return
        # Doubling keeps the copies of a growing buffer linear in its final size overall.
        capacity = max(needed, self._capacity_hint, 2 * self.capacity)
        shape = (*like.shape[:2], capacity, *like.shape[3:])
        data = torch.empty(shape, dtype=like.dtype, device=like.device)
        if self._data is not None and self.length:
            data[:, :, : self.length].copy_(self._data[:, :, : self.length])
        self._data = data
