"""Character-level speech2sign-U and the word-level GAN baselines trained through fairseq-hydra-train:
metrics in the log, fairseq-generate on the checkpoint, divergence stopping with the last good
checkpoint kept, and the paper-size configs built for shapes."""
import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary
from omegaconf import OmegaConf

from fairseq_signlang.tools.training import PACKAGE_DIR, hydra_train_command, log_records, run_hydra_train

from .conftest import CONFIG_DIR, REPO
from .gan_corpora import char_task_folder

BIN = os.path.dirname(sys.executable)


def overrides(data, run_dir, *extra):
    return [f"task.data={data}", f"checkpoint.save_dir={run_dir}/ckpt", f"hydra.run.dir={run_dir}/hydra", "common.log_format=json", *extra]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("char"))
    corpus = char_task_folder(os.path.join(root, "data"), num_train=1500, num_valid=100)
    run = os.path.join(root, "run")
    # 2000 of the config's 3000 updates: the learning rates are fixed, so the run is the first two
    # thirds of the full one, and its best validation comes at update 2000
    log = run_hydra_train(CONFIG_DIR, "char_tiny", overrides(corpus["data"], run, "optimization.max_update=2000"), f"{run}/train.log", 2000)
    return corpus, run, log


def test_char_gan_trains_through_fairseq_and_logs_its_metrics(char_run):
    corpus, run, log = char_run
    train = log_records(log, "train")
    assert train and all(k in train[-1] for k in ("train_loss_g", "train_loss_d_real", "train_grad_pen", "train_smoothness", "train_code_pen"))
    assert float(train[-1]["train_d_step_share"]) == pytest.approx(0.5, abs=0.05)  # alternation
    valid = log_records(log, "valid")
    assert valid and all(k in valid[-1] for k in ("valid_uer", "valid_a2v_recall@1", "valid_v2a_recall@10"))
    best = min(float(v["valid_uer"]) for v in valid)
    print(f"char GAN: best valid UER {best:.1f}, unigram baseline {corpus['unigram_baseline_uer']:.1f}")
    # measured here: valid UER 86.7, 77.8, 52.8, 46.7 at updates 500..2000 (then 59.4, 64.8 up to 3000);
    # the unigram-frequency baseline (every letter read as the most frequent sign unit) is 87.2
    assert corpus["unigram_baseline_uer"] > 80
    assert best <= 70.0, f"best valid UER {best:.1f} is not clearly below the unigram baseline {corpus['unigram_baseline_uer']:.1f}"
    assert os.path.isfile(f"{run}/ckpt/checkpoint_best.pt") and os.path.isfile(f"{run}/ckpt/checkpoint_last.pt")


def test_fairseq_generate_recognises_sign_units(char_run):
    corpus, run, _ = char_run
    proc = subprocess.run(
        [f"{BIN}/fairseq-generate", corpus["data"], "--user-dir", PACKAGE_DIR, "--task", "speech2sign_u_char",
         "--path", f"{run}/ckpt/checkpoint_best.pt", "--gen-subset", "valid", "--batch-size", "32", "--scoring", "wer", "--cpu"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = [line.split("\t")[-1].split() for line in proc.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 100 and all(hyps)
    assert all(a != b for h in hyps for a, b in zip(h, h[1:]))  # repeats merged
    assert re.search(r"WER: [\d.]+", proc.stdout + proc.stderr)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(char_run, tmp_path):
    """Resume the trained run with a fresh optimizer (its update count starts again at 0) and an
    absurd generator learning rate: the first update makes the parameters infinite, training stops
    with a clear message, and checkpoint_last.pt is still the good one it resumed from."""
    corpus, run, _ = char_run
    shutil.copytree(f"{run}/ckpt", tmp_path / "ckpt")
    last = tmp_path / "ckpt" / "checkpoint_last.pt"
    before = torch.load(last, map_location="cpu", weights_only=True)
    cmd = hydra_train_command(CONFIG_DIR, "char_tiny", [
        f"task.data={corpus['data']}", f"checkpoint.save_dir={tmp_path}/ckpt", f"hydra.run.dir={tmp_path}/hydra",
        "checkpoint.reset_optimizer=true", "checkpoint.save_interval_updates=1", "optimization.max_update=10",
        "optimizer.groups.generator.optimizer.lr=[1e39]",
    ])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "training diverged: update 1 made parameters generator.conv.weight infinite or NaN" in out and "checkpoint_last.pt" in out, out[-3000:]
    after = torch.load(last, map_location="cpu", weights_only=True)
    assert after["optimizer_history"][-1]["num_updates"] == before["optimizer_history"][-1]["num_updates"] == 2000
    for name, value in after["model"].items():
        assert torch.isfinite(value).all() and torch.equal(value, before["model"][name]), name


@pytest.mark.parametrize("objective", ["jsd", "mmd"])
def test_word_gan_baselines_train_through_fairseq(objective, known_mapping_corpus, tmp_path):
    data, _ = known_mapping_corpus
    log = run_hydra_train(
        CONFIG_DIR, f"word_{objective}_tiny",
        overrides(data, str(tmp_path), "optimization.max_update=10", "dataset.validate_interval_updates=10", "checkpoint.save_interval_updates=10", "criterion.max_skip=2"),
        f"{tmp_path}/train.log", 10,
    )
    train, valid = log_records(log, "train"), log_records(log, "valid")
    # one full batch per epoch, so epochs alternate: generator steps, then discriminator steps
    g_key, d_key = ("train_loss_g", "train_loss_d_real") if objective == "jsd" else ("train_mmd_g", "train_mmd_d")
    assert [float(r["train_d_step_share"]) for r in train] == [0.0, 1.0] * 5
    assert all(r[g_key] is not None for r in train[::2]) and all(r[d_key] is not None for r in train[1::2])
    # the same validation metrics as the L1 objective
    assert len(valid) == 1 and all(k in valid[-1] for k in ("valid_uer", "valid_a2v_recall@1", "valid_a2v_recall@10", "valid_v2a_recall@5"))


def test_paper_size_char_config_builds_and_runs_a_batch(tmp_path):
    """char_fingerspelling.yaml, wav2vec-U's sizes: a discriminator of two 384-wide hidden causal
    convolutions of width 6 over 26 units; a generator from 512-dim features."""
    from fairseq_signlang.criterions.wav2vec_u_gan import Wav2vecUGANConfig, Wav2vecUGANCriterion
    from fairseq_signlang.models.speech2sign_u.conv_generator import Speech2SignUCharModel, Speech2SignUCharModelConfig

    cfg = OmegaConf.load(os.path.join(CONFIG_DIR, "char_fingerspelling.yaml"))
    model_cfg = OmegaConf.merge(OmegaConf.structured(Speech2SignUCharModelConfig), {k: v for k, v in cfg.model.items() if k != "_name"})
    crit_cfg = OmegaConf.merge(OmegaConf.structured(Wav2vecUGANConfig), {k: v for k, v in cfg.criterion.items() if k != "_name"})
    assert (crit_cfg.gradient_penalty, crit_cfg.smoothness_weight, crit_cfg.code_penalty) == (1.5, 0.5, 4.0)

    sign_units = Dictionary()  # fairseq's 4 specials, then 26 units
    for unit in range(26):
        sign_units.add_symbol(str(unit))
    task = SimpleNamespace(speech_input_dim=512, target_dictionary=sign_units)
    model = Speech2SignUCharModel.build_model(model_cfg, task)
    criterion = Wav2vecUGANCriterion(crit_cfg, task)
    d = criterion.discriminator.net
    assert [tuple(m.weight.shape) for m in d if isinstance(m, torch.nn.Conv1d)] == [(384, 26, 6), (384, 384, 6), (1, 384, 6)]
    assert tuple(model.generator.conv.weight.shape) == (26, 512, 4)
    feats, padding = torch.randn(3, 50, 512), torch.arange(50)[None] >= torch.tensor([50, 40, 20])[:, None]
    out = model(src_feats=feats, padding_mask=padding)
    assert out["logits"].shape[0] == 3 and out["logits"].shape[2] == 26 and out["padding_mask"].shape == out["logits"].shape[:2]
    probs = model.get_normalized_probs(out, log_probs=False)
    assert probs.shape[-1] == 30 and torch.all(probs[..., :4] == 0)
    sample = {"net_input": {"src_feats": feats, "padding_mask": padding}, "sign_tokens": torch.randint(4, 30, (3, 30)),
              "sign_padding_mask": torch.zeros(3, 30, dtype=torch.bool), "ntokens": 110, "nsentences": 3}
    criterion.train()
    for update in (0, 1):  # a generator step, then a discriminator step
        criterion.set_num_updates(update)
        loss, sample_size, logs = criterion(model, sample)
        assert torch.isfinite(loss) and sample_size == 3 and ("loss_g" in logs) == (update == 0)
