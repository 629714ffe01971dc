from . import unigram_skipgram_l1  # noqa: F401
