"""The USLNet word-sign corpus (fairseq_signlang.corpora.uslnet_corpus, scripts/build_uslnet_corpus.py):
disjoint text and video halves, paired files, clips whose length follows their words, evaluation
text that matches its manifests, determinism, a word-level binarized text side, argument errors."""
import filecmp
import json
import os
import runpy
from collections import defaultdict

import numpy as np
import pytest

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.corpora.uslnet_corpus import balance_coverage, build_word_sign_corpus
from fairseq_signlang.io.video import read_clip_manifest, read_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
build_main = runpy.run_path(os.path.join(REPO, "scripts", "build_uslnet_corpus.py"))["main"]
SMALL = dict(vocab_size=12, num_sentences=80, num_valid=10, num_test=10, seed=3)


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def signs(corpus):
    return [json.loads(line) for line in lines(corpus["paths"]["signs"])]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Built through the CLI, binarized."""
    out = str(tmp_path_factory.mktemp("uslnet_corpus") / "corpus")
    build_main(["--out", out, "--vocab-size", "12", "--num-sentences", "80", "--num-valid", "10", "--num-test", "10",
                "--seed", "3", "--binarize"])
    with open(os.path.join(out, "corpus.json"), encoding="utf-8") as f:
        info = json.load(f)
    info["paths"] = {key: os.path.join(out, rel) for key, rel in info["files"].items()}
    info["paths"]["out"] = out
    return info


def test_halves_are_disjoint_and_make_the_training_sentences(corpus):
    p = corpus["paths"]
    text_half = lines(p["text_train"])
    video_half = [r.text for r in read_clip_manifest(p["video_train"])]
    paired = read_clip_manifest(p["video_train_paired"])
    assert len(text_half) == 40 and len(video_half) == 40 and len(paired) == 80
    assert not set(text_half) & set(video_half)
    assert sorted(text_half + video_half) == sorted(r.text for r in paired)
    assert [r.text for r in paired] == lines(p["text_train_paired"])
    # the video half's clips are the paired manifest's clips of those sentences
    by_id = {r.id: r for r in paired}
    assert all(by_id[r.id].path == r.path and by_id[r.id].text == r.text for r in read_clip_manifest(p["video_train"]))
    # every word is in the text half (its dictionary needs it), and here in the video half too
    vocab = set(corpus["vocab"])
    assert len(vocab) == 12 and {w for s in text_half for w in s.split()} == vocab
    assert {w for s in video_half for w in s.split()} == vocab and corpus["video_train_missing_words"] == []
    evaluation = lines(p["text_valid"]) + lines(p["text_test"])
    assert len(set(evaluation)) == 20 and not set(evaluation) & set(text_half + video_half)
    assert corpus["counts"] == {"text_train": 40, "video_train": 40, "train_paired": 80, "valid": 10, "test": 10}


def test_evaluation_manifests_match_their_text(corpus):
    for split in ("valid", "test"):
        rows = read_clip_manifest(corpus["paths"][f"video_{split}"])
        assert [r.text for r in rows] == lines(corpus["paths"][f"text_{split}"])
        assert all(os.path.basename(r.path) == f"{r.id}.mp4" for r in rows)


def test_clips_sign_each_word_in_order_and_grow_with_the_words(corpus):
    records = signs(corpus)
    text = {r.id: r.text for split in ("train_paired", "valid", "test") for r in read_clip_manifest(corpus["paths"][f"video_{split}"])}
    assert len(records) == 100 and set(text) == {r["id"] for r in records} and {r["signer"] for r in records} == {0, 1}
    by_words = defaultdict(list)
    for r in records:
        assert [w for w, _, _ in r["signs"]] == text[r["id"]].split()  # one sign per word, in word order
        ends = [0] + [x for _, s, e in r["signs"] for x in (s, e)]
        assert ends == sorted(ends) and all(e > s for _, s, e in r["signs"]) and r["signs"][-1][2] == r["frames"]
        by_words[len(r["signs"])].append(r["frames"])
    means = [np.mean(by_words[n]) for n in sorted(by_words)]
    assert sorted(by_words) == [3, 4, 5] and means == sorted(means) and means[0] < means[-1] - 10
    # the files have those frames: a few clips of every length read back
    clips = corpus["paths"]["clips"]
    for n in (3, 4, 5):
        for r in [r for r in records if len(r["signs"]) == n][:2]:
            frames, rate = read_video(os.path.join(clips, f"{r['id']}.mp4"))
            assert frames.shape == (r["frames"], 32, 40, 3) and rate == pytest.approx(10.0)


def test_deterministic_per_seed(corpus, tmp_path):
    again = build_word_sign_corpus(str(tmp_path / "again"), **SMALL)
    for key in ("text_train", "text_train_paired", "text_valid", "text_test", "signs"):
        assert lines(again["paths"][key]) == lines(corpus["paths"][key]), key
    # every clip byte for byte (x264's fastest routines once made some differ run to run)
    clips = sorted(os.listdir(corpus["paths"]["clips"]))
    assert len(clips) == 100 and sorted(os.listdir(again["paths"]["clips"])) == clips
    changed = [c for c in clips if not filecmp.cmp(os.path.join(again["paths"]["clips"], c), os.path.join(corpus["paths"]["clips"], c), shallow=False)]
    assert changed == []
    other = build_word_sign_corpus(str(tmp_path / "other"), **{**SMALL, "seed": 4})
    assert lines(other["paths"]["text_train"]) != lines(corpus["paths"]["text_train"])
    # rebuilding over an earlier corpus replaces it
    rebuilt = build_word_sign_corpus(str(tmp_path / "other"), **SMALL)
    assert lines(rebuilt["paths"]["signs"]) == lines(corpus["paths"]["signs"])
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary folder left


def test_binarized_text_side_has_one_piece_per_word(corpus):
    import sentencepiece as spm
    from fairseq.data import Dictionary, data_utils

    bin_dir = os.path.join(corpus["paths"]["out"], "text", "bin")
    d = Dictionary.load(os.path.join(bin_dir, "dict.txt"))
    assert all(d.index("\u2581" + w) != d.unk() for w in corpus["vocab"])
    sp = spm.SentencePieceProcessor(model_file=os.path.join(bin_dir, "spm.model"))
    for w in corpus["vocab"]:
        assert sp.encode(w, out_type=str) == ["\u2581" + w]
    train = data_utils.load_indexed_dataset(os.path.join(bin_dir, "train"), d)
    text = lines(corpus["paths"]["text_train"])
    assert len(train) == len(text)
    assert all(train[i].tolist() == [d.index("\u2581" + w) for w in s.split()] + [d.eos()] for i, s in enumerate(text))


def test_given_sentences(tmp_path):
    words = "red blue green cat dog".split()
    rng = np.random.default_rng(0)
    given = [" ".join(rng.choice(words, size=3)) for _ in range(60)] + ["red red red"] * 5  # duplicates are dropped
    info = build_word_sign_corpus(str(tmp_path / "c"), num_sentences=20, num_valid=2, num_test=2, sentences=given, seed=1)
    assert sorted(info["vocab"]) == sorted(words) and info["source"] == "given"
    assert len(set(lines(info["paths"]["text_train_paired"]))) == 20
    with pytest.raises(ValueError, match="sentences"):
        build_word_sign_corpus(str(tmp_path / "d"), num_sentences=200, sentences=given)


def test_balance_coverage_swaps_a_missing_word_in():
    a, b = [["a", "b"], ["a", "b"]], [["a", "c"], ["b", "c"]]
    balance_coverage(a, b, ["a", "b", "c"])
    assert {w for s in a for w in s} == {"a", "b", "c"} == {w for s in b for w in s}
    assert sorted(map(tuple, a + b)) == sorted([("a", "b"), ("a", "b"), ("a", "c"), ("b", "c")])


@pytest.mark.parametrize("kwargs, argument", [
    ({"vocab_size": 1}, "vocab_size"),
    ({"vocab_size": 1000}, "vocab_size"),
    ({"min_words": 4, "max_words": 3}, "min_words"),
    ({"min_words": 0}, "min_words"),
    ({"num_sentences": 1}, "num_sentences"),
    ({"num_valid": 0}, "num_valid"),
    ({"signers": 0}, "signers"),
    ({"fps": 2.0}, "fps"),
    ({"size": (41, 32)}, "size"),
    ({"vocab_size": 2, "min_words": 2, "max_words": 2}, "num_sentences"),  # only 4 distinct sentences exist
])
def test_impossible_settings_name_the_argument(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        build_word_sign_corpus(str(tmp_path / "c"), **kwargs)
    assert not os.listdir(tmp_path)


def test_cli_errors(tmp_path):
    with pytest.raises(SystemExit) as e:
        build_main(["--out", str(tmp_path / "c"), "--min-words", "6"])
    assert "min_words" in str(e.value.code)
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("not a corpus\n")
    with pytest.raises(CorpusError, match=str(keep)):
        build_word_sign_corpus(str(keep), **SMALL)
    assert os.listdir(keep) == ["mine.txt"]
    with pytest.raises(SystemExit) as e:
        build_main(["--out", str(tmp_path / "c"), "--sentences", str(tmp_path / "none.txt")])
    assert f"{tmp_path / 'none.txt'}: sentence file not found" in str(e.value.code)
