"""Sign language generation with USLNet and its evaluation as in the paper's table 2: sentences
-> sign videos (text encoder, aligner, GPT sampling, VQ-VAE decoder), scored by back-translation
BLEU (the model translates its own videos back; the input sentence is the reference) and by
Frechet Video Distance against real clips over I3D features."""
import hashlib
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError, numbered_lines
from fairseq_signlang.io.video import ClipRow, read_clip_manifest, read_video, sample_evenly, write_clip_manifest, write_video
from fairseq_signlang.metrics.bleu import bleu_scores, input_dependence
from fairseq_signlang.metrics.fvd import fvd
from fairseq_signlang.tools.uslnet_hub import UslnetHub


def read_sentences(path: str) -> List[str]:
    """Sentences to sign: a text file (one per line) or a clip manifest (.tsv, its text column)."""
    if path.endswith(".tsv"):
        rows = read_clip_manifest(path)
        missing = [r.id for r in rows if not (r.text or "").strip()]
        if missing:
            raise CorpusError(f"{path}: clip {missing[0]!r} has no text to generate from")
        return [r.text.strip() for r in rows]
    sentences = []
    for lineno, line in numbered_lines(path):
        if not line.strip():
            raise CorpusError(f"{path}:{lineno}: empty sentence")
        sentences.append(line.strip())
    if not sentences:
        raise CorpusError(f"{path}: no sentences")
    return sentences


def generate_sign_videos(hub: UslnetHub, sentences: Sequence[str], out_dir: str, batch_size: int = 16, temperature: float = 1.0,
                         top_k: Optional[int] = None, seed: int = 0) -> List[ClipRow]:
    """Write one mp4 per sentence under out_dir/clips, played at the rate that gives the clip the
    sentence's duration, and the manifest out_dir/generated.tsv (id, path, text)."""
    os.makedirs(os.path.join(out_dir, "clips"), exist_ok=True)
    rows = []
    with tqdm(total=len(sentences), desc="generating sign videos", unit="clip") as bar:
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            clips = hub.generate_batch(batch, temperature=temperature, top_k=top_k, seed=seed + start)
            for i, (text, frames) in enumerate(zip(batch, clips)):
                clip_id = f"gen{start + i:05d}"
                path = os.path.join(out_dir, "clips", f"{clip_id}.mp4")
                write_video(path, frames, fps=hub.playback_fps(text))
                rows.append(ClipRow(clip_id, os.path.abspath(path), text=text))
            bar.update(len(batch))
    write_clip_manifest(os.path.join(out_dir, "generated.tsv"), rows)
    return rows


def back_translation_bleu(hub: UslnetHub, rows: Sequence[ClipRow], beam: int = 1, batch_size: int = 16) -> Dict:
    """BLEU-1/4 of the model's translations of the generated clips (read back from their files)
    against the sentences they were generated from; with the hypotheses. With 2 or more clips
    also against the sentences shuffled across clips, and the distinct back-translations
    (metrics.bleu.input_dependence): generation that ignores its sentence reads back no better
    than against another clip's sentence."""
    hypotheses = []
    for start in tqdm(range(0, len(rows), batch_size), desc="back-translating", unit="batch"):
        hypotheses += hub.translate_batch([r.path for r in rows[start : start + batch_size]], beam=beam)
    scores = (input_dependence if len(rows) >= 2 else bleu_scores)(hypotheses, [r.text for r in rows])
    scores["hypotheses"] = hypotheses
    return scores


def distinct_clips(rows: Sequence[ClipRow]) -> int:
    """How many of the generated clips differ in their frames: a generator that ignores its
    sentence writes the same clip for every one."""
    return len({hashlib.sha1(read_video(r.path)[0].tobytes()).hexdigest() for r in rows})


def clip_as_model_sees_it(hub: UslnetHub, row: ClipRow) -> np.ndarray:
    """A real clip (its span) resampled to the model's window (window_frames frames at its
    resolution), the form generated clips have, so FVD compares like with like."""
    return sample_evenly(hub.read_clip(row.path, row.start, row.end), hub.geometry.window_frames)


def generation_fvd(hub: UslnetHub, generated: Sequence[ClipRow], reference: Sequence[ClipRow], i3d_checkpoint: str,
                   size: int = 224, device: Optional[str] = None) -> float:
    real = [clip_as_model_sees_it(hub, r) for r in tqdm(reference, desc="reading reference clips", unit="clip")]
    fake = [read_video(r.path)[0] for r in generated]  # each file holds exactly the generated window
    return fvd(real, fake, i3d_checkpoint, device=device, size=size)
