"""Linear layers that multiply weight-first when only a few rows come in, for fp32 on CPU.

A batched decoding step sends 2-64 rows (one token per sequence) through every linear layer. On
the 2-core AMD EPYC we develop on (fp32, torch 2.13), `F.linear(x, W)` with that few rows runs
far below the CPU's matrix speed, while the same product computed as `W @ x.T` does not:
qwen2.5-0.5b's output head (896 -> 151,936) took 112 ms for 8 rows as `linear` and 48 ms
weight-first, its MLP projections 1.2-1.8x less. From about 512 rows (reading a segment) the two
are level, and for one row `linear` is marginally faster, so only 2-64 rows take the other path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Rows (tokens across the batch) for which the weight-first product is used.
FEW_ROWS = range(2, 65)


class WeightFirstLinear(nn.Linear):
    """An `nn.Linear` whose product, for a few rows, is computed as W @ x.T (equal up to rounding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return weight_first_linear(x, self.weight, self.bias)


def weight_first_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, computed weight-first when `x` has `FEW_ROWS` rows."""
    rows = x.numel() // x.shape[-1]
    if rows not in FEW_ROWS:
        return F.linear(x, weight, bias)
    out = torch.mm(weight, x.reshape(rows, x.shape[-1]).t()).t().contiguous()
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


def use_weight_first_linears(model: nn.Module) -> int:
    """Switch `model`'s plain `nn.Linear` layers to `WeightFirstLinear` in place; returns how many.

    The weights are not copied: only each module's class changes."""
    switched = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = WeightFirstLinear
            switched += 1
    return switched
