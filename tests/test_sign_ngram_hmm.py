"""Building blocks of decipherment (issue 14, in progress): the sign n-gram model against its
counts, and the forward algorithm against a brute-force sum over every state path."""
import itertools
import math

import pytest
import torch

from fairseq_signlang.models.speech2sign_u.hmm import forward_log_likelihood, state_units
from fairseq_signlang.models.speech2sign_u.sign_ngram import EOS, SignNgramModel

SENTENCES = [[0, 1, 2], [1, 2], [2, 0, 1, 1], [0], [2, 2, 1], [0, 1, 2]]
BINARY = [[0, 1], [1, 1, 0], [0], [1, 0, 1], [0, 0]]  # two units: order 3 has 2 + 4 states


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_sum_to_one_for_every_history(order):
    model = SignNgramModel(SENTENCES, num_units=3, order=order)
    for previous in ([], [0], [1, 2], [2, 2], [0, 0, 0]):
        history = model.history(previous)
        assert sum(model.prob(history, s) for s in (0, 1, 2, EOS)) == pytest.approx(1.0, abs=1e-12)


def test_bigram_against_its_counts():
    """Interpolated Kneser-Ney by hand: P(u | h) = max(c(h u) - D, 0) / c(h) + D * N1+(h .) / c(h) * P_cont(u)."""
    model = SignNgramModel(SENTENCES, num_units=3, order=2)
    bigrams = {(0, 1): 3, (1, 2): 3, (1, 1): 1, (2, 0): 1, (2, 2): 1, (2, 1): 1}
    assert all(model.counts[1][g] == n for g, n in bigrams.items())
    assert model.counts[1][(1, EOS)] == 2 and model.counts[1][(-1, 0)] == 3  # two sentences end in 1, three start with 0
    ones = sum(1 for n in model.counts[1].values() if n == 1)
    twos = sum(1 for n in model.counts[1].values() if n == 2)
    assert model.discounts[1] == pytest.approx(ones / (ones + 2 * twos))
    # continuation counts: distinct left contexts of each unit
    assert model.counts[0][(1,)] == len({h for (h, u) in model.counts[1] if u == 1})
    d1, d0 = model.discounts[1], model.discounts[0]
    cont_total = sum(model.counts[0].values())
    p_cont = (max(model.counts[0][(2,)] - d0, 0) + d0 * len(model.counts[0]) / 4) / cont_total  # uniform base over 3 units + </s>
    c_h = sum(n for (h, _), n in model.counts[1].items() if h == 1)
    types_h = sum(1 for (h, _) in model.counts[1] if h == 1)
    expected = (3 - d1) / c_h + d1 * types_h / c_h * p_cont
    assert model.prob((1,), 2) == pytest.approx(expected)


def test_sentence_probability_is_the_product_along_it():
    model = SignNgramModel(SENTENCES, num_units=3, order=2)
    chain = model.prob((-1,), 0) * model.prob((0,), 1) * model.prob((1,), EOS)
    assert model.log_prob([0, 1]) == pytest.approx(math.log(chain))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_chain_scores_sentences_as_the_model_does(order):
    model = SignNgramModel(SENTENCES, num_units=3, order=order)
    log_start, log_trans, log_end, states = model.chain()
    index = {s: i for i, s in enumerate(states)}
    k = max(order - 1, 1)
    for sentence in ([2], [0, 1, 2], [2, 2, 0, 1]):
        padded = [-1] * (k - 1) + sentence
        path = [index[tuple(padded[i : i + k])] for i in range(len(sentence))]
        score = log_start[path[0]] + sum(log_trans[a, b] for a, b in zip(path, path[1:])) + log_end[path[-1]]
        assert float(score) == pytest.approx(model.log_prob(sentence))


def brute_force(log_emit, n, log_start, log_trans, log_end):
    S = log_start.shape[0]
    terms = []
    for path in itertools.product(range(S), repeat=n):
        s = log_start[path[0]] + log_end[path[-1]] + sum(log_emit[t, path[t]] for t in range(n))
        s = s + sum(log_trans[a, b] for a, b in zip(path, path[1:]))
        terms.append(s)
    return torch.logsumexp(torch.stack(terms), 0)



@pytest.mark.parametrize("order", [1, 2, 3])
def test_chain_equals_prob_to_the_last_bit(order):
    """chain() takes whole probability vectors (prob_vector); every entry is still math.log(prob)."""
    model = SignNgramModel(BINARY if order == 3 else SENTENCES, num_units=2 if order == 3 else 3, order=order)
    log_start, log_trans, log_end, states = model.chain()
    index = {s: i for i, s in enumerate(states)}
    context = (lambda s: s) if order > 1 else (lambda s: ())
    for s in states:
        assert log_end[index[s]].item() == math.log(model.prob(context(s), EOS))
        for u in range(model.num_units):
            assert log_trans[index[s], index[s[1:] + (u,)]].item() == math.log(model.prob(context(s), u))
    k = max(order - 1, 1)
    for u in range(model.num_units):
        assert log_start[index[(-1,) * (k - 1) + (u,)]].item() == math.log(model.prob(model.history([]), u))

@pytest.mark.parametrize("order", [2, 3])
def test_forward_equals_the_sum_over_all_paths(order):
    torch.manual_seed(order)
    model = SignNgramModel(BINARY, num_units=2, order=3) if order == 3 else SignNgramModel(SENTENCES, num_units=3, order=2)
    log_start, log_trans, log_end, states = model.chain()
    units = state_units(states)
    emit_units = torch.randn(3, 4, model.num_units, dtype=torch.float64).log_softmax(-1)  # (B, T, V)
    log_emit = emit_units[..., units]                                                   # (B, T, S)
    lengths = torch.tensor([4, 1, 3])
    got = forward_log_likelihood(log_emit, lengths, log_start, log_trans, log_end)
    for b, n in enumerate(lengths.tolist()):
        assert float(got[b]) == pytest.approx(float(brute_force(log_emit[b], n, log_start, log_trans, log_end)), abs=1e-9)


def test_forward_is_differentiable_and_checks_its_input():
    model = SignNgramModel(SENTENCES, num_units=3, order=2)
    log_start, log_trans, log_end, states = model.chain()
    logits = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    ll = forward_log_likelihood(logits.log_softmax(-1)[..., state_units(states)], torch.tensor([3, 2]), log_start, log_trans, log_end)
    ll.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[1, 2].abs().sum() == 0  # padding gets no gradient
    with pytest.raises(ValueError, match="lengths"):
        forward_log_likelihood(logits.detach(), torch.tensor([4, 2]), log_start, log_trans, log_end)
    with pytest.raises(ValueError, match="unit 5 outside 0..2"):
        SignNgramModel([[0, 5]], num_units=3)
