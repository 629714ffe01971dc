"""CPC sign encoder: shapes, checkpoints, negative sampling, learning from temporal structure
(and not without it), the script end to end, bad input naming its file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fairseq_signlang.io.checkpoints import CheckpointError
from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.io.writers import write_features
from fairseq_signlang.features.cpc.training import encode_features, train_cpc
from fairseq_signlang.features.cpc.encoder import (
    CPCConfig, CPCSignEncoder, frame_mask, load_checkpoint, pair_counts, sample_negatives, save_checkpoint)

from .conftest import REPO

SCRIPT = os.path.join(REPO, "scripts", "cpc_sign_encoder.py")


@pytest.fixture(autouse=True)
def one_thread():
    """These LSTMs are tiny: syncing two threads costs more than it gains (10x more on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_state_sequences(prefix, sentences, seed, structured, states=10, dim=16, noise=0.5):
    """Sentences of 15-39 frames, each frame a noisy prototype vector of a hidden state. With
    `structured` the states follow a first-order Markov chain whose every state has 2 possible
    successors (probabilities 0.8 / 0.2), so the past predicts the future; else they are i.i.d.
    uniform, so nothing does. The prototypes and the chain are the same for every seed."""
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(states, dim)).astype(np.float32)  # (S, D)
    transitions = np.zeros((states, states))
    for s in range(states):
        transitions[s, rng.choice(states, 2, replace=False)] = [0.8, 0.2]
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(sentences):
        n = int(rng.integers(15, 40))
        if structured:
            path = [int(rng.integers(states))]
            for _ in range(n - 1):
                path.append(int(rng.choice(states, p=transitions[path[-1]])))
        else:
            path = rng.integers(states, size=n)
        frames.append(prototypes[path] + noise * rng.normal(size=(n, dim)).astype(np.float32))  # (n, D)
    write_features(prefix, np.concatenate(frames), [len(f) for f in frames])


def test_forward_and_encode_shapes_and_padding():
    torch.manual_seed(0)
    model = CPCSignEncoder(CPCConfig(input_dim=12, hidden=24, context=20)).eval()
    feats, lengths = torch.randn(3, 7, 12), torch.tensor([7, 4, 1])
    out = model(feats, lengths)
    assert out["z"].shape == (3, 7, 24) and out["c"].shape == (3, 7, 20)
    assert out["c"][1, 4:].abs().sum() == 0 and out["z"][2, 1:].abs().sum() == 0  # zero on padding
    alone = model(feats[1:2, :4], lengths[1:2])  # padding after a sentence does not change its context
    torch.testing.assert_close(alone["c"][0], out["c"][1, :4])
    torch.testing.assert_close(model.encode(feats, lengths), out["c"])
    torch.testing.assert_close(model.encode(feats, lengths, output="mlp"), out["z"])
    with pytest.raises(ValueError, match="output must be one of"):
        model.encode(feats, lengths, output="lstm")


def test_loss_uses_only_the_pairs_that_exist():
    assert pair_counts(torch.tensor([1, 2, 3, 5]), 3).tolist() == [7, 4, 2]  # sum over sentences of L-k, floored at 0
    model = CPCSignEncoder(CPCConfig(input_dim=4, hidden=8, context=8, negatives=5))
    loss, accuracy = model.cpc_loss(torch.randn(3, 3, 4), torch.tensor([3, 2, 1]))  # no pair for k=3
    assert loss.ndim == 0 and torch.isfinite(loss) and accuracy.shape == (3,) and accuracy[2] == 0
    loss.backward()
    with pytest.raises(ValueError, match="every sentence in the batch is a single frame"):
        model.cpc_loss(torch.randn(2, 1, 4), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="CPCConfig.steps must be a positive integer, got 0"):
        CPCConfig(input_dim=4, steps=0)


def test_negatives_never_the_positive_nor_padding():
    lengths = torch.tensor([5, 2, 3])
    valid = frame_mask(lengths, 5)  # (3, 5): 10 real frames, 5 padded
    positives = valid.flatten().nonzero().squeeze(1)  # every real frame in turn
    generator = torch.Generator().manual_seed(0)
    negatives = sample_negatives(valid, positives, 9000, generator)  # (10, 9000)
    assert negatives.shape == (10, 9000)
    assert valid.flatten()[negatives].all()  # never padding
    assert not (negatives == positives[:, None]).any()  # never the positive's own frame
    for pos, drawn in zip(positives.tolist(), negatives):
        counts = torch.bincount(drawn, minlength=15).float()
        others = [f for f in positives.tolist() if f != pos]
        assert (counts[others] / 1000).sub(1).abs().max() < 0.15  # uniform over the 9 other real frames


def test_checkpoint_round_trip_weights_only(tmp_path):
    torch.manual_seed(0)
    model = CPCSignEncoder(CPCConfig(input_dim=6, hidden=16, context=12, steps=2, negatives=4))
    model.set_input_standardization(np.arange(6, dtype=np.float32), np.full(6, 2.0, dtype=np.float32))
    path = str(tmp_path / "cpc.pt")
    save_checkpoint(path, model, epoch=7, valid_accuracy=0.5)
    raw = torch.load(path, weights_only=True)
    assert raw["config"] == {"input_dim": 6, "hidden": 16, "context": 12, "steps": 2, "negatives": 4}
    assert raw["epoch"] == 7 and raw["valid_accuracy"] == 0.5 and raw["input_mean"].tolist() == list(range(6))
    loaded, info = load_checkpoint(path)
    assert info["epoch"] == 7 and info["config"]["steps"] == 2
    feats, lengths = torch.randn(2, 5, 6), torch.tensor([5, 3])
    torch.testing.assert_close(loaded.encode(feats, lengths), model.eval().encode(feats, lengths))


def test_bad_checkpoints_name_the_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=rf"{junk}: not a readable PyTorch checkpoint"):
        load_checkpoint(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match=rf"{other}: not a CPC sign encoder checkpoint \(no config, input_mean, input_std\)"):
        load_checkpoint(str(other))
    with pytest.raises(CheckpointError, match=rf"{tmp_path / 'missing.pt'}: checkpoint not found"):
        load_checkpoint(str(tmp_path / "missing.pt"))


def train_on_states(tmp_path, structured, epochs):
    write_state_sequences(str(tmp_path / "train"), 160, seed=1, structured=structured)
    write_state_sequences(str(tmp_path / "valid"), 40, seed=2, structured=structured)
    cfg = CPCConfig(input_dim=16, hidden=64, context=64)
    summary = train_cpc(str(tmp_path / "train"), str(tmp_path / "valid"), str(tmp_path / "cpc"), cfg, epochs=epochs, seed=1, device="cpu", progress=False)
    with open(summary["train_log"]) as f:
        return summary, json.load(f)["epochs"]


def test_cpc_learns_temporal_structure(tmp_path):
    # measured (CPU, seed 1): valid loss 3.50 -> 2.70 after 6 epochs (train 3.44 -> 2.73), valid
    # accuracy per step 0.18 / 0.16 / 0.11 (mean 0.152, 5x chance) against chance 1/33 = 0.030.
    # It cannot come near 1: about 3 of the 32 negatives show the positive's own state, told
    # apart from it only by noise.
    summary, log = train_on_states(tmp_path, structured=True, epochs=6)
    assert log[0]["epoch"] == 0 and abs(log[0]["valid_loss"] - np.log(33)) < 0.2  # untrained: about log(N+1)
    assert log[-1]["valid_loss"] < log[0]["valid_loss"] - 0.5
    assert log[-1]["train_loss"] < log[1]["train_loss"]
    assert summary["best_valid_accuracy"] > 3 * summary["chance_accuracy"]
    assert min(log[summary["best_epoch"]]["valid_accuracy"]) > 2 * summary["chance_accuracy"]  # every step, k = 3 included
    best, _ = load_checkpoint(summary["checkpoint_best"])
    assert torch.load(summary["checkpoint_best"], weights_only=True)["valid_accuracy"] == pytest.approx(summary["best_valid_accuracy"])
    assert best.cfg.hidden == 64


def test_cpc_stays_at_chance_without_temporal_structure(tmp_path):
    # measured: valid accuracy (mean over steps) 0.030-0.035 every epoch against chance 0.030;
    # valid loss 3.498 -> 3.501, i.e. log(33) throughout
    _, log = train_on_states(tmp_path, structured=False, epochs=3)
    assert all(e["valid_accuracy_mean"] < 0.05 for e in log)
    assert log[-1]["valid_loss"] > np.log(33) - 0.1


def test_single_frame_sentences_still_encode_but_do_not_train(tmp_path):
    write_features(str(tmp_path / "ones"), np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), [1, 1, 1, 1])
    with pytest.raises(CorpusError, match=rf"{tmp_path / 'ones'}.lengths: every sentence is a single frame"):
        train_cpc(str(tmp_path / "ones"), str(tmp_path / "ones"), str(tmp_path / "cpc"), CPCConfig(3), epochs=1, device="cpu", progress=False)
    model = CPCSignEncoder(CPCConfig(input_dim=3, hidden=8, context=5))
    save_checkpoint(str(tmp_path / "cpc.pt"), model, 1, 0.0)
    encode_features(str(tmp_path / "cpc.pt"), str(tmp_path / "ones"), str(tmp_path / "enc" / "ones"), output="mlp", device="cpu", progress=False)
    encoded, _, lengths = read_features(str(tmp_path / "enc" / "ones"))
    assert encoded.shape == (4, 8) and lengths.tolist() == [1, 1, 1, 1]
    with pytest.raises(CorpusError, match=rf"{tmp_path / 'enc' / 'ones'}.npy: features have dimension 8, the encoder takes 3"):
        encode_features(str(tmp_path / "cpc.pt"), str(tmp_path / "enc" / "ones"), str(tmp_path / "x"), device="cpu", progress=False)
    assert not os.path.exists(tmp_path / "x.npy") and not os.path.exists(tmp_path / "x.lengths")


def run_script(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=REPO, env=env)


def test_script_train_encode_cluster(tmp_path):
    write_state_sequences(str(tmp_path / "train"), 48, seed=1, structured=True)
    write_state_sequences(str(tmp_path / "valid"), 16, seed=2, structured=True)
    proc = run_script("train", "--train", tmp_path / "train", "--valid", tmp_path / "valid", "--out", tmp_path / "cpc",
                      "--epochs", 2, "--hidden", 24, "--context", 32, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "best validation prediction accuracy" in proc.stdout and "epoch 2: train loss" in proc.stdout
    assert sorted(os.listdir(tmp_path / "cpc")) == ["checkpoint_best.pt", "checkpoint_last.pt", "train_log.json"]
    log = json.loads((tmp_path / "cpc" / "train_log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [0, 1, 2] and len(log["epochs"][2]["valid_accuracy"]) == 3

    proc = run_script("encode", "--checkpoint", tmp_path / "cpc" / "checkpoint_best.pt", "--apply", tmp_path / "train", tmp_path / "valid",
                      "--out", tmp_path / "enc", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    for split in ("train", "valid"):
        feats, _, lengths = read_features(str(tmp_path / split))
        encoded, _, encoded_lengths = read_features(str(tmp_path / "enc" / split))
        assert encoded.shape == (len(feats), 32) and encoded_lengths.tolist() == lengths.tolist()  # LSTM context, 32 wide

    proc = run_script("cluster", "--fit", tmp_path / "enc" / "train", "--apply", tmp_path / "enc" / "train", tmp_path / "enc" / "valid",
                      "-k", 5, "--out", tmp_path / "km")
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "km" / "centroids.npy").shape == (5, 32)
    for split in ("train", "valid"):
        _, _, lengths = read_features(str(tmp_path / split))
        rows = (tmp_path / "km" / f"{split}.km").read_text().splitlines()
        assert [len(r.split()) for r in rows] == lengths.tolist()
        assert all(0 <= int(i) < 5 for r in rows for i in r.split())


def test_script_names_a_lengths_file_that_disagrees_with_its_features(tmp_path):
    write_state_sequences(str(tmp_path / "train"), 4, seed=1, structured=True)
    lengths = (tmp_path / "train.lengths").read_text().split()
    (tmp_path / "train.lengths").write_text("\n".join(lengths[:-1] + [str(int(lengths[-1]) + 3)]) + "\n")
    proc = run_script("train", "--train", tmp_path / "train", "--valid", tmp_path / "train", "--out", tmp_path / "cpc", "--device", "cpu")
    assert proc.returncode != 0
    assert f"error: {tmp_path / 'train'}.lengths:4: lengths sum to" in proc.stderr
    assert not os.path.exists(tmp_path / "cpc" / "checkpoint_last.pt")
