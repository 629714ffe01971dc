"""Batched dynamic time warping in torch.

Many (query, candidate) pairs are aligned at once by sweeping the anti-diagonals of their
cost matrices: every cell of a diagonal depends only on the two diagonals before it, so one
diagonal of all pairs is a few vectorised ops. The step pattern is dtw-python's default
``symmetric2``: D[i, j] = c[i, j] + min(D[i-1, j-1] + c[i, j], D[i-1, j], D[i, j-1]), with
D[0, 0] = c[0, 0], and the distance of a pair is D[n-1, m-1] (not normalised).

Costs are laid out cells-major, (N, M, P) with the pairs last: cell (i, d - i) of diagonal d
sits at flat row d + i (M - 1), so a diagonal is a strided slice of rows and each row holds
one contiguous value per pair.

An optional Sakoe-Chiba band keeps the path near the diagonal: cell (i, j) of a pair of lengths
(n, m) is allowed when j - i lies within [min(0, m - n) - band, max(0, m - n) + band], the band
widened by the length difference so the last cell is always reachable. A band changes the
distance of any pair whose best path leaves it: it is a different metric, not a speed-up of the
same one, and every pair compared must use the same band.

On the CPU the sweep runs on SWEEP_THREADS threads (one, unless the caller asks otherwise): each
diagonal is a handful of small ops, too small for torch's intra-op threads to pay off, and when
other processes hold the cores those threads wait on each other at every op
(scripts/bench_retrieval.py measures both settings side by side).
"""
from contextlib import contextmanager
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor


SWEEP_THREADS = 1


@contextmanager
def torch_threads(num_threads: Optional[int]):
    """torch's intra-op thread count set for a block, then restored (None: left as it is)."""
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if num_threads:
            torch.set_num_threads(before)


def dtw_distance_cells(
    cost: Tensor, n_lengths: Tensor, m_lengths: Tensor, num_threads: Optional[int] = SWEEP_THREADS, band: Optional[int] = None
) -> Tensor:
    """symmetric2 DTW distance of each pair. cost: (N, M, P) cells-major; lengths: (P,).

    Cells beyond a pair's own (n, m) may hold anything finite: D[i, j] only depends on cells
    (i', j') with i' <= i and j' <= j, so each pair's distance is read at its own corner.
    num_threads: torch threads for a CPU sweep (None: torch's setting); ignored on a GPU.
    band: Sakoe-Chiba half-width (module docstring), None for no band.
    No gradient flows back: the sweep writes into reused buffers (a metric, not a loss).
    """
    with torch_threads(num_threads if cost.device.type == "cpu" else None), torch.no_grad():
        return _sweep(cost if band is None else outside_band_to_inf(cost, n_lengths, m_lengths, band), n_lengths, m_lengths)


def outside_band_to_inf(cost: Tensor, n_lengths: Tensor, m_lengths: Tensor, band: int) -> Tensor:
    """A copy of cost (N, M, P) with each pair's cells outside its Sakoe-Chiba band set to inf."""
    if band < 0:
        raise ValueError(f"the Sakoe-Chiba band must be >= 0, got {band}")
    N, M, _ = cost.shape
    shift = (m_lengths - n_lengths).to(cost.device)  # (P,)
    offset = (torch.arange(M, device=cost.device)[None, :] - torch.arange(N, device=cost.device)[:, None])[..., None]  # j - i, (N, M, 1)
    return cost.masked_fill((offset < shift.clamp(max=0) - band) | (offset > shift.clamp(min=0) + band), float("inf"))


def _sweep(cost: Tensor, n_lengths: Tensor, m_lengths: Tensor) -> Tensor:
    N, M, P = cost.shape
    c = cost.reshape(N * M, P)
    n_cpu, m_cpu = n_lengths.cpu(), m_lengths.cpu()
    if len(n_cpu) != P or len(m_cpu) != P:
        raise ValueError(f"{P} pairs but {len(n_cpu)} and {len(m_cpu)} lengths")
    if P and (n_cpu.min() < 1 or m_cpu.min() < 1 or n_cpu.max() > N or m_cpu.max() > M):
        raise ValueError(f"DTW lengths must be within 1..{N} and 1..{M}")
    # pairs grouped by the diagonal their last cell lies on, decided once (no sync in the loop)
    end_diag = n_cpu + m_cpu - 2
    ends_at = {int(d): (end_diag == d).nonzero().squeeze(1).to(cost.device) for d in end_diag.unique()}
    n = n_cpu.to(cost.device)
    out = cost.new_empty(P)
    # D of three diagonals in turn, indexed by row i + 1 (row 0 is the i = -1 border). Buffers are
    # reused without a refill, so each diagonal also sets to inf the two rows around its cells:
    # the only other rows the next two diagonals read.
    inf = float("inf")
    bufs = [cost.new_full((N + 2, P), inf) for _ in range(3)]
    diag = lambda d: bufs[(d + 1) % 3]  # noqa: E731  D of diagonal d (d >= -1)
    step = cost.new_empty((N, P))
    diag(0)[1] = c[0]  # D[0, 0] = c[0, 0]
    for d in range(0, N + M - 1):
        cur = diag(d)
        if d > 0:
            lo, hi = max(0, d - M + 1), min(d, N - 1)
            cd = c[d + lo * (M - 1) : d + hi * (M - 1) + 1 : M - 1] if M > 1 else c[d : d + 1]  # (k, P)
            best, new = step[: hi - lo + 1], cur[lo + 1 : hi + 2]
            torch.minimum(diag(d - 1)[lo : hi + 1], diag(d - 1)[lo + 1 : hi + 2], out=best).add_(cd)  # up (i-1, j), left (i, j-1)
            torch.add(diag(d - 2)[lo : hi + 1], cd, alpha=2, out=new)  # diagonal (i-1, j-1)
            torch.minimum(new, best, out=new)
            cur[lo], cur[hi + 2] = inf, inf
        ends = ends_at.get(d)
        if ends is not None:
            out[ends] = cur[n[ends], ends]  # row (n-1) + 1
    return out


def dtw_distance(
    cost: Tensor, n_lengths: Optional[Tensor] = None, m_lengths: Optional[Tensor] = None, band: Optional[int] = None
) -> Tensor:
    """symmetric2 DTW distance of each pair. cost: (P, N, M); lengths: (P,), or None for full."""
    P, N, M = cost.shape
    n = torch.full((P,), N) if n_lengths is None else n_lengths
    m = torch.full((P,), M) if m_lengths is None else m_lengths
    return dtw_distance_cells(cost.permute(1, 2, 0).contiguous(), n, m, band=band)


def dtw_accumulated_cost(cost: np.ndarray) -> np.ndarray:
    """The full accumulated cost matrix D of one pair (for drawing its path)."""
    c = np.asarray(cost, dtype=np.float64)
    N, M = c.shape
    D = np.full((N + 1, M + 1), np.inf)
    for i in range(N):
        for j in range(M):
            if i == 0 and j == 0:
                D[1, 1] = c[0, 0]
                continue
            D[i + 1, j + 1] = min(D[i, j] + 2 * c[i, j], D[i, j + 1] + c[i, j], D[i + 1, j] + c[i, j])
    return D[1:, 1:]


def dtw_path(cost: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
    """Distance and warping path (index1, index2) of one pair, as dtw-python returns them.

    Ties between steps are broken in dtw-python's order: diagonal, then (i, j-1), then (i-1, j).
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"dtw_path needs a non-empty 2-D cost matrix, got shape {c.shape}")
    D = dtw_accumulated_cost(c)
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
