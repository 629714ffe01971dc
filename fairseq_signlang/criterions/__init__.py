from . import unigram_skipgram_l1, wav2vec_u_gan, word_gan  # noqa: F401
