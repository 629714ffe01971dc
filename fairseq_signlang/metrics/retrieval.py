"""DTW retrieval between generated sign posteriors and sign unit sequences (speech2sign-U eq. 13).

Sim(X, Y) = -DTW(G(X), Y) / L with cosine distance between frames and L the length of Y.
Speech-to-sign (A->V) ranks the sign sequences for each speech query; sign-to-speech (V->A)
ranks the speech sequences for each sign query; both read the same similarity matrix.

recall@k only needs, for each query, how many candidates score above its true one (and how many
tie with it while fewer than k do). pruned_target_ranks finds exactly that without aligning all
pairs: a cheap lower bound on every pair's DTW rules out most candidates, and DTW runs only on
the rest, best bound first, until the answer is settled. Its recall equals recall_at_k's of the
full matrix to the last bit; dtw_similarity stays the reference.
"""
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch import Tensor

from fairseq_signlang.metrics.dtw import SWEEP_THREADS, dtw_distance_cells, torch_threads

Ranks = Dict[str, Tuple[Tensor, Tensor]]  # direction -> (better, ties), each (N,)

RECALL_KS = (1, 5, 10)


def pad_sequences(seqs: Sequence[Tensor], pad_value: float = 0.0):
    """List of (T_i, ...) tensors -> (B, T_max, ...) padded tensor and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(list(seqs), batch_first=True, padding_value=pad_value), lengths


def frame_cosine_cost(queries: Tensor, candidates: Tensor) -> Tensor:
    """Cosine distance between every query frame and every candidate frame, cells-major.

    queries (Q, T, V); candidates (C, S, V) features, or (C, S) unit ids standing for one-hot
    frames (then no one-hot is built: the distance is 1 - the normalised query's entry).
    Returns (T, S, C, Q), the layout dtw_distance_cells sweeps, pairs ordered candidate-major.
    """
    q = F.normalize(queries, dim=-1, eps=1e-8).permute(1, 2, 0).contiguous()  # (T, V, Q)
    if candidates.ndim == 2:
        C, S = candidates.shape
        # rows of 1 - q picked by unit id: out[t, s, c, :] = 1 - q[t, units[c, s], :]
        return q.neg_().add_(1.0).index_select(1, candidates.t().reshape(-1)).view(q.shape[0], S, C, q.shape[2])
    # einsum may hand back a strided view: dtw_similarity reshapes the cells, so make them contiguous
    return torch.einsum("tvq,csv->tscq", q, F.normalize(candidates, dim=-1, eps=1e-8)).contiguous().neg_().add_(1.0)


def pair_cosine_cost(query: Tensor, candidate: Tensor) -> Tensor:
    """frame_cosine_cost of one pair: (T, V) x (S, V) or (S,) ids -> (T, S)."""
    return frame_cosine_cost(query[None], candidate[None])[:, :, 0, 0]


def dtw_similarity(
    gen_probs: Tensor,
    gen_lengths: Tensor,
    sign_frames: Tensor,
    sign_lengths: Tensor,
    max_cells: int = 2**25,
    num_threads: Optional[int] = SWEEP_THREADS,
    band: Optional[int] = None,
) -> Tensor:
    """Similarity of every (speech, sign) pair.

    gen_probs: (Q, T, V) generator posteriors G(X) of the speech queries, padded;
    sign_frames: (C, S, V) sign frame features, or (C, S) sign unit ids (one-hot frames), padded.
    Returns (Q, C): -DTW / sign length. Queries are processed in chunks of at most
    ``max_cells`` cost-matrix cells so memory stays bounded on large splits; the sweep runs on
    ``num_threads`` torch threads on the CPU (metrics/dtw.py says why one). band: the DTW's
    Sakoe-Chiba band (metrics/dtw.py; a different metric), None for none.
    """
    Q, T, _ = gen_probs.shape
    C, S = sign_frames.shape[:2]
    sign_frames = sign_frames.to(gen_probs.device)
    sign_lengths = sign_lengths.to(gen_probs.device)
    gen_lengths = gen_lengths.to(gen_probs.device)
    chunk = max(1, max_cells // max(1, C * T * S))
    rows = []
    for start in range(0, Q, chunk):
        q = gen_probs[start : start + chunk]
        n = q.shape[0]
        cost = frame_cosine_cost(q, sign_frames).view(T, S, C * n)  # pair p = candidate * n + query
        dist = dtw_distance_cells(
            cost,
            gen_lengths[start : start + n].repeat(C),
            sign_lengths.repeat_interleave(n),
            num_threads,
            band,
        ).view(C, n).t()
        rows.append(-dist / sign_lengths.to(dist.dtype)[None, :])
    return torch.cat(rows, dim=0)


def target_rank(scores: Tensor, targets: Tensor):
    """Where each row's target column stands when the row is sorted by descending score:
    (better, ties) = how many other columns score strictly higher, and how many score equal.
    scores: (Q, C), targets: (Q,) -> two (Q,) tensors."""
    target_scores = scores.gather(1, targets[:, None])
    better = (scores > target_scores).sum(1)
    ties = (scores == target_scores).sum(1) - 1
    return better, ties


def recall_hits(better: Tensor, ties: Tensor, ks: Iterable[int] = RECALL_KS) -> Dict[int, float]:
    """Expected number of queries whose target is in the top k when ties are broken at random:
    the target takes each of the places better .. better + ties with equal chance. So a model
    that scores everything alike gets chance recall, k / C, and no file order favours it.
    With fewer than k candidates every target is in the top k."""
    return {k: float(((k - better).clamp(min=0) / (ties + 1)).clamp(max=1).sum()) for k in ks}


def recall_from_ranks(ranks: Ranks, ks: Iterable[int] = RECALL_KS) -> Dict[str, float]:
    """recall@k in % of each direction from its queries' (better, ties)."""
    out = {}
    for direction, (better, ties) in ranks.items():
        for k, h in recall_hits(better, ties, ks).items():
            out[f"{direction}_recall@{k}"] = 100.0 * h / len(better)
    return out


def recall_at_k(scores: Tensor, ks: Iterable[int] = RECALL_KS) -> Dict[str, float]:
    """recall@k in % for both directions of a square (speech x sign) similarity matrix whose
    diagonal holds the true pairs: rows rank signs (A->V), columns rank speech (V->A)."""
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"recall_at_k needs a square similarity matrix, got {tuple(scores.shape)}")
    targets = torch.arange(scores.shape[0], device=scores.device)
    return recall_from_ranks({d: target_rank(mat, targets) for d, mat in (("a2v", scores), ("v2a", scores.t()))}, ks)


def pruned_recall_at_k(
    gen_probs: Tensor, gen_lengths: Tensor, sign_units: Tensor, sign_lengths: Tensor, ks: Iterable[int] = RECALL_KS, **kwargs
) -> Dict[str, float]:
    """recall_at_k(dtw_similarity(...)) without aligning every pair (pruned_target_ranks)."""
    ks = tuple(ks)
    return recall_from_ranks(pruned_target_ranks(gen_probs, gen_lengths, sign_units, sign_lengths, max(ks), **kwargs), ks)


def pruned_target_ranks(
    gen_probs: Tensor,
    gen_lengths: Tensor,
    sign_units: Tensor,
    sign_lengths: Tensor,
    cap: int = max(RECALL_KS),
    max_cells: int = 2**25,
    num_threads: Optional[int] = SWEEP_THREADS,
    band: Optional[int] = None,
) -> Ranks:
    """target_rank of both directions of the square dtw_similarity(gen_probs, gen_lengths,
    sign_units, sign_lengths), with `better` capped at `cap` (and `ties` then 0): all that
    recall@k for k <= cap reads, found without aligning most pairs.

    The true pairs are aligned first. A candidate whose bound (dtw_lower_bound, less a slack
    above float rounding) scores below the true one can neither beat nor tie it; the others are
    aligned best bound first, in rounds of doubling width, until each query has `cap` candidates
    above its true one or none left open. sign_units: (C, S) unit ids (one-hot frames), C == Q:
    picked cells give the unpruned path's scores bit for bit, where products of feature frames
    of other shapes could round differently. On the CPU all of it runs on `num_threads` torch
    threads: its ops are as small as the sweep's (metrics/dtw.py).
    """
    if sign_units.ndim != 2 or sign_units.is_floating_point():
        raise ValueError(f"pruned ranking needs sign unit ids (C, S), got a {sign_units.dtype} tensor of shape {tuple(sign_units.shape)}")
    Q, T, V = gen_probs.shape
    C, S = sign_units.shape
    if Q != C:
        raise ValueError(f"pruned ranking needs as many queries as candidates (the true pairs on the diagonal), got {Q} and {C}")
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    with torch_threads(num_threads if gen_probs.device.type == "cpu" else None):
        return _pruned_target_ranks(gen_probs, gen_lengths, sign_units, sign_lengths, cap, max_cells, num_threads, band)


def _pruned_target_ranks(gen_probs, gen_lengths, sign_units, sign_lengths, cap, max_cells, num_threads, band) -> Ranks:
    Q, T, V = gen_probs.shape
    C, S = sign_units.shape
    dev = gen_probs.device
    gen_lengths, sign_lengths = gen_lengths.to(dev), sign_lengths.to(dev)
    units = sign_units.to(dev).masked_fill(torch.arange(S, device=dev)[None] >= sign_lengths[:, None], 0)  # padding: any valid id
    qn = F.normalize(gen_probs, dim=-1, eps=1e-8)  # (Q, T, V), as frame_cosine_cost has it
    scores = qn.new_full((Q, C), float("nan"))  # dtw_similarity's entries, filled as pairs are aligned

    def align(qi: Tensor, cj: Tensor) -> None:
        scores[qi, cj] = pair_similarity(qn, gen_lengths, units, sign_lengths, qi, cj, max_cells, num_threads, band)

    ids = torch.arange(Q, device=dev)
    align(ids, ids)
    true = scores.diagonal().clone()  # (Q,): a2v compares row i with it, v2a column i
    # float rounding moves a bound or a sweep by far less than `slack` (each sums at most T + S + V
    # terms of size at most 2 (T + S)), so a candidate with ceiling < true can neither beat nor tie it
    slack = 4 * (T + S + V) * (T + S) * torch.finfo(qn.dtype).eps / sign_lengths.to(qn.dtype)  # (C,)
    ceiling = slack[None] - dtw_lower_bound(qn, gen_lengths, units, sign_lengths)  # (Q, C) >= score
    state = []
    for direction, ceil, sc in (("a2v", ceiling, scores), ("v2a", ceiling.t().contiguous(), scores.t())):
        open_ = torch.where(ceil >= true[:, None], -ceil, torch.full_like(ceil, float("inf")))  # (R, C): inf once settled
        open_.fill_diagonal_(float("inf"))
        zeros = torch.zeros(Q, dtype=torch.long, device=dev)
        left = open_.isfinite().sum(1)  # (R,) candidates not settled yet
        state.append((direction, open_, sc, zeros, zeros.clone(), left, left > 0))
    width = cap
    while any(bool(active.any()) for *_, active in state):
        picks = []
        for _, open_, _, _, _, _, active in state:
            rows = active.nonzero().squeeze(1)
            bound, cand = open_[rows].topk(min(width, C), dim=1, largest=False)  # best bounds first, (R', w)
            picks.append((rows[:, None].expand_as(cand), cand, bound.isfinite()))
        (ra, ca, oka), (rv, cv, okv) = picks
        qi, cj = torch.cat([ra[oka], cv[okv]]), torch.cat([ca[oka], rv[okv]])  # v2a rows are signs
        new = scores[qi, cj].isnan()
        pair = torch.unique(qi[new] * C + cj[new])
        align(pair // C, pair % C)
        for (_, open_, sc, better, ties, left, active), (rows, cand, ok) in zip(state, picks):
            s, t, r = sc[rows, cand], true[rows], rows[:, 0]
            better[r] += ((s > t) & ok).sum(1)
            ties[r] += ((s == t) & ok).sum(1)
            left[r] -= ok.sum(1)
            open_[rows[ok], cand[ok]] = float("inf")
            active[r] = (better[r] < cap) & (left[r] > 0)
        width *= 2
    out = {}
    for direction, _, _, better, ties, _, _ in state:
        out[direction] = (better.clamp(max=cap), ties.masked_fill(better >= cap, 0))
    return out


def dtw_lower_bound(qn: Tensor, gen_lengths: Tensor, sign_units: Tensor, sign_lengths: Tensor) -> Tensor:
    """A lower bound on every pair's DTW / sign length (the similarity's distance), (Q, C), from
    three (Q, V) x (V, C) products instead of Q x C sweeps. qn: (Q, T, V) normalised queries;
    sign_units: (C, S) unit ids.

    A symmetric2 path starts at (0, 0) with weight 1; a diagonal step (weight 2) enters a new
    row and a new column, a horizontal or vertical step (weight 1) one of them. So its cost is
    c[0, 0] + the cell where each row i >= 1 is entered + the cell where each column j >= 1 is
    entered, >= c[0, 0] + the row minima (rows >= 1) + the column minima (columns >= 1), whatever
    the signs of the costs. With one-hot sign frames c[t, s] = 1 - q[t, u_s]:
    - a column's minimum, 1 - max_t q[t, u_s], depends on the unit alone: a product with the
      candidates' unit counts;
    - a row's, 1 - max_{u in U} q[t, u] over the candidate's units U, is at least 1 - x_t with
      x_t the norm of q[t]'s non-negative part on U, and the rows' sum of x_t is at most
      sqrt(rows * sum_t x_t^2) (Cauchy-Schwarz), where sum_t x_t^2 is a product with U's presence.
    A band only raises DTW, so the bound holds with one.
    """
    Q, T, V = qn.shape
    C, S = sign_units.shape
    dev, dtype = qn.device, qn.dtype
    t_valid = torch.arange(T, device=dev)[None] < gen_lengths[:, None]  # (Q, T)
    s_valid = (torch.arange(S, device=dev)[None] < sign_lengths[:, None]).to(dtype)  # (C, S)
    present = torch.zeros(C, V, device=dev, dtype=dtype).scatter_add_(1, sign_units, s_valid).gt_(0).to(dtype)  # (C, V)
    later = torch.zeros(C, V, device=dev, dtype=dtype).scatter_add_(1, sign_units[:, 1:], s_valid[:, 1:])  # counts in columns >= 1
    col_max = qn.masked_fill(~t_valid[..., None], float("-inf")).amax(1)  # (Q, V)
    rows = (t_valid & (torch.arange(T, device=dev)[None] >= 1)).to(dtype)  # (Q, T): rows >= 1
    row_mass = torch.einsum("qtv,qt->qv", qn.clamp(min=0).square(), rows)  # sum over rows >= 1 of q[t, v]^2, (Q, V)
    n_rows = rows.sum(1, keepdim=True)  # (Q, 1)
    bound = 1.0 - qn[:, 0, :].index_select(1, sign_units[:, 0])  # c[0, 0], (Q, C)
    bound += n_rows - (n_rows * (row_mass @ present.t())).clamp_(min=0).sqrt_()  # row minima
    bound += (sign_lengths - 1).to(dtype)[None] - col_max @ later.t()  # column minima
    return bound / sign_lengths.to(dtype)[None]


def pair_similarity(qn: Tensor, gen_lengths: Tensor, sign_units: Tensor, sign_lengths: Tensor, qi: Tensor, cj: Tensor,
                    max_cells: int = 2**25, num_threads: Optional[int] = SWEEP_THREADS, band: Optional[int] = None) -> Tensor:
    """dtw_similarity of the pairs (qi[p], cj[p]) alone, (P,), equal to its entries bit for bit:
    the same cells (picked, not multiplied) and the same sweep. qn: (Q, T, V) normalised queries."""
    Q, T, V = qn.shape
    S = sign_units.shape[1]
    frames = qn.neg().add_(1.0).permute(1, 0, 2).reshape(T, Q * V)  # (T, Q V): column q V + v holds 1 - q[t, v]
    step = max(1, max_cells // (T * S))
    out = [qn.new_empty(0)]
    for start in range(0, len(qi), step):
        q, c = qi[start : start + step], cj[start : start + step]
        picked = (sign_units[c].t() + q[None] * V).reshape(-1)  # (S P)
        cost = frames.index_select(1, picked).view(T, S, len(q))  # (T, S, P)
        dist = dtw_distance_cells(cost, gen_lengths[q], sign_lengths[c], num_threads, band)
        out.append(-dist / sign_lengths[c].to(dist.dtype))
    return torch.cat(out)
