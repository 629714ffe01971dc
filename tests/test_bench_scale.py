"""scripts/bench_scale.py at a tiny size: it trains both vocabulary-1000 configs through
fairseq-hydra-train, and its table and JSON hold every column, with the paper-schedule
projection equal to 3000 x floor(train sentences / batch) x seconds per update."""
import json
import os
import subprocess
import sys

from fairseq_signlang.tools.training import REPO_DIR


def test_bench_scale_tiny(tmp_path):
    out = tmp_path / "bench"
    cmd = [sys.executable, os.path.join(REPO_DIR, "scripts", "bench_scale.py"), "--out", str(out), "--words", "40",
           "--clusters", "80", "--sentences", "2000", "--valid", "50", "--test", "50", "--batch", "300", "--updates", "2",
           "--devices", "cpu", "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_DIR)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    sys.path.insert(0, os.path.join(REPO_DIR, "scripts"))
    try:
        from bench_scale import COLUMNS, PAPER_EPOCHS
    finally:
        sys.path.pop(0)
    lines = (out / "table.md").read_text().splitlines()
    assert lines[0] == "| " + " | ".join(title for _, title in COLUMNS) + " |"
    assert len(lines) == 4 and all(line.count("|") == len(COLUMNS) + 1 for line in lines)

    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert [r["config"] for r in rows] == ["word_vocab1000", "word_decipher_vocab1000"]
    assert results["corpus"]["split_sentences"]["train_speech"] == 2000
    for row in rows:
        assert row["train_sentences"] == 2000 and row["batch"] == 300 and row["updates_timed"] == 1
        assert row["s_per_update"] > 0 and row["max_rss_mib"] > 0 and row["load_train_s"] > 0
        assert row["paper_updates"] == PAPER_EPOCHS * (2000 // 300)
        assert abs(row["paper_hours"] - row["paper_updates"] * row["s_per_update"] / 3600.0) < 1e-12
    assert rows[1]["sign_chain_s"] > 0  # decipherment builds the sign n-gram chain
    # the decipherment config's own schedule: its 200 warm-start updates at the L1 run's rate, then EM
    l1, em = rows[0]["s_per_update"], rows[1]["s_per_update"]
    assert abs(rows[1]["config_hours"] - (200 * l1 + 1500 * em) / 3600.0) < 1e-12
