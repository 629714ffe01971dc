"""Variable-length sequences packed into one array, padded per batch by a single gather."""
from typing import Sequence

import numpy as np
import torch
from torch import Tensor


class PackedSequences:
    """Sequence i is data[offsets[i] : offsets[i] + lengths[i]]; data is (N,) or (N, D), a
    tensor or a (memory-mapped) numpy array."""

    def __init__(self, data, offsets, lengths):
        self.data = data
        self.offsets = torch.as_tensor(np.asarray(offsets), dtype=torch.long)
        self.lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.long)
        self._offsets_np, self._lengths_np = self.offsets.numpy(), self.lengths.numpy()  # fast scalar access

    @classmethod
    def from_list(cls, seqs: Sequence[Tensor]) -> "PackedSequences":
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        return cls(torch.cat(list(seqs)), torch.cumsum(lengths, 0) - lengths, lengths)

    def tolists(self, shift: int = 0) -> list:
        """Every sequence of 1-d integer data as a list of Python ints, each minus `shift`: one
        conversion of the whole array, not a tensor op per element (290k sentences in seconds)."""
        flat, offsets = (self.data - shift).tolist(), self._offsets_np.tolist()
        return [flat[o : o + n] for o, n in zip(offsets, self._lengths_np.tolist())]

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> Tensor:
        o = self._offsets_np[i]
        seq = self.data[o : o + self._lengths_np[i]]
        return torch.from_numpy(np.array(seq, dtype=np.float32)) if isinstance(self.data, np.ndarray) else seq

    def pad(self, indices, pad_value=0):
        """Sequences at `indices` -> (B, T_max[, D]) padded, (B,) lengths."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[idx]
        steps = torch.arange(int(lengths.max()))
        valid = steps[None, :] < lengths[:, None]
        rows = torch.where(valid, self.offsets[idx][:, None] + steps[None, :], 0)
        if isinstance(self.data, np.ndarray):
            out = torch.from_numpy(np.asarray(self.data[rows.numpy()], dtype=np.float32))
        else:
            out = self.data[rows]
        mask = valid if out.ndim == 2 else valid[..., None]
        return out.masked_fill(~mask, pad_value), lengths
