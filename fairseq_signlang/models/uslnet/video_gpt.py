"""VideoGPT's prior (USLNet section 2.2, "video sequence generation"): a causal transformer over
the VQ-VAE's code grid flattened in (t, h, w) order, predicting each code from the ones before.

The input is the code sequence shifted right behind a learned start vector, so the logits at
position i are a distribution over code i. Positions are embedded axially (one table per grid
axis, summed), which keeps the grid's geometry with t + h + w instead of t*h*w vectors. An
optional conditioning sequence (B, L, hidden), e.g. the sliding-window aligner's output, is
added position-wise to the inputs.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from fairseq_signlang.models.eval_mode import eval_mode


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i sees positions <= i. With a cache (a dict,
    one per block) the keys and values of earlier positions are kept, so sampling feeds one new
    position per step instead of the whole prefix."""

    def __init__(self, hidden: int, n_heads: int, attn_dropout: float, dropout: float):
        super().__init__()
        if hidden % n_heads:
            raise ValueError(f"hidden {hidden} is not divisible by the number of heads {n_heads}")
        self.n_heads, self.attn_dropout = n_heads, attn_dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, N, dh)
        if cache is not None:
            if cache and N > 1:
                raise ValueError("a filled cache takes one new position at a time")
            if cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)  # (B, nh, P+1, dh)
            cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0, is_causal=bool(N > 1))
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, N, C)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)) with a 4x GELU MLP."""

    def __init__(self, hidden: int, n_heads: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.attn = CausalSelfAttention(hidden, n_heads, attn_dropout, dropout)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, cache: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class VideoGPT(nn.Module):
    """Autoregressive prior over (t, h, w) code grids: logits (B, L, n_codes), L = t*h*w."""

    def __init__(self, n_codes: int, latent_shape: Sequence[int], n_layers: int = 8, n_heads: int = 6, hidden: int = 576,
                 dropout: float = 0.1, attn_dropout: float = 0.1):
        super().__init__()
        self.n_codes, self.hidden = n_codes, hidden
        self.latent_shape = tuple(int(n) for n in latent_shape)
        self.seq_len = math.prod(self.latent_shape)
        self.tok_emb = nn.Embedding(n_codes, hidden)
        self.pos_emb = nn.ModuleList(nn.Embedding(n, hidden) for n in self.latent_shape)  # one table per axis
        self.start = nn.Parameter(torch.randn(hidden) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden, n_heads, dropout, attn_dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, n_codes, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _check_cond(self, cond: Optional[torch.Tensor], batch_size: int) -> None:
        expected = (batch_size, self.seq_len, self.hidden)
        if cond is not None and tuple(cond.shape) != expected:
            raise ValueError(f"cond must be (B, L, hidden) = {expected}, got {tuple(cond.shape)}")

    def _embed(self, codes: torch.Tensor, lo: int, hi: int, cond: Optional[torch.Tensor]) -> torch.Tensor:
        """Inputs for positions lo..hi-1 (B, hi-lo, hidden): position 0 gets the start vector,
        position p > 0 the code p-1; plus the axial position embedding and cond."""
        x = self.tok_emb(codes[:, max(lo - 1, 0):hi - 1])  # (B, hi-lo or hi-lo-1, hidden)
        if lo == 0:
            x = torch.cat([self.start.expand(len(codes), 1, -1), x], 1)  # (B, hi, hidden)
        _, h, w = self.latent_shape
        p = torch.arange(lo, hi, device=codes.device)
        x = x + self.pos_emb[0](p // (h * w)) + self.pos_emb[1](p // w % h) + self.pos_emb[2](p % w)
        if cond is not None:
            x = x + cond[:, lo:hi]
        return self.drop(x)

    def _logits(self, x: torch.Tensor, caches: Optional[List[Dict[str, torch.Tensor]]] = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.ln_f(x))  # (B, N, n_codes)

    def forward(self, codes: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """codes (B, t, h, w) or (B, L) -> logits (B, L, n_codes); logits[:, i] predict codes[:, i]."""
        if tuple(codes.shape[1:]) == self.latent_shape:
            codes = codes.flatten(1)  # (B, t, h, w) -> (B, L)
        elif tuple(codes.shape[1:]) != (self.seq_len,):
            raise ValueError(f"codes must be (B, {', '.join(map(str, self.latent_shape))}) or (B, {self.seq_len}), got {tuple(codes.shape)}")
        self._check_cond(cond, len(codes))
        return self._logits(self._embed(codes, 0, self.seq_len, cond))

    @torch.no_grad()
    def sample(self, batch_size: int, cond: Optional[torch.Tensor] = None, temperature: float = 1.0, top_k: Optional[int] = None,
               generator: Optional[torch.Generator] = None, use_cache: bool = True) -> torch.Tensor:
        """Draw code grids (B, t, h, w) one code at a time, in eval mode. The generator must live
        on the model's device. Cached and uncached sampling give the same codes for one seed."""
        self._check_cond(cond, batch_size)
        with eval_mode(self):
            codes = torch.zeros(batch_size, self.seq_len, dtype=torch.long, device=self.start.device)  # (B, L)
            caches = [{} for _ in self.blocks] if use_cache else None
            for i in range(self.seq_len):
                x = self._embed(codes, i, i + 1, cond) if use_cache else self._embed(codes, 0, i + 1, cond)
                logits = self._logits(x, caches)[:, -1] / temperature  # (B, n_codes)
                if top_k is not None:
                    kth = logits.topk(top_k, dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                codes[:, i] = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        return codes.view(batch_size, *self.latent_shape)
