"""Decipherment: the speech corpus explained as sign-unit sentences of the sign corpus's n-gram
model, each unit emitted as a speech word (Ravi & Knight 2011's decipherment, with the generator
of speech2sign-U as the emission model).

The generator's posteriors become emissions as in hybrid HMM acoustic models: p(x | y) / p(x) =
G(y | x) / p(y), with p(y) the generator's own marginal over the speech (for speech units: the
unit frequencies of train.src times G). The loss is the negative log marginal likelihood of each
speech sentence under the task's sign chain (forward algorithm; `log_likelihood_and_posteriors`).

Two ways to climb it, `criterion.fit`:
- `em` (speech units only): the E-step's expected counts c(x, y) of each speech unit x read as
  sign unit y set G(y | x) = c(x, y) / c(x) in closed form, replacing the optimizer's step. With
  the whole corpus in one batch this is exactly Baum-Welch EM for the emissions; with smaller
  batches each batch's counts replace the statistics, or with stepwise_power > 0 are mixed in
  with weight (k + 2)^-stepwise_power (stepwise EM, Liang & Klein 2009). Plain gradient descent
  on the same likelihood crawls (Adam, full batch, 300 steps: UER 30-60 where EM comes within a
  few points of the oracle), which is why this is the default.
- `gradient`: any generator (pooled features, the character level's convolutions): the
  E-step's posteriors are the targets of a cross-entropy, whose gradient with respect to the
  generator's logits equals that of the log-likelihood (generalised EM through the optimizer).

Where it starts matters. When the speech units carry more than the word (a voice or speaker per
sentence, as in the media demo's k-means clusters), EM from a random G can find a mapping that
explains which units share a sentence better than the true one explains word order: higher
likelihood, wrong reading. `warm_start_updates` first fits G by the paper's L1 terms (eq. 12),
which match unit statistics and are blind to that, and lets EM refine from there. Where EM from
a random G simply stalls (the character level on text it was not tuned on: UER 73 against an
oracle of 5.7), `init=tempering` starts it from the most likely hard reading that parallel
tempering over whole unit-to-unit assignments finds (models/speech2sign_u/cipher_search.py).
"""
import logging
from dataclasses import dataclass, field
from typing import Iterator, Tuple

import torch
import torch.distributed as dist
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from torch import Tensor

from fairseq_signlang.criterions.log_sums import log_totals
from fairseq_signlang.criterions.unigram_skipgram_l1 import UnigramSkipgramL1Config, UnigramSkipgramL1Criterion
from fairseq_signlang.models.speech2sign_u.cipher_search import HardLexiconScore, Tempering, temper_lexicon
from fairseq_signlang.models.speech2sign_u.hmm import scaled_emissions, token_emissions

logger = logging.getLogger(__name__)


@dataclass
class DecipherConfig(FairseqDataclass):
    # not `update`: a DictConfig has a method of that name
    fit: ChoiceEnum(["em", "gradient"]) = field(
        default="em",
        metadata={
            "help": "em: closed-form M-step of G from the expected counts (speech_input=units; replaces the optimizer's "
            "step); gradient: cross-entropy to the E-step posteriors through the optimizer (any generator)"
        },
    )
    stepwise_power: float = field(
        default=0.0,
        metadata={
            "help": "em with batches that hold part of the training corpus: each batch's counts enter with weight "
            "(k + 2)^-power at update k (stepwise EM, which averages out small batches' noise; 0.3-1); 0: each "
            "batch's counts replace the statistics (fastest when a batch holds thousands of words). A batch holding "
            "the whole corpus always replaces them (batch EM)"
        },
    )
    emission_floor: float = field(
        default=1e-6, metadata={"help": "em: share of uniform mass mixed into every G(.|x), so no sign unit becomes impossible"}
    )
    max_cells: int = field(
        default=2**24, metadata={"help": "emission cells (sentences x words x sign units) per forward-backward chunk"}
    )
    warm_start_updates: int = field(
        default=0,
        metadata={
            "help": "the first N updates fit G through the optimizer by the paper's L1 objective (criterion "
            "unigram_skipgram_l1, eq. 12), then decipherment continues from that G. EM from a random G can settle "
            "in a wrong optimum of higher likelihood when speech units also encode the speaker (media demo: UER 93 "
            "from random, 53 from the L1 start). 0: decipherment from the model's initialisation"
        },
    )
    init: ChoiceEnum(["model", "tempering"]) = field(
        default="model",
        metadata={
            "help": "where EM starts. model: the generator as it is (its random initialisation, or the warm start's G); "
            "tempering (speech_input=units): each speech unit's most likely single sign unit, found by parallel "
            "tempering over whole assignments under the sign bigram (a homophonic cipher, "
            "models/speech2sign_u/cipher_search.py), mixed with init_smoothing of uniform mass. EM from a random G "
            "stalled at UER 80 on a fingerspelling corpus of KJV text (oracle 5.3); its cost grows as K^2 V per sweep "
            "for K speech units and V sign units, seconds at the character level"
        },
    )
    init_sweeps: int = field(default=500, metadata={"help": "init=tempering: sweeps of the search (32 chains)"})
    init_smoothing: float = field(
        default=0.1, metadata={"help": "init=tempering: share of uniform mass in each G(.|x), so EM can still move a unit"}
    )
    warm_start_max_skip: int = field(default=6, metadata={"help": "warm start: K of the skip-gram L1 term (paper: 6)"})
    warm_start_skipgram_weight: float = field(default=1.0, metadata={"help": "warm start: lambda of eq. 12"})


def length_chunks(lengths: Tensor, cells_per_word: int, max_cells: int) -> Iterator[Tuple[Tensor, int]]:
    """(rows, n): the sentences of each length n, at most max_cells / (n * cells_per_word) at a time."""
    for n in lengths.unique().tolist():
        if n == 0:
            continue
        rows = (lengths == n).nonzero()[:, 0]
        yield from ((r, n) for r in rows.split(max(1, max_cells // (n * cells_per_word))))


@torch.no_grad()
def e_step(G: Tensor, prior: Tensor, net_output, chain, max_cells: int) -> Iterator[Tuple[Tensor, int, Tensor, Tensor]]:
    """(rows, n, log-likelihood (b,), posteriors (b, n, C)) for the sentences of each length n,
    in chunks of at most max_cells emission cells."""
    lengths = (~net_output["padding_mask"]).sum(1)
    for rows, n in length_chunks(lengths, G.shape[-1], max_cells):
        yield (rows, n, *chain.log_likelihood_and_posteriors(token_emissions(G, prior, net_output, rows, n), lengths[rows]))


@torch.no_grad()
def speech_log_likelihood(model, net_output, chain, unit_frequency, max_cells: int = 2**24) -> Tensor:
    """log p(x) / p_unigram(x) of each speech sentence under the decipherment model: (B,). Needs
    no reference, so it can choose checkpoints (the task's speech_nll)."""
    G, prior = scaled_emissions(model, net_output, unit_frequency)
    out = G.new_zeros(net_output["padding_mask"].shape[0])
    for rows, _, ll, _ in e_step(G, prior, net_output, chain, max_cells):
        out[rows] = ll
    return out


@register_criterion("decipherment", dataclass=DecipherConfig)
class DecipherCriterion(FairseqCriterion):
    def __init__(self, cfg: DecipherConfig, task):
        super().__init__(task)
        if cfg.fit == "em" and not task.discrete_speech:
            raise ValueError(
                "criterion.fit=em sets G(y|x) from counts per speech unit, so it needs task.speech_input=units; "
                "use criterion.fit=gradient for speech features"
            )
        if cfg.stepwise_power < 0 or not 0 <= cfg.emission_floor < 1:
            raise ValueError(f"criterion.stepwise_power must be >= 0 and emission_floor in [0, 1), got {cfg.stepwise_power}, {cfg.emission_floor}")
        if cfg.warm_start_updates < 0:
            raise ValueError(f"criterion.warm_start_updates must be >= 0, got {cfg.warm_start_updates}")
        if cfg.init == "tempering" and not task.discrete_speech:
            raise ValueError("criterion.init=tempering reads one sign unit per speech unit, so it needs task.speech_input=units")
        if not 0 < cfg.init_smoothing < 1:
            raise ValueError(f"criterion.init_smoothing must be in (0, 1), got {cfg.init_smoothing}")
        self.cfg = cfg
        self._counts = None  # em: this batch's expected counts (X, C) and its number of words
        self._num_updates = 0
        self._started = cfg.init == "model"  # init=tempering: set G once, at the first EM update
        self.warm_start = None
        if cfg.warm_start_updates > 0:
            l1 = UnigramSkipgramL1Config(max_skip=cfg.warm_start_max_skip, skipgram_weight=cfg.warm_start_skipgram_weight)
            self.warm_start = UnigramSkipgramL1Criterion(l1, task)

    def set_num_updates(self, num_updates: int) -> None:
        self._num_updates = num_updates

    @property
    def warming_up(self) -> bool:
        return self.warm_start is not None and self._num_updates < self.cfg.warm_start_updates

    def forward(self, model, sample, reduce=True):
        if self.warming_up:
            return self.warm_start(model, sample)
        if not self._started and model.training:
            if self._num_updates == self.cfg.warm_start_updates:  # not a run resumed past it
                self.start_from_tempering(model)
            self._started = True
        net_output = model(**sample["net_input"])
        lengths = (~net_output["padding_mask"]).sum(1)
        chain = self.task.sign_chain(lengths.device)
        unit_frequency = self.task.speech_unit_frequency
        with torch.no_grad():
            G, prior = scaled_emissions(model, net_output, unit_frequency)
        log_likelihood = G.new_zeros(())
        ce = G.new_zeros(())
        counts = torch.zeros_like(G) if self.cfg.fit == "em" else None
        if self.cfg.fit == "gradient":
            log_probs = model.get_normalized_probs(net_output, log_probs=True)
        for rows, n, ll, post in e_step(G, prior, net_output, chain, self.cfg.max_cells):
            log_likelihood = log_likelihood + ll.sum()
            if counts is not None:
                counts.index_add_(0, net_output["units"][rows, :n].reshape(-1), post.reshape(-1, post.shape[-1]))
            if self.cfg.fit == "gradient":
                ce = ce - (post * log_probs[rows, :n].clamp(min=-1e4)).sum()
        nwords = int(lengths.sum())
        if counts is not None:
            self._counts = (counts, nwords, int(sample["nsentences"]))
            # zero gradients through the model, so distributed training sees the usual backward pass
            loss = -log_likelihood + 0.0 * net_output["unit_posteriors"].sum()
        else:
            loss = ce + (-log_likelihood - ce).detach()  # the value is -log p(x); the gradient, the cross-entropy's
        logging_output = {
            "loss": -log_likelihood.item(),
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": nwords,
        }
        return loss, nwords, logging_output

    @torch.no_grad()
    def start_from_tempering(self, model) -> None:
        """G(.|x) set to each speech unit's sign unit in the most likely hard assignment found."""
        sentences = self.task.datasets["train"].speech.tolists()
        _, signs = self.task.sign_sentences()
        generator = model.generator
        G = generator.unit_posteriors()                                         # (X, C)
        first = self.task.sign_dict.nspecial
        score = HardLexiconScore(sentences, G.shape[0], signs, G.shape[1] - first, self_loop=self.task.chain_self_loop())
        found = temper_lexicon(score, Tempering(sweeps=self.cfg.init_sweeps), seed=torch.initial_seed() % 2**32, desc="tempering start")
        logger.info(f"tempering start: hard assignment of log likelihood {found['score']}")
        hard = torch.zeros_like(G)
        hard[torch.arange(len(G)), torch.as_tensor(found["assignment"], device=G.device) + first] = 1.0
        valid = (~generator.invalid_outputs).to(G)
        generator.set_unit_posteriors((1 - self.cfg.init_smoothing) * hard + self.cfg.init_smoothing * valid / valid.sum())
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for p in generator.parameters():
                dist.broadcast(p.data, 0)  # every rank starts from rank 0's search

    # ---- em: the M-step, run by the task in place of the optimizer's step ------------------

    @property
    def replaces_optimizer_step(self) -> bool:
        return self.cfg.fit == "em" and not self.warming_up

    @torch.no_grad()
    def m_step(self, model, update_num: int) -> None:
        if self._counts is None:
            raise RuntimeError("the M-step needs the counts of a forward pass in training")
        counts, nwords, nsentences = self._counts
        self._counts = None
        sizes = counts.new_tensor([float(nwords), float(nsentences)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(counts)
            dist.all_reduce(sizes)
        nwords, whole_corpus = sizes[0], int(sizes[1]) >= len(self.task.datasets["train"])
        generator = model.generator
        G = generator.unit_posteriors()                                         # (X, C)
        eta = 1.0 if whole_corpus or self.cfg.stepwise_power == 0 else (update_num + 2) ** -self.cfg.stepwise_power
        unit_frequency = self.task.speech_unit_frequency.to(G)
        stats = (1 - eta) * unit_frequency[:, None] * G + eta * counts / nwords.clamp(min=1)
        totals = stats.sum(1, keepdim=True)
        new = torch.where(totals > 0, stats / totals.clamp(min=1e-30), G)      # unseen units keep theirs
        valid = (~generator.invalid_outputs).to(G)
        new = (1 - self.cfg.emission_floor) * new + self.cfg.emission_floor * valid / valid.sum()
        generator.set_unit_posteriors(new)

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        if any("pos_l1" in log for log in logging_outputs):  # the warm start's updates
            UnigramSkipgramL1Criterion.reduce_metrics(logging_outputs)
            return
        total = log_totals(logging_outputs)
        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1), n, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
