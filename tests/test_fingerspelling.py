"""The fingerspelling corpus builder (letter pools, disjoint halves, paired evaluation renderings,
simulated speech), the offline stdlib text, and the corpus and task-assembly scripts."""
import json
import os
import runpy
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from fairseq.data import Dictionary

from fairseq_signlang.corpora.fingerspelling import (
    ALPHABET, LETTER_ID, SIGN_CONFUSABLE_LETTERS, SPEECH_CONFUSABLE_LETTERS, LetterPool, SpeechSimulation,
    build_fingerspelling_corpus, letters_of, simulate_speech_segments, synthesize_letter_pool,
)
from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.corpora.text_sources import stdlib_docstring_sentences

from .conftest import REPO


@pytest.fixture(scope="module")
def stdlib_sentences():
    return stdlib_docstring_sentences()


@pytest.fixture(scope="module")
def synthetic_pool(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pool"))
    synthesize_letter_pool(root, dim=12, exemplars_per_letter=40, confusable_pairs=5, variation=0.3, seed=0)
    return root


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def run_script(name, *args):
    """A script in this process (its errors are what is checked; a subprocess costs seconds)."""
    argv = sys.argv
    sys.argv = [name, *map(str, args)]
    try:
        runpy.run_path(os.path.join(REPO, "scripts", name), run_name="__main__")
    finally:
        sys.argv = argv


def test_letters_of_keeps_lowercase_a_to_z_only():
    assert letters_of("Don't stop, Zoë 42!") == "dontstopzo"
    assert letters_of(["hello", "world's"]) == "helloworlds"


def test_pool_errors_name_the_file_and_letter(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((5, 4), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((3, 4), np.float32))
    pool = LetterPool.from_folder(str(tmp_path))
    assert set(pool.exemplars) == {"a", "b"} and pool.dim == 4
    assert pool.first_exemplars("ab", 3).shape == (26, 3, 4)
    with pytest.raises(CorpusError, match=rf"{tmp_path}/c\.npy: not found, but the text needs letter 'c'"):
        pool.first_exemplars("abc", 3)
    with pytest.raises(CorpusError, match=rf"{tmp_path}/b\.npy: 3 exemplars of letter 'b', fewer than the pool size 4"):
        pool.first_exemplars("ab", 4)
    np.save(tmp_path / "c.npy", np.zeros((5, 6), np.float32))
    with pytest.raises(CorpusError, match=rf"{tmp_path}/c\.npy: exemplars of dimension 6, but {tmp_path}/a\.npy has dimension 4"):
        LetterPool.from_folder(str(tmp_path))
    np.save(tmp_path / "c.npy", np.zeros((5, 4, 2), np.float32))
    with pytest.raises(CorpusError, match=rf"{tmp_path}/c\.npy: expected a 2-D \(exemplars, dim\) array of letter 'c', got shape \(5, 4, 2\)"):
        LetterPool.from_folder(str(tmp_path))
    np.save(tmp_path / "c.npy", np.full((5, 4), np.nan, np.float32))
    with pytest.raises(CorpusError, match=rf"{tmp_path}/c\.npy: exemplar 0 of letter 'c' is not finite"):
        LetterPool.from_folder(str(tmp_path)).first_exemplars("c", 2)
    with pytest.raises(CorpusError, match="letter pool folder not found"):
        LetterPool.from_folder(str(tmp_path / "none"))


def build(sentences, pool_dir, out, seed=0, pool_size=10, speech=None):
    return build_fingerspelling_corpus(
        sentences, LetterPool.from_folder(pool_dir), pool_size, str(out), {"valid": 20, "test": 15}, seed=seed, max_sentences=200,
        simulate_speech=speech,
    )


def test_disjoint_training_halves_and_paired_evaluation(stdlib_sentences, synthetic_pool, tmp_path):
    sentences = stdlib_sentences + [["42"]]  # no letters: never used
    summary = build(sentences, synthetic_pool, tmp_path)
    ids = summary["sentence_ids"]
    assert summary["sentences_without_letters"] == 1 and summary["sentences_used"] == 200
    train_speech, train_sign = set(ids["train_speech"]), set(ids["train_sign"])
    assert not train_speech & train_sign and abs(len(train_speech) - len(train_sign)) <= 1
    everything = ids["train_speech"] + ids["train_sign"] + ids["valid"] + ids["test"]
    assert len(everything) == len(set(everything)) == 200 and len(sentences) - 1 not in everything
    assert (len(ids["valid"]), len(ids["test"])) == (20, 15)
    # each side's files hold its own sentences, in the order summary.json gives
    assert lines(tmp_path / "speech" / "train.ltr") == [" ".join(letters_of(sentences[i])) for i in ids["train_speech"]]
    assert lines(tmp_path / "speech" / "train.wrd") == [" ".join(sentences[i]) for i in ids["train_speech"]]
    assert lines(tmp_path / "sign" / "train.ltr") == [" ".join(letters_of(sentences[i])) for i in ids["train_sign"]]
    for split in ("valid", "test"):  # the evaluation pairing: the same sentences, letter for letter
        speech_letters = lines(tmp_path / "speech" / f"{split}.ltr")
        assert lines(tmp_path / "sign" / f"{split}.ltr") == speech_letters == [" ".join(letters_of(sentences[i])) for i in ids[split]]
        _, _, lengths = read_features(str(tmp_path / "sign" / split))
        assert lengths.tolist() == [len(s.split()) for s in speech_letters]
    assert not (tmp_path / "speech" / "train.npy").exists()  # no simulated speech unless asked


def test_a_repeated_sentence_is_used_once(stdlib_sentences, synthetic_pool, tmp_path):
    """Repeats (the Bible's verses cut to letters repeat) would otherwise land on both training
    sides, or in training and test: the unpaired corpus would share sentences."""
    sentences = stdlib_sentences[:100] * 3
    summary = build(sentences, synthetic_pool, tmp_path)
    ids = summary["sentence_ids"]
    used = [letters_of(sentences[i]) for side in ids.values() for i in side]
    distinct = len({letters_of(s) for s in stdlib_sentences[:100]})
    assert summary["sentences_used"] == len(used) == len(set(used)) == distinct
    assert summary["repeated_sentences"] == len(sentences) - distinct


def test_exemplar_draws_respect_pool_size_and_seed(stdlib_sentences, synthetic_pool, tmp_path):
    build(stdlib_sentences, synthetic_pool, tmp_path / "a", seed=3, pool_size=7)
    build(stdlib_sentences, synthetic_pool, tmp_path / "b", seed=3, pool_size=7)
    build(stdlib_sentences, synthetic_pool, tmp_path / "c", seed=4, pool_size=7)
    pool = LetterPool.from_folder(synthetic_pool)
    for split in ("train", "valid"):
        feats, offsets, lengths = read_features(str(tmp_path / "a" / "sign" / split))
        draws = [line.split() for line in lines(tmp_path / "a" / "sign" / f"{split}.exemplars")]
        letters = [line.split() for line in lines(tmp_path / "a" / "sign" / f"{split}.ltr")]
        assert [len(d) for d in draws] == lengths.tolist()
        picks = [(d.split(":")[0], int(d.split(":")[1])) for sentence in draws for d in sentence]
        assert [c for c, _ in picks] == [c for s in letters for c in s]
        assert max(i for _, i in picks) == 6  # only the first 7 exemplars, and all of them
        np.testing.assert_array_equal(feats, np.stack([pool.exemplars[c][i] for c, i in picks]))
        assert lines(tmp_path / "a" / "sign" / f"{split}.exemplars") == lines(tmp_path / "b" / "sign" / f"{split}.exemplars")
        assert lines(tmp_path / "a" / "sign" / f"{split}.exemplars") != lines(tmp_path / "c" / "sign" / f"{split}.exemplars")
    with pytest.raises(CorpusError, match=rf"{synthetic_pool}/a\.npy: 40 exemplars of letter 'a', fewer than the pool size 41"):
        build(stdlib_sentences, synthetic_pool, tmp_path / "d", pool_size=41)


def test_synthetic_confusable_pairs_are_closest(synthetic_pool):
    info = json.load(open(os.path.join(synthetic_pool, "pool.json")))
    assert info["confusable_pairs"] == [list(p) for p in SIGN_CONFUSABLE_LETTERS[:5]]
    means = np.stack([np.load(os.path.join(synthetic_pool, f"{c}.npy")).mean(0) for c in ALPHABET])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    pair_ids = [(LETTER_ID[a], LETTER_ID[b]) for a, b in SIGN_CONFUSABLE_LETTERS[:5]]
    other = np.ones_like(dist, dtype=bool)
    np.fill_diagonal(other, False)
    for a, b in pair_ids:
        other[a, b] = other[b, a] = False
    assert max(dist[a, b] for a, b in pair_ids) < 0.5 * dist[other].min()
    # the simulated speech has its own prototypes and its own look-alike letters
    letters = ALPHABET * 40
    feats, lengths = simulate_speech_segments([letters], dim=12, noise=0.3, max_segments_per_letter=1, confusable_pairs=3, seed=0)
    speech_means = feats.reshape(40, 26, 12).mean(0)
    speech_dist = np.linalg.norm(speech_means[:, None] - speech_means[None], axis=-1)
    for a, b in SPEECH_CONFUSABLE_LETTERS[:3]:
        assert speech_dist[LETTER_ID[a], LETTER_ID[b]] < 0.5 * dist[other].min()
    assert np.linalg.norm(speech_means - means, axis=1).min() > 1.0  # not the sign prototypes


def test_simulated_speech_segments(stdlib_sentences, synthetic_pool, tmp_path):
    letter_sentences = [letters_of(s) for s in stdlib_sentences[:50]]
    feats, lengths = simulate_speech_segments(letter_sentences, dim=6, max_segments_per_letter=3, seed=1)
    assert feats.dtype == np.float32 and feats.shape == (sum(lengths), 6)
    n_letters = np.array([len(s) for s in letter_sentences])
    assert (np.array(lengths) >= n_letters).all() and (np.array(lengths) <= 3 * n_letters).all()
    assert sum(lengths) > 1.5 * n_letters.sum()  # 1, 2 and 3 segments all occur
    again, _ = simulate_speech_segments(letter_sentences, dim=6, max_segments_per_letter=3, seed=1)
    other_stream, _ = simulate_speech_segments(letter_sentences, dim=6, max_segments_per_letter=3, seed=1, stream=1)
    np.testing.assert_array_equal(feats, again)
    assert not np.array_equal(feats[:10], other_stream[:10])
    with pytest.raises(ValueError, match="sentence 1: expected letters a-z, got 'a b'"):
        simulate_speech_segments(["ab", "a b"], dim=4)
    summary = build(stdlib_sentences, synthetic_pool, tmp_path, speech=SpeechSimulation(dim=5, max_segments_per_letter=2))
    for split in ("train", "valid", "test"):
        _, _, lengths = read_features(str(tmp_path / "speech" / split))
        letters = np.array([len(s.split()) for s in lines(tmp_path / "speech" / f"{split}.ltr")])
        assert (lengths >= letters).all() and (lengths <= 2 * letters).all()
        assert summary["splits"][split]["speech_segments"] == lengths.sum()


def test_stdlib_docstring_sentences_are_english(stdlib_sentences):
    assert len(stdlib_sentences) >= 2000
    assert len({tuple(s) for s in stdlib_sentences}) == len(stdlib_sentences) and min(map(len, stdlib_sentences)) >= 5
    counts = Counter(c for s in stdlib_sentences for c in letters_of(s))
    assert set(counts) == set(ALPHABET) and sum(counts.values()) >= 100_000
    assert counts.most_common(1)[0][0] == "e"
    words = Counter(w for s in stdlib_sentences for w in s)
    assert {"the", "of", "and", "is"} <= {w for w, _ in words.most_common(10)}
    assert stdlib_docstring_sentences()[:100] == stdlib_sentences[:100]  # a fixed order


def test_scripts_end_to_end(tmp_path):
    corpus, task = tmp_path / "corpus", tmp_path / "task"
    proc = subprocess.run(
        [sys.executable, "scripts/build_fingerspelling_corpus.py", "--stdlib-text", "--synthesize-pool", "16", "--exemplars-per-letter", "30",
         "--pool-size", "20", "--valid", "25", "--test", "20", "--max-sentences", "300", "--simulate-speech", "8", "--seed", "1",
         "--out", str(corpus)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "train 127 speech + 128 sign sentences" in proc.stdout and "paired eval valid 25, test 20" in proc.stdout
    assert len(LetterPool.from_folder(str(corpus / "pool")).exemplars["e"]) == 30
    proc = subprocess.run(
        [sys.executable, "scripts/prepare_char_task.py", "--speech", str(corpus / "speech"), "--letter-units", str(corpus / "sign"), "--out", str(task)],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(task)) == sorted(
        ["dict.sign.txt", "train.sign", "valid.ref", "test.ref"] + [f"{s}.{ext}" for s in ("train", "valid", "test") for ext in ("npy", "lengths")]
    )
    dictionary = Dictionary.load(str(task / "dict.sign.txt"))
    assert len(dictionary) == 26 + dictionary.nspecial and {dictionary[i] for i in range(dictionary.nspecial, len(dictionary))} == {str(i) for i in range(26)}
    sign_letters = lines(corpus / "sign" / "train.ltr")
    assert lines(task / "train.sign") == [" ".join(str(LETTER_ID[c]) for c in s.split()) for s in sign_letters]
    for split, n in (("train", 127), ("valid", 25), ("test", 20)):
        feats, _, lengths = read_features(str(task / split))
        original, _, _ = read_features(str(corpus / "speech" / split))
        assert len(lengths) == n and lengths.sum() == len(feats) and feats.shape[1] == 8
        np.testing.assert_array_equal(feats, original)
        if split != "train":  # one reference unit per letter of each speech sentence
            speech_letters = lines(corpus / "speech" / f"{split}.ltr")
            assert lines(task / f"{split}.ref") == [" ".join(str(LETTER_ID[c]) for c in s.split()) for s in speech_letters]


def test_prepare_char_task_from_cluster_ids_and_its_errors(stdlib_sentences, synthetic_pool, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    build(stdlib_sentences, synthetic_pool, corpus, speech=SpeechSimulation(dim=4))
    km = tmp_path / "km"
    km.mkdir()
    for split in ("train", "valid", "test"):  # a stand-in clustering: two clusters per letter
        rng = np.random.default_rng(0)
        (km / f"{split}.km").write_text(
            "".join(" ".join(str(2 * LETTER_ID[c] + int(rng.integers(2))) for c in line.split()) + "\n" for line in lines(corpus / "sign" / f"{split}.ltr"))
        )
    run_script("prepare_char_task.py", "--speech", corpus / "speech", "--sign-km", km, "--sign-clusters", 60, "--out", tmp_path / "task")
    assert "60 sign units" in capsys.readouterr().out
    assert len(lines(tmp_path / "task" / "dict.sign.txt")) == 60
    assert lines(tmp_path / "task" / "valid.ref") == lines(km / "valid.km")

    def fails(message, *args):
        with pytest.raises(SystemExit, match=message):
            run_script("prepare_char_task.py", "--speech", corpus / "speech", *args, "--out", tmp_path / "bad")

    fails(rf"{km}/train.km:\d+: unit 5\d is not below the 50 sign clusters", "--sign-km", km, "--sign-clusters", 50)
    short = tmp_path / "short"
    short.mkdir()
    for split in ("train", "test"):
        (short / f"{split}.km").write_text((km / f"{split}.km").read_text())
    (short / "valid.km").write_text("\n".join(lines(km / "valid.km")[:-1]) + "\n")
    fails(rf"{corpus}/speech/valid.lengths:20: no matching line in {short}/valid.km \(19 references for 20 speech sentences\)", "--sign-km", short)
    (short / "valid.km").write_text("\n".join(lines(km / "valid.km")[1:] + lines(km / "valid.km")[:1]) + "\n")
    fails(rf"{short}/valid.km:1: \d+ sign units for the \d+ letters of {corpus}/speech/valid.ltr:1", "--sign-km", km, "--ref-km", short)
    assert not (tmp_path / "bad").exists()  # nothing written when a check fails

    with pytest.raises(SystemExit, match=rf"error: {tmp_path}/nopool: letter pool folder not found"):
        run_script("build_fingerspelling_corpus.py", "--stdlib-text", "--pool", tmp_path / "nopool", "--out", tmp_path / "c2")
    text = tmp_path / "text.txt"
    text.write_text("Line one is here.\n\n1 2 3\nline four\nline five\nline six!\nline seven\n")
    with pytest.raises(SystemExit, match=r"error: 5 distinct sentences with letters \(of 7\) are too few for 400 evaluation sentences"):
        run_script("build_fingerspelling_corpus.py", "--text", text, "--pool", synthetic_pool, "--out", tmp_path / "c3")
    run_script("build_fingerspelling_corpus.py", "--text", text, "--pool", synthetic_pool, "--pool-size", 10, "--valid", 1, "--test", 1, "--out", tmp_path / "c3")
    ids = json.load(open(tmp_path / "c3" / "summary.json"))["sentence_ids"]
    text_lines = lines(text)
    for side, split in (("train_speech", "train"), ("valid", "valid"), ("test", "test")):  # ids are line numbers - 1
        assert lines(tmp_path / "c3" / "speech" / f"{split}.wrd") == [text_lines[i].lower().rstrip(".!") for i in ids[side]]
    assert sorted(sum(ids.values(), [])) == [0, 3, 4, 5, 6]
