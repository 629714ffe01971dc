"""GAN baselines for word-level speech2sign-U (the paper's figure 3): the linear generator of eq. 7
trained against a discriminator instead of by the L1 statistics of eq. 12.

Both read sign-unit sequences with a single causal convolution spanning max_skip + 1 units,
the same context as skip-grams k = 1..max_skip, so one knob (`criterion.max_skip`) is the
x-axis of figure 3 for all three objectives.

  jsd_gan  the discriminator scores each sentence "real"; binary cross-entropy (a Jensen-Shannon
           GAN, as wav2vec-U), gradient penalty on discriminator steps
  mmd_gan  the convolution maps each sentence to a feature vector; the generator minimizes and the
           discriminator maximizes the squared maximum mean discrepancy between the real and
           generated features under a sum of Gaussian kernels (an MMD GAN with a learned kernel)

Like eq. 12 these are statistics of the whole batch: a batch counts as one sample.
"""
from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.dataclass import FairseqDataclass

from fairseq_signlang.models.speech2sign_u.unit_discriminator import UnitSequenceDiscriminator
from fairseq_signlang.criterions.adversarial import AlternatingGANCriterion, code_diversity_penalty, gradient_penalty, one_hot_units
from fairseq_signlang.criterions.distribution_matching import perplexity


@dataclass
class JSDGANConfig(FairseqDataclass):
    max_skip: int = field(
        default=6, metadata={"help": "K: the discriminator's convolution spans K + 1 units, the context of skip-grams 1..K"}
    )
    gradient_penalty: float = field(default=1.5, metadata={"help": "weight of the gradient penalty on discriminator steps"})
    code_diversity_weight: float = field(
        default=0.0, metadata={"help": "weight of (V - perplexity of the mean posterior) / V on generator steps"}
    )


@dataclass
class MMDGANConfig(JSDGANConfig):
    gradient_penalty: float = field(default=0.0, metadata={"help": "weight of the gradient penalty on discriminator steps"})
    feature_dim: int = field(default=16, metadata={"help": "size of the sentence features the kernel compares"})
    kernel_bandwidths: List[float] = field(
        default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0], metadata={"help": "sigmas of the Gaussian kernels that are summed"}
    )


def squared_mmd(real: torch.Tensor, fake: torch.Tensor, bandwidths) -> torch.Tensor:
    """Biased estimate of MMD^2 between two samples (N, F) and (M, F) under
    k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2))."""
    both = torch.cat([real, fake])
    d2 = torch.cdist(both, both).pow(2)  # (N + M, N + M)
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in bandwidths)
    n = real.shape[0]
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


class WordGANCriterion(AlternatingGANCriterion):
    """Subclasses give `divergence_losses(real, real_padding, fake, fake_padding, d_step)`: the
    named loss terms of a discriminator or a generator step."""

    def __init__(self, cfg: JSDGANConfig, task, out_dim: int):
        super().__init__(task)
        if cfg.max_skip < 0:
            raise ValueError(f"criterion.max_skip must be >= 0, got {cfg.max_skip}")
        self.cfg = cfg
        sign = task.target_dictionary
        self.first_unit, self.num_units = sign.nspecial, len(sign) - sign.nspecial
        self.discriminator = UnitSequenceDiscriminator(self.num_units, depth=0, kernel=cfg.max_skip + 1, out_dim=out_dim)
        self.mark_discriminator(self.discriminator)

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        fake_padding = net_output["padding_mask"]
        fake = model.get_normalized_probs(net_output, log_probs=False)[..., self.first_unit :].float()  # (B, T, V)
        real_padding = sample["sign_padding_mask"]
        real = one_hot_units(sample["sign_tokens"], real_padding, self.first_unit, self.num_units)
        d_step = self.discriminator_step()
        terms = self.divergence_losses(real, real_padding, fake, fake_padding, d_step)
        loss = sum(terms.values())
        if d_step and self.cfg.gradient_penalty > 0:
            # one norm per sentence (the word-level baselines were measured with it), averaged over sentences
            terms["grad_pen"] = gradient_penalty(self.discriminator, real, fake, norm="sentence") / min(len(real), len(fake))
            loss = loss + self.cfg.gradient_penalty * terms["grad_pen"]
        if not d_step and self.cfg.code_diversity_weight > 0:
            terms["code_pen"] = code_diversity_penalty(fake, fake_padding)
            loss = loss + self.cfg.code_diversity_weight * terms["code_pen"]
        logs = {k: v.item() for k, v in terms.items()}
        logs.update(
            loss=loss.item(),
            code_perplexity=perplexity(fake[~fake_padding].mean(0)).item(),
            ntokens=sample["ntokens"],
            nsentences=sample["nsentences"],
            sample_size=1,
        )
        return loss, 1, self.adversarial_logging(logs, d_step, 1)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


@register_criterion("jsd_gan", dataclass=JSDGANConfig)
class JSDGANCriterion(WordGANCriterion):
    def __init__(self, cfg: JSDGANConfig, task):
        super().__init__(cfg, task, out_dim=1)

    def divergence_losses(self, real, real_padding, fake, fake_padding, d_step):
        fake_score = self.discriminator(fake, fake_padding)  # (B,)
        if not d_step:
            return {"loss_g": F.binary_cross_entropy_with_logits(fake_score, torch.ones_like(fake_score))}
        real_score = self.discriminator(real, real_padding)
        return {
            "loss_d_real": F.binary_cross_entropy_with_logits(real_score, torch.ones_like(real_score)),
            "loss_d_fake": F.binary_cross_entropy_with_logits(fake_score, torch.zeros_like(fake_score)),
        }

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        cls.reduce_adversarial_metrics(
            logging_outputs, ("loss_d_real", "loss_d_fake", "grad_pen"), ("loss_g", "code_pen"), ("code_perplexity",)
        )


@register_criterion("mmd_gan", dataclass=MMDGANConfig)
class MMDGANCriterion(WordGANCriterion):
    def __init__(self, cfg: MMDGANConfig, task):
        super().__init__(cfg, task, out_dim=cfg.feature_dim)

    def divergence_losses(self, real, real_padding, fake, fake_padding, d_step):
        mmd2 = squared_mmd(self.discriminator(real, real_padding), self.discriminator(fake, fake_padding), self.cfg.kernel_bandwidths)
        return {"mmd_d": -mmd2} if d_step else {"mmd_g": mmd2}

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        cls.reduce_adversarial_metrics(logging_outputs, ("mmd_d", "grad_pen"), ("mmd_g", "code_pen"), ("code_perplexity",))
