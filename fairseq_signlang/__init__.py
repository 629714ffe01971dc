"""fairseq-signlang: unsupervised sign language processing as a fairseq plugin.

Importing the package (what `--user-dir` / `common.user_dir` does) registers its tasks,
models and criterions, and lets torch's weights-only loading read fairseq checkpoints.
"""
from .io.checkpoints import allow_fairseq_checkpoints

allow_fairseq_checkpoints()

from . import criterions, models, tasks  # noqa: E402,F401  (registration)

__version__ = "0.1.0"
