"""Batched DTW against dtw-python, recall@k against a brute-force loop."""
import numpy as np
import pytest
import torch
from dtw import dtw as reference_dtw
from scipy.spatial.distance import cdist

from fairseq_signlang.metrics.dtw import dtw_distance, dtw_path
from fairseq_signlang.metrics.retrieval import (
    dtw_similarity,
    frame_cosine_cost,
    pad_sequences,
    pair_cosine_cost,
    target_rank,
    recall_at_k,
)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (2, 2), (7, 9), (13, 5), (30, 31)])
def test_distance_matches_dtw_python(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.random(shape)
        ours = dtw_distance(torch.from_numpy(cost)[None])[0].item()
        assert ours == pytest.approx(reference_dtw(cost).distance, abs=1e-5)


def test_padded_batch_matches_each_pair():
    rng = np.random.default_rng(0)
    costs = [rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12)))) for _ in range(40)]
    N = max(c.shape[0] for c in costs)
    M = max(c.shape[1] for c in costs)
    batch = np.full((len(costs), N, M), 7.0)  # padding must not leak into any distance
    for p, c in enumerate(costs):
        batch[p, : c.shape[0], : c.shape[1]] = c
    n = torch.tensor([c.shape[0] for c in costs])
    m = torch.tensor([c.shape[1] for c in costs])
    ours = dtw_distance(torch.from_numpy(batch), n, m).numpy()
    expected = [reference_dtw(c).distance for c in costs]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_float32_batch_close_to_reference():
    rng = np.random.default_rng(1)
    cost = rng.random((64, 20, 17))
    ours = dtw_distance(torch.from_numpy(cost).float()).numpy()
    np.testing.assert_allclose(ours, [reference_dtw(c).distance for c in cost], rtol=1e-5)


def test_path_matches_dtw_python():
    rng = np.random.default_rng(2)
    for shape in [(1, 4), (4, 1), (8, 8), (12, 7), (5, 16)]:
        cost = rng.random(shape)
        dist, i1, i2 = dtw_path(cost)
        ref = reference_dtw(cost)
        assert dist == pytest.approx(ref.distance, abs=1e-9)
        np.testing.assert_array_equal(i1, ref.index1)
        np.testing.assert_array_equal(i2, ref.index2)


def test_dtw_path_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        dtw_path(np.zeros((0, 3)))


def test_unit_ids_cost_equals_one_hot_cosine():
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.random((3, 5, 7)))
    units = torch.from_numpy(rng.integers(0, 7, size=(4, 6)))
    one_hot = torch.nn.functional.one_hot(units, 7).double()
    cost = frame_cosine_cost(q, units)
    assert cost.shape == (5, 6, 4, 3)  # (T, S, C, Q)
    torch.testing.assert_close(cost, frame_cosine_cost(q, one_hot))
    expected = cdist(q[1].numpy(), one_hot[2].numpy(), metric="cosine")
    np.testing.assert_allclose(pair_cosine_cost(q[1], units[2]).numpy(), expected, atol=1e-12)


def test_similarity_matches_dtw_python_with_cosine_distance():
    rng = np.random.default_rng(4)
    queries = [torch.from_numpy(rng.random((int(rng.integers(2, 9)), 6))) for _ in range(5)]
    signs = [torch.from_numpy(rng.integers(0, 6, size=int(rng.integers(2, 9)))) for _ in range(4)]
    q, ql = pad_sequences(queries)
    s, sl = pad_sequences(signs, pad_value=0)
    sim = dtw_similarity(q, ql, s, sl, max_cells=50)  # small chunks exercise the chunking
    for i, x in enumerate(queries):
        for j, y in enumerate(signs):
            frames = np.eye(6)[y.numpy()]
            expected = -reference_dtw(cdist(x.numpy(), frames, metric="cosine")).distance / len(y)
            assert sim[i, j].item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("max_cells", [50, 2**25])
def test_similarity_of_feature_sign_frames_matches_dtw_python(max_cells):
    """Sign frames as features (C, S, V), several queries and candidates: the documented input
    that a non-contiguous cost tensor once broke."""
    rng = np.random.default_rng(5)
    queries = [torch.from_numpy(rng.random((int(rng.integers(2, 9)), 6))) for _ in range(5)]
    signs = [torch.from_numpy(rng.random((int(rng.integers(2, 9)), 6))) for _ in range(4)]
    q, ql = pad_sequences(queries)
    s, sl = pad_sequences(signs)
    sim = dtw_similarity(q, ql, s, sl, max_cells=max_cells)
    assert sim.shape == (5, 4)
    for i, x in enumerate(queries):
        for j, y in enumerate(signs):
            expected = -reference_dtw(cdist(x.numpy(), y.numpy(), metric="cosine")).distance / len(y)
            assert sim[i, j].item() == pytest.approx(expected, abs=1e-6)


def brute_force_recall(scores: np.ndarray, k: int) -> float:
    """Expected recall@k under random tie-breaking, by walking every place the target can take."""
    hits = 0.0
    for i, row in enumerate(scores):
        better = sum(1 for s in row if s > row[i])
        ties = sum(1 for j, s in enumerate(row) if s == row[i] and j != i)
        places = range(better, better + ties + 1)  # equally likely
        hits += sum(p < k for p in places) / len(places)
    return 100.0 * hits / len(scores)


@pytest.mark.parametrize("n", [1, 3, 7, 25])
def test_recall_matches_brute_force(n):
    rng = np.random.default_rng(n)
    scores = np.round(rng.random((n, n)), 1)  # rounding makes ties
    ours = recall_at_k(torch.from_numpy(scores))
    for k in (1, 5, 10):
        assert ours[f"a2v_recall@{k}"] == pytest.approx(brute_force_recall(scores, k))
        assert ours[f"v2a_recall@{k}"] == pytest.approx(brute_force_recall(scores.T, k))
    if n < 5:  # fewer items than k: every target is in the top k
        assert ours["a2v_recall@5"] == 100.0 and ours["v2a_recall@10"] == 100.0


def test_constant_scores_give_chance_recall():
    """A model that cannot tell candidates apart must not profit from their order."""
    ours = recall_at_k(torch.zeros(40, 40))
    assert ours["a2v_recall@1"] == pytest.approx(100 / 40) and ours["v2a_recall@10"] == pytest.approx(100 * 10 / 40)


def test_target_rank():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.3, 0.3]])
    better, ties = target_rank(scores, torch.tensor([2, 1]))
    assert better.tolist() == [1, 0] and ties.tolist() == [0, 2]


def test_recall_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        recall_at_k(torch.zeros(2, 3))


def test_empty_sequences_are_refused():
    with pytest.raises(ValueError, match="within 1"):
        dtw_distance(torch.rand(2, 3, 3), torch.tensor([3, 0]), torch.tensor([3, 3]))
