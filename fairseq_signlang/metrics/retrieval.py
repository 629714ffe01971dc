"""DTW retrieval between generated sign posteriors and sign unit sequences (speech2sign-U eq. 13).

Sim(X, Y) = -DTW(G(X), Y) / L with cosine distance between frames and L the length of Y.
Speech-to-sign (A->V) ranks the sign sequences for each speech query; sign-to-speech (V->A)
ranks the speech sequences for each sign query; both read the same similarity matrix.
"""
from typing import Dict, Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from torch import Tensor

from fairseq_signlang.metrics.dtw import SWEEP_THREADS, dtw_distance_cells

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
        # rows of q picked by unit id: out[t, s, c, :] = q[t, units[c, s], :]
        sim = q.index_select(1, candidates.t().reshape(-1)).view(q.shape[0], S, C, q.shape[2])
    else:
        # einsum may hand back a strided view: dtw_similarity reshapes the cells, so make them contiguous
        sim = torch.einsum("tvq,csv->tscq", q, F.normalize(candidates, dim=-1, eps=1e-8)).contiguous()
    return sim.neg_().add_(1.0)


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
) -> Tensor:
    """Similarity of every (speech, sign) pair.

    gen_probs: (Q, T, V) generator posteriors G(X) of the speech queries, padded;
    sign_frames: (C, S, V) sign frame features, or (C, S) sign unit ids (one-hot frames), padded.
    Returns (Q, C): -DTW / sign length. Queries are processed in chunks of at most
    ``max_cells`` cost-matrix cells so memory stays bounded on large splits; the sweep runs on
    ``num_threads`` torch threads on the CPU (metrics/dtw.py says why one).
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


def recall_at_k(scores: Tensor, ks: Iterable[int] = RECALL_KS) -> Dict[str, float]:
    """recall@k in % for both directions of a square (speech x sign) similarity matrix whose
    diagonal holds the true pairs: rows rank signs (A->V), columns rank speech (V->A)."""
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"recall_at_k needs a square similarity matrix, got {tuple(scores.shape)}")
    targets = torch.arange(scores.shape[0], device=scores.device)
    out = {}
    for direction, mat in (("a2v", scores), ("v2a", scores.t())):
        hits = recall_hits(*target_rank(mat, targets), ks)
        for k, h in hits.items():
            out[f"{direction}_recall@{k}"] = 100.0 * h / scores.shape[0]
    return out

