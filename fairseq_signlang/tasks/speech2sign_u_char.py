"""Task speech2sign_u_char: character-level (fingerspelling) unsupervised speech-to-sign recognition.

Data folder (`task.data`), wav2vec-U style:
  dict.sign.txt                  sign unit dictionary: k-means clusters of CPC-encoded fingerspelling
  {split}.npy + {split}.lengths  speech: segment-level features (wav2vec 2.0 frames merged by cluster),
                                 segments per sentence
  dict.src.txt + {split}.src     or (speech_input=units) the segments' k-means units, a sentence a line
  {split}.sign                   the sign corpus, one sentence of sign units (one per letter sign) per
                                 line, unpaired with the speech (a split without one uses train.sign)
  {split}.ref                    optional: the true sign units of each speech sentence (one per letter);
                                 evaluation only (UER, retrieval), never a training signal

Unlike the word level, speech segments and sign units are not one to one: a letter spans any
number of segments. The recognised units are the generator's best unit per (joined) segment
with repeats merged; retrieval aligns the posteriors with DTW as at the word level.
"""
from dataclasses import dataclass, field

import torch
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.models.speech2sign_u.conv_generator import JoinedUnitDecoder
from fairseq_signlang.tasks.speech2sign_u_word import Speech2SignUWordTask, UnpairedSpeechSignConfig


@dataclass
class Speech2SignUCharConfig(UnpairedSpeechSignConfig):
    speech_input: ChoiceEnum(["features", "units"]) = field(
        default="features",
        metadata={
            "help": "speech segments as features ({split}.npy/.lengths; model speech2sign_u_char) or as k-means unit "
            "ids ({split}.src + dict.src.txt, prepare_char_task.py --speech-km; model speech2sign_u_word, whose "
            "closed-form decipherment needs units)"
        },
    )

    sign_lm_self_loop: float = field(
        default=0.0,
        metadata={
            "help": "probability that a letter sign spans one more speech segment in the sign chain (decipherment, "
            "speech_nll, decoding=viterbi); 0 when the segmentation gives one segment per letter"
        },
    )


@register_task("speech2sign_u_char", dataclass=Speech2SignUCharConfig)
class Speech2SignUCharTask(Speech2SignUWordTask):
    TRAINED_MODELS = {"speech2sign_u_char": "task.speech_input=features", "speech2sign_u_word": "task.speech_input=units"}

    @classmethod
    def speech_is_discrete(cls, cfg) -> bool:
        return cfg.speech_input == "units"

    def check_reference_lengths(self, refs, speech, ref_path: str) -> None:
        """A letter spans any number of speech segments, but every sentence has at least one."""
        for i, r in enumerate(refs):
            if len(r) == 0:
                raise CorpusError(f"{ref_path}:{i + 1}: empty line (a speech sentence with no sign units)")

    def chain_self_loop(self) -> float:
        return self.cfg.sign_lm_self_loop

    def hypothesis_units(self, best: torch.Tensor) -> list:
        return best.unique_consecutive().tolist()

    def build_generator(self, models, args, **kwargs):
        """fairseq-generate prints the recognised sign units of each speech sentence; with
        `--scoring wer` it reports the unit error rate against {split}.ref."""
        return JoinedUnitDecoder(*self.decoding_chain())
