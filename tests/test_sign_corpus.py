"""The ASL-LibriSpeech-style word corpus builder over a pool of rendered sign clips."""
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.corpora.sign_corpus import ClipPool, build_word_corpus, read_sign_corpus
from fairseq_signlang.io.video import read_clip_manifest, read_video, write_video

from .conftest import REPO

GLOSSES = ["go", "do", "you", "hear", "the", "cat", "sat"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    signer = ProceduralSigner(GLOSSES, seed=0)
    rng = np.random.default_rng(0)
    for g in GLOSSES[:-1]:  # "sat" has no clip
        for s in range(2):
            write_video(str(root / g / f"{g}_{s}.mp4"), render(signer.word(g, s, rng), (48, 48)), fps=25)
    return str(root)


def sentences(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.choice(GLOSSES + ["unknown"], size=int(rng.integers(3, 10)))) for _ in range(n)]


def test_builder_keeps_long_in_vocabulary_sentences_and_hides_the_pairing(clip_folder, tmp_path):
    pool = ClipPool.from_folders(clip_folder)
    assert set(pool.clips) == set(GLOSSES[:-1]) and all(len(c) == 2 for c in pool.clips.values())
    sents = sentences()
    summary = build_word_corpus(sents, pool, vocab_size=5, out_dir=str(tmp_path), min_words=5, seed=1)
    vocab = [line.split()[0] for line in open(tmp_path / "vocab.txt")]
    counts = Counter(w for s in sents for w in s if w in pool.clips)
    assert vocab == [w for w, _ in counts.most_common(5)] and "sat" not in vocab
    speech = [json.loads(line) for line in open(tmp_path / "speech.jsonl")]
    sign = [json.loads(line) for line in open(tmp_path / "sign.jsonl")]
    assert summary["speech_sentences"] == len(speech) == len(sign)
    for s in speech:
        assert len(s["words"]) >= 5 and set(s["words"]) <= set(vocab)
        assert s["words"] == [w for w in sents[s["utt"]] if w in vocab]
    for s in sign:  # one clip of the right gloss per word
        assert [os.path.basename(os.path.dirname(c[0])) for c in s["clips"]] == s["words"]
    assert sorted(map(tuple, (s["words"] for s in speech))) == sorted(map(tuple, (s["words"] for s in sign)))
    assert [s["words"] for s in speech] != [s["words"] for s in sign]  # shuffled: pairing hidden
    frames, _ = read_video(sign[0]["clips"][0][0])
    assert frames.shape[1:] == (48, 48, 3)


def test_disjoint_halves_and_paired_splits(clip_folder, tmp_path):
    pool = ClipPool.from_folders(clip_folder)
    summary = build_word_corpus(sentences(), pool, 5, str(tmp_path / "disjoint"), pairing="disjoint")
    assert abs(summary["speech_sentences"] - summary["sign_sentences"]) <= 1
    # a sentence given three times (or cut to the vocabulary into another's words): all copies on one side
    build_word_corpus(sentences() * 3, pool, 5, str(tmp_path / "repeats"), pairing="disjoint")
    sides = [{tuple(json.loads(line)["words"]) for line in open(tmp_path / "repeats" / f"{side}.jsonl")} for side in ("speech", "sign")]
    assert sides[0] and sides[1] and not sides[0] & sides[1]
    vocab = ["go", "do", "you", "hear", "the"]
    build_word_corpus(sentences(seed=3), pool, 5, str(tmp_path / "test"), pairing="paired", vocab=vocab)
    speech = [json.loads(line) for line in open(tmp_path / "test" / "speech.jsonl")]
    sign = read_sign_corpus(str(tmp_path / "test" / "sign.jsonl"))
    assert [s["words"] for s in speech] == [s["words"] for s in sign]  # paired, for evaluation
    clips = {c.id: c for c in read_clip_manifest(str(tmp_path / "test" / "clips.tsv"))}
    assert set(clips) == {f"{g}_{n}" for g in vocab for n in range(2)}
    for s in sign:
        for w, cid, (path, _, _) in zip(s["words"], s["clip_ids"], s["clips"]):
            assert clips[cid].text == w and clips[cid].path == path
    with pytest.raises(CorpusError, match="without sign clips: \\['sat'\\]"):
        build_word_corpus(sentences(), pool, 5, str(tmp_path / "x"), vocab=["go", "sat"])


def test_wlasl_and_msasl_json_pools(clip_folder, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.link(os.path.join(clip_folder, "go", "go_0.mp4"), videos / "101.mp4")
    os.link(os.path.join(clip_folder, "cat", "cat_1.mp4"), videos / "cat.mp4")
    wlasl = tmp_path / "wlasl.json"
    wlasl.write_text(json.dumps([{"gloss": "go", "instances": [{"video_id": "101"}, {"video_id": "999"}]}]))
    assert ClipPool.from_json(str(wlasl), str(videos)).clips == {"go": [(str(videos / "101.mp4"), None, None)]}
    msasl = tmp_path / "msasl.json"
    msasl.write_text(json.dumps([{"clean_text": "Cat", "url": "https://example.invalid/cat.mp4", "start_time": 0.5, "end_time": 1.5}]))
    assert ClipPool.from_json(str(msasl), str(videos)).clips == {"cat": [(str(videos / "cat.mp4"), 0.5, 1.5)]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"url": "x"}]))
    with pytest.raises(CorpusError, match=rf"{bad}: entry 0 lacks field"):
        ClipPool.from_json(str(bad), str(videos))


def test_script(clip_folder, tmp_path):
    align = tmp_path / "train.align.jsonl"
    align.write_text("\n".join(json.dumps([[w, i * 0.3, i * 0.3 + 0.3] for i, w in enumerate(s)]) for s in sentences()) + "\n")
    proc = subprocess.run([sys.executable, f"{REPO}/scripts/build_word_corpus.py", "--alignment", str(align), "--clips", clip_folder,
                           "--vocab", "5", "--out", str(tmp_path / "corpus")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "corpus" / "sign.jsonl").stat().st_size > 0
    proc = subprocess.run([sys.executable, f"{REPO}/scripts/build_word_corpus.py", "--alignment", str(align), "--clips", str(tmp_path / "none"),
                           "--out", str(tmp_path / "c2")], capture_output=True, text=True)
    assert proc.returncode != 0 and "clip folder not found" in proc.stderr
