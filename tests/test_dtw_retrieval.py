"""Batched DTW against dtw-python, recall@k against a brute-force loop, the pruned ranking
against the full matrix."""
import numpy as np
import pytest
import torch
from dtw import dtw as reference_dtw
from scipy.spatial.distance import cdist

from fairseq_signlang.metrics import retrieval
from fairseq_signlang.metrics.dtw import dtw_distance, dtw_path
from fairseq_signlang.metrics.retrieval import (
    dtw_lower_bound,
    dtw_similarity,
    frame_cosine_cost,
    pad_sequences,
    pair_cosine_cost,
    pruned_recall_at_k,
    pruned_target_ranks,
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


def noisy_split(seed: int, n: int, units: int, noise: float, max_len: int = 9, sharp: bool = False):
    """n sign sentences and, for each, posteriors that read it: each position puts half its mass
    on its sign's unit with probability 1 - noise (one-hot frames with `sharp`: many exact ties)."""
    rng = np.random.default_rng(seed)
    signs = [rng.integers(0, units, size=int(rng.integers(1, max_len + 1))) for _ in range(n)]
    gen = []
    for s in signs:
        read = rng.random(len(s)) >= noise
        u = np.where(read, s, rng.integers(0, units, size=len(s)))
        p = np.eye(units)[u] if sharp else 0.5 * rng.dirichlet(np.full(units, 0.1), size=len(s)) + 0.5 * np.eye(units)[u] * read[:, None]
        gen.append(torch.from_numpy(p.astype(np.float32)))
    q, ql = pad_sequences(gen)
    c, cl = pad_sequences([torch.from_numpy(s) for s in signs], pad_value=0)
    return q, ql, c, cl


def count_aligned(monkeypatch) -> list:
    """Pairs the pruned ranking aligns, counted around pair_similarity."""
    seen, align = [], retrieval.pair_similarity
    monkeypatch.setattr(retrieval, "pair_similarity", lambda qn, gl, u, sl, qi, cj, *a, **k: seen.append(len(qi)) or align(qn, gl, u, sl, qi, cj, *a, **k))
    return seen


@pytest.mark.parametrize("case", [
    dict(seed=0, n=60, units=20, noise=1.0),  # queries unrelated to their signs: the cap settles most
    dict(seed=1, n=80, units=30, noise=0.2),  # good readings: the bound rules out most candidates
    dict(seed=2, n=70, units=3, noise=0.5, max_len=3, sharp=True),  # a few short sentences over 3 units: exact ties
    dict(seed=3, n=40, units=10, noise=0.5, band=1, max_cells=200, ks=(1, 3)),
])
def test_pruned_ranking_equals_full_matrix(case, monkeypatch):
    case = dict(case)
    opts = {k: case.pop(k) for k in ("band", "max_cells") if k in case}
    ks = case.pop("ks", (1, 5, 10))
    q, ql, c, cl = noisy_split(**case)
    scores = dtw_similarity(q, ql, c, cl, **opts)
    assert pruned_recall_at_k(q, ql, c, cl, ks, **opts) == recall_at_k(scores, ks)  # equal floats, not close ones
    aligned = count_aligned(monkeypatch)
    ranks = pruned_target_ranks(q, ql, c, cl, max(ks), **opts)
    targets = torch.arange(len(q))
    for direction, mat in (("a2v", scores), ("v2a", scores.t())):
        better, ties = target_rank(mat, targets)
        pruned_better, pruned_ties = ranks[direction]
        assert torch.equal(pruned_better, better.clamp(max=max(ks)))
        assert torch.equal(pruned_ties[better < max(ks)], ties[better < max(ks)])
        if case["units"] == 3:
            assert int(ties[better < max(ks)].sum()) > 100  # ties that recall reads were there to count
    if case["noise"] == 0.2:
        assert sum(aligned) < 0.1 * len(q) ** 2  # the bound ruled out most pairs


@pytest.mark.parametrize("seed", range(4))
def test_lower_bound_never_exceeds_dtw(seed):
    """Queries with negative entries too (features, not posteriors), lengths from 1, float64 so
    that no rounding hides a bound above the distance."""
    rng = np.random.default_rng(seed)
    n, units = 30, 12
    gen = [torch.from_numpy(rng.normal(size=(int(rng.integers(1, 10)), units)) + (rng.random() < 0.5) * 2.0) for _ in range(n)]
    signs = [torch.from_numpy(rng.integers(0, units, size=int(rng.integers(1, 10)))) for _ in range(n)]
    q, ql = pad_sequences(gen)
    c, cl = pad_sequences(signs, pad_value=0)
    distance = -dtw_similarity(q, ql, c, cl)
    bound = dtw_lower_bound(torch.nn.functional.normalize(q, dim=-1, eps=1e-8), ql, c, cl)
    assert bound.shape == distance.shape and bool((bound <= distance + 1e-12).all())
    assert float((bound / distance).mean()) > 0.5  # and not trivially loose


def test_band_equals_full_dtw_when_wide_and_dtw_python_on_equal_lengths():
    rng = np.random.default_rng(7)
    costs = [rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12)))) for _ in range(30)]
    batch = np.full((30, 11, 11), 5.0)
    for p, cst in enumerate(costs):
        batch[p, : cst.shape[0], : cst.shape[1]] = cst
    n, m = torch.tensor([x.shape[0] for x in costs]), torch.tensor([x.shape[1] for x in costs])
    full = dtw_distance(torch.from_numpy(batch), n, m)
    assert torch.equal(dtw_distance(torch.from_numpy(batch), n, m, band=11), full)
    narrow = dtw_distance(torch.from_numpy(batch), n, m, band=0)
    assert bool((narrow >= full).all() and narrow.isfinite().all())  # the band widens by the length difference
    square = rng.random((5, 9, 9))
    for w in (0, 1, 3):
        expected = [reference_dtw(x, window_type="sakoechiba", window_args={"window_size": w}).distance for x in square]
        np.testing.assert_allclose(dtw_distance(torch.from_numpy(square), band=w).numpy(), expected, atol=1e-9)


def test_pruned_ranking_refuses_bad_arguments():
    q, ql, c, cl = noisy_split(seed=4, n=5, units=4, noise=0.5)
    with pytest.raises(ValueError, match="unit ids"):
        pruned_target_ranks(q, ql, torch.nn.functional.one_hot(c, 4).float(), cl)
    with pytest.raises(ValueError, match="as many queries as candidates"):
        pruned_target_ranks(q, ql, c[:4], cl[:4])
    with pytest.raises(ValueError, match="cap"):
        pruned_target_ranks(q, ql, c, cl, cap=0)
    with pytest.raises(ValueError, match="band"):
        pruned_target_ranks(q, ql, c, cl, band=-1)
    with pytest.raises(ValueError, match="within 1"):
        pruned_target_ranks(q, ql.clamp(max=0), c, cl)


def test_task_option_gives_the_same_validation_recall(tmp_path):
    """retrieval_prune: the per-batch hits fairseq sums at validation and evaluate_split's recall
    are those of the full matrix."""
    from omegaconf import OmegaConf

    from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask
    from fairseq_signlang.tools.evaluation import evaluate_split

    from .gan_corpora import char_task_folder

    data = char_task_folder(str(tmp_path / "data"), num_train=20, num_valid=40)["data"]
    results = {}
    for prune in (False, True):
        task = Speech2SignUCharTask.setup_task(Speech2SignUCharConfig(data=data, seed=1, retrieval_prune=prune))
        task.load_dataset("valid")
        torch.manual_seed(0)
        model = task.build_model(OmegaConf.create({"_name": "speech2sign_u_char"})).eval()
        batches = [task.datasets["valid"].collater([{"id": i} for i in ids]) for ids in (range(0, 25), range(25, 40))]
        hits = [task._retrieval_hits(model, {**b, "split": "valid"}) for b in batches]
        results[prune] = hits, evaluate_split(model, task, "valid")
    assert results[True][0] == results[False][0]
    full, pruned = results[False][1], results[True][1]
    assert {k: v for k, v in pruned.items() if "recall" in k} == {k: v for k, v in full.items() if "recall" in k}
    assert pruned["rankings"]["a2v"]["capped_at"] == 10 and "top" not in pruned["rankings"]["a2v"]
    assert pruned["rankings"]["v2a"]["better_than_true"] == [min(b, 10) for b in full["rankings"]["v2a"]["better_than_true"]]
