"""Video I/O with PyAV, and the procedural signer the demo renders its sign side with."""
import numpy as np
import pytest

from fairseq_signlang.corpora.synthetic.procedural_signer import NUM_LANDMARKS, ProceduralSigner, render
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.video import read_video, write_video


def moving_bar(T=50, H=64, W=80):
    frames = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        frames[t, :, t % W] = 255
    return frames


def test_video_round_trip_sampling_resizing_and_spans(tmp_path):
    path = str(tmp_path / "bar.mp4")
    write_video(path, moving_bar(), fps=25)
    frames, rate = read_video(path)
    assert frames.shape == (50, 64, 80, 3) and rate == 25
    assert [int(f.mean(axis=(0, 2)).argmax()) for f in frames[:5]] == [0, 1, 2, 3, 4]
    sampled, rate = read_video(path, fps=10, size=(40, 32))
    assert sampled.shape == (20, 32, 40, 3) and rate == 10
    # sample k at 10 fps shows the bar of frame round(2.5 k) at 25 fps (at half the width)
    assert abs(int(sampled[4].mean(axis=(0, 2)).argmax()) - 5) <= 1
    span, _ = read_video(path, start=0.4, end=1.0)
    assert len(span) == 15 and int(span[0].mean(axis=(0, 2)).argmax()) == 10


def test_video_errors_name_the_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 not a video")
    with pytest.raises(CorpusError, match=rf"{junk}: unreadable video"):
        read_video(str(junk))
    path = str(tmp_path / "bar.mp4")
    write_video(path, moving_bar(T=10), fps=25)
    with pytest.raises(CorpusError, match=rf"{path}: video has no frames between 5.0 and 6.0 s"):
        read_video(path, start=5.0, end=6.0)
    with pytest.raises(CorpusError, match="video file not found"):
        read_video(str(tmp_path / "none.mp4"))


def test_empty_video_has_no_frames(tmp_path):
    import av

    path = str(tmp_path / "empty.mp4")
    with av.open(path, mode="w") as container:  # a header and no frame: mp4 then keeps no video track
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(CorpusError, match=rf"{path}: no video stream"):
        read_video(path)


def hand_path(landmarks, n=16):
    """Right-hand landmarks resampled to n frames, flattened: a crude sign descriptor."""
    idx = np.linspace(0, len(landmarks) - 1, n).round().astype(int)
    return landmarks[idx][:, 6:14, :2].reshape(-1)


def test_signs_are_told_apart_across_signers_and_similar_pairs_are_close():
    vocab = [f"w{i}" for i in range(30)]
    signer = ProceduralSigner(vocab, similar_pairs=[("w0", "w1"), ("w2", "w3")], seed=4)
    rng = np.random.default_rng(0)
    desc = {(w, s): hand_path(signer.word(w, s, rng)) for w in vocab for s in range(4)}
    same_word = np.mean([np.linalg.norm(desc[w, 0] - desc[w, s]) for w in vocab for s in (1, 2, 3)])
    other_word = np.mean([np.linalg.norm(desc[a, 0] - desc[b, 0]) for a in vocab for b in vocab if a < b])
    assert same_word < 0.6 * other_word, (same_word, other_word)
    similar = np.mean([np.linalg.norm(desc["w0", 0] - desc["w1", 0]), np.linalg.norm(desc["w2", 0] - desc["w3", 0])])
    assert similar < other_word


def test_sentence_bounds_and_determinism():
    signer = ProceduralSigner(["a", "b", "c"], seed=1)
    lm, bounds = signer.sentence(["a", "b", "c", "a"], signer=2, seed=5)
    assert lm.shape[1:] == (NUM_LANDMARKS, 3) and lm.dtype == np.float32
    assert [w for w, _, _ in bounds] == ["a", "b", "c", "a"] and bounds[-1][2] == len(lm)
    assert all(b[1] < b[2] <= n[1] for b, n in zip(bounds, bounds[1:]))
    again, _ = signer.sentence(["a", "b", "c", "a"], signer=2, seed=5)
    np.testing.assert_array_equal(lm, again)
    assert 0.0 <= lm.min() and lm.max() <= 1.0


def test_render_draws_the_right_hand_where_its_landmark_is():
    signer = ProceduralSigner(["a"], seed=2)
    lm = signer.word("a", 0, np.random.default_rng(0))
    frames = render(lm, (128, 128))
    assert frames.shape == (len(lm), 128, 128, 3) and frames.dtype == np.uint8
    for t in (0, len(lm) // 2, len(lm) - 1):
        orange = (frames[t, ..., 0] > 230) & (frames[t, ..., 1] > 120) & (frames[t, ..., 1] < 180) & (frames[t, ..., 2] < 80)
        ys, xs = np.nonzero(orange)
        palm = lm[t, 8, :2] * 128
        assert len(xs) > 5 and abs(xs.mean() - palm[0]) < 8 and abs(ys.mean() - palm[1]) < 8
