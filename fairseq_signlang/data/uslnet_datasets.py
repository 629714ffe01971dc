"""Datasets of USLNet's joint stage: whole sign clips (one code grid each), paired with their text
for supervised training and evaluation, and unpaired text + video batches for unsupervised
training (each text batch meets clips drawn at random, anew every epoch)."""
import logging
import os
from typing import Callable, List, Optional

import numpy as np
import torch
from fairseq.data import data_utils
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.data.sized import SizedDataset
from fairseq_signlang.data.video_windows import DecodedClipCache, clip_tensor
from fairseq_signlang.io.video import numbered_clip_rows, sample_evenly

logger = logging.getLogger(__name__)


class VideoClipDataset(SizedDataset):
    """Every clip of a manifest as `clip_frames` frames sampled evenly over it (the VQ-VAE's
    window), with its duration in seconds and, when `encode_text` is given, its text as tokens
    (the manifest's `text` column; required then)."""

    def __init__(self, manifest: str, cache: DecodedClipCache, clip_frames: int, pad: int, eos: int,
                 encode_text: Optional[Callable[[str], torch.Tensor]] = None):
        super().__init__()
        self.cache, self.clip_frames, self.pad, self.eos = cache, int(clip_frames), pad, eos
        self.clips, self.where, frames, self.texts = [], [], [], []
        for where, row in tqdm(numbered_clip_rows(manifest), desc=f"decoding {os.path.basename(manifest)}", unit="clip"):
            frames.append(len(cache.get(row, where)))
            if encode_text is not None:
                if not row.text or not row.text.strip():
                    raise CorpusError(f"{where}: clip {row.id!r} has no text, which this split needs (supervised training or evaluation)")
                self.texts.append(encode_text(row.text))
            self.clips.append(row)
            self.where.append(where)
        self.frame_counts = np.asarray(frames, dtype=np.int64)
        self.sizes = (np.asarray([len(t) for t in self.texts], dtype=np.int64) if self.texts
                      else np.full(len(self.clips), self.clip_frames, dtype=np.int64))
        self.shuffle = True

    @property
    def durations(self) -> np.ndarray:
        return self.frame_counts / self.cache.fps

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        frames = self.cache.get(self.clips[index], self.where[index])
        item = {"id": index, "video": clip_tensor(np.asarray(sample_evenly(frames, self.clip_frames))), "duration": len(frames) / self.cache.fps}
        if self.texts:
            item["target"] = self.texts[index]
        return item

    def collater(self, samples: List[dict]) -> dict:
        if not samples:
            return {}
        batch = {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": len(samples) * self.clip_frames,
            "net_input": {
                "source": torch.stack([s["video"] for s in samples]),  # (B, 3, T, R, R)
                "durations": torch.tensor([s["duration"] for s in samples], dtype=torch.float),  # (B,)
                # no frame is padding (every clip is sampled to clip_frames); fairseq's SequenceGenerator
                # reads source lengths from it
                "padding_mask": torch.zeros(len(samples), self.clip_frames, dtype=torch.bool),  # (B, T)
            },
        }
        if "target" in samples[0]:
            target = data_utils.collate_tokens([s["target"] for s in samples], self.pad, left_pad=False)  # (B, M)
            prev = data_utils.collate_tokens([s["target"] for s in samples], self.pad, self.eos, left_pad=False, move_eos_to_beginning=True)
            batch["net_input"]["prev_output_tokens"] = prev
            batch["target"] = target
            batch["ntokens"] = int(target.ne(self.pad).sum())
        return batch


class UnpairedTextVideoDataset(SizedDataset):
    """Item i: the i-th sentence (MASS-masked, and as is for text-video-text back-translation)
    and a clip drawn for it, with a fresh draw every epoch: the two corpora are never aligned."""

    def __init__(self, text, clips: VideoClipDataset, seed: int):
        super().__init__()
        self.text, self.clips, self.seed = text, clips, seed
        self.sizes = text.sizes if hasattr(text, "sizes") else np.array([text.size(i) for i in range(len(text))])
        self.set_epoch(1)

    def set_epoch(self, epoch):
        self.epoch = epoch
        if hasattr(self.text, "set_epoch"):
            self.text.set_epoch(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        reps = -(-len(self.text) // len(self.clips))
        self.draw = np.concatenate([rng.permutation(len(self.clips)) for _ in range(reps)])[: len(self.text)]

    def __len__(self):
        return len(self.text)

    def __getitem__(self, index):
        sentence = self.text.dataset[index]  # the unmasked sentence, eos at the end
        return {"id": index, "mass": self.text[index], "sentence": sentence, "clip": self.clips[int(self.draw[index])]}

    def collater(self, samples: List[dict]) -> dict:
        if not samples:
            return {}
        pad, eos = self.text.dictionary.pad(), self.text.dictionary.eos()
        sentences = [s["sentence"] for s in samples]
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": sum(len(t) for t in sentences),
            "text": self.text.collater([s["mass"] for s in samples]),
            "sentences": {
                "tokens": data_utils.collate_tokens(sentences, pad, left_pad=False),  # (B, S), eos last
                "lengths": torch.LongTensor([len(t) for t in sentences]),
                "prev_output_tokens": data_utils.collate_tokens(sentences, pad, eos, left_pad=False, move_eos_to_beginning=True),
            },
            "video": self.clips.collater([s["clip"] for s in samples]),
        }
