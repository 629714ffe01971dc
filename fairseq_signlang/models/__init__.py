"""fairseq models, grouped by system (as fairseq/models/wav2vec/ groups its own)."""
from . import speech2sign_u, uslnet  # noqa: F401  (registration)
