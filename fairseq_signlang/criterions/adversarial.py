"""What the GAN objectives share: the penalties of eq. 6 and the generator/discriminator alternation.

The discriminator belongs to the criterion, not to the model: it is part of the training
objective, fairseq optimizes and checkpoints criterion parameters, and fairseq-generate then
loads a model that is the generator alone. Updates alternate as in wav2vec-U: odd updates
step the discriminator's optimizer, even ones the generator's (fairseq's composite optimizer,
one group each); the task asks `get_groups_for_update` which group steps.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion
from torch import Tensor

from fairseq_signlang.criterions.distribution_matching import perplexity
from fairseq_signlang.criterions.log_sums import log_totals

GENERATOR, DISCRIMINATOR = "generator", "discriminator"


GRADIENT_PENALTY_NORMS = ("per_unit", "sentence")


def gradient_penalty(discriminator, real: Tensor, fake: Tensor, alpha: Optional[Tensor] = None, norm: str = "per_unit") -> Tensor:
    """WGAN-GP's (||grad_x D(x)||_2 - 1)^2 at x = alpha * real + (1 - alpha) * fake, summed.
    real (B, T, V), fake (B', T', V): both are cut to the common batch and length; alpha (B,) is
    drawn uniformly unless given. norm "per_unit": wav2vec-U's, a norm over time for each unit
    of each sentence, B x V penalties; "sentence": one norm over a sentence's whole (T, V)
    gradient, B penalties (smaller: about 35x on a 26-unit vocabulary)."""
    if norm not in GRADIENT_PENALTY_NORMS:
        raise ValueError(f"gradient penalty norm must be one of {GRADIENT_PENALTY_NORMS}, got {norm!r}")
    b, t = min(real.shape[0], fake.shape[0]), min(real.shape[1], fake.shape[1])
    real, fake = real[:b, :t], fake[:b, :t]
    if alpha is None:
        alpha = torch.rand(b, device=real.device, dtype=real.dtype)
    mixed = (alpha[:, None, None] * real + (1 - alpha[:, None, None]) * fake).detach().requires_grad_(True)
    scores = discriminator(mixed, None)  # (b,) or (b, F)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # (b, t, V)
    norms = grad.norm(2, dim=1) if norm == "per_unit" else grad.flatten(1).norm(2, dim=1)  # (b, V) or (b,)
    return ((norms - 1) ** 2).sum()


def smoothness_penalty(logits: Tensor, padding_mask: Tensor) -> Tensor:
    """Mean squared difference of the logits of neighbouring positions: mean over the units and
    over the pairs of positions that are both valid. Rewards generators whose output does not
    flicker from segment to segment. logits (B, T, V), padding_mask (B, T)."""
    if logits.shape[1] < 2:
        return logits.new_zeros(())
    sq = (logits[:, 1:] - logits[:, :-1]).pow(2).mean(-1)  # (B, T - 1)
    pairs = (~padding_mask[:, 1:] & ~padding_mask[:, :-1]).to(sq.dtype)
    return (sq * pairs).sum() / pairs.sum().clamp(min=1)


def code_diversity_penalty(probs: Tensor, padding_mask: Tensor) -> Tensor:
    """(V - perplexity of the mean posterior over valid positions) / V: 0 when the generator uses
    all V units equally often, near 1 when it collapses onto one. probs (B, T, V)."""
    valid = ~padding_mask
    mean = probs[valid].mean(0)  # (V,)
    V = probs.shape[-1]
    return (V - perplexity(mean)) / V


def one_hot_units(tokens: Tensor, padding_mask: Tensor, first_unit: int, num_units: int) -> Tensor:
    """Dictionary indices (B, T) of real sign sentences -> one-hot over the real units (B, T, V),
    all-zero rows at padding. Units start at dictionary index `first_unit` (after the specials)."""
    units = (tokens - first_unit).clamp(min=0)
    return F.one_hot(units, num_units).float() * (~padding_mask)[..., None]


class AlternatingGANCriterion(FairseqCriterion):
    """A criterion that owns a discriminator and alternates generator and discriminator updates."""

    def __init__(self, task):
        super().__init__(task)
        self.num_updates = 0

    def mark_discriminator(self, module) -> None:
        for p in module.parameters():
            p.param_group = DISCRIMINATOR

    def set_num_updates(self, num_updates: int) -> None:
        self.num_updates = num_updates

    @staticmethod
    def get_groups_for_update(num_updates: int) -> str:
        return DISCRIMINATOR if num_updates % 2 == 1 else GENERATOR

    def discriminator_step(self) -> bool:
        return self.training and self.get_groups_for_update(self.num_updates) == DISCRIMINATOR

    def adversarial_logging(self, logs: dict, d_step: bool, sentences: int) -> dict:
        """Per-batch logs: the sentences of discriminator and generator steps are counted apart,
        so reduce_metrics averages each loss over the steps that computed it (validation
        batches count as generator steps)."""
        logs["d_sentences" if d_step else "g_sentences"] = sentences
        logs["d_steps" if d_step else "g_steps"] = 1
        return logs

    @staticmethod
    def reduce_adversarial_metrics(logging_outputs, d_keys, g_keys, other_keys=()) -> None:
        total = log_totals(logging_outputs)
        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1), n, round=4)
        for keys, count in ((d_keys, "d_sentences"), (g_keys, "g_sentences")):
            c = total(count)
            if c > 0:
                for key in keys:
                    metrics.log_scalar(key, total(key) / c, c, round=4)
        steps = total("d_steps") + total("g_steps")
        if steps > 0:
            metrics.log_scalar("d_step_share", total("d_steps") / steps, steps, round=3)
            for key in other_keys:  # per-batch values, averaged over the batches
                metrics.log_scalar(key, total(key) / steps, steps, round=3)
