"""What the package's fairseq datasets share: sizes from an array, a random order."""
import numpy as np
from fairseq.data import FairseqDataset


class SizedDataset(FairseqDataset):
    """A dataset whose item sizes are `self.sizes` and whose items come in a fresh random order
    each epoch (fairseq seeds numpy around ordered_indices), or in file order when `shuffle` is
    False: distribution matching wants batches that are random samples of the corpus."""

    shuffle = True

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    def ordered_indices(self):
        return np.random.permutation(len(self)) if self.shuffle else np.arange(len(self))
