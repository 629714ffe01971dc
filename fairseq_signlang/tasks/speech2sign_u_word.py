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

Training also serves the GAN objectives (the word-level JSD/MMD baselines here, wav2vec_u_gan at
the character level): a criterion with `get_groups_for_update` has its discriminator and the
model's generator stepped in alternation through fairseq's composite optimizer, and a loss or a
parameter that stops being finite ends training before any checkpoint of it is written. Started
again, a run resumes checkpoint.save_dir/checkpoint_last.pt: one that is finished ends having
written nothing, and a checkpoint trained on another task.data is refused (resume_guard).
"""
import itertools
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, MISSING

from fairseq_signlang.io.readers import CorpusError, load_dictionary, open_feature_array, read_features, read_units_flat, require_file
from fairseq_signlang.data.packed import PackedSequences
from fairseq_signlang.data.unpaired_dataset import UnpairedSpeechSignDataset
from fairseq_signlang.metrics.retrieval import RECALL_KS, Ranks, dtw_similarity, pruned_target_ranks, recall_hits, target_rank
from fairseq_signlang.metrics.uer import unit_errors
from fairseq_signlang.criterions.adversarial import GENERATOR
from fairseq_signlang.criterions.log_sums import log_totals
from fairseq_signlang.criterions.decipherment import speech_log_likelihood
from fairseq_signlang.models.speech2sign_u.hmm import SignChain
from fairseq_signlang.models.speech2sign_u.linear_generator import WordUnitDecoder, decode_units
from fairseq_signlang.models.speech2sign_u.sign_ngram import SignNgramModel
from fairseq_signlang.tasks.batching import AnyBatchSize
from fairseq_signlang.tasks.resume_guard import ResumeGuardConfig, check_model_of_task, check_resume

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss or the parameters stopped being finite: training stops, the checkpoints on disk
    are from before it happened."""


@dataclass
class UnpairedSpeechSignConfig(ResumeGuardConfig):
    """What the word and character levels share."""

    data: str = field(default=MISSING, metadata={"help": "folder with dict.*.txt and the {split}.* files"})
    eval_retrieval: bool = field(
        default=True, metadata={"help": "log recall@1/5/10 both ways on splits with a {split}.ref (DTW, eq. 13)"}
    )
    retrieval_max_cells: int = field(
        default=2**25, metadata={"help": "DTW cost cells per chunk during retrieval; lower it when memory is short"}
    )
    retrieval_prune: bool = field(
        default=False,
        metadata={
            "help": "rank with lower bounds on DTW, aligning only the candidates they cannot rule out: the same "
            "recall@1/5/10 to the last bit from a fraction of the pairs, but no full similarity matrix (rankings stop "
            "at the 10th candidate)"
        },
    )
    retrieval_band: Optional[int] = field(
        default=None,
        metadata={
            "help": "Sakoe-Chiba band of the retrieval DTW (widened by the length difference), none by default: "
            "a different metric, not a faster way to the same one"
        },
    )
    seed: int = field(default=II("common.seed"), metadata={"help": "seeds the per-epoch drawing of sign sentences"})
    sign_lm_order: int = field(
        default=2,
        metadata={
            "help": "order of the n-gram model (interpolated Kneser-Ney) of train.sign that the decipherment criterion, "
            "the label-free speech_nll metric and decoding=viterbi use; built when first needed, from train.sign only"
        },
    )
    sign_lm_states: int = field(
        default=1,
        metadata={
            "help": "latent states per sign unit (order 2 only): > 1 learns, by EM on train.sign, a bigram whose units "
            "each keep that many contexts, so a unit that stands for two words (look-alike signs) predicts each "
            "word's followers; the chain then has that many times the states, and decipherment costs their square "
            "(models/speech2sign_u/split_states.py)"
        },
    )
    sign_lm_split_iterations: int = field(
        default=60, metadata={"help": "sign_lm_states > 1: EM iterations that learn the states' transitions"}
    )
    decoding: ChoiceEnum(["argmax", "viterbi"]) = field(
        default="argmax",
        metadata={
            "help": "recognised units for UER and fairseq-generate: each speech position's most probable sign unit, or "
            "the best path under the sign n-gram with G(y|x)/p(y) as emissions"
        },
    )


@dataclass
class Speech2SignUWordConfig(UnpairedSpeechSignConfig):
    speech_input: ChoiceEnum(["units", "features"]) = field(
        default="units", metadata={"help": "speech words as unit ids ({split}.src) or pooled features ({split}.npy/.lengths)"}
    )


@register_task("speech2sign_u_word", dataclass=Speech2SignUWordConfig)
class Speech2SignUWordTask(AnyBatchSize, FairseqTask):
    TRAINED_MODELS = {"speech2sign_u_word": ""}  # model name -> what selects it (resume_guard.model_owner)
    RESUME_DATA_FIELDS = ("data",)  # a checkpoint trained on another of these is not resumed

    def __init__(self, cfg: Speech2SignUWordConfig, src_dict, sign_dict, speech_input_dim: int):
        super().__init__(cfg)
        self.src_dict, self.sign_dict = src_dict, sign_dict
        self.speech_input_dim = speech_input_dim
        self._retrieval_cache = {}
        self._criterion = None
        self._sign_chain = None
        self._speech_unit_frequency = None

    @classmethod
    def speech_is_discrete(cls, cfg) -> bool:
        """Speech as unit ids (a dict.src.txt and {split}.src) rather than feature vectors."""
        return cfg.speech_input == "units"

    @property
    def discrete_speech(self) -> bool:
        return self.speech_is_discrete(self.cfg)

    @classmethod
    def setup_task(cls, cfg: UnpairedSpeechSignConfig, **kwargs):
        if not os.path.isdir(cfg.data):
            raise CorpusError(f"{cfg.data}: task.data is not a folder")
        sign_dict = load_dictionary(os.path.join(cfg.data, "dict.sign.txt"))
        if cls.speech_is_discrete(cfg):
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
            if os.path.isfile(os.path.join(data, f"{split}.npy")):
                return int(open_feature_array(os.path.join(data, f"{split}.npy")).shape[1])
        raise CorpusError(f"{data}: speech_input=features but no train.npy, valid.npy or test.npy there")

    def _path(self, name: str) -> str:
        return os.path.join(self.cfg.data, name)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        if self.discrete_speech:
            speech = self._read_packed(require_file(self._path(f"{split}.src"), "speech unit file"), self.src_dict, "dict.src.txt")
        else:
            feats, offsets, lengths = read_features(self._path(split))
            if feats.shape[1] != self.speech_input_dim:
                raise CorpusError(f"{self._path(split)}.npy: feature dim {feats.shape[1]}, expected {self.speech_input_dim}")
            speech = PackedSequences(feats, offsets, lengths)
        n_speech = len(speech)
        sign_file = self._path(f"{split}.sign")
        if not os.path.isfile(sign_file):
            sign_file = self._path("train.sign")
        sign_units = self._read_packed(require_file(sign_file, f"sign corpus for split {split!r}"), self.sign_dict, "dict.sign.txt")
        refs = None
        if os.path.isfile(self._path(f"{split}.ref")):
            ref_path = self._path(f"{split}.ref")
            refs = self._read_packed(ref_path, self.sign_dict, "dict.sign.txt")
            if len(refs) != n_speech:
                raise CorpusError(f"{ref_path}: {len(refs)} lines, but the speech of {split!r} has {n_speech} sentences")
            self.check_reference_lengths(refs, speech, ref_path)
        self.datasets[split] = UnpairedSpeechSignDataset(
            split,
            speech,
            self.discrete_speech,
            sign_units,
            speech_pad=self.src_dict.pad() if self.src_dict is not None else 0,
            sign_pad=self.sign_dict.pad(),
            refs=refs,
            seed=self.cfg.seed,
        )
        logger.info(f"{split}: {n_speech} speech sentences, {len(sign_units)} sign sentences from {sign_file}, references: {refs is not None}")

    def _read_packed(self, path: str, dictionary, dict_name: str) -> PackedSequences:
        """A unit file as one packed corpus, read without a tensor per line (290k sentences in seconds)."""
        ids, lengths = read_units_flat(path, dictionary, self._path(dict_name))
        return PackedSequences(ids, torch.cumsum(lengths, 0) - lengths, lengths)

    def check_reference_lengths(self, refs: PackedSequences, speech: PackedSequences, ref_path: str) -> None:
        """One sign unit per spoken word."""
        bad = (refs.lengths != speech.lengths).nonzero()
        if len(bad):
            i = int(bad[0])
            raise CorpusError(f"{ref_path}:{i + 1}: {int(refs.lengths[i])} sign units for a speech sentence of {int(speech.lengths[i])} words")

    @property
    def source_dictionary(self):
        return self.src_dict

    @property
    def target_dictionary(self):
        return self.sign_dict

    def max_positions(self):
        return None

    def build_generator(self, models, args, **kwargs):
        """fairseq-generate prints each speech word's sign unit (task.decoding); with
        `--scoring wer` it reports the unit error rate against {split}.ref."""
        return WordUnitDecoder(*self.decoding_chain())

    # ---- the sign n-gram model: decipherment, speech_nll, Viterbi decoding -------------------

    def chain_self_loop(self) -> float:
        """Probability that a sign unit spans one more speech position (the word level: never)."""
        return 0.0

    def sign_chain(self, device=None) -> SignChain:
        """The n-gram model of train.sign (task.sign_lm_order) as a chain over sign units."""
        if self._sign_chain is None:
            path, sentences = self.sign_sentences()
            first = self.sign_dict.nspecial
            try:
                ngram = SignNgramModel(sentences, len(self.sign_dict) - first, self.cfg.sign_lm_order)
                # the seed of the states' start; a config built outside fairseq-hydra-train may hold common.seed unresolved
                seed = self.cfg.seed if isinstance(self.cfg.seed, int) else 1
                self._sign_chain = SignChain(ngram, first_unit=first, self_loop=self.chain_self_loop(), states_per_unit=self.cfg.sign_lm_states,
                                             sentences=sentences, split_iterations=self.cfg.sign_lm_split_iterations, seed=seed)
            except ValueError as e:
                raise CorpusError(f"{path}: task.sign_lm_order={self.cfg.sign_lm_order}: {e}") from e
            logger.info(f"sign {self.cfg.sign_lm_order}-gram model of {path}: {len(self._sign_chain.units)} chain states")
        return self._sign_chain.to(device) if device is not None else self._sign_chain

    def sign_sentences(self):
        """(path, sentences) of train.sign, the units numbered from 0 (the dictionary's specials off)."""
        path = require_file(self._path("train.sign"), "sign corpus (the sign n-gram model is built from it)")
        return path, self._read_packed(path, self.sign_dict, "dict.sign.txt").tolists(shift=self.sign_dict.nspecial)

    @property
    def speech_unit_frequency(self):
        """Speech units: the frequency of each in train.src, (X,), the weights of the generator's
        marginal p(y) = sum_x p(x) G(y|x). Features: None (the marginal is taken per batch)."""
        if not self.discrete_speech:
            return None
        if self._speech_unit_frequency is None:
            if "train" in self.datasets:
                units = self.datasets["train"].speech.data
            else:
                path = require_file(self._path("train.src"), "speech unit file (its unit frequencies weigh p(y))")
                units = self._read_packed(path, self.src_dict, "dict.src.txt").data
            counts = torch.bincount(torch.as_tensor(units).long().reshape(-1), minlength=len(self.src_dict)).float()
            self._speech_unit_frequency = counts / counts.sum().clamp(min=1)
        return self._speech_unit_frequency

    def decoding_chain(self):
        """(chain, unit frequency) for decoding=viterbi, (None, None) for argmax."""
        return (self.sign_chain(), self.speech_unit_frequency) if self.cfg.decoding == "viterbi" else (None, None)

    # ---- training: GAN alternation and divergence ----------------------------------------

    def build_model(self, cfg, from_checkpoint=False):
        if from_checkpoint:
            check_model_of_task(self, cfg)
        else:  # fairseq-train: the checkpoint it is about to resume must be this run's
            check_resume(self, cfg)
        model = super().build_model(cfg, from_checkpoint)
        for p in model.parameters():
            p.param_group = GENERATOR  # the composite optimizer's group (unused by plain optimizers)
        return model

    def build_criterion(self, cfg):
        self._criterion = super().build_criterion(cfg)
        return self._criterion

    @property
    def alternating(self) -> bool:
        return hasattr(self._criterion, "get_groups_for_update")

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if self.alternating:
            if not optimizer.supports_groups:
                raise ValueError(
                    f"criterion {self._criterion.__class__.__name__} trains a generator and a discriminator in "
                    "alternation: set optimizer._name=composite with groups `generator` and `discriminator` and "
                    "lr_scheduler._name=pass_through (see examples/speech2sign_u/char_tiny.yaml)"
                )
        if hasattr(criterion, "set_num_updates"):  # schedules: alternation, decipherment's warm start
            criterion.set_num_updates(update_num)
        model.train()
        model.set_num_updates(update_num)
        loss, sample_size, logging_output = criterion(model, sample)
        if not torch.isfinite(loss):
            terms = {k: v for k, v in logging_output.items() if isinstance(v, float)}
            self._diverged(f"the loss is {loss.item()} at update {update_num + 1} (terms: {terms})")
        if ignore_grad:
            loss *= 0
        optimizer.backward(loss)
        return loss, sample_size, logging_output

    def optimizer_step(self, optimizer, model, update_num):
        if getattr(self._criterion, "replaces_optimizer_step", False):
            self._criterion.m_step(model, update_num)  # decipherment's closed-form EM update
        elif self.alternating:
            optimizer.step(groups={self._criterion.get_groups_for_update(update_num)})
        else:
            optimizer.step()
        params = itertools.chain(model.named_parameters(), self._criterion.named_parameters() if self._criterion is not None else ())
        bad = [name for name, p in params if not torch.isfinite(p).all()]
        if bad:
            self._diverged(f"update {update_num + 1} made parameters {', '.join(bad[:4])} infinite or NaN")

    def _diverged(self, what: str):
        msg = (
            f"training diverged: {what}. Stopped before saving anything of it: checkpoint_last.pt in "
            "checkpoint.save_dir is the last good state (lower the learning rates or raise the gradient "
            "penalty, then resume from it)"
        )
        logger.error(msg)
        raise TrainingDiverged(msg)

    # ---- evaluation -------------------------------------------------------------------------

    def split_net_output(self, model, dataset: UnpairedSpeechSignDataset) -> dict:
        """The model's output for every speech sentence of a split at once."""
        batch = dataset.collater([{"id": i} for i in range(len(dataset))])
        param = next(model.parameters())
        net_input = {k: v.to(param.device, param.dtype if v.is_floating_point() else v.dtype) for k, v in batch["net_input"].items()}
        return model(**net_input)

    @staticmethod
    def posteriors(model, net_output):
        """G(X) of every speech sentence of a batch: (B, T, V) padded, and (B,) lengths."""
        return model.get_normalized_probs(net_output, log_probs=False), (~net_output["padding_mask"]).sum(1)

    def split_posteriors(self, model, dataset: UnpairedSpeechSignDataset):
        """G(X) of every speech sentence of a split: (N, T, V) padded, and (N,) lengths."""
        return self.posteriors(model, self.split_net_output(model, dataset))

    def recognised_units(self, model, net_output) -> list:
        """The recognised sign units of every speech sentence of a batch (task.decoding)."""
        best = decode_units(model, net_output, *self.decoding_chain())
        return [self.hypothesis_units(b[v]) for b, v in zip(best, ~net_output["padding_mask"])]

    def hypothesis_units(self, best: torch.Tensor) -> list:
        """The recognised sign units of a sentence from its per-position best units."""
        return best.tolist()

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        with torch.no_grad():
            net_output = model(**sample["net_input"])
            valid = ~net_output["padding_mask"]
            chain = self.sign_chain(valid.device)
            log_likelihood = speech_log_likelihood(model, net_output, chain, self.speech_unit_frequency)
            logging_output["_speech_nll"], logging_output["_speech_words"] = -log_likelihood.sum().item(), int(valid.sum())
        if sample["target"] is None:
            return loss, sample_size, logging_output
        with torch.no_grad():
            hyps = self.recognised_units(model, net_output)
            errors = length = 0
            for h, r, n in zip(hyps, sample["target"], sample["target_lengths"]):
                e, l = unit_errors(h, r[:n].tolist())
                errors, length = errors + e, length + l
            logging_output["_uer_errors"], logging_output["_uer_length"] = errors, length
            if self.cfg.eval_retrieval:
                logging_output.update(self._retrieval_hits(model, sample))
        return loss, sample_size, logging_output

    def _retrieval_hits(self, model, sample):
        """This batch's share of recall@k over the whole split: its speech sentences rank all
        the split's references (A->V), its references rank all the split's speech (V->A)."""
        ids = sample["id"]
        out = {"_retrieval_queries": len(ids)}
        for name, (better, ties) in self.split_ranks(model, sample["split"]).items():
            rows = ids.to(better.device)
            for k, hits in recall_hits(better[rows], ties[rows]).items():
                out[f"_{name}_hits@{k}"] = hits
        return out

    def split_similarity(self, model, split: str) -> torch.Tensor:
        """Sim(X_i, Y_j) for the whole split (N speech, N references), once per validation pass."""
        return self._split_cached(model, split, "similarity", lambda: dtw_similarity(
            *self._retrieval_inputs(model, split), self.cfg.retrieval_max_cells, band=self.cfg.retrieval_band
        ))

    def split_ranks(self, model, split: str) -> Ranks:
        """target_rank of every query of the split, both ways, once per validation pass: from
        split_similarity, or with retrieval_prune from pruned_target_ranks (`better` capped at the
        largest recall k, all that recall@k reads)."""
        def ranks():
            if self.cfg.retrieval_prune:
                return pruned_target_ranks(
                    *self._retrieval_inputs(model, split), max(RECALL_KS), self.cfg.retrieval_max_cells, band=self.cfg.retrieval_band
                )
            scores = self.split_similarity(model, split)
            targets = torch.arange(len(scores), device=scores.device)
            return {name: target_rank(mat, targets) for name, mat in (("a2v", scores), ("v2a", scores.t()))}

        return self._split_cached(model, split, "ranks", ranks)

    def _retrieval_inputs(self, model, split: str):
        """G(X) of the split's speech, (N, T, V) and (N,), and its reference sign units, (N, S) and (N,)."""
        dataset = self.datasets[split]
        with torch.no_grad():
            probs, lengths = self.split_posteriors(model, dataset)
        refs, ref_lengths = dataset.refs.pad(torch.arange(len(dataset.refs)), self.sign_dict.pad())
        return probs, lengths, refs, ref_lengths

    def _split_cached(self, model, split: str, name: str, compute):
        """compute() once per split and parameter values: the key holds a hash of the parameters'
        bytes (fairseq's optimizers write through `p.data`, which leaves the version counters
        alone, so those cannot tell that a step happened; and sums cannot tell an EM step that
        swaps which sign unit a speech unit reads as)."""
        with torch.no_grad():
            fingerprint = tuple(hash(p.detach().cpu().numpy().tobytes()) for p in model.parameters())
        key = (split, id(model), fingerprint)
        if self._retrieval_cache.get("key") != key:
            self._retrieval_cache = {"key": key}
        if name not in self._retrieval_cache:
            self._retrieval_cache[name] = compute()
        return self._retrieval_cache[name]

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)

        total = log_totals(logging_outputs)
        if total("_speech_words") > 0:
            # label-free: -log p(speech) per word under the decipherment model, relative to the speech
            # units' own unigram (negative once the sign n-gram explains the speech better than that)
            metrics.log_scalar("_speech_nll", total("_speech_nll"))
            metrics.log_scalar("_speech_words", total("_speech_words"))
            metrics.log_derived("speech_nll", lambda m: m["_speech_nll"].sum / m["_speech_words"].sum)
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
