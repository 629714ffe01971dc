"""Word-level speech2sign-U trained through fairseq: recovery of a known mapping, checkpoints
that load under weights-only unpickling, resume after SIGKILL, 2-process CPU training."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint
from fairseq_signlang.tools.training import PACKAGE_DIR, hydra_train_command, log_records, run_hydra_train

from .conftest import CONFIG_DIR, REPO, free_port, gloo_overrides

BIN = os.path.dirname(sys.executable)


def train_overrides(data, run_dir, *extra):
    return [f"task.data={data}", f"checkpoint.save_dir={run_dir}/ckpt", f"hydra.run.dir={run_dir}/hydra", *extra]


@pytest.fixture(scope="module")
def trained(known_mapping_corpus, tmp_path_factory):
    data, truth = known_mapping_corpus
    run = str(tmp_path_factory.mktemp("word_run"))
    overrides = train_overrides(data, run, "common.log_format=json", f"common.tensorboard_logdir={run}/tb")
    log = run_hydra_train(CONFIG_DIR, "word_tiny", overrides, f"{run}/train.log", 150)
    return data, run, log


def test_recovers_known_word_to_unit_mapping(trained):
    data, run, log = trained
    model, task = load_checkpoint(f"{run}/ckpt/checkpoint_best.pt", data, "cpu")
    result = evaluate_split(model, task, "test")
    # measured: UER 8.9, R@1 100 both ways; chance: R@1 0.5 %, UER ~ 95 %;
    # the paper's speech2text-U topline at vocabulary 98: UER 7.5, R@1 98.2
    assert result["uer"] <= 15.0, result["uer"]
    assert result["a2v_recall@1"] >= 85.0, result["a2v_recall@1"]
    assert result["v2a_recall@1"] >= 85.0, result["v2a_recall@1"]
    # validation went through fairseq's metrics and the best checkpoint followed the label-free
    # speech_nll, to within 3 UER points of the best validation
    valid = log_records(log, "valid")
    assert valid and all(k in valid[-1] for k in ("valid_uer", "valid_a2v_recall@10", "valid_v2a_recall@5"))
    assert float(valid[-1]["valid_best_speech_nll"]) == min(float(v["valid_speech_nll"]) for v in valid)
    chosen = min(valid, key=lambda v: float(v["valid_speech_nll"]))
    assert float(chosen["valid_uer"]) <= min(float(v["valid_uer"]) for v in valid) + 3.0


def test_tensorboard_logdir_gets_event_files(trained):
    _, run, _ = trained
    events = [f for _, _, files in os.walk(f"{run}/tb") for f in files if f.startswith("events.out.tfevents")]
    assert len(events) >= 2, events  # train and valid writers


def test_fairseq_generate_reports_unit_error_rate(trained):
    """fairseq-generate on a hydra checkpoint: one sign unit per speech word, and with
    --scoring wer the unit error rate, equal to the library's UER."""
    data, run, _ = trained
    proc = subprocess.run(
        [f"{BIN}/fairseq-generate", data, "--user-dir", PACKAGE_DIR, "--task", "speech2sign_u_word",
         "--path", f"{run}/ckpt/checkpoint_best.pt", "--gen-subset", "test", "--batch-size", "64",
         "--scoring", "wer", "--cpu"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith("H-")]
    targets = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith("T-")]
    assert len(hyps) == 200 and len(targets) == 200
    wer = float(re.search(r"WER: ([\d.]+)", proc.stdout + proc.stderr).group(1))
    model, task = load_checkpoint(f"{run}/ckpt/checkpoint_best.pt", data, "cpu")
    assert wer == pytest.approx(evaluate_split(model, task, "test")["uer"], abs=0.01)


def test_checkpoint_loads_with_weights_only(trained):
    _, run, _ = trained
    state = torch.load(f"{run}/ckpt/checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert "cfg" in state and "model" in state


def test_fairseq_validate_runs_on_hydra_checkpoint(trained):
    data, run, _ = trained
    proc = subprocess.run(
        [f"{BIN}/fairseq-validate", data, "--user-dir", PACKAGE_DIR, "--task", "speech2sign_u_word",
         "--path", f"{run}/ckpt/checkpoint_best.pt", "--valid-subset", "test", "--batch-size", "64", "--cpu"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"a2v_recall@1 ([\d.]+)", proc.stdout + proc.stderr)
    assert m and float(m.group(1)) >= 85.0, (proc.stdout + proc.stderr)[-2000:]


def test_retrieve_script_writes_rankings_and_plot(trained, tmp_path):
    data, run, _ = trained
    out = tmp_path / "retrieval"
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/retrieve.py", "--checkpoint", f"{run}/ckpt/checkpoint_best.pt",
         "--data", data, "--split", "test", "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rankings = json.loads((out / "rankings.json").read_text())
    a2v = rankings["a2v"]
    n = len(a2v["better_than_true"])
    assert n == 200 and len(a2v["top"][0]) == 10
    hits = sum(1.0 / (t + 1) for b, t in zip(a2v["better_than_true"], a2v["tied_with_true"]) if b == 0)
    assert rankings["metrics"]["a2v_recall@1"] == pytest.approx(100.0 * hits / n, abs=0.01)
    assert (out / "alignments.png").stat().st_size > 10_000


def test_retrieve_script_prune_gives_the_same_metrics(trained, tmp_path):
    """--prune: recall equal to the full matrix's, ranks counted up to 10, the picture drawn."""
    data, run, _ = trained
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/retrieve.py", "--checkpoint", f"{run}/ckpt/checkpoint_best.pt",
         "--data", data, "--split", "test", "--out", str(tmp_path), "--device", "cpu", "--prune"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pruned = json.loads((tmp_path / "rankings.json").read_text())
    model, task = load_checkpoint(f"{run}/ckpt/checkpoint_best.pt", data, "cpu")
    full = evaluate_split(model, task, "test")
    assert pruned["metrics"] == {k: round(full[k], 2) for k in pruned["metrics"]}
    for direction in ("a2v", "v2a"):
        assert pruned[direction]["capped_at"] == 10 and "top" not in pruned[direction]
        assert pruned[direction]["better_than_true"] == [min(b, 10) for b in full["rankings"][direction]["better_than_true"]]
    assert (tmp_path / "alignments.png").stat().st_size > 10_000


def test_retrieve_script_reports_missing_references(trained, tmp_path):
    data, run, _ = trained
    proc = subprocess.run(
        [sys.executable, f"{REPO}/scripts/retrieve.py", "--checkpoint", f"{run}/ckpt/checkpoint_best.pt",
         "--data", data, "--split", "train", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert proc.returncode != 0 and "has no train.ref" in proc.stderr


def test_resume_after_sigkill(known_mapping_corpus, tmp_path):
    """The documented command, started again in the same folder after SIGKILL, resumes from
    checkpoints/checkpoint_last.pt (the configs keep hydra in the launch folder)."""
    data, _ = known_mapping_corpus
    run = str(tmp_path)
    overrides = [
        f"task.data={data}", "common.log_format=json", "common.log_interval=1", "checkpoint.save_interval_updates=10",
        "dataset.validate_interval_updates=10", "optimization.max_update=80", "dataset.batch_size=1000",
        "checkpoint.best_checkpoint_metric=uer", "checkpoint.maximize_best_checkpoint_metric=false",
    ]
    cmd = hydra_train_command(CONFIG_DIR, "word_tiny", overrides)
    with open(f"{run}/first.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=run, start_new_session=True)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if "num_updates\": \"2" in open(f"{run}/first.log").read() and os.path.exists(f"{run}/checkpoints/checkpoint_last.pt"):
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    saved = torch.load(f"{run}/checkpoints/checkpoint_last.pt", map_location="cpu", weights_only=True)
    saved_updates = saved["optimizer_history"][-1]["num_updates"]
    assert saved_updates >= 10

    second = run_hydra_train(CONFIG_DIR, "word_tiny", overrides, f"{run}/second.log", 80, cwd=run)
    assert f"@ {saved_updates} updates" in second  # "Loaded checkpoint ... (epoch E @ N updates)"
    updates = [int(r["num_updates"]) for r in log_records(second, "train_inner")]
    assert updates[0] == saved_updates + 1 and updates[-1] == 80
    # best_checkpoint_metric can be the UER, minimised, and the best survives the restart
    valid = log_records(open(f"{run}/first.log").read(), "valid") + log_records(second, "valid")
    assert float(valid[-1]["valid_best_uer"]) == min(float(v["valid_uer"]) for v in valid)


def test_two_process_cpu_training_sees_twice_the_data(known_mapping_corpus, tmp_path):
    data, _ = known_mapping_corpus
    common = ["common.log_format=json", "common.log_interval=1", "optimization.max_update=4",
              "dataset.batch_size=500", "dataset.validate_interval_updates=1000", "checkpoint.save_interval_updates=1000",
              "common.cpu=true"]
    single = run_hydra_train(CONFIG_DIR, "word_tiny", train_overrides(data, f"{tmp_path}/single", *common), f"{tmp_path}/single.log", 4)
    port = free_port()
    procs = []
    for rank in range(2):
        dist = gloo_overrides(rank, port)
        cmd = hydra_train_command(CONFIG_DIR, "word_tiny", train_overrides(data, f"{tmp_path}/dist", *common, *dist))
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-3000:] + outs[1][-3000:]
    bsz_single = [float(r["bsz"]) for r in log_records(single, "train_inner")]
    bsz_dist = [float(r["bsz"]) for r in log_records(outs[0], "train_inner")]
    assert bsz_single and bsz_dist
    assert bsz_single[0] == 500 and bsz_dist[0] == 1000
    assert "distributed init (rank 1)" in outs[1] or "distributed init (rank 1)" in outs[0]


def test_continuous_feature_input_trains(tmp_path):
    """speech_input=features: pooled per-word vectors instead of cluster ids. Learns more slowly
    than units (as the paper finds) and wants a smaller lr, since a dense input moves every logit."""
    from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences

    data = str(tmp_path / "data")
    vocab = [f"w{i}" for i in range(100)]
    spec = UnitCorpusSpec(similar_sign_pairs=3, feature_dim=64, seed=7)
    build_unit_corpus(markov_sentences(len(vocab), 2400, seed=7), vocab, data, spec)
    overrides = train_overrides(data, str(tmp_path), "task.speech_input=features", "optimization.lr=[0.03]",
                                "optimization.max_update=100", "dataset.validate_interval_updates=100")
    run_hydra_train(CONFIG_DIR, "word_tiny", overrides, f"{tmp_path}/train.log", 100)
    model, task = load_checkpoint(f"{tmp_path}/ckpt/checkpoint_last.pt", data, "cpu")
    result = evaluate_split(model, task, "test")
    # measured: UER 36.4, R@1 93.5 (A->V) / 90.0 (V->A); chance: R@1 0.5 %, UER about 97 %
    assert result["a2v_recall@1"] >= 60.0 and result["v2a_recall@1"] >= 60.0, result
    assert result["uer"] <= 60.0, result["uer"]


@pytest.mark.parametrize("config,vocab,clusters_per_word,max_skip", [
    ("word_vocab100", 100, 4, 6), ("word_vocab200", 200, 4, 6), ("word_vocab500", 500, 4, 6), ("word_vocab1000", 1000, 2, 4),
])
def test_paper_configs_train_at_paper_sizes(config, vocab, clusters_per_word, max_skip, tmp_path):
    """The paper's configs, for shapes: |X| = 4 x vocabulary speech clusters (2000 for 1000),
    |Y| = vocabulary sign units, K skip-grams, lr 0.4; two updates on a small corpus."""
    from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences

    data = str(tmp_path / "data")
    words = [f"w{i}" for i in range(vocab)]
    spec = UnitCorpusSpec(clusters_per_word=clusters_per_word, valid_sentences=20, test_sentences=20, seed=1)
    build_unit_corpus(markov_sentences(vocab, 300, seed=1, max_len=8), words, data, spec)
    overrides = train_overrides(data, str(tmp_path), "optimization.max_update=2", "common.log_format=json", "common.log_interval=1")
    log = run_hydra_train(CONFIG_DIR, config, overrides, f"{tmp_path}/train.log", 2)
    state = torch.load(f"{tmp_path}/ckpt/checkpoint_last.pt", map_location="cpu", weights_only=True)
    W = state["model"]["generator.proj.weight"]
    nspecial = 4
    assert tuple(W.shape) == (vocab - 5 + nspecial, vocab * clusters_per_word + nspecial)  # 5 similar pairs share units
    cfg = state["cfg"]
    assert cfg["criterion"]["max_skip"] == max_skip and cfg["optimization"]["lr"] == [0.4]
    assert cfg["dataset"]["batch_size"] == (12000 if vocab == 1000 else 16000)
    assert [int(r["num_updates"]) for r in log_records(log, "train_inner")] == [1, 2]


def test_bad_unit_stops_training_with_file_and_line(known_mapping_corpus, tmp_path):
    import shutil

    data = str(tmp_path / "data")
    shutil.copytree(known_mapping_corpus[0], data)
    lines = open(f"{data}/train.src").read().splitlines()
    lines[6] = lines[6] + " 99999"
    open(f"{data}/train.src", "w").write("\n".join(lines) + "\n")
    cmd = hydra_train_command(CONFIG_DIR, "word_tiny", train_overrides(data, str(tmp_path)))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0
    assert f"{data}/train.src:7: unit '99999' is not in {data}/dict.src.txt" in proc.stderr + proc.stdout


def test_reference_with_wrong_word_count_names_line(known_mapping_corpus, tmp_path):
    import shutil

    from fairseq import tasks

    from fairseq_signlang.io.readers import CorpusError
    from fairseq_signlang.tasks.speech2sign_u_word import Speech2SignUWordConfig

    data = str(tmp_path / "data")
    shutil.copytree(known_mapping_corpus[0], data)
    lines = open(f"{data}/valid.ref").read().splitlines()
    lines[3] = lines[3] + " " + lines[3].split()[0]
    open(f"{data}/valid.ref", "w").write("\n".join(lines) + "\n")
    task = tasks.TASK_REGISTRY["speech2sign_u_word"].setup_task(Speech2SignUWordConfig(data=data, seed=1))
    with pytest.raises(CorpusError, match=rf"{data}/valid.ref:4: \d+ sign units for a speech sentence of \d+ words"):
        task.load_dataset("valid")
