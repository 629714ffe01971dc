"""Small sign video corpora for the USLNet tests: procedural-signer sentences rendered to mp4 at a
non-square size (so resizing and centre-cropping are exercised) with train/valid manifests."""
import os

import numpy as np
import pytest

from fairseq_signlang.tools.training import run_hydra_train

from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
from fairseq_signlang.io.video import ClipRow, write_clip_manifest, write_video

VOCAB = [f"sign{i}" for i in range(12)]
USLNET_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "uslnet")


def sign_clip_folder(out: str, num_train: int = 10, num_valid: int = 3, size=(40, 32), fps: float = 10.0, seed: int = 0) -> str:
    """Each clip signs 3 random words of a 12-sign vocabulary, by one of 4 signers."""
    signer, rng = ProceduralSigner(VOCAB, seed=seed), np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "clips"), exist_ok=True)
    rows = []
    for i in range(num_train + num_valid):
        words = list(rng.choice(VOCAB, size=3))
        landmarks, _ = signer.sentence(words, signer=int(rng.integers(4)), seed=i)
        path = os.path.join(out, "clips", f"clip{i:03d}.mp4")
        write_video(path, render(landmarks, size=size), fps=fps)
        rows.append(ClipRow(f"clip{i:03d}", path, text=" ".join(words)))
    write_clip_manifest(os.path.join(out, "train.tsv"), rows[:num_train])
    write_clip_manifest(os.path.join(out, "valid.tsv"), rows[num_train:])
    return out


def video_overrides(video_data, run_dir, *extra):
    return [f"task.video_data={video_data}", f"task.video_cache={video_data}/cache", f"checkpoint.save_dir={run_dir}/ckpt",
            f"hydra.run.dir={run_dir}/hydra", "common.log_format=json", *extra]


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    return sign_clip_folder(str(tmp_path_factory.mktemp("sign_clips")))


@pytest.fixture(scope="session")
def vqvae_run(clips, tmp_path_factory):
    run = str(tmp_path_factory.mktemp("vqvae_run"))
    log = run_hydra_train(USLNET_CONFIGS, "video_vqvae_tiny", video_overrides(clips, run), f"{run}/train.log", 200)
    return run, log


@pytest.fixture(scope="session")
def gpt_run(clips, vqvae_run, tmp_path_factory):
    run = str(tmp_path_factory.mktemp("gpt_run"))
    extra = [f"model.vqvae_checkpoint={vqvae_run[0]}/ckpt/checkpoint_last.pt"]
    log = run_hydra_train(USLNET_CONFIGS, "video_gpt_tiny", video_overrides(clips, run, *extra), f"{run}/train.log", 150)
    return run, log
