"""A sign bigram with latent states: each sign unit is emitted by `k` hidden states whose
transitions are learned by EM on the sign corpus, so one unit can keep several contexts.

Why: where two words share a sign (look-alike signs), the plain bigram after that unit mixes
both words' followers, and decipherment raises its likelihood by reading one of the two words as
some other sign whose bigram fits it better (the 100-word hidden-pairing benchmark: every speech
unit it misread beyond the oracle's errors belonged to such a pair). With a state per context
the shared unit predicts each word's followers from its own state.

The model is an HMM over the sign corpus whose emissions are fixed: state (u, a) emits unit u.
It starts from the Kneser-Ney bigram spread evenly over each unit's states with a seeded
perturbation (identical states would stay identical under EM), and each M-step mixes
`smoothing` of that bigram back in, so transitions never seen in the corpus keep the bigram's
probability. A sentence's forward pass touches only the k states of each of its units: O(k^2)
per token.
"""
from collections import defaultdict
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor

from fairseq_signlang.models.speech2sign_u.sign_ngram import SignNgramModel


def _sentence_counts(units: Tensor, start: Tensor, trans: Tensor, end: Tensor):
    """Scaled forward-backward of n sentences of one length L over the unit blocks of the split
    chain (start (V, k), trans (V, k, V, k), end (V, k)): their log-likelihood and the expected
    start (n, k), pair (L-1, n, k, k) and end (n, k) counts."""
    n, L = units.shape
    alpha = start.new_empty(n, L, start.shape[1])
    scale = start.new_empty(n, L)
    a = start[units[:, 0]]
    scale[:, 0] = a.sum(1)
    alpha[:, 0] = a / scale[:, 0, None]
    blocks = [trans[units[:, t - 1], :, units[:, t], :] for t in range(1, L)]  # each (n, k, k)
    for t in range(1, L):
        a = torch.bmm(alpha[:, t - 1, None, :], blocks[t - 1])[:, 0]
        scale[:, t] = a.sum(1)
        alpha[:, t] = a / scale[:, t, None]
    last = end[units[:, L - 1]]
    finish = (alpha[:, L - 1] * last).sum(1)
    beta = torch.empty_like(alpha)
    beta[:, L - 1] = last / finish[:, None]
    for t in range(L - 1, 0, -1):
        beta[:, t - 1] = torch.bmm(blocks[t - 1], beta[:, t, :, None])[..., 0] / scale[:, t, None]
    gamma = alpha * beta                                                    # (n, L, k), rows sum to 1
    pairs = [alpha[:, t - 1, :, None] * blocks[t - 1] * beta[:, t, None, :] / scale[:, t, None, None] for t in range(1, L)]
    log_likelihood = scale.log().sum(1) + finish.log()
    return log_likelihood, gamma[:, 0], pairs, gamma[:, L - 1]


def fit_split_bigram(
    sentences: Sequence[Sequence[int]],
    ngram: SignNgramModel,
    states_per_unit: int,
    iterations: int = 60,
    smoothing: float = 0.1,
    seed: int = 0,
    log: Optional[Callable[[str], None]] = None,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(start (S,), trans (S, S), end (S,), units (S,)) in probability space, S = V k: state
    u k + a is unit u's a-th state. `ngram` is the order-2 model of the same sentences."""
    if ngram.order != 2:
        raise ValueError(f"latent states split a bigram: the sign n-gram must be of order 2, not {ngram.order}")
    if states_per_unit < 2:
        raise ValueError(f"states_per_unit must be at least 2, got {states_per_unit}")
    if not 0 < smoothing < 1:
        raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")
    V, k = ngram.num_units, states_per_unit
    S = V * k
    log_start, log_trans, log_end, _ = ngram.chain()                        # order 2: state i emits unit i
    base_start = log_start.exp().repeat_interleave(k) / k
    base_trans = log_trans.exp().repeat_interleave(k, 0).repeat_interleave(k, 1) / k
    base_end = log_end.exp().repeat_interleave(k)
    draws = torch.Generator().manual_seed(seed)
    start = base_start * (1 + 0.2 * torch.rand(S, generator=draws, dtype=torch.float64))
    start = start * base_start.sum() / start.sum()
    trans = base_trans * (1 + 0.2 * torch.rand(S, S, generator=draws, dtype=torch.float64))
    end = base_end.clone()
    total = trans.sum(1) + end
    trans, end = trans / total[:, None], end / total
    by_length = defaultdict(list)
    for sentence in sentences:
        if len(sentence):
            by_length[len(sentence)].append([int(u) for u in sentence])
    groups = [torch.tensor(rows) for rows in by_length.values()]
    for iteration in range(iterations):
        start_counts = torch.zeros(V, k, dtype=torch.float64)
        end_counts = torch.zeros(V, k, dtype=torch.float64)
        pair_counts = torch.zeros(V * V, k, k, dtype=torch.float64)        # (u, v) -> (a, b)
        log_likelihood = 0.0
        for units in groups:
            ll, first, pairs, last = _sentence_counts(units, start.view(V, k), trans.view(V, k, V, k), end.view(V, k))
            log_likelihood += float(ll.sum())
            start_counts.index_add_(0, units[:, 0], first)
            end_counts.index_add_(0, units[:, -1], last)
            for t, xi in enumerate(pairs, start=1):
                pair_counts.index_add_(0, units[:, t - 1] * V + units[:, t], xi)
        moves = pair_counts.view(V, V, k, k).permute(0, 2, 1, 3).reshape(S, S)
        ends = end_counts.reshape(S)
        visits = moves.sum(1) + ends
        seen = visits > 0
        trans = (1 - smoothing) * torch.where(seen[:, None], moves / visits.clamp(min=1e-300)[:, None], base_trans) + smoothing * base_trans
        end = (1 - smoothing) * torch.where(seen, ends / visits.clamp(min=1e-300), base_end) + smoothing * base_end
        firsts = start_counts.reshape(S)
        start = base_start.sum() * (1 - smoothing) * firsts / firsts.sum() + smoothing * base_start  # keeps the empty sentence's share
        if log is not None and (iteration + 1) % 10 == 0:
            log(f"split sign bigram, EM iteration {iteration + 1}: log-likelihood {log_likelihood:.1f}")
    return start, trans, end, torch.arange(S) // k
