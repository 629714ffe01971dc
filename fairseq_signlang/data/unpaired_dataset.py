"""Unpaired speech and sign corpora as one fairseq dataset.

Item i is speech sentence i together with a sign sentence drawn for it this epoch: a fresh
seeded permutation of the sign corpus each epoch (repeated when the sign corpus is smaller),
so the two halves are never paired by position and every run with the same seed sees the
same draws. Reference sign units of the speech sentence, where given, ride along for
evaluation only.
"""
from typing import List, Optional

import numpy as np
import torch
from fairseq.data import FairseqDataset

from ..metrics.retrieval import pad_sequences


class UnpairedSpeechSignDataset(FairseqDataset):
    def __init__(
        self,
        split: str,
        speech_units: Optional[List[torch.Tensor]],
        speech_features,  # (features, offsets, lengths) or None
        sign_units: List[torch.Tensor],
        speech_pad: int,
        sign_pad: int,
        refs: Optional[List[torch.Tensor]] = None,
        seed: int = 1,
        shuffle: bool = True,
    ):
        super().__init__()
        if (speech_units is None) == (speech_features is None):
            raise ValueError("give speech as units or as features, not both")
        self.split = split
        self.speech_units = speech_units
        self.speech_features = speech_features
        self.sign_units = sign_units
        self.refs = refs
        self.speech_pad, self.sign_pad = speech_pad, sign_pad
        self.seed, self.shuffle = seed, shuffle
        if speech_units is not None:
            self.sizes = np.array([len(u) for u in speech_units], dtype=np.int64)
        else:
            self.sizes = np.asarray(speech_features[2], dtype=np.int64)
        if refs is not None and len(refs) != len(self.sizes):
            raise ValueError(f"{split}: {len(refs)} reference sentences for {len(self.sizes)} speech sentences")
        self.set_epoch(1)

    def set_epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        n, m = len(self.sizes), len(self.sign_units)
        draws = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])
        self.sign_of = draws[:n]

    def speech(self, index: int) -> torch.Tensor:
        if self.speech_units is not None:
            return self.speech_units[index]
        feats, offsets, lengths = self.speech_features
        o = offsets[index]
        return torch.from_numpy(np.array(feats[o : o + lengths[index]], dtype=np.float32))

    def __getitem__(self, index):
        item = {"id": index, "speech": self.speech(index), "sign": self.sign_units[self.sign_of[index]]}
        if self.refs is not None:
            item["ref"] = self.refs[index]
        return item

    def __len__(self):
        return len(self.sizes)

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    def ordered_indices(self):
        # Distribution matching wants batches that are random samples of the corpus.
        return np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))

    def collater(self, samples):
        if not samples:
            return {}
        speech, speech_len = pad_sequences([s["speech"] for s in samples], self.speech_pad if self.speech_units is not None else 0.0)
        sign, sign_len = pad_sequences([s["sign"] for s in samples], self.sign_pad)
        key = "src_tokens" if self.speech_units is not None else "src_feats"
        out = {
            "id": torch.tensor([s["id"] for s in samples]),
            "split": self.split,
            "nsentences": len(samples),
            "ntokens": int(speech_len.sum()),
            "net_input": {key: speech, "padding_mask": torch.arange(speech.shape[1])[None] >= speech_len[:, None]},
            "sign_tokens": sign,
            "sign_padding_mask": torch.arange(sign.shape[1])[None] >= sign_len[:, None],
        }
        if self.refs is not None:
            ref, ref_len = pad_sequences([s["ref"] for s in samples], self.sign_pad)
            out["ref_tokens"], out["ref_lengths"] = ref, ref_len
        return out
