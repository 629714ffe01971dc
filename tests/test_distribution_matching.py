"""The marginal statistics of eq. 8-11 against plain loops, and the two generated paths."""
from collections import Counter

import numpy as np
import pytest
import torch

from fairseq_signlang.criterions.distribution_matching import (
    expected_positional_unigram,
    expected_skipgram,
    pushed_skipgram,
    unit_positional_unigram,
    unit_skipgram,
)
from fairseq_signlang.metrics.retrieval import pad_sequences


def random_batch(rng, num_units, n=12):
    seqs = [torch.from_numpy(rng.integers(0, num_units, size=int(rng.integers(1, 9)))) for _ in range(n)]
    units, lengths = pad_sequences(seqs, pad_value=0)
    valid = torch.arange(units.shape[1])[None] < lengths[:, None]
    return seqs, units, valid


def test_unit_statistics_match_loops():
    rng = np.random.default_rng(0)
    V = 5
    seqs, units, valid = random_batch(rng, V)
    pos = unit_positional_unigram(units, valid, V)
    for i in range(units.shape[1]):
        c = Counter(int(s[i]) for s in seqs if len(s) > i)
        total = sum(c.values())
        expected = [c[v] / total if total else 0.0 for v in range(V)]
        np.testing.assert_allclose(pos[i].numpy(), expected, atol=1e-6)
    for k in (1, 3, 7):
        pairs = Counter((int(s[i]), int(s[i + k])) for s in seqs for i in range(len(s) - k))
        total = sum(pairs.values())
        expected = np.zeros((V, V))
        for (a, b), n in pairs.items():
            expected[a, b] = n / total
        np.testing.assert_allclose(unit_skipgram(units, valid, V, k).numpy(), expected, atol=1e-6)


def test_statistics_of_units_pushed_through_G_equal_expected_statistics():
    """For unit input, stats(x) @ G must equal the expectation over the per-token posteriors."""
    rng = np.random.default_rng(1)
    Vx, Vy = 6, 4
    _, units, valid = random_batch(rng, Vx)
    G = torch.from_numpy(rng.dirichlet(np.ones(Vy), size=Vx)).float()  # (Vx, Vy)
    probs = G[units]  # (B, T, Vy)
    torch.testing.assert_close(unit_positional_unigram(units, valid, Vx) @ G, expected_positional_unigram(probs, valid))
    for k in (1, 2, 5):
        torch.testing.assert_close(G.t() @ unit_skipgram(units, valid, Vx, k) @ G, expected_skipgram(probs, valid, k))
        # the criterion's sparse path: the same statistic, and the same gradient
        Gd, Gs = G.clone().requires_grad_(), G.clone().requires_grad_()
        dense, sparse = Gd.t() @ unit_skipgram(units, valid, Vx, k) @ Gd, pushed_skipgram(Gs, units, valid, k)
        torch.testing.assert_close(sparse, dense)
        weights = torch.rand_like(dense)
        (dense * weights).sum().backward()
        (sparse * weights).sum().backward()
        torch.testing.assert_close(Gs.grad, Gd.grad)


def test_criterion_in_half_precision_matches_float(known_mapping_corpus):
    """Under fp16/bf16 training the model's G is half precision; the statistics stay float32."""
    from fairseq import tasks

    from fairseq_signlang.criterions.unigram_skipgram_l1 import UnigramSkipgramL1Config, UnigramSkipgramL1Criterion
    from fairseq_signlang.models.speech2sign_u.linear_generator import Speech2SignUWordModel, Speech2SignUWordModelConfig
    from fairseq_signlang.tasks.speech2sign_u_word import Speech2SignUWordConfig

    task = tasks.TASK_REGISTRY["speech2sign_u_word"].setup_task(Speech2SignUWordConfig(data=known_mapping_corpus[0], seed=1))
    task.load_dataset("valid")
    dataset = task.datasets["valid"]
    sample = dataset.collater([{"id": i} for i in range(len(dataset))])
    torch.manual_seed(0)
    model = Speech2SignUWordModel.build_model(Speech2SignUWordModelConfig(), task)
    criterion = UnigramSkipgramL1Criterion(UnigramSkipgramL1Config(), task)
    full, _, _ = criterion(model, sample)
    half, _, _ = criterion(model.to(torch.bfloat16), sample)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=2e-2)
