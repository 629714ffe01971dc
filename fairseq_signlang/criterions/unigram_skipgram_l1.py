"""speech2sign-U word-level objective: positional unigram L1 + lambda * skip-gram L1 (eq. 12).

The generated and real sign-unit statistics of a batch are matched; the speech and sign
sentences of the batch are unpaired, so only their distributions meet. An optional
code-diversity term (wav2vec-U's code penalty) pushes the generator to use many sign units.
"""
from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from fairseq_signlang.criterions.distribution_matching import (
    expected_positional_unigram,
    expected_skipgram,
    perplexity,
    positions_present,
    pushed_skipgram,
    unit_positional_unigram,
    unit_skipgram,
)


@dataclass
class UnigramSkipgramL1Config(FairseqDataclass):
    max_skip: int = field(default=6, metadata={"help": "K: skip-grams k = 1..K are matched (paper: 6, 4 for vocabulary 1000)"})
    skipgram_weight: float = field(default=1.0, metadata={"help": "lambda of eq. 12, weight of the skip-gram L1 term"})
    code_diversity_weight: float = field(
        default=0.0, metadata={"help": "weight of (V - perplexity of the mean posterior) / V; 0 turns it off"}
    )


def generated_statistics(model, net_output, max_skip: int):
    """Positional unigram (T, V), skip-grams [k=1..K] (V, V) and mean posterior (V,) of the
    generator's output."""
    valid = ~net_output["padding_mask"]
    if "unit_posteriors" in net_output:
        G = net_output["unit_posteriors"].float()  # (|X|, |Y|); statistics in float32 also under fp16
        units = net_output["units"]
        pos = unit_positional_unigram(units, valid, G.shape[0]) @ G
        skips = [pushed_skipgram(G, units, valid, k) for k in range(1, max_skip + 1)]
        counts = torch.bincount(units[valid], minlength=G.shape[0]).to(G.dtype)
        mean = (counts / counts.sum()) @ G
    else:
        probs = model.get_normalized_probs(net_output, log_probs=False)
        pos = expected_positional_unigram(probs, valid)
        skips = [expected_skipgram(probs, valid, k) for k in range(1, max_skip + 1)]
        mean = probs[valid].mean(0)
    return pos, skips, mean


@register_criterion("unigram_skipgram_l1", dataclass=UnigramSkipgramL1Config)
class UnigramSkipgramL1Criterion(FairseqCriterion):
    def __init__(self, cfg: UnigramSkipgramL1Config, task):
        super().__init__(task)
        if cfg.max_skip < 0:
            raise ValueError(f"criterion.max_skip must be >= 0, got {cfg.max_skip}")
        self.cfg = cfg
        self.num_sign = len(task.target_dictionary)
        self.num_real_sign = self.num_sign - task.target_dictionary.nspecial

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        gen_valid = ~net_output["padding_mask"]
        sign, sign_valid = sample["sign_tokens"], ~sample["sign_padding_mask"]

        gen_pos, gen_skips, gen_mean = generated_statistics(model, net_output, self.cfg.max_skip)
        real_pos = unit_positional_unigram(sign, sign_valid, self.num_sign)
        T = min(gen_pos.shape[0], real_pos.shape[0])
        both = (positions_present(gen_valid)[:T] & positions_present(sign_valid)[:T]).float()
        pos_l1 = ((gen_pos[:T] - real_pos[:T]).abs().sum(-1) * both).sum()

        skip_l1 = gen_pos.new_zeros(())
        for k, gen_skip in enumerate(gen_skips, start=1):
            if sign.shape[1] > k and gen_valid.shape[1] > k:
                skip_l1 = skip_l1 + (gen_skip - unit_skipgram(sign, sign_valid, self.num_sign, k)).abs().sum()

        loss = pos_l1 + self.cfg.skipgram_weight * skip_l1
        code_ppl = perplexity(gen_mean)
        if self.cfg.code_diversity_weight > 0:
            loss = loss + self.cfg.code_diversity_weight * (self.num_real_sign - code_ppl) / self.num_real_sign

        # The loss is a statistic of the whole batch, so one batch counts as one sample:
        # data-parallel workers then average their gradients.
        logging_output = {
            "loss": loss.item(),
            "pos_l1": pos_l1.item(),
            "skip_l1": skip_l1.item(),
            "code_perplexity": code_ppl.item(),
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": 1,
        }
        return loss, 1, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        n = sum(log.get("sample_size", 0) for log in logging_outputs)
        for key in ("loss", "pos_l1", "skip_l1", "code_perplexity"):
            metrics.log_scalar(key, sum(log.get(key, 0) for log in logging_outputs) / max(n, 1), n, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
