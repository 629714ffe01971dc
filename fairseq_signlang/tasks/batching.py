"""What the package's tasks share about batching."""


class AnyBatchSize:
    """Mixin for a FairseqTask: batches of any size. fairseq's batching drops a final batch
    smaller than required_batch_size_multiple (default 8), and here every sentence and clip
    counts, in training statistics and in evaluation alike."""

    def get_batch_iterator(self, dataset, *args, **kwargs):
        kwargs["required_batch_size_multiple"] = 1
        return super().get_batch_iterator(dataset, *args, **kwargs)
