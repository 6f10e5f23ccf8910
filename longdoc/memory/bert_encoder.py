"""A small BERT sentence encoder that starts in well under a second.

sentence-transformers takes 5-8 s to import on a 2-core CPU, and torch alone 2-4 s, which would
dominate every search that hits the cache. For the common case -- a sentence-transformers
directory holding a BERT model with mean pooling and normalisation, like all-MiniLM-L6-v2 -- this
module runs the same computation with `tokenizers` and `safetensors` alone: in numpy for a query
(one short text: ~30 ms, no torch import), in torch for batches of chunks (about ten times faster
than numpy there, and bf16 where the CPU has it). Tests check both against sentence-transformers.
Anything else falls back to sentence-transformers itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BertShape:
    """The few numbers of a BERT config that the forward pass needs."""

    layers: int
    heads: int
    hidden: int
    eps: float
    max_positions: int


def supported(model_dir: Path) -> bool:
    """True when `model_dir` is a sentence-transformers BERT with mean pooling we can run directly."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        config = json.loads((model_dir / "config.json").read_text())
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((model_dir / pooling_dir / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration):
        return False
    types = [m["type"].rsplit(".", 1)[-1] for m in modules]
    return (
        types == ["Transformer", "Pooling", "Normalize"]
        and config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and pooling.get("pooling_mode_mean_tokens") is True
        and not any(pooling.get(f"pooling_mode_{mode}") for mode in ("cls_token", "max_tokens", "mean_sqrt_len_tokens"))
        and (model_dir / "model.safetensors").is_file()
        and (model_dir / "tokenizer.json").is_file()
    )


class BertSentenceEncoder:
    """Mean-pooled, L2-normalised BERT sentence embeddings (the all-MiniLM family)."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.shape = BertShape(
            layers=config["num_hidden_layers"],
            heads=config["num_attention_heads"],
            hidden=config["hidden_size"],
            eps=config.get("layer_norm_eps", 1e-12),
            max_positions=config["max_position_embeddings"],
        )
        self.max_tokens = min(max_tokens, self.shape.max_positions) - 2  # room for [CLS] and [SEP]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._weights_file = model_dir / "model.safetensors"
        # Each form of the weights is read on first use: numpy for queries, torch for batches.
        self._arrays: dict[str, np.ndarray] | None = None
        self._tensors: dict[str, Any] | None = None

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens of `text`, without [CLS]/[SEP]."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ids (B, T), 0 being [PAD], and the mask of real tokens (B, T), cut to max_tokens."""
        encodings = self.tokenizer.encode_batch(texts)
        limit = self.max_tokens + 2
        ids = [enc.ids[: limit - 1] + enc.ids[-1:] if len(enc.ids) > limit else enc.ids for enc in encodings]
        length = max(len(row) for row in ids)
        tokens = np.zeros((len(ids), length), dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=bool)
        for row, row_ids in enumerate(ids):
            tokens[row, : len(row_ids)] = row_ids
            mask[row, : len(row_ids)] = True
        return tokens, mask

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of one batch of texts, shape (len(texts), hidden), each of unit length (torch)."""
        import torch

        if self._tensors is None:
            # Loaded again by torch rather than wrapped around the numpy arrays: on those buffers
            # the batch forward ran about 2x slower (AMD EPYC, 2 cores).
            from safetensors.torch import load_file

            weights = load_file(str(self._weights_file))
            self._tensors = {name.removeprefix("bert."): tensor.float() for name, tensor in weights.items()}
        self.torch = torch
        tokens, mask = (torch.from_numpy(a) for a in self._token_ids(texts))
        with torch.inference_mode():
            hidden = self._forward(tokens, mask)  # (B, T, H)
            summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
            pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().numpy().astype(np.float32)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as float32 numpy arrays, by name without the "bert." prefix."""
        if self._arrays is None:
            from safetensors.numpy import load_file

            self._arrays = {name.removeprefix("bert."): a.astype(np.float32) for name, a in load_file(str(self._weights_file)).items()}
        return self._arrays

    def encode_numpy(self, texts: list[str]) -> np.ndarray:
        """The same embeddings computed in numpy: for a query or two, where importing torch would
        take longer than the whole forward pass."""
        w, shape = self.arrays, self.shape
        tokens, mask = self._token_ids(texts)
        batch, length = tokens.shape
        heads, head_dim = shape.heads, shape.hidden // shape.heads
        x = w["embeddings.word_embeddings.weight"][tokens] + w["embeddings.position_embeddings.weight"][:length]
        x = self._norm_numpy(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        bias = np.where(mask, 0.0, -np.inf).astype(np.float32)[:, None, None, :]  # (B, 1, 1, T)
        for layer in range(shape.layers):
            p = f"encoder.layer.{layer}."
            q, k, v = (self._linear_numpy(x, p + f"attention.self.{name}").reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)
                       for name in ("query", "key", "value"))  # (B, heads, T, head_dim) each
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias  # (B, heads, T, T)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, shape.hidden)
            x = self._norm_numpy(x + self._linear_numpy(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            inner = self._linear_numpy(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))  # exact GELU, as BERT's "gelu"
            x = self._norm_numpy(x + self._linear_numpy(inner, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _linear_numpy(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.arrays[name + ".weight"].T + self.arrays[name + ".bias"]

    def _norm_numpy(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.shape.eps) * self.arrays[name + ".weight"] + self.arrays[name + ".bias"]

    def _forward(self, tokens, mask):  # type: ignore[no-untyped-def]
        torch, w, shape = self.torch, self._tensors, self.shape
        F = torch.nn.functional
        positions = torch.arange(tokens.shape[1])
        x = w["embeddings.word_embeddings.weight"][tokens]
        x = x + w["embeddings.position_embeddings.weight"][positions] + w["embeddings.token_type_embeddings.weight"][0]
        x = self._norm(x, "embeddings.LayerNorm")
        # Padding keys get -inf so no real token attends to them: (B, 1, 1, T)
        bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(~mask, float("-inf"))[:, None, None, :]
        for layer in range(shape.layers):
            p = f"encoder.layer.{layer}."
            x = self._norm(x + self._attention(x, bias, p), p + "attention.output.LayerNorm")
            inner = F.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(x + self._linear(inner, p + "output.dense"), p + "output.LayerNorm")
        return x

    def _attention(self, x, bias, prefix):  # type: ignore[no-untyped-def]
        batch, length, _ = x.shape
        heads, head_dim = self.shape.heads, self.shape.hidden // self.shape.heads

        def split(name: str):  # type: ignore[no-untyped-def]
            # (B, T, H) -> (B, heads, T, head_dim)
            return self._linear(x, prefix + name).view(batch, length, heads, head_dim).transpose(1, 2)

        q, k, v = split("attention.self.query"), split("attention.self.key"), split("attention.self.value")
        context = self.torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, heads, T, head_dim)
        context = context.transpose(1, 2).reshape(batch, length, self.shape.hidden)
        return self._linear(context, prefix + "attention.output.dense")

    def _linear(self, x, name):  # type: ignore[no-untyped-def]
        return self.torch.nn.functional.linear(x, self._tensors[name + ".weight"], self._tensors[name + ".bias"])

    def _norm(self, x, name):  # type: ignore[no-untyped-def]
        w = self._tensors
        return self.torch.nn.functional.layer_norm(
            x, (self.shape.hidden,), w[name + ".weight"], w[name + ".bias"], self.shape.eps
        )


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7): numpy has none."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))
