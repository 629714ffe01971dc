"""The media demo end to end on a small corpus: speech synthesized word by word, signs rendered
to video, both through the user-facing feature scripts, then training and retrieval."""
import json
import os
import subprocess
import sys

import pytest

from fairseq_signlang.corpora.synthetic.simulated_units import markov_sentences
from fairseq_signlang.io.video import read_video

from .conftest import REPO


@pytest.mark.usefixtures("speech_synthesizers")
def test_media_demo_writes_metrics_samples_and_purity(tmp_path):
    words = ["water", "light", "house", "river", "stone", "bread", "green", "night", "seven", "music", "table", "cloud"]
    text = tmp_path / "sentences.txt"
    text.write_text("\n".join(" ".join(words[int(w[1:])] for w in s) for s in markov_sentences(len(words), 500, seed=2)))
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/demo_media.py", "--out", str(out), "--text", str(text), "--vocab", str(len(words)),
         "--sentences", "400", "--signers", "4", "--speech-clusters", "24", "48", "--warm-start-updates", "20", "--max-update", "30"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "$ python scripts/extract_speech_features.py" in proc.stdout and "$ python scripts/extract_sign_features.py" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"uer", "a2v_recall@1", "a2v_recall@5", "a2v_recall@10", "v2a_recall@1", "v2a_recall@5", "v2a_recall@10"}
    assert 0 <= metrics["a2v_recall@1"] <= metrics["a2v_recall@5"] <= metrics["a2v_recall@10"] <= 100
    purity = json.loads((out / "purity.json").read_text())
    assert purity["speech_clusters"] in (24, 48) and set(purity["speech"]) == {"24", "48"} and 0 < purity["sign"] <= 1
    for png in ("alignments.png", "training_curves.png"):
        assert os.path.getsize(out / png) > 5_000, png
    frames, fps = read_video(str(out / "samples" / "test0_sign.mp4"))
    spoken = (out / "samples" / "test0.txt").read_text().split()
    assert len(spoken) >= 5 and frames.shape[1:] == (96, 96, 3) and len(frames) >= 6 * len(spoken)
    assert os.path.getsize(out / "samples" / "test0_speech.wav") > 16000
    dict_src = (out / "data" / "dict.src.txt").read_text().splitlines()
    assert len(dict_src) == purity["speech_clusters"]
    # the disjoint build: speech of one half of the training sentences, signs of the other
    speech = [json.loads(line)["words"] for line in (out / "corpus" / "train_disjoint" / "speech.jsonl").read_text().splitlines()]
    sign = [json.loads(line)["words"] for line in (out / "corpus" / "train_disjoint" / "sign.jsonl").read_text().splitlines()]
    train = (out / "data_disjoint" / "train.src").read_text().splitlines()
    assert len(train) == len(speech) and abs(len(speech) - len(sign)) <= 1 and len(speech) + len(sign) == len(
        (out / "data" / "train.src").read_text().splitlines())
    assert [len(line.split()) for line in train] == [len(words) for words in speech]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"hidden", "disjoint"} and summary["hidden"]["uer"] == metrics["uer"]
    assert summary["disjoint"]["uer"] == json.loads((out / "disjoint" / "metrics.json").read_text())["uer"]
    for row in summary.values():
        assert 0 < row["oracle_uer"] < row["majority_uer"] <= 100 and row["chance_recall@1"] > 0
    # the unpairedness report of each build's training sides
    assert "paired: the sides render the same sentences" in proc.stdout
    hidden, disjoint = (json.loads((folder / "unpairedness.json").read_text())["between_sides"] for folder in (out, out / "disjoint"))
    assert hidden["same_sentences"] and not disjoint["same_sentences"] and disjoint["a_in_b_share"] < 50
