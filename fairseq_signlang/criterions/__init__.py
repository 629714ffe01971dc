from . import decipherment, unigram_skipgram_l1, uslnet_joint, uslnet_video, wav2vec_u_gan, word_gan  # noqa: F401  (registration)
