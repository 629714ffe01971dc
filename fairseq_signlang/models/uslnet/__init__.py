"""USLNet: the MASS text model, the video VQ-VAE and GPT, the sliding-window aligner, and the
joint model that ties them (one fairseq model per stage of task uslnet)."""
from . import joint, mass_transformer, video  # noqa: F401  (registration)
