"""The unpairedness report (fairseq_signlang.tools.unpairedness, scripts/check_unpaired.py): on
word corpora built with the hidden pairing it finds every sentence on both sides, on the
disjoint build none; its divergences match a hand computation; bad files are named with their
line."""
import json
import os
import runpy
import sys
from math import log2

import numpy as np
import pytest

from fairseq_signlang.corpora.sign_corpus import ClipPool, build_word_corpus
from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.tools.unpairedness import check_unpaired, format_report, jensen_shannon_bits, read_sentences

from .conftest import REPO, run_script

GLOSSES = ["go", "do", "you", "hear", "the", "cat"]
check_main = runpy.run_path(os.path.join(REPO, "scripts", "check_unpaired.py"))["main"]


def unique_sentences(n, seed):
    """n distinct sentences of 5-8 glosses, so the disjoint build shares no sentence by chance."""
    rng = np.random.default_rng(seed)
    out = {}
    while len(out) < n:
        s = tuple(rng.choice(GLOSSES, size=int(rng.integers(5, 9))))
        out.setdefault(s, None)
    return [list(s) for s in out]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """A train alignment of 60 distinct sentences, a test split of 10 new sentences and 2 of the
    training ones, and an empty placeholder file per clip (the builder only lists the clips)."""
    root = tmp_path_factory.mktemp("unpaired")
    for g in GLOSSES:
        os.makedirs(root / "clips" / g)
        for k in range(2):
            (root / "clips" / g / f"{g}_{k}.mp4").write_bytes(b"")
    sentences = unique_sentences(72, seed=0)
    train, test = sentences[:60], sentences[60:70] + sentences[:2]
    align = root / "train.align.jsonl"
    align.write_text("".join(json.dumps([[w, i * 0.3, i * 0.3 + 0.3] for i, w in enumerate(s)]) + "\n" for s in train))
    pool = ClipPool.from_folders(str(root / "clips"))
    build_word_corpus(test, pool, len(GLOSSES), str(root / "test"), pairing="paired", vocab=GLOSSES)
    build_word_corpus(train, pool, len(GLOSSES), str(root / "disjoint"), pairing="disjoint", vocab=GLOSSES)
    return root


def test_builder_prints_full_overlap_for_the_hidden_pairing(corpora, monkeypatch, capsys):
    out = corpora / "hidden"
    monkeypatch.setattr(sys, "argv", ["build_word_corpus.py", "--alignment", str(corpora / "train.align.jsonl"), "--clips",
                                      str(corpora / "clips"), "--vocab", "6", "--pairing", "hidden", "--out", str(out),
                                      "--check-refs", str(corpora / "test" / "speech.jsonl")])
    runpy.run_path(os.path.join(REPO, "scripts", "build_word_corpus.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "paired: the sides render the same sentences" in printed
    assert "sentences in both: 60 distinct; 100.0 % of speech's 60, 100.0 % of sign's 60" in printed
    assert "JSD unigram 0.0000, bigram 0.0000 bits" in printed
    test_ref = corpora / "test" / "speech.jsonl"
    assert f"warning: {test_ref}: 2 of its 12 sentences (16.7 %) are in speech's training corpus, 2 (16.7 %) in sign's" in printed

    report = check_unpaired(str(out / "speech.jsonl"), str(out / "sign.jsonl"), [str(corpora / "test" / "speech.jsonl")], draws=0)
    between = report["between_sides"]
    assert between["shared_distinct"] == 60 and between["a_in_b_share"] == between["b_in_a_share"] == 100.0
    assert between["same_sentences"] and not between["same_order"]
    assert between["unigram_jsd_bits"] == between["bigram_jsd_bits"] == 0.0
    assert between["a_oov_in_b"]["tokens"] == between["b_oov_in_a"]["tokens"] == 0
    assert [(r["side"], r["ref_in_side"], r["side_in_ref"]) for r in report["with_refs"]] == [("a", 2, 2), ("b", 2, 2)]


def test_script_finds_no_overlap_in_the_disjoint_build(corpora, tmp_path):
    disjoint = corpora / "disjoint"
    out = tmp_path / "report.json"
    proc = run_script("check_unpaired.py", "--side-a", disjoint / "speech.jsonl", "--side-b", disjoint / "sign.jsonl",
                      "--refs", corpora / "test" / "speech.jsonl", "--names", "speech", "sign", "--out", out, "--fail-on-overlap")
    # the test split holds 2 training sentences: each on one side or the other, so the run fails on overlap
    assert proc.returncode == 1, proc.stderr
    assert "verdict: disjoint: no sentence in both" in proc.stdout
    assert "sentences in both     0 distinct; speech: 0 of 30 (0.0 %) in sign; sign: 0 of 30 (0.0 %) in speech" in proc.stdout
    report = json.loads(out.read_text())
    between = report["between_sides"]
    assert between["shared_distinct"] == between["a_in_b"] == between["b_in_a"] == 0
    assert between["unigram_jsd_bits"] > 0 and between["bigram_jsd_bits"] > 0
    assert between["baseline"]["draws"] == 5 and between["baseline"]["bigram_jsd_bits"] > 0
    assert sum(r["ref_in_side"] for r in report["with_refs"]) == 2 and len(report["warnings"]) >= 1
    # the two halves are the training sentences: without the references nothing overlaps, and the run passes
    check_main(["--side-a", str(disjoint / "speech.jsonl"), "--side-b", str(disjoint / "sign.jsonl"), "--out", str(out), "--fail-on-overlap"])
    assert json.loads(out.read_text())["verdict"] == "disjoint: no sentence in both"
    # an evaluation split is paired line by line
    report = check_unpaired(str(corpora / "test" / "speech.jsonl"), str(corpora / "test" / "sign.jsonl"), draws=0)
    assert report["between_sides"]["same_order"] and report["verdict"].startswith("paired line by line")


def test_divergences_and_oov_match_a_hand_computation(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("x y\nx x\n")
    b.write_text("y y\n")
    between = check_unpaired(str(a), str(b), draws=0)["between_sides"]
    # unigrams: P = (x 3/4, y 1/4), Q = (x 0, y 1), M = (3/8, 5/8)
    unigram = 0.5 * (3 / 4 * log2((3 / 4) / (3 / 8)) + 1 / 4 * log2((1 / 4) / (5 / 8))) + 0.5 * (1 * log2(1 / (5 / 8)))
    # bigrams with start/end markers: A has <s>x 2, xy, y</s>, xx, x</s> (6); B <s>y, yy, y</s> (3).
    # Only y</s> is shared (1/6 against 1/3, M 1/4); a bigram of one side only adds half its probability.
    bigram = 0.5 * (5 / 6) + 0.5 * (2 / 3) + 0.5 * (1 / 6 * log2((1 / 6) / (1 / 4)) + 1 / 3 * log2((1 / 3) / (1 / 4)))
    assert between["unigram_jsd_bits"] == pytest.approx(unigram, abs=1e-6) and unigram == pytest.approx(0.548795, abs=1e-6)
    assert between["bigram_jsd_bits"] == pytest.approx(bigram, abs=1e-6) and bigram == pytest.approx(0.770426, abs=1e-6)
    # x never occurs in B: 1 of A's 2 types, 3 of its 4 tokens; B's only word occurs in A
    assert (between["a_oov_in_b"]["types"], between["a_oov_in_b"]["tokens"], between["a_oov_in_b"]["token_rate"]) == (1, 3, 75.0)
    assert between["b_oov_in_a"]["tokens"] == 0 and between["shared_distinct"] == 0
    # add-one smoothing over the union {x, y}: P = (4/6, 2/6), Q = (1/4, 3/4), M = (11/24, 13/24)
    p, q, m = (4 / 6, 2 / 6), (1 / 4, 3 / 4), (11 / 24, 13 / 24)
    smoothed = 0.5 * sum(pi * log2(pi / mi) for pi, mi in zip(p, m)) + 0.5 * sum(qi * log2(qi / mi) for qi, mi in zip(q, m))
    assert check_unpaired(str(a), str(b), smoothing=1.0, draws=0)["between_sides"]["unigram_jsd_bits"] == pytest.approx(smoothed, abs=1e-6)
    assert jensen_shannon_bits([5, 0], [0, 7]) == pytest.approx(1.0) and jensen_shannon_bits([2, 3], [4, 6]) == pytest.approx(0.0)


def test_unit_corpus_words_and_unit_spaces(tmp_path):
    """The demo's unit corpora write the words each side renders; units of two inventories are
    not compared with each other, only with references of their own."""
    vocab = [f"w{i}" for i in range(30)]
    sentences = [list(s) for s in dict.fromkeys(tuple(s) for s in markov_sentences(len(vocab), 400, seed=3))]
    spec = dict(similar_sign_pairs=2, valid_sentences=20, test_sentences=20, seed=3)
    for disjoint in (False, True):
        data = tmp_path / str(disjoint)
        build_unit_corpus(sentences, vocab, str(data), UnitCorpusSpec(disjoint_halves=disjoint, **spec))
        report = check_unpaired(str(data / "train.src.wrd"), str(data / "train.sign.wrd"), [str(data / "test.wrd")], draws=0)
        between = report["between_sides"]
        assert between["same_sentences"] != disjoint and (between["shared_distinct"] == 0) == disjoint
        assert all(r["ref_in_side"] == 0 for r in report["with_refs"]) and not report["warnings"]
    units = check_unpaired(str(data / "train.src"), str(data / "train.sign"), [str(data / "test.src"), str(data / "test.ref")], draws=0)
    assert not units["between_sides"]["comparable"] and units["verdict"].startswith("not measured: A holds speech units and B sign units")
    assert [(r["ref"].rsplit(".", 1)[1], r["side"], r["comparable"]) for r in units["with_refs"]] == [
        ("src", "a", True), ("src", "b", False), ("ref", "a", False), ("ref", "b", True)]
    assert "not comparable" in format_report(units)


def test_manifests_transcripts_and_letters(tmp_path):
    clips = tmp_path / "clips.tsv"
    clips.write_text("id\tpath\ttext\nc1\tnone.mp4\tThe cat\nc2\tnone.mp4\tgo home\n")
    assert read_sentences(str(clips)).sentences == [("The", "cat"), ("go", "home")]
    assert read_sentences(str(clips), lowercase=True).sentences[0] == ("the", "cat")
    audio = tmp_path / "train.tsv"
    audio.write_text("/nowhere\na.wav\t16000\nb.wav\t8000\n")
    (tmp_path / "train.wrd").write_text("the cat\ngo home\n")
    corpus = read_sentences(str(audio))
    assert corpus.space == "words" and corpus.sentences == [("the", "cat"), ("go", "home")]
    (tmp_path / "sign.ltr").write_text("t h e | c a t |\n")
    (tmp_path / "speech.ltr").write_text("t h e c a t\n")
    assert check_unpaired(str(tmp_path / "speech.ltr"), str(tmp_path / "sign.ltr"), draws=0)["between_sides"]["same_order"]
    km = tmp_path / "km"
    km.mkdir()
    (km / "train.km").write_text("1 2 3\n4 5\n")
    (km / "test.km").write_text("4 5\n")
    report = check_unpaired(str(km / "train.km"), str(audio), [str(km / "test.km")], draws=0)
    assert report["sides"]["a"]["space"].startswith("cluster ids of") and report["with_refs"][0]["ref_in_side"] == 1


def test_bad_files_are_named_with_their_line(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"words": ["go", "home"]}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"words": ["go"]}) + "\n" + '{"words": ["go", \n')
    with pytest.raises(SystemExit) as stopped:  # the script's own message, as a user sees it
        check_main(["--side-a", str(good), "--side-b", str(bad), "--out", str(tmp_path / "r.json")])
    assert str(stopped.value.code).startswith(f"error: {bad}:2: not a JSON line")
    assert not (tmp_path / "r.json").exists()
    km = tmp_path / "train.km"
    km.write_text("1 2\n3 x 5\n")
    with pytest.raises(CorpusError, match=rf"{km}:2: expected cluster ids"):
        read_sentences(str(km))
    units = tmp_path / "train.sign"
    units.write_text("1 2\n\n")
    with pytest.raises(CorpusError, match=rf"{units}:2: empty sentence"):
        read_sentences(str(units))
    audio = tmp_path / "valid.tsv"
    audio.write_text("/nowhere\na.wav\t16000\nb.wav\t8000\n")
    (tmp_path / "valid.wrd").write_text("the cat\n")
    with pytest.raises(CorpusError, match=rf"{audio}:3: no transcript for this row"):
        read_sentences(str(audio))
    manifest = tmp_path / "clips.tsv"
    manifest.write_text("id\tpath\nc1\tx.mp4\n")
    with pytest.raises(CorpusError, match=rf"{manifest}:1: clip manifest without a text column"):
        read_sentences(str(manifest))
    with pytest.raises(CorpusError, match=r"none\.txt: side B corpus not found"):
        check_unpaired(str(good), str(tmp_path / "none.txt"))
