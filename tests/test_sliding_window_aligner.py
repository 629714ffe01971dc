"""USLNet's sliding-window aligner (section 2.3): window layout, eq. 8-10's soft weights, the
hard connection, the pooling baseline, padded batches, both aligner directions, the picture."""
import math
import os
import runpy

import pytest
import torch

from fairseq_signlang.models.uslnet.sliding_window_aligner import (SlidingWindowAligner, length_mapper, length_weights,
                                                            window_of)

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# m > n, m < n and m == n, with and without remainders, down to single positions
SHAPES = [(6, 4), (7, 3), (10, 4), (5, 4), (37, 8), (3, 1), (4, 6), (4, 9), (2, 7), (1, 5), (8, 37), (1, 1), (5, 5)]


@pytest.mark.parametrize("m,n", SHAPES)
def test_windows_cover_the_source_in_order(m, n):
    windows = [window_of(i, m, n) for i in range(n)]
    assert all(last - first == math.ceil(m / n) for first, last in windows)
    assert windows[0][0] == 0 and windows[-1][1] == m
    for (f0, l0), (f1, l1) in zip(windows, windows[1:]):  # monotone, no gap between neighbours
        assert f0 <= f1 <= l0 and l0 <= l1
    assert set().union(*(range(f, l) for f, l in windows)) == set(range(m))
    if m < n:  # runs of at most ceil(n / m) consecutive targets share one source position
        runs = [sum(1 for f, _ in windows if f == j) for j in range(m)]
        assert min(runs) >= 1 and max(runs) <= math.ceil(n / m)
    if m == n:
        assert windows == [(i, i + 1) for i in range(n)]


@pytest.mark.parametrize("m,n", SHAPES)
def test_soft_weights_peak_in_the_window_and_fall_with_distance(m, n):
    alpha = length_weights(m, n, "soft").double()
    assert alpha.shape == (n, m)
    assert torch.allclose(alpha.sum(1), torch.ones(n, dtype=torch.double), atol=1e-6)
    assert (alpha > 0).all()  # every source position contributes
    w = math.ceil(m / n)
    for i in range(n):
        first, last = window_of(i, m, n)
        row = alpha[i]
        assert row[first:last].max() == row.max()
        # eq. 10: every weight in W_c above every one in W_a (w positions either side) above W_o
        adjacent = list(range(max(first - w, 0), first)) + list(range(last, min(last + w, m)))
        other = [j for j in range(m) if j < first - w or j >= last + w]
        if adjacent:
            assert row[first:last].min() > row[adjacent].max()
        if adjacent and other:
            assert row[adjacent].min() > row[other].max()
        # moving away from the window on either side: non-increasing, strictly until the
        # distance reaches 3 sigma (2w positions past the window's edge)
        for side in (row[last - 1:], row[: first + 1].flip(0)):
            steps = side[1:] - side[:-1]
            assert (steps <= 1e-12).all()
            assert (steps[: 2 * w + 1] < 0).all()


@pytest.mark.parametrize("m,n", SHAPES)
def test_hard_weights_stay_in_the_window(m, n):
    hard, soft = length_weights(m, n, "hard"), length_weights(m, n, "soft")
    assert torch.allclose(hard.sum(1), torch.ones(n), atol=1e-6)
    for i in range(n):
        first, last = window_of(i, m, n)
        assert (hard[i, :first] == 0).all() and (hard[i, last:] == 0).all()
        window = soft[i, first:last]
        assert torch.allclose(hard[i, first:last], window / window.sum(), atol=1e-6)  # eq. 9 restricted to W_c


def test_paper_example_six_words_four_frames():
    """Figure 3: window ceil(6/4) = 2; the first frame weighs the first two words most, then the
    adjacent window, then the rest (beta_1 > beta_2 > beta_3)."""
    assert window_of(0, 6, 4) == (0, 2)
    row = length_weights(6, 4)[0]
    assert int(row.argmax()) in (0, 1) and torch.isclose(row[0], row[1])
    assert row[:2].min() > row[2:4].max() and row[2:4].min() > row[4:].max()
    assert row[2] > row[3] and row[4] > row[5]
    assert 0.7 < float(row[:2].sum()) < 0.85  # the window dominates, the others still contribute


def batch(lengths, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), d, generator=g)
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("connection", ["soft", "hard", "pooling"])
def test_padded_batch_matches_examples_alone(connection):
    torch.manual_seed(0)
    mapper = length_mapper(connection, max_source_len=12, max_target_len=9)
    x, m = batch([7, 3, 12, 1])
    n = torch.tensor([4, 9, 2, 3])
    y = mapper(x, m, n)
    assert y.shape == (4, 9, 5)
    for b in range(4):
        alone = mapper(x[b: b + 1, : m[b]], m[b: b + 1], n[b: b + 1])
        assert torch.allclose(y[b, : n[b]], alone[0], atol=1e-6)
        assert (y[b, n[b]:] == 0).all()  # padded target rows
    noisy = x.clone()
    for b in range(4):
        noisy[b, m[b]:] = 1e3  # padded source positions have zero weight
    assert torch.allclose(mapper(noisy, m, n), y, atol=1e-6)
    if connection != "pooling":
        assert torch.allclose(y[0, :4], length_weights(7, 4, connection) @ x[0, :7], atol=1e-6)


def test_pooling_is_a_learned_length_map():
    torch.manual_seed(0)
    mapper = length_mapper("pooling", max_source_len=10, max_target_len=6)
    assert mapper.pool.weight.shape == (6, 10)
    x, m = batch([10, 4])
    x.requires_grad_(True)
    y = mapper(x, m, torch.tensor([5, 3]))
    assert y.shape == (2, 5, 5)
    y.square().sum().backward()
    assert mapper.pool.weight.grad[:5].abs().sum() > 0
    assert (mapper.pool.weight.grad[5:] == 0).all()  # output position 6 is cut off: n_max = 5
    assert (x.grad[1, 4:] == 0).all()  # example 2's padded source positions


@pytest.mark.parametrize("connection", ["soft", "hard", "pooling"])
def test_aligner_both_directions(connection):
    torch.manual_seed(0)
    # 5 frames of a 2 x 3 code grid (6 positions per frame)
    aligner = SlidingWindowAligner(text_dim=16, video_dim=8, video_cond_dim=12, frame_positions=6, position_dim=4,
                                   connection=connection, max_text_len=9, max_video_len=5)
    text, text_lengths = batch([9, 5, 2], d=16)
    d_v = aligner.text_to_video(text, text_lengths, video_frames=5)  # eq. 6
    assert d_v.shape == (3, 5 * 6, 12)
    d_t = aligner.video_to_text(torch.randn(3, 5, 6, 8), text_lengths)  # eq. 7
    assert d_t.shape == (3, 9, 16)
    assert (d_t[1, 5:] == 0).all() and (d_t[2, 2:] == 0).all() and (d_t[1, :5] != 0).any()
    (d_v.square().sum() + d_t.square().sum()).backward()
    for layer in (aligner.text_to_video_dim, aligner.video_to_text_dim, aligner.video_in, aligner.video_out):
        assert layer.weight.grad.abs().sum() > 0
    # one example alone gives the same conditioning as in the batch
    alone = aligner.text_to_video(text[1:2, :5], text_lengths[1:2], video_frames=5)
    assert torch.allclose(alone[0], d_v[1], atol=1e-5)


def test_aligner_keeps_where_in_the_frame_a_code_is():
    """The same code vectors at swapped positions of a frame give different text memory (they
    would not if a frame's codes were pooled), and a word is read from the frames of its window."""
    torch.manual_seed(0)
    aligner = SlidingWindowAligner(text_dim=8, video_dim=4, video_cond_dim=4, frame_positions=2, position_dim=3, connection="hard")
    frames = torch.randn(1, 4, 2, 4)
    swapped = frames.flip(2)
    lengths = torch.tensor([2])
    assert not torch.allclose(aligner.video_to_text(frames, lengths), aligner.video_to_text(swapped, lengths), atol=1e-4)
    later = frames.clone()
    later[:, 2:] += 1.0  # frames 2-3: the second word's window under the hard connection (4 -> 2)
    a, b = aligner.video_to_text(frames, lengths), aligner.video_to_text(later, lengths)
    assert torch.allclose(a[0, 0], b[0, 0]) and not torch.allclose(a[0, 1], b[0, 1])
    with pytest.raises(ValueError, match="6 code positions"):
        aligner.video_to_text(torch.randn(1, 4, 6, 4), lengths)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="connection"):
        length_weights(6, 4, "sliding")
    with pytest.raises(ValueError, match="connection"):
        length_mapper("Soft")
    with pytest.raises(ValueError, match="connection"):
        SlidingWindowAligner(4, 4, 4, connection="attention")
    with pytest.raises(ValueError, match="pooling"):
        length_weights(6, 4, "pooling")
    with pytest.raises(ValueError, match="sharpness"):
        length_weights(6, 4, sharpness=0)
    for m, n, name in ((0, 4, "m"), (6, 0, "n"), (2.5, 4, "m")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            length_weights(m, n)
    with pytest.raises(ValueError, match="target position"):
        window_of(4, 6, 4)
    x, m = batch([3, 2])
    with pytest.raises(ValueError, match="source_lengths"):
        length_mapper()(x, torch.tensor([3, 0]), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="target_lengths"):
        length_mapper()(x, m, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="source_lengths"):
        length_mapper()(x, torch.tensor([4, 2]), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="video_frames"):
        SlidingWindowAligner(5, 4, 4).text_to_video(x, m, video_frames=0)
    # pooling needs its maxima and refuses lengths above them
    with pytest.raises(ValueError, match="max_source_len"):
        length_mapper("pooling", max_target_len=4)
    with pytest.raises(ValueError, match="max_text_len"):
        SlidingWindowAligner(5, 4, 4, connection="pooling", max_video_len=8)
    pool = length_mapper("pooling", max_source_len=2, max_target_len=4)
    with pytest.raises(ValueError, match="max_source_len 2"):
        pool(x, m, torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="max_target_len 4"):
        pool(x[:, :2], torch.tensor([2, 2]), torch.tensor([5, 2]))
    aligner = SlidingWindowAligner(5, 4, 4, connection="pooling", max_text_len=3, max_video_len=8)
    with pytest.raises(ValueError, match="max_target_len 8"):
        aligner.text_to_video(x, m, video_frames=9)


def test_plot_script_writes_a_png(tmp_path):
    main = runpy.run_path(os.path.join(REPO, "scripts", "plot_aligner_weights.py"))["main"]
    out = tmp_path / "pics" / "aligner.png"
    assert main(["--m", "6", "--n", "4", "--connection", "soft", "hard", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out.parent) if p != "aligner.png"]  # no temporary left behind
    from fairseq_signlang.viz.aligner_weights import plot_length_weights
    with pytest.raises(ValueError, match="pooling"):
        plot_length_weights(6, 4, str(tmp_path / "p.png"), connections=("pooling",))
