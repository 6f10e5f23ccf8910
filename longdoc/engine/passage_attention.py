"""How much a question attends to each passage of a text: the model's own attention as a selector.

Read mode with this (InfiniRetri's idea, without its cache surgery): the passages go through the
model a window at a time, each window framed by the question before and after it, and the
attention that the trailing question's tokens pay to each passage's tokens, in a few middle
layers, is the passage's score. The layers above the last scoring layer are never run, so a read
costs a fraction of a full forward pass, and each window is forgotten once scored: memory is flat
however long the document. The best passages are then answered from as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from longdoc.engine.rotary import rotary_frequencies, shift_keys
from longdoc.engine.segment_cache import FULL, layer_types_of


@dataclass(frozen=True)
class ScoringConfig:
    """Which layers vote (the caller decides how much text one forward pass scores: tasks/scan.py)."""

    # Layers whose attention scores passages, as fractions of the model's depth. Probed on
    # qwen2.5-1.5b (bench/README.md "Read mode"): with a fact and its look-alikes planted among
    # 28 passages of essays, every layer from 8 of 28 on ranked the fact's passage first (but
    # layer 25), layers 0-7 ranked it 3rd to 11th. The layers from 30% to 35% of the depth vote
    # (8 and 9 of 28), and the layers above never run: the scan costs about a third of a full read.
    first: float = 0.3
    last: float = 0.35


class _Enough(Exception):
    """Raised from a hook once the last scoring layer has run: the layers above it are not needed."""


class PassageAttention:
    """Scores passages by the attention a question pays them, layer range set by `ScoringConfig`."""

    def __init__(self, model: PreTrainedModel, config: ScoringConfig = ScoringConfig()) -> None:
        self.model = model
        self.config = config
        self.decoder = model.get_decoder()
        kinds = layer_types_of(model.config)
        frequencies = rotary_frequencies(model, kinds)
        count = len(self.decoder.layers)
        first = min(int(count * config.first), count - 1)
        last = max(first, min(int(count * config.last), count - 1))
        # A sliding-window layer (Gemma 3's local ones) cannot see most of a window: only global
        # layers vote where the model has both, the nearest one above the span if none is in it.
        full = [index for index in range(count) if kinds[index] == FULL]
        within = [index for index in full if first <= index <= last]
        above = [index for index in full if index > last][:1] or full[-1:]
        self.layers = within or above or list(range(first, last + 1))
        self._inv_freq = {index: frequencies[kinds[index]] for index in self.layers}
        self._model_type = model.config.model_type
        self._layout = _projections(self.decoder.layers[self.layers[0]].self_attn, self._model_type)[2]

    @torch.inference_mode()
    def score(
        self, prefix: list[int], passages: Sequence[list[int]], suffix: list[int], baseline: Sequence[int] = ()
    ) -> list[float]:
        """Each passage's attention density for the token sequence prefix + passages + suffix (one
        window: the caller keeps it short): the attention `suffix` pays to its tokens per token,
        over the same for all the passages. 1 is average; a long passage is not favoured.

        With `baseline` (a content-free question, read between the passages and `suffix`): each
        passage's attention from `suffix` over its attention from `baseline`, over the average of
        that. A passage draws attention for its place too (the last before the question most); a
        question that asks nothing draws the same, so the ratio keeps what the real question adds.
        """
        ids = [*prefix, *(t for passage in passages for t in passage), *baseline, *suffix]
        bounds, at = [], len(prefix)
        for passage in passages:
            bounds.append((at, at + len(passage)))
            at += len(passage)
        if not bounds:
            return []
        caught = self._run(ids)
        question_start = len(ids) - len(suffix)
        mass, calibration = torch.zeros(len(ids)), torch.zeros(len(ids))
        for index in self.layers:
            mass += self._attention_to_keys(index, caught[index], question_start)
            if baseline:  # the baseline's rows alone: the sums are additive over query rows
                calibration += self._attention_to_keys(index, caught[index], question_start - len(baseline))
        if baseline:
            calibration -= mass
            ratio = torch.stack([mass[a:b].sum() / calibration[a:b].sum().clamp_min(1e-9) for a, b in bounds])
            return (ratio / ratio.mean()).tolist()
        per_token = torch.stack([mass[a:b].mean() if b > a else torch.tensor(0.0) for a, b in bounds])
        average = mass[bounds[0][0] : bounds[-1][1]].mean()
        return (per_token / average if average > 0 else per_token).tolist()

    def _run(self, ids: list[int]) -> dict[int, dict[str, torch.Tensor]]:
        """The scoring layers' queries and keys for `ids`; the layers above are not run."""
        device = self.decoder.embed_tokens.weight.device
        caught: dict[int, dict[str, torch.Tensor]] = {index: {} for index in self.layers}
        hooks = self._hooks(caught)
        try:
            self.decoder(input_ids=torch.tensor([ids], device=device), use_cache=False)
        except _Enough:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        return caught

    def _hooks(self, caught: dict[int, dict[str, torch.Tensor]]) -> list[RemovableHandle]:
        hooks = []
        for index in self.layers:
            attention = self.decoder.layers[index].self_attn
            query, key, _ = _projections(attention, self._model_type)
            hooks.append(query.register_forward_hook(_catch(caught[index], "q")))
            hooks.append(key.register_forward_hook(_catch(caught[index], "k")))
        hooks.append(self.decoder.layers[self.layers[-1]].register_forward_hook(_stop))
        return hooks

    def _attention_to_keys(self, index: int, caught: dict[str, torch.Tensor], question_start: int) -> torch.Tensor:
        """Attention (T,) from the question's tokens to every token, summed over tokens and heads."""
        attention = self.decoder.layers[index].self_attn
        head_dim = self._inv_freq[index].numel() * 2
        queries, keys = (_heads(caught[name], self._layout, head_dim) for name in ("q", "k"))  # (H, T, D)
        positions = torch.arange(keys.shape[1])[None]
        inv_freq = self._inv_freq[index]
        keys = shift_keys(keys[None].float(), positions, inv_freq)[0]
        queries = shift_keys(queries[None, :, question_start:].float(), positions[:, question_start:], inv_freq)[0]
        group = queries.shape[0] // keys.shape[0]
        keys = keys.repeat_interleave(group, dim=0)
        scores = queries @ keys.transpose(1, 2) * float(getattr(attention, "scaling", head_dim**-0.5))
        later = torch.arange(keys.shape[1])[None, :] > torch.arange(question_start, keys.shape[1])[:, None]
        return scores.masked_fill(later, float("-inf")).softmax(dim=-1).sum(dim=(0, 1))


def _projections(attention: nn.Module, model_type: str) -> tuple[nn.Module, nn.Module, str]:
    """The modules whose outputs are the queries and keys before RoPE (after any q/k norm), and
    their layout (as in reader.py)."""
    if model_type == "gemma3_text":
        return attention.q_norm, attention.k_norm, "BHLD"
    if model_type == "qwen3":
        return attention.q_norm, attention.k_norm, "BLHD"
    return attention.q_proj, attention.k_proj, "BLF"


def _catch(store: dict[str, torch.Tensor], name: str) -> Callable[..., None]:
    def catch(module: nn.Module, args: tuple[object, ...], output: torch.Tensor) -> None:
        store[name] = output.detach()

    return catch


def _stop(module: nn.Module, args: tuple[object, ...], output: object) -> None:
    raise _Enough


def _heads(output: torch.Tensor, layout: str, head_dim: int) -> torch.Tensor:
    """A projection's output for its one row as (heads, T, D)."""
    if layout == "BLF":
        return output[0].view(output.shape[1], -1, head_dim).transpose(0, 1)
    return output[0].transpose(0, 1) if layout == "BLHD" else output[0]
