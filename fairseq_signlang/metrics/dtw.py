"""Batched dynamic time warping in torch.

Many (query, candidate) pairs are aligned at once by sweeping the anti-diagonals of their
cost matrices: every cell of a diagonal depends only on the two diagonals before it, so one
diagonal of all pairs is a handful of vectorised ops. The step pattern is dtw-python's default
``symmetric2``: D[i, j] = c[i, j] + min(D[i-1, j-1] + c[i, j], D[i-1, j], D[i, j-1]), with
D[0, 0] = c[0, 0], and the distance of a pair is D[n-1, m-1] (not normalised).
"""
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor


def _diagonal_indices(n: int, m: int, device) -> List[Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]:
    """For each anti-diagonal d >= 1 of an (n, m) grid: flat indices, in a grid padded with one
    border row and column, of its cells, of their diagonal, upper and left neighbours, and the
    flat index of the cells in the unpadded cost matrix."""
    out = []
    w = m + 1
    for d in range(1, n + m - 1):
        i = torch.arange(max(0, d - m + 1), min(d, n - 1) + 1, device=device)
        j = d - i
        cell = (i + 1) * w + (j + 1)
        out.append((cell, i * w + j, i * w + (j + 1), (i + 1) * w + j, i * m + j))
    return out


def dtw_accumulated_cost(cost: Tensor) -> Tensor:
    """Accumulated cost matrices of a batch of cost matrices.

    cost: (P, N, M) -> (P, N, M). Cells beyond a pair's true lengths may hold anything finite:
    D[i, j] only depends on cells (i', j') with i' <= i and j' <= j, so every pair's distance
    is read off at its own (n-1, m-1).
    """
    P, N, M = cost.shape
    # (cells, P): index_select along dim 0 then moves contiguous rows of P values.
    c = cost.reshape(P, N * M).t().contiguous()
    D = cost.new_full(((N + 1) * (M + 1), P), float("inf"))
    D[(M + 1) + 1] = c[0]  # D[0, 0] = c[0, 0]
    for cell, diag, up, left, flat in _diagonal_indices(N, M, cost.device):
        cd = c.index_select(0, flat)
        best = torch.minimum(D.index_select(0, up), D.index_select(0, left)) + cd
        best = torch.minimum(best, D.index_select(0, diag) + 2 * cd)
        D.index_copy_(0, cell, best)
    D = D.t().reshape(P, N + 1, M + 1)
    return D[:, 1:, 1:]


def dtw_distance(cost: Tensor, n_lengths: Optional[Tensor] = None, m_lengths: Optional[Tensor] = None) -> Tensor:
    """symmetric2 DTW distance of each pair. cost: (P, N, M); lengths: (P,) or None for full."""
    P, N, M = cost.shape
    D = dtw_accumulated_cost(cost)  # (P, N, M)
    n = torch.full((P,), N, device=cost.device) if n_lengths is None else n_lengths.to(cost.device)
    m = torch.full((P,), M, device=cost.device) if m_lengths is None else m_lengths.to(cost.device)
    return D[torch.arange(P, device=cost.device), n - 1, m - 1]


def dtw_path(cost: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
    """Distance and warping path (index1, index2) of one pair, as dtw-python returns them.

    Ties between steps are broken in dtw-python's order: diagonal, then (i, j-1), then (i-1, j).
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"dtw_path needs a non-empty 2-D cost matrix, got shape {c.shape}")
    D = dtw_accumulated_cost(torch.from_numpy(c)[None])[0].numpy()
    i, j = c.shape[0] - 1, c.shape[1] - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        steps = []
        if i > 0 and j > 0:
            steps.append((D[i - 1, j - 1] + 2 * c[i, j], i - 1, j - 1))
        if j > 0:
            steps.append((D[i, j - 1] + c[i, j], i, j - 1))
        if i > 0:
            steps.append((D[i - 1, j] + c[i, j], i - 1, j))
        _, i, j = min(steps, key=lambda s: s[0])  # min keeps the first of equal values
        path.append((i, j))
    path.reverse()
    idx = np.asarray(path)
    return float(D[-1, -1]), idx[:, 0], idx[:, 1]
