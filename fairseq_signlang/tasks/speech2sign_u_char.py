"""Task speech2sign_u_char: character-level (fingerspelling) unsupervised speech-to-sign recognition.

Data folder (`task.data`), wav2vec-U style:
  dict.sign.txt                  sign unit dictionary: k-means clusters of CPC-encoded fingerspelling
  {split}.npy + {split}.lengths  speech: segment-level features (wav2vec 2.0 frames merged by cluster),
                                 segments per sentence
  {split}.sign                   the sign corpus, one sentence of sign units (one per letter sign) per
                                 line, unpaired with the speech (a split without one uses train.sign)
  {split}.ref                    optional: the true sign units of each speech sentence (one per letter);
                                 evaluation only (UER, retrieval), never a training signal

Unlike the word level, speech segments and sign units are not one to one: a letter spans any
number of segments. The recognised units are the generator's best unit per (joined) segment
with repeats merged; retrieval aligns the posteriors with DTW as at the word level.
"""
import logging
import os
from dataclasses import dataclass

import torch
from fairseq.tasks import register_task

from ..data.readers import CorpusError, load_dictionary
from ..models.conv_generator import JoinedUnitDecoder
from .speech2sign_u_word import Speech2SignUWordTask, UnpairedSpeechSignConfig

logger = logging.getLogger(__name__)


@dataclass
class Speech2SignUCharConfig(UnpairedSpeechSignConfig):
    """Speech is always continuous segment features at the character level."""


@register_task("speech2sign_u_char", dataclass=Speech2SignUCharConfig)
class Speech2SignUCharTask(Speech2SignUWordTask):
    @property
    def discrete_speech(self) -> bool:
        return False

    @classmethod
    def setup_task(cls, cfg: Speech2SignUCharConfig, **kwargs):
        if not os.path.isdir(cfg.data):
            raise CorpusError(f"{cfg.data}: task.data is not a folder")
        sign_dict = load_dictionary(os.path.join(cfg.data, "dict.sign.txt"))
        dim = cls._feature_dim(cfg.data)
        logger.info(f"sign units: {len(sign_dict) - sign_dict.nspecial}, speech feature dim: {dim}")
        return cls(cfg, None, sign_dict, dim)

    def check_reference_lengths(self, refs, speech, ref_path: str) -> None:
        """A letter spans any number of speech segments, but every sentence has at least one."""
        for i, r in enumerate(refs):
            if len(r) == 0:
                raise CorpusError(f"{ref_path}:{i + 1}: empty line (a speech sentence with no sign units)")

    def hypothesis_units(self, best: torch.Tensor) -> list:
        return best.unique_consecutive().tolist()

    def build_generator(self, models, args, **kwargs):
        """fairseq-generate prints the recognised sign units of each speech sentence; with
        `--scoring wer` it reports the unit error rate against {split}.ref."""
        return JoinedUnitDecoder()
