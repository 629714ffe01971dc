"""Unpaired speech and sign corpora as one fairseq dataset.

Item i is speech sentence i together with a sign sentence drawn for it this epoch: a fresh
seeded permutation of the sign corpus each epoch (repeated when the sign corpus is smaller),
so the two halves are never paired by position and every run with the same seed sees the
same draws. Reference sign units of the speech sentence, where given, ride along for
evaluation only.
"""
from typing import Optional

import numpy as np
import torch

from fairseq_signlang.data.packed import PackedSequences
from fairseq_signlang.data.sized import SizedDataset


class UnpairedSpeechSignDataset(SizedDataset):
    def __init__(
        self,
        split: str,
        speech: PackedSequences,
        discrete_speech: bool,
        sign_units: PackedSequences,
        speech_pad: int,
        sign_pad: int,
        refs: Optional[PackedSequences] = None,
        seed: int = 1,
    ):
        super().__init__()
        self.split = split
        self.speech, self.discrete_speech = speech, discrete_speech
        self.sign_units, self.refs = sign_units, refs
        self.speech_pad, self.sign_pad = speech_pad, sign_pad
        self.seed = seed
        self.sizes = speech.lengths.numpy()
        if refs is not None and len(refs) != len(speech):
            raise ValueError(f"{split}: {len(refs)} reference sentences for {len(speech)} speech sentences")
        self.set_epoch(1)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        # The draw lives in this object; a reused iterator's worker processes would keep
        # the first epoch's copy of it, and batches would keep their first composition.
        return False

    def set_epoch(self, epoch: int):
        rng = np.random.default_rng([self.seed, epoch])
        n, m = len(self.speech), len(self.sign_units)
        draws = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])
        self.sign_of = draws[:n]

    def __getitem__(self, index):
        item = {"id": index, "speech": self.speech[index], "sign": self.sign_units[int(self.sign_of[index])]}
        if self.refs is not None:
            item["ref"] = self.refs[index]
        return item

    def __getitems__(self, indices):
        """What torch's DataLoader fetches for a batch: the collater gathers the sequences of
        the whole batch at once from the packed corpora, so it needs only the ids."""
        return [{"id": int(i)} for i in indices]

    def __len__(self):
        return len(self.speech)

    def collater(self, samples):
        if not samples:
            return {}
        ids = torch.tensor([s["id"] for s in samples])
        speech, speech_len = self.speech.pad(ids, self.speech_pad if self.discrete_speech else 0.0)
        sign, sign_len = self.sign_units.pad(torch.from_numpy(self.sign_of[ids.numpy()]), self.sign_pad)
        key = "src_tokens" if self.discrete_speech else "src_feats"
        out = {
            "id": ids,
            "split": self.split,
            "nsentences": len(samples),
            "ntokens": int(speech_len.sum()),
            "net_input": {key: speech, "padding_mask": torch.arange(speech.shape[1])[None] >= speech_len[:, None]},
            "sign_tokens": sign,
            "sign_padding_mask": torch.arange(sign.shape[1])[None] >= sign_len[:, None],
        }
        # the reference sign units, for evaluation only (fairseq-generate reads "target")
        out["target"], out["target_lengths"] = self.refs.pad(ids, self.sign_pad) if self.refs is not None else (None, None)
        return out
