"""Discriminator over sign-unit sequences (speech2sign-U eq. 6, wav2vec-U's discriminator).

It reads a sequence of unit distributions, one-hot for real sign sentences and the generator's
posteriors for generated ones, and gives one logit per sentence: "real". Causal convolutions
(each position sees only the past `kernel - 1` units) keep it from reading the future, as in
wav2vec-U; per-position scores are averaged over the valid positions of each sentence.

  depth 0   one convolution, units -> score: the single-convolution discriminator that the
            paper's figure 3 uses for its word-level GAN baselines
  depth d   d hidden convolutions of width `dim` and a scoring convolution, as wav2vec-U's
            (its published one: depth 2, width 384, kernel 6): the first embeds the units
            (no activation after it unless act_after_first, wav2vec-U's
            discriminator_act_after_linear), the others are followed by dropout and GELU
  out_dim   >1 turns the score into a feature vector per sentence (an MMD GAN's learned kernel)
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalConv1d(nn.Conv1d):
    """Conv1d whose output at t depends on inputs t - kernel + 1 .. t only; keeps the length."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int):
        super().__init__(in_dim, out_dim, kernel)
        self.left_pad = kernel - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))  # (B, C, T) -> (B, out, T)


class UnitSequenceDiscriminator(nn.Module):
    def __init__(
        self, num_units: int, dim: int = 384, depth: int = 2, kernel: int = 6, dropout: float = 0.0, out_dim: int = 1,
        act_after_first: bool = False,
    ):
        super().__init__()
        if depth < 0 or kernel < 1:
            raise ValueError(f"discriminator depth must be >= 0 and kernel >= 1, got depth {depth}, kernel {kernel}")
        layers, width = [], num_units
        for i in range(depth):
            if i == 0:  # the embedding convolution
                layers += [CausalConv1d(width, dim, kernel), *([nn.GELU()] if act_after_first else []), nn.Dropout(dropout)]
            else:
                layers += [CausalConv1d(width, dim, kernel), nn.Dropout(dropout), nn.GELU()]
            width = dim
        layers.append(CausalConv1d(width, out_dim, kernel))
        self.net = nn.Sequential(*layers)

    def forward(self, units: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """units (B, T, V) distributions, padding_mask (B, T) True at padding ->
        (B,) logits for out_dim 1, else (B, out_dim) features."""
        scores = self.net(units.transpose(1, 2)).transpose(1, 2)  # (B, T, out_dim)
        if padding_mask is None:
            pooled = scores.mean(1)
        else:
            valid = (~padding_mask).to(scores.dtype)[..., None]  # (B, T, 1)
            pooled = (scores * valid).sum(1) / valid.sum(1).clamp(min=1)
        return pooled.squeeze(-1) if pooled.shape[-1] == 1 else pooled  # (B,) or (B, out_dim)
