"""Reads token sequences of any length through a causal LM in segments over a `SegmentCache`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from longdoc.engine.rotary import rotary_frequencies
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.segment_cache import SegmentCache, WindowLayer, layer_types_of
from longdoc.errors import ModelError


class SegmentReader:
    """Feeds tokens segment by segment, keeping memory bounded; logits only for the last position."""

    def __init__(self, model: PreTrainedModel, config: SegmentCacheConfig | None = None) -> None:
        config = config or SegmentCacheConfig()
        self.model = model
        self.config = config
        self.decoder = model.get_decoder()
        self._cache_argument = _cache_argument(self.decoder)
        self.head = model.get_output_embeddings()
        model_config = model.config
        trained = getattr(model_config, "max_position_embeddings", None)
        if trained is not None and config.span > trained:
            raise ModelError(
                f"sinks + blocks + window + segment = {config.span} exceeds the model's {trained} trained positions"
            )
        try:
            kinds = layer_types_of(model_config)
        except ValueError as error:
            raise ModelError(str(error)) from error
        self._frequencies = rotary_frequencies(model, kinds)
        # Gemma squashes logits through tanh(x / c) * c; the head alone would not.
        self._softcap: float | None = getattr(model_config, "final_logit_softcapping", None)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def new_cache(self) -> SegmentCache:
        """An empty memory for one batch of sequences."""
        return SegmentCache(self.model.config, self._frequencies, self.config)

    @torch.inference_mode()
    def read(
        self,
        cache: SegmentCache,
        input_ids: torch.Tensor,
        valid: torch.Tensor | None = None,
        on_segment: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Append `input_ids` (B, T) to the memory in segments; return logits (B, V) of the last position.

        `valid` (B, T) marks real tokens (False for left padding). `on_segment(n)` is called after each
        segment of n tokens, for progress bars.
        """
        assert input_ids.ndim == 2 and input_ids.shape[1] > 0, "input_ids must be (B, T) with T > 0"
        input_ids = input_ids.to(self.device)
        valid = torch.ones_like(input_ids, dtype=torch.bool) if valid is None else valid.to(self.device)
        hidden = None
        for start in range(0, input_ids.shape[1], self.config.segment):
            stop = start + self.config.segment
            hidden = self._forward(cache, input_ids[:, start:stop], valid[:, start:stop])[:, -1]
            cache.slide()
            if on_segment is not None:
                on_segment(input_ids[:, start:stop].shape[1])
        assert hidden is not None
        return self.logits(hidden)

    @torch.inference_mode()
    def step(self, cache: SegmentCache, input_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """One generation step: append tokens (B, 1); return logits (B, V).

        The window slides only once it has grown a whole segment past W, so the re-rotation cost is
        paid once per segment rather than once per token; attention never spans more than
        sinks + window + segment.
        """
        hidden = self._forward(cache, input_ids.to(self.device), valid.to(self.device))[:, -1]
        cache.slide(allowance=self.config.segment - 1)
        return self.logits(hidden)

    @torch.inference_mode()
    def look_ahead(self, cache: SegmentCache, input_ids: torch.Tensor) -> torch.Tensor:
        """Append one row's tokens (1, n) in one pass; return logits (n, V) after each of them.

        The window does not slide here: `settle` takes back the tokens the model did not confirm
        first. Needs `cache.rewind_room() >= n`."""
        valid = torch.ones_like(input_ids, dtype=torch.bool)
        hidden = self._forward(cache, input_ids.to(self.device), valid.to(self.device))  # (1, n, hidden)
        return self.logits(hidden[0])

    @torch.inference_mode()
    def peek(self, cache: SegmentCache, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits (V,) after one row's tokens (1, n) read in one pass on top of the memory, which is
        then left as it was: prompts that begin alike are read once, up to where they part. Needs
        `cache.can_take_back()`."""
        valid = torch.ones_like(input_ids, dtype=torch.bool)
        hidden = self._forward(cache, input_ids.to(self.device), valid.to(self.device))[0, -1]
        cache.drop_newest(input_ids.shape[1])
        return self.logits(hidden)

    def settle(self, cache: SegmentCache, unconfirmed: int) -> None:
        """After `look_ahead`: forget its last `unconfirmed` tokens, then slide as `step` does."""
        cache.drop_newest(unconfirmed)
        cache.slide(allowance=self.config.segment - 1)

    def _forward(self, cache: SegmentCache, input_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        positions = cache.positions_for(valid)  # (B, L)
        masks = cache.prepare(positions, valid)
        # Models with one layer kind (Llama) take a 4D tensor only; mixed ones take a dict by kind.
        mask = masks if len(masks) > 1 else next(iter(masks.values()))
        hooks = self._capture_queries(cache)
        try:
            output = self.decoder(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_argument: cache},
            )
        finally:
            for hook in hooks:
                hook.remove()
        cache.commit()
        return output.last_hidden_state  # (B, L, hidden)

    def _capture_queries(self, cache: SegmentCache) -> list[RemovableHandle]:
        """Hooks that hand each retrieving layer its un-rotated queries, to score memory blocks."""
        hooks = []
        for index, layer in enumerate(cache.layers):
            if layer.retrieval is None:
                continue
            module, layout = _query_source(self.decoder.layers[index].self_attn, self.model.config.model_type)
            hooks.append(module.register_forward_hook(_query_catcher(layer, layout)))
        return hooks

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Output head on final hidden states (..., hidden) -> (..., V), in float32."""
        logits = self.head(hidden).float()
        if self._softcap is not None:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits


def _query_source(attention: nn.Module, model_type: str) -> tuple[nn.Module, str]:
    """The module whose output is the query before RoPE, and that output's layout."""
    if model_type == "gemma3_text":
        return attention.q_norm, "BHLD"
    if model_type == "qwen3":
        return attention.q_norm, "BLHD"
    return attention.q_proj, "BLF"


def _query_catcher(layer: WindowLayer, layout: str) -> Callable[..., None]:
    def catch(module: nn.Module, args: tuple[object, ...], output: torch.Tensor) -> None:
        head_dim = layer.inv_freq.numel() * 2
        if layout == "BLF":
            output = output.view(*output.shape[:2], -1, head_dim).transpose(1, 2)
        elif layout == "BLHD":
            output = output.transpose(1, 2)
        layer.queries = output.detach()  # (B, H_q, L, D)

    return catch


def _cache_argument(decoder: nn.Module) -> str:
    """The decoder's name for the cache: `cache` since transformers renamed `past_key_values`
    (the old name warns, then goes away in 5.40), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
