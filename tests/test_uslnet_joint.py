"""USLNet's joint stage through fairseq's tools: unsupervised training on unpaired text and video
(eq. 13) from the tiny text and video stages, then fairseq-generate translating sign clips to
text with the issue's plain command."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fairseq_signlang.metrics.bleu import bleu_scores, read_fairseq_generate, strip_sentencepiece
from fairseq_signlang.training import PACKAGE_DIR, log_records, run_hydra_train

from .conftest import REPO
from .uslnet_corpora import USLNET_CONFIGS, VOCAB

BIN = os.path.dirname(sys.executable)
prepare_text = __import__("runpy").run_path(os.path.join(REPO, "scripts", "prepare_text.py"))["main"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """Text side: sentences over the clips' sign vocabulary (not the clips' sentences), a word-level
    sentencepiece model, and the tiny MASS stage."""
    root = tmp_path_factory.mktemp("joint_text")
    rng = np.random.default_rng(5)
    for split, n in (("train", 300), ("valid", 20)):
        (root / f"{split}.txt").write_text("".join(" ".join(rng.choice(VOCAB, size=3)) + "\n" for _ in range(n)))
    prepare_text(["--train", str(root / "train.txt"), "--valid", str(root / "valid.txt"), "--model-type", "word",
                  "--vocab-size", str(len(VOCAB) + 3), "--out", str(root / "bin")])
    run = str(root / "run")
    overrides = [f"task.data={root}/bin", f"checkpoint.save_dir={run}/ckpt", f"hydra.run.dir={run}/hydra", "optimization.max_update=40"]
    run_hydra_train(USLNET_CONFIGS, "text_mass_tiny", overrides, f"{run}/train.log", 40)
    return str(root / "bin"), f"{run}/ckpt/checkpoint_last.pt"


@pytest.fixture(scope="module")
def joint_run(clips, gpt_run, text_run, tmp_path_factory):
    data, text_ckpt = text_run
    run = str(tmp_path_factory.mktemp("joint_run"))
    overrides = [f"task.data={data}", f"task.video_data={clips}", f"task.video_cache={clips}/cache", f"checkpoint.save_dir={run}/ckpt",
                 f"hydra.run.dir={run}/hydra", "common.log_format=json", f"model.text_checkpoint={text_ckpt}",
                 f"model.video_checkpoint={gpt_run[0]}/ckpt/checkpoint_last.pt", "optimization.max_update=8",
                 "dataset.batch_size=8", "dataset.validate_interval_updates=8", "checkpoint.save_interval_updates=8"]
    log = run_hydra_train(USLNET_CONFIGS, "joint_tiny", overrides, f"{run}/train.log", 8)
    return run, log


def test_joint_stage_trains_every_term_of_eq13(joint_run):
    run, log = joint_run
    train = log_records(log, "train")
    assert train
    for term in ("loss_text", "loss_codebook", "loss_video", "loss_t2v2t", "loss_v2t2v"):
        assert all(np.isfinite(float(r[f"train_{term}"])) for r in train), term
    valid = log_records(log, "valid")
    assert valid and "valid_translation_nll" in valid[-1] and "valid_translation_accuracy" in valid[-1]
    state = torch.load(f"{run}/ckpt/checkpoint_last.pt", weights_only=True)
    model_cfg = state["cfg"]["model"]
    assert model_cfg["text_args"]["encoder_layers"] == 2 and model_cfg["video_args"]["vqvae_args"]["n_codes"] == 64
    assert model_cfg["tokens_per_second"] > 0  # measured on the unpaired corpora
    # freeze_video_encoder (the tiny config's, table 5): the VQ-VAE encoder did not move
    start = torch.load(model_cfg["video_checkpoint"], weights_only=True)["model"]
    key = next(k for k in start if k.startswith("vqvae.encoder.") and k.endswith("weight"))
    assert torch.equal(state["model"]["video." + key], start[key])


def test_fairseq_generate_translates_sign_clips(clips, joint_run, text_run):
    """The issue's command, nothing added: fairseq-generate <data> --user-dir --task uslnet_bt
    --path <ckpt> --gen-subset <split> --scoring sacrebleu."""
    run, _ = joint_run
    proc = subprocess.run([f"{BIN}/fairseq-generate", text_run[0], "--user-dir", PACKAGE_DIR, "--task", "uslnet_bt",
                           "--path", f"{run}/ckpt/checkpoint_last.pt", "--gen-subset", "valid", "--scoring", "sacrebleu"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BLEU" in proc.stdout + proc.stderr
    out = f"{run}/generate.out"
    with open(out, "w") as f:
        f.write(proc.stdout)
    hyps, refs = read_fairseq_generate(out)
    hyps, refs = [strip_sentencepiece(h) for h in hyps], [strip_sentencepiece(r) for r in refs]  # no --post-process given
    assert len(hyps) == 3 and all(len(r.split()) == 3 and all(w in VOCAB for w in r.split()) for r in refs)
    scores = bleu_scores(hyps, refs)
    assert 0 <= scores["bleu4"] <= scores["bleu1"] <= 100
