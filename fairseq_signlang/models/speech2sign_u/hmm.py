"""The forward algorithm over a first-order chain of sign states (the sign n-gram model laid out
by SignNgramModel.chain, or the bigram with learned states per unit of split_states.py):
log p(x) = log sum over state paths of start, transitions, end and the emissions of each speech
position, for a padded batch at once, on whatever device the tensors are. Decipherment's
likelihood of a speech sentence is this sum; its E-step needs the state posteriors too
(`forward_backward`), its decoding the best path (`viterbi`)."""
import logging
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from fairseq_signlang.models.speech2sign_u.sign_ngram import SignNgramModel
from fairseq_signlang.models.speech2sign_u.split_states import fit_split_bigram

logger = logging.getLogger(__name__)


def state_units(states: Sequence[Tuple[int, ...]]) -> Tensor:
    """The unit each chain state emits (its last one): (S,), to expand unit emissions (B, T, V)
    to state emissions with `log_emit_units[..., state_units(states)]`."""
    return torch.tensor([s[-1] for s in states], dtype=torch.long)


def check_chain_input(emit: Tensor, lengths: Tensor, start: Tensor, trans: Tensor, end: Tensor) -> None:
    B, T, S = emit.shape
    if lengths.shape != (B,) or bool((lengths < 1).any()) or int(lengths.max()) > T:
        raise ValueError(f"lengths must be (B,) = ({B},) within 1..{T}, got {lengths.tolist()}")
    if start.shape != (S,) or trans.shape != (S, S) or end.shape != (S,):
        raise ValueError(f"the chain must have {S} states: start {tuple(start.shape)}, trans {tuple(trans.shape)}, end {tuple(end.shape)}")


def forward_log_likelihood(log_emit: Tensor, lengths: Tensor, log_start: Tensor, log_trans: Tensor, log_end: Tensor) -> Tensor:
    """log_emit (B, T, S): log p(x_t | state s); lengths (B,) >= 1; log_start (S,), log_trans
    (S, S), log_end (S,) -> (B,) log p(x_1..x_n), each sentence to its own length."""
    B, T, S = log_emit.shape
    check_chain_input(log_emit, lengths, log_start, log_trans, log_end)
    lengths = lengths.to(log_emit.device)
    alpha = log_start[None] + log_emit[:, 0]                                                    # (B, S)
    for t in range(1, T):
        step = torch.logsumexp(alpha[:, :, None] + log_trans[None], dim=1) + log_emit[:, t]  # (B, S)
        alpha = torch.where((t < lengths)[:, None], step, alpha)                             # padded: frozen
    return torch.logsumexp(alpha + log_end[None], dim=1)                                      # (B,)


def forward_backward(emit: Tensor, lengths: Tensor, start: Tensor, trans: Tensor, end: Tensor) -> Tuple[Tensor, Tensor]:
    """The scaled forward-backward algorithm in probability space, where each step is one matrix
    product (the log-space `forward_log_likelihood` is the reference it is tested against).

    emit (B, T, S): p(x_t | state s) up to a factor per position (scaled emissions are fine: the
    posteriors do not see such factors, the log-likelihood shifts by their logs); lengths (B,);
    start (S,), trans (S, S), end (S,) as probabilities -> (log-likelihood (B,), state posteriors
    (B, T, S), zero past each sentence's end). Sentences are taken in groups of equal length, so
    no step is spent on padding."""
    B, T, S = emit.shape
    check_chain_input(emit, lengths, start, trans, end)
    lengths = lengths.to(emit.device)
    log_likelihood = emit.new_zeros(B)
    posteriors = torch.zeros_like(emit)
    for n in lengths.unique().tolist():
        rows = (lengths == n).nonzero()[:, 0]
        e = emit[rows, :n]                                                   # (b, n, S)
        alpha = torch.empty_like(e)
        a = start * e[:, 0]
        for t in range(n):
            if t:
                a = (a @ trans) * e[:, t]
            scale = a.sum(1, keepdim=True)                                   # p(x_t | x_<t)
            alpha[:, t] = a = a / scale
            log_likelihood[rows] += scale[:, 0].log()
        log_likelihood[rows] += (a @ end).log()
        gamma = torch.empty_like(e)
        b = end.expand_as(a)
        for t in range(n - 1, -1, -1):
            if t < n - 1:
                b = (e[:, t + 1] * b) @ trans.t()
                b = b / b.sum(1, keepdim=True)
            g = alpha[:, t] * b
            gamma[:, t] = g / g.sum(1, keepdim=True)
        posteriors[rows, :n] = gamma
    return log_likelihood, posteriors


def viterbi(log_emit: Tensor, lengths: Tensor, log_start: Tensor, log_trans: Tensor, log_end: Tensor, max_cells: int = 2**25) -> Tensor:
    """The most probable state path of each sentence: (B, T) state ids, -1 past each end.
    Sentences of one length go max_cells / S^2 at a time (each step scores S x S moves)."""
    B, T, S = log_emit.shape
    lengths = lengths.to(log_emit.device)
    paths = torch.full((B, T), -1, dtype=torch.long, device=log_emit.device)
    chunk = max(1, max_cells // (S * S))
    for n in lengths.unique().tolist():
        for rows in (lengths == n).nonzero()[:, 0].split(chunk):
            e = log_emit[rows, :n]
            score = log_start + e[:, 0]                                          # (b, S)
            back = []
            for t in range(1, n):
                score, arg = (score[:, :, None] + log_trans).max(1)              # best predecessor of each state
                score = score + e[:, t]
                back.append(arg)
            state = (score + log_end).argmax(1)
            path = [state]
            for arg in reversed(back):
                state = arg.gather(1, state[:, None])[:, 0]
                path.append(state)
            paths[rows, :n] = torch.stack(path[::-1], 1)
    return paths


def scaled_emissions(model, net_output, unit_frequency=None) -> Tuple[Tensor, Tensor]:
    """(G, p(y)): the generator's posteriors, which divided by p(y), its marginal over the speech,
    are emissions p(x | y) / p(x) (hybrid HMM acoustic models' scaled likelihoods). Speech units:
    G is the (X, C) matrix and p(y) = unit_frequency @ G. Features: G is per token, (B, T, C),
    and p(y) its mean over the batch's words."""
    if "unit_posteriors" in net_output:
        G = net_output["unit_posteriors"]
        return G, unit_frequency.to(G) @ G
    G = model.get_normalized_probs(net_output, log_probs=False)
    return G, G[~net_output["padding_mask"]].mean(0)


def token_emissions(G: Tensor, prior: Tensor, net_output, rows=slice(None), n=None) -> Tensor:
    """G(y | x_t) / p(y) for the first n words of sentences `rows`: (b, n, C)."""
    per_token = G[net_output["units"][rows, :n]] if "units" in net_output else G[rows, :n]
    return per_token / prior.clamp(min=1e-30)


class SignChain:
    """A sign n-gram model laid out for the forward algorithm, in probability space over the
    generator's output classes: `units` (S,) is the output class each state emits, so state
    emissions are `unit_emissions[..., chain.units]`. `self_loop` > 0 lets a state repeat itself
    with that probability (a letter that spans several speech segments)."""

    # a first-order chain over this many states is one dense (S, S) matrix product per step
    MAX_STATES = 4096

    def __init__(self, ngram: SignNgramModel, first_unit: int = 0, self_loop: float = 0.0, states_per_unit: int = 1,
                 sentences: Optional[Sequence[Sequence[int]]] = None, split_iterations: int = 60, seed: int = 0):
        """states_per_unit > 1: the bigram with that many latent states per unit, learned by EM
        on `sentences` (the corpus `ngram` counted; split_states.py)."""
        if states_per_unit < 1:
            raise ValueError(f"states_per_unit must be at least 1, got {states_per_unit}")
        if states_per_unit > 1:
            states = ngram.num_units * states_per_unit
        else:
            states = (ngram.num_units + ngram.num_units**2) if ngram.order >= 3 else ngram.num_units
        if ngram.order > 3 or states > self.MAX_STATES:
            raise ValueError(
                f"a sign n-gram of order {ngram.order} over {ngram.num_units} units with {states_per_unit} state(s) per "
                f"unit needs {states} chain states (at most {self.MAX_STATES}): use order 2 and fewer states per unit"
            )
        if not 0.0 <= self_loop < 1.0:
            raise ValueError(f"self_loop must be in [0, 1), got {self_loop}")
        if states_per_unit > 1:
            if sentences is None:
                raise ValueError("states_per_unit > 1 learns the states from the sign corpus: pass its sentences")
            start, trans, end, units = fit_split_bigram(sentences, ngram, states_per_unit, split_iterations, seed=seed, log=logger.info)
        else:
            log_start, log_trans, log_end, chain_states = ngram.chain()
            start, trans, end, units = log_start.exp(), log_trans.exp(), log_end.exp(), state_units(chain_states)
        if self_loop:
            trans = (1 - self_loop) * trans + self_loop * torch.eye(len(units), dtype=trans.dtype)
        self.start, self.trans, self.end = start.float(), trans.float(), end.float()
        self.units = units + first_unit

    def to(self, device) -> "SignChain":
        for name in ("start", "trans", "end", "units"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def log_likelihood_and_posteriors(self, unit_emit: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """unit_emit (B, T, C) over output classes -> (B,) log-likelihood, (B, T, C) posteriors
        of each output class (summed over the states that emit it)."""
        ll, state_post = forward_backward(unit_emit[..., self.units], lengths, self.start, self.trans, self.end)
        post = unit_emit.new_zeros(unit_emit.shape)
        post.index_add_(2, self.units, state_post)
        return ll, post

    def best_units(self, unit_emit: Tensor, lengths: Tensor) -> Tensor:
        """The Viterbi path as output classes: (B, T), -1 past each end."""
        logs = [x.log() for x in (self.start, self.trans, self.end)]
        path = viterbi(unit_emit[..., self.units].clamp(min=1e-30).log(), lengths, *logs)
        return torch.where(path >= 0, self.units[path.clamp(min=0)], path)
