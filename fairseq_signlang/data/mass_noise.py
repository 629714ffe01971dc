"""MASS noise (Song et al. 2019; USLNet eq. 1): hide one contiguous fragment of a sentence from
the encoder and make the decoder predict exactly that fragment.

The encoder sees the whole sentence with the fragment's positions corrupted (80 % `<mask>`,
10 % a random real token, 10 % unchanged, so the encoder cannot rely on seeing `<mask>`). The
decoder gets only the fragment, shifted right behind eos, and the fragment's ORIGINAL positions
for its position embeddings, so it knows where in the sentence it is writing.
"""
import logging
from typing import Dict, List, Optional

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils

logger = logging.getLogger(__name__)

MASK_SYMBOL = "<mask>"


def mask_index(dictionary: Dictionary) -> int:
    idx = dictionary.indices.get(MASK_SYMBOL)
    if idx is None:
        raise ValueError(
            f"the dictionary has no {MASK_SYMBOL} symbol, which MASS needs: call "
            f'dictionary.add_symbol("{MASK_SYMBOL}") when loading it (the task does this)'
        )
    return idx


def _random_real_tokens(count: int, dictionary: Dictionary, mask_idx: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform over the real symbols: not the specials (bos/pad/eos/unk) and not <mask>."""
    low, high = dictionary.nspecial, len(dictionary)
    n_real = high - low - (1 if low <= mask_idx < high else 0)
    if n_real <= 0:
        raise ValueError("the dictionary has no real tokens to draw random replacements from")
    draw = rng.integers(low, low + n_real, size=count)
    return draw + (draw >= mask_idx)  # skip over <mask>


def mass_mask(
    tokens: torch.Tensor,
    dictionary: Dictionary,
    mask_ratio: float = 0.5,
    p_mask: float = 0.8,
    p_random: float = 0.1,
    rng: Optional[np.random.Generator] = None,
) -> Dict[str, torch.Tensor]:
    """tokens (n,) ending with eos -> dict(source (n,), target (m,), prev_output_tokens (m,),
    positions (m,)), m = max(1, round(mask_ratio * (n - 1))); the fragment never includes eos."""
    if not 0.0 < mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1], got {mask_ratio}")
    if p_mask < 0 or p_random < 0 or p_mask + p_random > 1:
        raise ValueError(f"p_mask={p_mask} and p_random={p_random} must be >= 0 and sum to at most 1")
    mask_idx = mask_index(dictionary)
    rng = rng if rng is not None else np.random.default_rng()
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    n = tokens.numel()
    if tokens.dim() != 1 or n < 2 or int(tokens[-1]) != dictionary.eos():
        raise ValueError(f"expected a 1-d sentence of at least one token ending with eos, got {tokens.tolist()}")

    body = n - 1  # tokens before eos
    m = min(body, max(1, int(round(mask_ratio * body))))
    u = int(rng.integers(0, body - m + 1))  # fragment t[u:u+m], uniform over valid starts
    target = tokens[u : u + m].clone()

    source = tokens.clone()
    choice = rng.random(m)
    fill = np.where(choice < p_mask, mask_idx, -1)
    use_random = (choice >= p_mask) & (choice < p_mask + p_random)
    fill[use_random] = _random_real_tokens(int(use_random.sum()), dictionary, mask_idx, rng)
    replaced = torch.from_numpy(fill >= 0)
    source[u : u + m][replaced] = torch.from_numpy(fill[fill >= 0]).long()

    prev = torch.cat([tokens.new_tensor([dictionary.eos()]), target[:-1]])
    return {
        "source": source,
        "target": target,
        "prev_output_tokens": prev,
        "positions": torch.arange(u, u + m, dtype=torch.long),
    }


class MassDataset(FairseqDataset):
    """A token dataset (fairseq-preprocess output: each item ends with eos) turned into MASS
    examples. The noise depends only on (seed, epoch, index), so a run can be repeated and
    resumed, and each epoch shows every sentence with a new fragment."""

    def __init__(
        self,
        dataset,
        dictionary: Dictionary,
        mask_ratio: float = 0.5,
        p_mask: float = 0.8,
        p_random: float = 0.1,
        seed: int = 1,
        shuffle: bool = True,
    ):
        mask_index(dictionary)  # fail at construction, not in a data loader worker
        self.dataset, self.dictionary = dataset, dictionary
        self.mask_ratio, self.p_mask, self.p_random = mask_ratio, p_mask, p_random
        self.seed, self.shuffle, self.epoch = seed, shuffle, 1
        sizes = getattr(dataset, "sizes", None)  # fairseq's indexed datasets have them
        self.src_sizes = np.asarray(sizes if sizes is not None else [len(x) for x in dataset], dtype=np.int64)
        body = np.maximum(self.src_sizes - 1, 1)
        self.tgt_sizes = np.minimum(body, np.maximum(1, np.round(mask_ratio * body))).astype(np.int64)

    @property
    def sizes(self):
        return self.src_sizes

    def set_epoch(self, epoch):
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return True  # batches depend on sizes only; the noise follows self.epoch

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item = mass_mask(self.dataset[index], self.dictionary, self.mask_ratio, self.p_mask, self.p_random, rng)
        item["id"] = index
        return item

    def collater(self, samples: List[dict]) -> dict:
        if not samples:
            return {}
        pad = self.dictionary.pad()
        merge = lambda key, pad_idx: data_utils.collate_tokens(  # noqa: E731
            [s[key] for s in samples], pad_idx, left_pad=False
        )
        target = merge("target", pad)  # (B, M)
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": sum(s["target"].numel() for s in samples),
            "net_input": {
                "src_tokens": merge("source", pad),  # (B, S)
                "src_lengths": torch.LongTensor([s["source"].numel() for s in samples]),
                "prev_output_tokens": merge("prev_output_tokens", pad),  # (B, M)
                "fragment_positions": merge("positions", -1),  # (B, M), -1 at pads
            },
            "target": target,
        }

    def num_tokens(self, index):
        return int(self.src_sizes[index])

    def num_tokens_vec(self, indices):
        return self.src_sizes[indices]

    def size(self, index):
        return int(self.src_sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        """Shortest first (for batching by size); sentences with no token besides eos are
        dropped, since they have no fragment to predict."""
        order = np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
        order = order[np.argsort(self.src_sizes[order], kind="mergesort")]
        empty = self.src_sizes[order] < 2
        if empty.any():
            logger.warning(f"MassDataset: skipping {int(empty.sum())} empty sentences")
        return order[~empty]

    @property
    def supports_prefetch(self):
        return False
