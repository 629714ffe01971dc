"""USLNet's single-modality stages trained through fairseq-hydra-train (task uslnet): the video
VQ-VAE, the video GPT over its codes, MASS; resuming, rendering, bad input, and the paper-size
configs built for shapes."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

from fairseq_signlang.data.video_windows import DecodedClipCache, VideoWindowDataset
from fairseq_signlang.io.video import ClipRow, read_video, write_clip_manifest, write_video
from fairseq_signlang.models.uslnet.video import load_video_model
from fairseq_signlang.tools.training import hydra_train_command, log_records, run_hydra_train

from .conftest import REPO
from .uslnet_corpora import USLNET_CONFIGS as CONFIG_DIR, video_overrides as overrides

PY = sys.executable


def mean_frame_psnr(clips) -> float:
    """PSNR of predicting every valid frame by the mean training frame."""
    cache = DecodedClipCache(f"{clips}/cache", 10, 32)
    train = VideoWindowDataset(f"{clips}/train.tsv", cache, 8)
    valid = VideoWindowDataset(f"{clips}/valid.tsv", cache, 8)
    mean = torch.stack([train[i]["video"] for i in range(len(train))]).mean(dim=(0, 2), keepdim=True)[0]  # (3, 1, R, R)
    mse = torch.stack([((valid[i]["video"] - mean) ** 2).mean() for i in range(len(valid))]).mean()
    return 10 * math.log10(1 / float(mse))


def test_vqvae_stage_logs_reconstruction_and_codebook_use(clips, vqvae_run):
    run, log = vqvae_run
    valid = log_records(log, "valid")
    assert valid and all(k in valid[-1] for k in ("valid_recon_mse", "valid_psnr", "valid_perplexity"))
    first, last = valid[0], valid[-1]
    assert float(last["valid_recon_mse"]) < float(first["valid_recon_mse"])
    baseline = mean_frame_psnr(clips)
    print(f"VQ-VAE through fairseq: valid PSNR {last['valid_psnr']} dB, mean frame {baseline:.2f} dB, perplexity {last['valid_perplexity']}")
    # measured here: valid PSNR 19.3, 20.9, 22.1, 22.8 dB at updates 50..200 against 19.7 dB for the
    # mean training frame (the signer's still body and background make that a strong baseline)
    assert float(last["valid_psnr"]) > baseline + 1.5
    assert float(last["valid_perplexity"]) > 4.0  # of 64 codes: the codebook did not collapse
    assert os.path.isfile(f"{run}/ckpt/checkpoint_last.pt")


def test_gpt_stage_learns_below_unigram_entropy(clips, vqvae_run, gpt_run):
    run, log = gpt_run
    model = load_video_model(f"{run}/ckpt/checkpoint_last.pt")
    geometry = model.geometry  # the VQ-VAE's, chosen by the video_vqvae run's task settings
    assert (geometry.fps, geometry.resolution, geometry.window_frames) == (10, 32, 8)
    cache = DecodedClipCache(f"{clips}/cache", geometry.fps, geometry.resolution)
    train = VideoWindowDataset(f"{clips}/train.tsv", cache, geometry.window_frames)
    with torch.no_grad():
        codes = model.vqvae.encode(torch.stack([train[i]["video"] for i in range(len(train))]))
    counts = torch.bincount(codes.flatten(), minlength=model.vqvae.n_codes).double()
    p = counts[counts > 0] / counts.sum()
    unigram_bits = float(-(p * p.log2()).sum())
    valid = log_records(log, "valid")
    assert valid and all(k in valid[-1] for k in ("valid_nll_loss", "valid_ppl", "valid_code_accuracy", "valid_frame_mse"))
    nll = min(float(v["valid_nll_loss"]) for v in valid)
    print(f"video GPT through fairseq: valid next-code loss {nll:.3f} bits, unigram entropy of the codes {unigram_bits:.3f} bits")
    # measured here: 0.67 bits against a unigram entropy of 5.6 bits after 150 updates
    assert nll < unigram_bits - 1.0


def test_gpt_checkpoint_is_self_contained(vqvae_run, gpt_run, tmp_path):
    """The GPT checkpoint carries its VQ-VAE: it loads after the VQ-VAE checkpoint is gone."""
    gpt_ckpt = f"{gpt_run[0]}/ckpt/checkpoint_last.pt"
    state = torch.load(gpt_ckpt, weights_only=True)
    assert state["cfg"]["model"]["vqvae_args"]["n_codes"] == 64
    moved = tmp_path / "vqvae_moved.pt"
    os.rename(f"{vqvae_run[0]}/ckpt/checkpoint_last.pt", moved)
    try:
        model = load_video_model(gpt_ckpt)
        assert model.gpt.latent_shape == (4, 8, 8)
    finally:
        os.rename(moved, f"{vqvae_run[0]}/ckpt/checkpoint_last.pt")


def test_render_script_writes_figure5_layout(clips, gpt_run, tmp_path):
    out = str(tmp_path / "fig5")
    subprocess.run([PY, "scripts/render_uslnet_video.py", "--checkpoint", f"{gpt_run[0]}/ckpt/checkpoint_last.pt",
                    "--manifest", f"{clips}/valid.tsv", "--out", out, "--scale", "2"], cwd=REPO, check=True)
    frames, _ = read_video(out + ".mp4")
    assert frames.shape[:3] == (8, 64, 3 * 64 + 2 * 4)  # source | reconstructed | generated, 2x, 4-pixel gaps
    from PIL import Image

    assert Image.open(out + ".png").size[1] > 200  # three rows


def test_vqvae_stage_resumes_from_its_last_checkpoint(clips, vqvae_run, tmp_path):
    import shutil

    run = str(tmp_path)
    shutil.copytree(f"{vqvae_run[0]}/ckpt", f"{run}/ckpt")
    log = run_hydra_train(CONFIG_DIR, "video_vqvae_tiny", overrides(clips, run, "optimization.max_update=220"), f"{run}/train.log", 220)
    assert "@ 200 updates" in log  # fairseq: "Loaded checkpoint ...checkpoint_last.pt (epoch N @ 200 updates)"
    assert log_records(log, "train")[-1]["train_num_updates"] in (220, "220")


def test_vqvae_run_resumed_with_another_clip_geometry_is_refused(clips, vqvae_run, tmp_path):
    """The clip geometry is the VQ-VAE's from its first update: resuming it with other task
    settings would silently cut clips another way and rewrite the checkpoint's geometry."""
    import shutil

    shutil.copytree(f"{vqvae_run[0]}/ckpt", f"{tmp_path}/ckpt")
    before = open(f"{tmp_path}/ckpt/checkpoint_last.pt", "rb").read()
    cmd = hydra_train_command(CONFIG_DIR, "video_vqvae_tiny", overrides(clips, str(tmp_path), "task.fps=5", "optimization.max_update=220"))
    run_expecting_error(cmd, "it was trained with task.fps=10.0, this run has task.fps=5.0")
    assert open(f"{tmp_path}/ckpt/checkpoint_last.pt", "rb").read() == before


def run_expecting_error(cmd, *needles):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for n in needles:
        assert n in out, f"{n!r} not in the output:\n{out[-3000:]}"


def test_clip_shorter_than_a_window_stops_training_naming_clip_and_line(clips, tmp_path):
    data = str(tmp_path)
    short = f"{data}/short.mp4"
    write_video(short, np.zeros((4, 32, 40, 3), np.uint8), fps=10)
    rows = [ClipRow("long", f"{clips}/clips/clip000.mp4"), ClipRow("tiny_clip", short)]
    write_clip_manifest(f"{data}/train.tsv", rows)
    write_clip_manifest(f"{data}/valid.tsv", rows[:1])
    cmd = hydra_train_command(CONFIG_DIR, "video_vqvae_tiny", overrides(data, data))
    run_expecting_error(cmd, "tiny_clip", "train.tsv:3")
    leftovers = [f for f in os.listdir(f"{data}/cache") if not f.endswith(".npy")]
    assert not leftovers
    for f in os.listdir(f"{data}/cache"):
        np.load(f"{data}/cache/{f}")  # every cached clip is whole


def test_resolution_the_downsampling_does_not_divide_is_refused(clips, tmp_path):
    cmd = hydra_train_command(CONFIG_DIR, "video_vqvae_tiny", overrides(clips, str(tmp_path), "task.resolution=30"))
    run_expecting_error(cmd, "task.resolution 30", "model.downsample")


def test_stage_and_model_must_agree(clips, tmp_path):
    cmd = hydra_train_command(CONFIG_DIR, "video_vqvae_tiny", overrides(clips, str(tmp_path), "task.stage=video_gpt"))
    run_expecting_error(cmd, "task.stage=video_gpt trains model uslnet_video_gpt")


def test_paper_size_configs_build_with_the_papers_shapes(tmp_path):
    """scripts/count_uslnet_params.py builds every shipped config (paper-size ones for shapes
    only) and counts parameters and FLOPs with fvcore."""
    out = tmp_path / "counts.json"
    subprocess.run([PY, "scripts/count_uslnet_params.py", "--json", str(out)], cwd=REPO, check=True)
    rows = {r["config"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"text_mass", "text_mass_tiny", "video_vqvae", "video_vqvae_tiny", "video_gpt", "video_gpt_tiny"}
    assert "codes (4, 16, 16)" in rows["video_vqvae"]["input"]  # 16 x 64 x 64 down-sampled 4 x 4 x 4
    assert "1024 positions" in rows["video_gpt"]["input"]
    # codebook 2048 x 256 inside the VQ-VAE; GPT 8 x (12 * 576^2) in its blocks; MASS 6 + 6 layers of 1024
    assert rows["video_vqvae"]["params"] > 2048 * 256
    assert 8 * 12 * 576**2 < rows["video_gpt"]["params"] < 8 * 12 * 576**2 + 2048 * 576 * 2 + 10**6
    assert 6 * 12 * 1024**2 + 6 * 16 * 1024**2 < rows["text_mass"]["params"]
    assert all(r["flops"] > 0 and r["params"] == r["trainable"] for r in rows.values())
    assert rows["video_gpt"]["flops"] > 8 * 12 * 576**2 * 1024  # the blocks' matrix products at 1024 positions
