"""Rotary position embedding (RoPE) arithmetic the segment cache needs: frequencies and re-rotation.

RoPE turns the key at position p into R(p·θ)·k, a rotation of each (i, i + D/2) pair of channels by
the angle p·θ_i. Rotations compose, R(a)·R(b) = R(a + b), so a key cached at position p moves to
position p - d by one more rotation R(-d·θ), with no need to recompute it from the hidden state.
"""

from __future__ import annotations

import torch
from torch import nn

from longdoc.errors import ModelError

# Model families whose attention applies RoPE with the "rotate_half" channel layout (pairs i and
# i + D/2) to the full head dimension, which is what `shift_keys` undoes and redoes. Other layouts
# (interleaved pairs, partial rotary) would be silently wrong, so they are rejected by name.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma3_text"})


def rotary_frequencies(model: nn.Module, layer_types: list[str]) -> dict[str, torch.Tensor]:
    """The inverse frequencies θ (D/2,) used by each attention layer type of a loaded causal LM.

    Raises ModelError for architectures or RoPE variants whose rotation the cache cannot shift.
    """
    config = model.config
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelError(
            f"model type {config.model_type!r} is not supported by the segment engine "
            f"(supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
        )
    rotary = _rotary_module(model)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    frequencies: dict[str, torch.Tensor] = {}
    for layer_type in set(layer_types):
        # Gemma 3 keeps one buffer per layer type (local and global bases); the others share one.
        inv_freq = getattr(rotary, f"{layer_type}_inv_freq", None)
        if inv_freq is None:
            inv_freq = getattr(rotary, "inv_freq", None)
        if not isinstance(inv_freq, torch.Tensor):
            raise ModelError(f"cannot find the rotary frequencies of {config.model_type!r} layers ({layer_type})")
        if inv_freq.numel() * 2 != head_dim:
            raise ModelError(
                f"partial rotary embeddings ({inv_freq.numel() * 2} of {head_dim} channels) are not supported"
            )
        frequencies[layer_type] = inv_freq.detach().float().clone()
    return frequencies


def _rotary_module(model: nn.Module) -> nn.Module:
    for name, module in model.named_modules():
        if name.endswith("rotary_emb"):
            return module
    raise ModelError(f"{model.config.model_type!r} has no rotary embedding module")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def shift_keys(keys: torch.Tensor, shift: torch.Tensor | int, inv_freq: torch.Tensor) -> torch.Tensor:
    """Keys rotated as if they had been computed `shift` positions later (negative: earlier).

    keys: (B, H, T, D), already rotated for their old positions.
    shift: an int, (B,) per row, or (B | 1, T) per token.
    inv_freq: (D/2,) frequencies of this layer.
    The rotation is done in float32 so that repeated shifts of bf16 keys add one rounding each.
    """
    shift_t = torch.as_tensor(shift, dtype=torch.float32, device=keys.device)
    if shift_t.ndim < 2:
        shift_t = shift_t.reshape(-1, 1)  # (B | 1, 1)
    angles = shift_t[..., None] * inv_freq.to(keys.device)  # (B | 1, T | 1, D/2)
    angles = torch.cat((angles, angles), dim=-1)[:, None]  # (B | 1, 1, T | 1, D)
    k = keys.float()
    shifted = k * angles.cos() + _rotate_half(k) * angles.sin()
    return shifted.to(keys.dtype)
