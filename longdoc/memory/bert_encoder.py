"""A small BERT sentence encoder that starts in about a second.

sentence-transformers takes 5-8 s to import on a 2-core CPU, which would dominate every search that
hits the cache. For the common case -- a sentence-transformers directory holding a BERT model with
mean pooling and normalisation, like all-MiniLM-L6-v2 -- this module runs the same computation
with torch, `tokenizers` and `safetensors` alone (tests check it against sentence-transformers).
Anything else falls back to sentence-transformers itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
        import torch
        from safetensors.torch import load_file
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
        weights = load_file(str(model_dir / "model.safetensors"))
        self.weights = {name.removeprefix("bert."): tensor.float() for name, tensor in weights.items()}
        self.torch = torch

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens of `text`, without [CLS]/[SEP]."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of one batch of texts, shape (len(texts), hidden), each of unit length."""
        torch = self.torch
        encodings = self.tokenizer.encode_batch(texts)
        limit = self.max_tokens + 2
        ids = [enc.ids[: limit - 1] + enc.ids[-1:] if len(enc.ids) > limit else enc.ids for enc in encodings]
        length = max(len(row) for row in ids)
        tokens = torch.zeros(len(ids), length, dtype=torch.long)  # (B, T), 0 is [PAD]
        mask = torch.zeros(len(ids), length, dtype=torch.bool)
        for row, row_ids in enumerate(ids):
            tokens[row, : len(row_ids)] = torch.tensor(row_ids)
            mask[row, : len(row_ids)] = True
        with torch.inference_mode():
            hidden = self._forward(tokens, mask)  # (B, T, H)
            summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
            pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy().astype(np.float32)

    def _forward(self, tokens, mask):  # type: ignore[no-untyped-def]
        torch, w, shape = self.torch, self.weights, self.shape
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
        return self.torch.nn.functional.linear(x, self.weights[name + ".weight"], self.weights[name + ".bias"])

    def _norm(self, x, name):  # type: ignore[no-untyped-def]
        w = self.weights
        return self.torch.nn.functional.layer_norm(
            x, (self.shape.hidden,), w[name + ".weight"], w[name + ".bias"], self.shape.eps
        )
