"""The simulated word-level corpus has the properties the demo and tests rely on."""
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np

from fairseq_signlang.io.readers import load_dictionary, read_features, read_units
from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences
from fairseq_signlang.corpora.text_sources import restrict_vocabulary, text_file_sentences

from .conftest import REPO


def test_restrict_vocabulary_keeps_top_words_and_long_sentences(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("The cat sat on the mat.\nA dog.\nthe cat and the dog sat on a mat\nThe cat sat on the rug!\n")
    sentences = text_file_sentences(str(path))
    assert sentences[1] == ["a", "dog"]
    vocab, kept = restrict_vocabulary(sentences, vocab_size=4, min_words=5)
    assert vocab == ["the", "cat", "sat", "on"]  # ties keep first-seen order
    # the last line cuts to the first's words: kept once, or it could land on both sides of a split
    assert kept == [["the", "cat", "sat", "on", "the"], ["the", "cat", "the", "sat", "on"]]
    assert restrict_vocabulary(sentences, vocab_size=4, min_words=6)[1] == []


def test_unit_corpus_properties(tmp_path):
    vocab = [f"w{i}" for i in range(30)]
    sentences = markov_sentences(len(vocab), 900, seed=1)
    spec = UnitCorpusSpec(speech_purity=0.8, similar_sign_pairs=2, valid_sentences=50, test_sentences=50, feature_dim=8, seed=3)
    truth = build_unit_corpus(sentences, vocab, str(tmp_path), spec)
    src_dict = load_dictionary(str(tmp_path / "dict.src.txt"))
    sign_dict = load_dictionary(str(tmp_path / "dict.sign.txt"))
    assert len(src_dict) - src_dict.nspecial == 4 * 30  # every cluster has an index
    assert len(sign_dict) - sign_dict.nspecial == 30 - 2  # similar pairs share a sign unit
    for a, b in truth["similar_sign_pairs"]:
        assert truth["sign_of_word"][vocab.index(a)] == truth["sign_of_word"][vocab.index(b)]
    # purity: the share of speech tokens in their own word's clusters
    word_of_cluster = {c: w for w, cl in enumerate(truth["clusters_of_word"]) for c in cl}
    src = (tmp_path / "valid.src").read_text().split("\n")
    ref = (tmp_path / "valid.ref").read_text().split("\n")
    own = total = 0
    for s_line, r_line in zip(src, ref):
        for c, y in zip(s_line.split(), r_line.split()):
            total += 1
            own += truth["sign_of_word"][word_of_cluster[int(c)]] == int(y)
    assert 0.75 < own / total < 0.9
    # hidden pairing: the sign side holds the same sentences' signs, in another order
    train_src = read_units(str(tmp_path / "train.src"), src_dict)
    train_sign = read_units(str(tmp_path / "train.sign"), sign_dict)
    assert Counter(len(s) for s in train_src) == Counter(len(s) for s in train_sign)
    assert np.mean([len(a) == len(b) for a, b in zip(train_src, train_sign)]) < 0.5
    feats, _, lengths = read_features(str(tmp_path / "valid"))
    assert feats.shape == (sum(lengths), 8) and len(lengths) == 50


def test_demo_script_writes_metrics_and_pictures(tmp_path):
    text = tmp_path / "sentences.txt"
    letters = {f"w{i}": "x" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(40)}  # words are letters only
    text.write_text("\n".join(" ".join(letters[w] for w in s) for s in markov_sentences(40, 1200, seed=5)))
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/demo_word.py", "--out", str(out), "--text", str(text), "--vocab", "40",
         "--sentences", "1200", "--warm-start-updates", "100", "--max-update", "130"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"uer", "a2v_recall@1", "a2v_recall@5", "a2v_recall@10", "v2a_recall@1", "v2a_recall@5", "v2a_recall@10"}
    assert metrics["a2v_recall@10"] >= metrics["a2v_recall@5"] >= metrics["a2v_recall@1"] > 50.0
    for folder in (out, out / "disjoint"):
        for png in ("alignments.png", "training_curves.png", "training_curves_loss.png", "mapping.png"):
            assert os.path.getsize(folder / png) > 5_000, (folder, png)
    # both builds, each beside its oracle and trivial baselines, in summary.json and the printed table
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"hidden", "disjoint"}
    assert summary["hidden"]["a2v_recall@1"] == metrics["a2v_recall@1"]
    disjoint = json.loads((out / "disjoint" / "metrics.json").read_text())
    assert all(summary["disjoint"][k] == v for k, v in disjoint.items())
    for row in summary.values():
        assert 0 < row["oracle_uer"] < row["majority_uer"] and row["chance_recall@1"] == 0.5  # 200 test sentences
    assert "| hidden |" in proc.stdout and "| disjoint |" in proc.stdout
    # each build's unpairedness report, over the words the units render
    assert "paired: the sides render the same sentences" in proc.stdout
    hidden, disjoint = (json.loads((folder / "unpairedness.json").read_text())["between_sides"] for folder in (out, out / "disjoint"))
    assert hidden["same_sentences"] and hidden["a_in_b_share"] == 100.0 and not disjoint["same_sentences"]


def test_demo_script_reports_missing_text(tmp_path):
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/demo_word.py", "--out", str(tmp_path), "--text", str(tmp_path / "none.txt")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode != 0 and "none.txt" in proc.stderr
