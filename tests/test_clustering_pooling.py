"""PCA / k-means (faiss), merging of equal clusters, word pooling from alignments, purity."""
import json
import os

import numpy as np
import pytest

from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.io.writers import write_features, write_lines
from fairseq_signlang.features.clustering import assign_clusters, fit_kmeans, fit_pca
from fairseq_signlang.features.pooling import merge_equal_clusters, pool_words, read_alignment_jsonl, read_librispeech_alignments
from fairseq_signlang.features.purity import cluster_purity

from .conftest import run_script


def blobs(n_per, centres, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n_per)
    return (centres[labels] + noise * rng.normal(size=(len(labels), centres.shape[1]))).astype(np.float32), labels


def test_merge_equal_clusters_means_each_run():
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    pooled, ids = merge_equal_clusters(feats, np.array([3, 3, 1, 1, 1, 3]))
    assert ids.tolist() == [3, 1, 3]
    np.testing.assert_allclose(pooled, [[1, 2], [6, 7], [10, 11]])


def test_pool_words_takes_the_frames_inside_each_word():
    feats = np.arange(20, dtype=np.float32)[:, None]  # 20 frames at 10 Hz = 2 s
    pooled = pool_words(feats, [("a", 0.0, 0.5), ("b", 0.5, 1.0), ("c", 1.93, 1.95)], 10.0, "x")
    np.testing.assert_allclose(pooled[:, 0], [2.0, 7.0, 19.0])
    with pytest.raises(CorpusError, match=r"align.jsonl:3: word 'd' ends at 3.00 s but the audio's features cover 2.00 s"):
        pool_words(feats, [("d", 2.5, 3.0)], 10.0, "align.jsonl:3")


def test_alignment_readers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('[{"word": "the", "start": 0.1, "end": 0.3}]\n[["cat", 0.0, 0.4], ["sat", 0.4, 0.9]]\n')
    assert read_alignment_jsonl(str(path)) == [[("the", 0.1, 0.3)], [("cat", 0.0, 0.4), ("sat", 0.4, 0.9)]]
    path.write_text('[{"word": "the", "start": 0.1, "end": 0.3}]\n{"oops": 1}\n')
    with pytest.raises(CorpusError, match=rf"{path}:2: not a list of \(word, start, end\)"):
        read_alignment_jsonl(str(path))
    libri = tmp_path / "libri.txt"
    libri.write_text('84-121123-0000 ",GO,DO,YOU,HEAR," "0.490,0.890,1.270,1.380,1.490,1.890"\n')
    assert read_librispeech_alignments(str(libri))["84-121123-0000"] == [
        ("go", 0.49, 0.89), ("do", 0.89, 1.27), ("you", 1.27, 1.38), ("hear", 1.38, 1.49)]


def test_cluster_purity_by_hand():
    pairs = [("a", 0)] * 9 + [("b", 0)] + [("b", 1)] * 5 + [("a", 2)]
    r = cluster_purity(pairs)
    assert r["purity"] == pytest.approx((9 + 5 + 1) / 16)
    assert r["words"]["a"] == {"tokens": 10, "clusters": 2, "purity": 1.0}
    assert r["words"]["b"]["clusters"] == 2 and r["words"]["b"]["purity"] == pytest.approx(5 / 6)
    assert r["majority"] == {0: "a", 1: "b", 2: "a"}


def test_pca_and_kmeans_recover_separated_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(8, 16)).astype(np.float32) * 3
    x, labels = blobs(200, centres)
    A, b = fit_pca(x, 4)
    assert A.shape == (4, 16) and b.shape == (4,)
    y = x @ A.T + b
    assert np.allclose(y.mean(0), 0, atol=1e-3)  # centred
    centroids = fit_kmeans(y, 8, seed=0)
    ids = assign_clusters(y, centroids)
    assert cluster_purity(zip(labels.tolist(), ids.tolist()))["purity"] > 0.99


def test_script_chain_kmeans_merge_words_purity(tmp_path):
    """frames -> k-means ids -> merged segments; frames + alignment -> word features -> k-means -> purity."""
    rng = np.random.default_rng(2)
    protos = {w: rng.normal(size=8).astype(np.float32) * 3 for w in ("the", "cat", "sat", "mat")}
    utts, aligns = [], []
    for _ in range(40):
        words = list(rng.choice(list(protos), size=4))
        frames, align, t = [], [], 0
        for w in words:
            n = int(rng.integers(3, 8))
            frames.append(protos[w] + 0.05 * rng.normal(size=(n, 8)).astype(np.float32))
            align.append({"word": w, "start": t / 50, "end": (t + n) / 50})
            t += n
        utts.append(np.concatenate(frames))
        aligns.append(json.dumps(align))
    write_features(str(tmp_path / "train"), np.concatenate(utts), [len(u) for u in utts])
    write_lines(str(tmp_path / "train.align.jsonl"), aligns)

    assert run_script("cluster_features.py", "kmeans", "--fit", tmp_path / "train", "-k", "4", "--out", tmp_path / "km",
                      "--apply", tmp_path / "train").returncode == 0
    proc = run_script("pool_features.py", "merge", "--feats", tmp_path / "train", "--km", tmp_path / "km" / "train.km", "--out", tmp_path / "seg")
    assert proc.returncode == 0, proc.stderr
    seg, _, seg_lengths = read_features(str(tmp_path / "seg"))
    assert seg_lengths.sum() <= 40 * 4 and seg.shape[1] == 8  # at most one segment per word

    proc = run_script("pool_features.py", "words", "--feats", tmp_path / "train", "--alignment", tmp_path / "train.align.jsonl",
                      "--frame-rate", 50, "--out", tmp_path / "words")
    assert proc.returncode == 0, proc.stderr
    _, _, word_lengths = read_features(str(tmp_path / "words"))
    assert word_lengths.tolist() == [4] * 40
    assert run_script("cluster_features.py", "kmeans", "--fit", tmp_path / "words", "-k", "4", "--out", tmp_path / "wkm",
                      "--apply", tmp_path / "words").returncode == 0
    proc = run_script("cluster_purity.py", "--km", tmp_path / "wkm" / "words.km", "--words", tmp_path / "words.wrd", "--out", tmp_path / "p.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "p.json").read_text())["purity"] > 0.99 and "purity 100.0 %" in proc.stdout


def test_alignment_longer_than_audio_names_its_line(tmp_path):
    write_features(str(tmp_path / "f"), np.zeros((30, 2), np.float32), [10, 20])
    write_lines(str(tmp_path / "a.jsonl"), ['[["a", 0.0, 0.2]]', '[["b", 0.0, 0.3], ["c", 0.3, 0.9]]'])
    proc = run_script("pool_features.py", "words", "--feats", tmp_path / "f", "--alignment", tmp_path / "a.jsonl", "--frame-rate", 50, "--out", tmp_path / "w")
    assert proc.returncode != 0
    assert f"{tmp_path / 'a.jsonl'}:2: word 'c' ends at 0.90 s but the audio's features cover 0.40 s" in proc.stderr
    assert not [f for f in os.listdir(tmp_path) if f.startswith("w.")]  # no output, no temporary file left
