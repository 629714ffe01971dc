"""Small sign video corpora for the USLNet tests: procedural-signer sentences rendered to mp4 at a
non-square size (so resizing and centre-cropping are exercised) with train/valid manifests."""
import os

import numpy as np

from fairseq_signlang.data.procedural_signer import ProceduralSigner, render
from fairseq_signlang.features.video import ClipRow, write_clip_manifest, write_video

VOCAB = [f"sign{i}" for i in range(12)]


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
