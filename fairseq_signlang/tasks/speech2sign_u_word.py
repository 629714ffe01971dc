"""Task speech2sign_u_word: word-level unsupervised speech-to-sign recognition.

Data folder (`task.data`), wav2vec-U style:
  dict.sign.txt                  sign unit dictionary (fairseq format: `unit count` per line)
  dict.src.txt                   speech unit dictionary (speech_input=units)
  {split}.src                    speech: one sentence per line, one unit per word (speech_input=units)
  {split}.npy + {split}.lengths  speech: pooled per-word features, words per sentence (speech_input=features)
  {split}.sign                   the sign corpus, one sentence of sign units per line, unpaired with
                                 the speech (a split without one matches against train.sign)
  {split}.ref                    optional: the true sign units of each speech sentence, line by line;
                                 evaluation only (UER, retrieval), never a training signal
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from fairseq import metrics
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from ..data.readers import CorpusError, load_dictionary, read_features, read_units, require_file
from ..data.packed import PackedSequences
from ..data.unpaired_dataset import UnpairedSpeechSignDataset
from ..metrics.retrieval import RECALL_KS, dtw_similarity, ranks_of_targets, recall_hits
from ..metrics.uer import unit_errors
from ..models.linear_generator import WordUnitDecoder

logger = logging.getLogger(__name__)


@dataclass
class Speech2SignUWordConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "folder with dict.*.txt and the {split}.* files"})
    speech_input: ChoiceEnum(["units", "features"]) = field(
        default="units", metadata={"help": "speech words as unit ids ({split}.src) or pooled features ({split}.npy/.lengths)"}
    )
    eval_retrieval: bool = field(
        default=True, metadata={"help": "log recall@1/5/10 both ways on splits with a {split}.ref (DTW, eq. 13)"}
    )
    retrieval_max_cells: int = field(
        default=2**25, metadata={"help": "DTW cost cells per chunk during retrieval; lower it when memory is short"}
    )
    seed: int = II("common.seed")


@register_task("speech2sign_u_word", dataclass=Speech2SignUWordConfig)
class Speech2SignUWordTask(FairseqTask):
    def __init__(self, cfg: Speech2SignUWordConfig, src_dict, sign_dict, speech_input_dim: int):
        super().__init__(cfg)
        self.src_dict, self.sign_dict = src_dict, sign_dict
        self.speech_input_dim = speech_input_dim

    @property
    def discrete_speech(self) -> bool:
        return self.cfg.speech_input == "units"

    @classmethod
    def setup_task(cls, cfg: Speech2SignUWordConfig, **kwargs):
        if not os.path.isdir(cfg.data):
            raise CorpusError(f"{cfg.data}: task.data is not a folder")
        sign_dict = load_dictionary(os.path.join(cfg.data, "dict.sign.txt"))
        if cfg.speech_input == "units":
            src_dict = load_dictionary(os.path.join(cfg.data, "dict.src.txt"))
            dim = len(src_dict)
        else:
            src_dict = None
            dim = cls._feature_dim(cfg.data)
        logger.info(f"sign units: {len(sign_dict) - sign_dict.nspecial}, speech input dim: {dim}")
        return cls(cfg, src_dict, sign_dict, dim)

    @staticmethod
    def _feature_dim(data: str) -> int:
        for split in ("train", "valid", "test"):
            path = os.path.join(data, f"{split}.npy")
            if os.path.isfile(path):
                return int(np.load(path, mmap_mode="r").shape[1])
        raise CorpusError(f"{data}: speech_input=features but no train.npy, valid.npy or test.npy there")

    def _path(self, name: str) -> str:
        return os.path.join(self.cfg.data, name)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        if self.discrete_speech:
            units = read_units(require_file(self._path(f"{split}.src"), "speech unit file"), self.src_dict, self._path("dict.src.txt"))
            speech = PackedSequences.from_list(units)
        else:
            feats, offsets, lengths = read_features(self._path(split))
            if feats.shape[1] != self.speech_input_dim:
                raise CorpusError(f"{self._path(split)}.npy: feature dim {feats.shape[1]}, expected {self.speech_input_dim}")
            speech = PackedSequences(feats, offsets, lengths)
        n_speech = len(speech)
        sign_file = self._path(f"{split}.sign")
        if not os.path.isfile(sign_file):
            sign_file = self._path("train.sign")
        sign_units = read_units(require_file(sign_file, f"sign corpus for split {split!r}"), self.sign_dict, self._path("dict.sign.txt"))
        refs = None
        if os.path.isfile(self._path(f"{split}.ref")):
            refs = read_units(self._path(f"{split}.ref"), self.sign_dict, self._path("dict.sign.txt"))
            if len(refs) != n_speech:
                raise CorpusError(f"{self._path(f'{split}.ref')}: {len(refs)} lines, but the speech of {split!r} has {n_speech} sentences")
        self.datasets[split] = UnpairedSpeechSignDataset(
            split,
            speech,
            self.discrete_speech,
            PackedSequences.from_list(sign_units),
            speech_pad=self.src_dict.pad() if self.src_dict is not None else 0,
            sign_pad=self.sign_dict.pad(),
            refs=PackedSequences.from_list(refs) if refs is not None else None,
            seed=self.cfg.seed,
        )
        logger.info(f"{split}: {n_speech} speech sentences, {len(sign_units)} sign sentences from {sign_file}, references: {refs is not None}")

    @property
    def source_dictionary(self):
        return self.src_dict

    @property
    def target_dictionary(self):
        return self.sign_dict

    def max_positions(self):
        return None

    def build_generator(self, models, args, **kwargs):
        """fairseq-generate prints each speech word's most probable sign unit; with
        `--scoring wer` it reports the unit error rate against {split}.ref."""
        return WordUnitDecoder()

    # ---- evaluation -------------------------------------------------------------------------

    def split_posteriors(self, model, dataset: UnpairedSpeechSignDataset):
        """G(X) of every speech sentence of a split: (N, T, V) padded, and (N,) lengths."""
        batch = dataset.collater([{"id": i} for i in range(len(dataset))])
        device = next(model.parameters()).device
        net_input = {k: v.to(device) for k, v in batch["net_input"].items()}
        probs = model.get_normalized_probs(model(**net_input), log_probs=False)
        return probs, (~net_input["padding_mask"]).sum(1)

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if sample["target"] is None:
            return loss, sample_size, logging_output
        with torch.no_grad():
            probs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=False)
            valid = ~sample["net_input"]["padding_mask"]
            hyps = probs.argmax(-1)
            errors = length = 0
            for h, v, r, n in zip(hyps, valid, sample["target"], sample["target_lengths"]):
                e, l = unit_errors(h[v].tolist(), r[:n].tolist())
                errors, length = errors + e, length + l
            logging_output["_uer_errors"], logging_output["_uer_length"] = errors, length
            if self.cfg.eval_retrieval:
                logging_output.update(self._retrieval_hits(model, sample))
        return loss, sample_size, logging_output

    def _retrieval_hits(self, model, sample):
        """This batch's share of recall@k over the whole split: its speech sentences rank all
        the split's references (A->V), its references rank all the split's speech (V->A)."""
        ids = sample["id"]
        dataset = self._dataset_of(sample)
        all_probs, all_lengths = self.split_posteriors(model, dataset)
        all_refs, ref_lengths = dataset.refs.pad(torch.arange(len(dataset.refs)), self.sign_dict.pad())
        all_refs, ref_lengths = all_refs.to(all_probs.device), ref_lengths.to(all_probs.device)
        ids = ids.to(all_probs.device)
        cells = self.cfg.retrieval_max_cells
        a2v = dtw_similarity(all_probs[ids], all_lengths[ids], all_refs, ref_lengths, cells)  # (B, N)
        v2a = dtw_similarity(all_probs, all_lengths, all_refs[ids], ref_lengths[ids], cells).t()  # (B, N)
        out = {"_retrieval_queries": len(ids)}
        for name, scores in (("a2v", a2v), ("v2a", v2a)):
            for k, hits in recall_hits(ranks_of_targets(scores, ids)).items():
                out[f"_{name}_hits@{k}"] = hits
        return out

    def _dataset_of(self, sample) -> UnpairedSpeechSignDataset:
        return self.datasets[sample["split"]]

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)

        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        if total("_uer_length") > 0:
            metrics.log_scalar("_uer_errors", total("_uer_errors"))
            metrics.log_scalar("_uer_length", total("_uer_length"))
            metrics.log_derived("uer", lambda m: 100.0 * m["_uer_errors"].sum / m["_uer_length"].sum)
        if total("_retrieval_queries") > 0:
            metrics.log_scalar("_retrieval_queries", total("_retrieval_queries"))
            for name in ("a2v", "v2a"):
                for k in RECALL_KS:
                    key = f"_{name}_hits@{k}"
                    metrics.log_scalar(key, total(key))
                    metrics.log_derived(
                        f"{name}_recall@{k}",
                        lambda m, key=key: 100.0 * m[key].sum / m["_retrieval_queries"].sum,
                    )
