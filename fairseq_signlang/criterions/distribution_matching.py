"""Marginal statistics of unit sequences for speech2sign-U's GAN-free objective (eq. 8-11).

All functions take padded batches and a validity mask and are vectorised over the batch.
Real statistics come from unit ids by counting; generated statistics are expectations under
the generator's per-token posteriors. For unit-id speech input the generated statistics are
the speech units' own statistics pushed through the posterior matrix G (eq. 8 and 10), which
costs |X|^2 |Y| instead of B T |Y|^2, and |X| |Y|^2 with the skip-gram counts kept sparse
(`pushed_skipgram`): a batch holds far fewer distinct unit pairs than |X|^2.
"""
import torch
from torch import Tensor


def unit_positional_unigram(units: Tensor, valid: Tensor, num_units: int) -> Tensor:
    """units, valid: (B, T) -> (T, num_units), row i the unit distribution at position i
    over the sentences that have one (all-zero rows where none has)."""
    T = units.shape[1]
    pos = torch.arange(T, device=units.device).expand_as(units)
    flat = (pos * num_units + units)[valid]
    counts = torch.bincount(flat, minlength=T * num_units).view(T, num_units).to(torch.float32)
    return counts / counts.sum(-1, keepdim=True).clamp(min=1)


def unit_skipgram(units: Tensor, valid: Tensor, num_units: int, k: int) -> Tensor:
    """Joint distribution of (z_i, z_{i+k}) over all valid pairs in the batch (eq. 9):
    (num_units, num_units), zeros when no sentence is longer than k."""
    pair = valid[:, :-k] & valid[:, k:]
    flat = (units[:, :-k] * num_units + units[:, k:])[pair]
    counts = torch.bincount(flat, minlength=num_units * num_units).view(num_units, num_units).to(torch.float32)
    return counts / counts.sum().clamp(min=1)


def unit_skipgram_sparse(units: Tensor, valid: Tensor, num_units: int, k: int) -> Tensor:
    """`unit_skipgram` as a coalesced sparse (num_units, num_units) tensor: only the pairs that occur."""
    pair = valid[:, :-k] & valid[:, k:]
    flat = (units[:, :-k] * num_units + units[:, k:])[pair]
    # sorted: row-major, as coalesced indices are (sort + unique_consecutive: torch.unique's CPU
    # kernel took 0.2 s on 2 shared cores where this takes 0.05)
    seen, counts = torch.unique_consecutive(flat.sort().values, return_counts=True)
    indices = torch.stack([seen // num_units, seen % num_units])
    values = counts.to(torch.float32) / counts.sum().clamp(min=1)
    return torch.sparse_coo_tensor(indices, values, (num_units, num_units), is_coalesced=True, check_invariants=False)


def pushed_skipgram(G: Tensor, units: Tensor, valid: Tensor, k: int) -> Tensor:
    """G.t() @ unit_skipgram(units, valid, |X|, k) @ G, the expected skip-gram of unit input (eq. 10),
    with the counts sparse: nnz |Y| + |X| |Y|^2 instead of |X|^2 |Y| + |X| |Y|^2 (at |X| = 2000,
    |Y| = 1000 a batch of 12k sentences has about 100k distinct pairs of 4M)."""
    return G.t() @ torch.sparse.mm(unit_skipgram_sparse(units, valid, G.shape[0], k), G)


def expected_positional_unigram(probs: Tensor, valid: Tensor) -> Tensor:
    """probs (B, T, V), valid (B, T) -> (T, V) mean posterior at each position."""
    m = valid.to(probs.dtype)
    return (probs * m[..., None]).sum(0) / m.sum(0).clamp(min=1)[:, None]


def expected_skipgram(probs: Tensor, valid: Tensor, k: int) -> Tensor:
    """Mean outer product of the posteriors k steps apart: (V, V)."""
    pair = (valid[:, :-k] & valid[:, k:]).to(probs.dtype)
    joint = torch.einsum("btv,btw->vw", probs[:, :-k] * pair[..., None], probs[:, k:])
    return joint / pair.sum().clamp(min=1)


def positions_present(valid: Tensor) -> Tensor:
    """(T,) which positions at least one sentence of the batch reaches."""
    return valid.any(dim=0)


def perplexity(dist: Tensor) -> Tensor:
    """exp(entropy) of a distribution: how many outcomes it effectively uses."""
    return torch.exp(-(dist * torch.log(dist.clamp(min=1e-12))).sum())
