"""The forward algorithm over a first-order chain of sign states (the sign n-gram model laid out
by SignNgramModel.chain): log p(x) = log sum over state paths of start, transitions, end and the
emissions of each speech position, for a padded batch at once, on whatever device the tensors
are. Decipherment's likelihood of a speech sentence is this sum."""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def state_units(states: Sequence[Tuple[int, ...]]) -> Tensor:
    """The unit each chain state emits (its last one): (S,), to expand unit emissions (B, T, V)
    to state emissions with `log_emit_units[..., state_units(states)]`."""
    return torch.tensor([s[-1] for s in states], dtype=torch.long)


def forward_log_likelihood(log_emit: Tensor, lengths: Tensor, log_start: Tensor, log_trans: Tensor, log_end: Tensor) -> Tensor:
    """log_emit (B, T, S): log p(x_t | state s); lengths (B,) >= 1; log_start (S,), log_trans
    (S, S), log_end (S,) -> (B,) log p(x_1..x_n), each sentence to its own length."""
    B, T, S = log_emit.shape
    if lengths.shape != (B,) or bool((lengths < 1).any()) or int(lengths.max()) > T:
        raise ValueError(f"lengths must be (B,) = ({B},) within 1..{T}, got {lengths.tolist()}")
    if log_start.shape != (S,) or log_trans.shape != (S, S) or log_end.shape != (S,):
        raise ValueError(f"the chain must have {S} states: start {tuple(log_start.shape)}, trans {tuple(log_trans.shape)}, end {tuple(log_end.shape)}")
    lengths = lengths.to(log_emit.device)
    alpha = log_start[None] + log_emit[:, 0]                                                    # (B, S)
    for t in range(1, T):
        step = torch.logsumexp(alpha[:, :, None] + log_trans[None], dim=1) + log_emit[:, t]  # (B, S)
        alpha = torch.where((t < lengths)[:, None], step, alpha)                             # padded: frozen
    return torch.logsumexp(alpha + log_end[None], dim=1)                                      # (B,)
