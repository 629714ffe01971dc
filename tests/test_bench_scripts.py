"""The benchmark scripts a user runs for the README's long comparisons, at the smallest size that
still shows what they measure: word and character decipherment that learn a known mapping (UER
beside oracle and most-frequent-unit baselines, the checkpoint chosen without labels), a missing
config named before anything is built, retrieval's methods checked against their references,
and the feature-extraction benchmark's measurements.
Text: Python's docstrings, which no benchmark default uses."""
import json
import os

import pytest

from fairseq_signlang.corpora.text_sources import stdlib_docstring_sentences

from .conftest import run_script


@pytest.fixture(scope="module")
def docstring_text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "docstrings.txt"
    path.write_text("\n".join(" ".join(s) for s in stdlib_docstring_sentences()) + "\n")
    return str(path)


def check_chosen_without_labels(row):
    # the speech_nll choice is one of the run's checkpoints: never better than its best on valid
    assert row["valid_uer_best"] <= row["valid_uer_chosen"] <= 100, row


def test_word_decipherment_benchmark_learns_the_hidden_pairing(docstring_text, tmp_path):
    proc = run_script("bench_decipherment.py", "--out", tmp_path, "--vocab", "100", "--pairing", "hidden", "--objective", "l1+decipher",
                      "--sentences", "4000", "--text", docstring_text)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.load(open(tmp_path / "rows.json"))
    # measured: UER 9.2 (oracle 7.0, most frequent unit 84.6), A->V R@1 100
    assert (row["vocab"], row["pairing"], row["objective"]) == (100, "hidden", "l1+decipher")
    assert row["uer"] < row["oracle_uer"] + 10 and row["uer"] < row["majority_uer"] - 50 and row["a2v_r1"] > 80, row
    check_chosen_without_labels(row)
    assert "| 100 | hidden | l1+decipher |" in open(tmp_path / "table.md").read()


def test_word_decipherment_benchmark_names_a_missing_config(tmp_path):
    proc = run_script("bench_decipherment.py", "--out", tmp_path / "out", "--vocab", "100", "20", "--objective", "decipher")
    assert proc.returncode != 0
    assert "objective decipher has no config for 20 words" in proc.stderr and "word_decipher_vocab20.yaml" in proc.stderr
    assert "it has configs for 100, 200, 500, 1000 words" in proc.stderr
    assert not os.path.exists(tmp_path / "out")


def test_char_decipherment_benchmark_learns_the_letters(docstring_text, tmp_path):
    proc = run_script("bench_char_decipherment.py", "--out", tmp_path, "--text", docstring_text, "--sentences", "900",
                      "--sign-units", "letters", "--init", "tempering", "--seed", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.load(open(tmp_path / "rows.json"))
    # measured: UER 6.4 (oracle 5.8, most frequent unit 98.2), A->V R@1 100
    assert (row["sign_units"], row["init"]) == ("letters", "tempering")
    assert row["uer"] < row["oracle_uer"] + 5 and row["majority_uer"] > 90 and row["a2v_r1"] > 80, row
    check_chosen_without_labels(row)


def test_feature_benchmark_measures_both_writers_at_every_prefix(tmp_path):
    proc = run_script("bench_features.py", "--minutes", "0.2", "--mels", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "audio s/s" in line]
    assert [(line.split()[0], line.split()[6]) for line in lines] == [(f"{k}x", mode) for k in (1, 2, 4) for mode in ("streaming", "in-memory")]
    assert all(float(line.split()[-2]) > 0 for line in lines)  # peak memory, MB
    assert "peak memory growth from 1x to 4x: streaming" in proc.stdout


@pytest.mark.parametrize("noise, recall_at_1", [(0.0, (90, 100)), (1.0, (0, 20))])
def test_retrieval_benchmark_checks_its_methods_against_the_references(tmp_path, noise, recall_at_1):
    """The script stops if the batched DTW disagrees with dtw-python, dtaidistance with its stated
    equivalent, or the pruned ranking's recall with the full matrix's; recall follows the
    queries' noise (posteriors that know their signs, or nothing: chance is 2.5 % of 40)."""
    proc = run_script("bench_retrieval.py", "--size", "40", "--large", "0", "--units", "20", "--device", "cpu", "--noise", noise, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recall identical to the full matrix's" in proc.stdout
    recall = json.loads(proc.stdout.split("recall@k: ")[1].splitlines()[0].replace("'", '"'))
    low, high = recall_at_1
    assert low <= recall["a2v_recall@1"] <= high and low <= recall["v2a_recall@1"] <= high, recall
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " s | " in line]
    assert [r.split(" (")[0] for r in rows] == ["| batched torch DTW, full matrix", "| dtw-python, per pair", "| dtaidistance C, parallel",
                                                "| pruned ranking, exact recall"]
