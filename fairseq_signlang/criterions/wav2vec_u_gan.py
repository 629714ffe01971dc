"""Character-level speech2sign-U objective (eq. 6): wav2vec-U's GAN between generated and real sign-unit
sequences, with gradient penalty, smoothness penalty and code-diversity loss.

Discriminator steps: -log D(real) - log(1 - D(G(X))) + lambda * L_gp.
Generator steps:     -log D(G(X)) + gamma * L_sp + eta * L_cd (the non-saturating generator loss).
Each term is a sum over the batch's sentences (the penalties are per-sentence means times the
number of sentences), and fairseq divides the gradient by that number (sample_size).
"""
from dataclasses import dataclass, field

import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from fairseq_signlang.models.speech2sign_u.unit_discriminator import UnitSequenceDiscriminator
from fairseq_signlang.criterions.adversarial import (
    GRADIENT_PENALTY_NORMS,
    AlternatingGANCriterion,
    code_diversity_penalty,
    gradient_penalty,
    one_hot_units,
    smoothness_penalty,
)
from fairseq_signlang.criterions.distribution_matching import perplexity


@dataclass
class Wav2vecUGANConfig(FairseqDataclass):
    gradient_penalty: float = field(default=1.5, metadata={"help": "lambda: weight of the gradient penalty (wav2vec-U: 1.5)"})
    smoothness_weight: float = field(default=0.5, metadata={"help": "gamma: weight of the smoothness penalty (wav2vec-U: 0.5)"})
    code_penalty: float = field(default=4.0, metadata={"help": "eta: weight of the code-diversity loss (wav2vec-U: 4)"})
    discriminator_dim: int = field(default=384, metadata={"help": "width of the discriminator's hidden convolutions (wav2vec-U: 384)"})
    discriminator_depth: int = field(
        default=2, metadata={"help": "hidden causal convolutions before the scoring one; 0 is a single convolution (wav2vec-U: 2)"}
    )
    discriminator_kernel: int = field(default=6, metadata={"help": "causal convolution width, in units (wav2vec-U: 6)"})
    discriminator_dropout: float = field(default=0.0, metadata={"help": "dropout after each hidden convolution"})
    discriminator_act_after_first: bool = field(
        default=False,
        metadata={"help": "GELU after the first (embedding) convolution too (wav2vec-U: no, its discriminator_act_after_linear; "
                  "this project's discriminator before issue 14 had it)"},
    )
    gradient_penalty_norm: ChoiceEnum(list(GRADIENT_PENALTY_NORMS)) = field(
        default="per_unit",
        metadata={"help": "per_unit: wav2vec-U's penalty, the gradient's norm over time per unit and sentence, summed; "
                  "sentence: one norm per sentence over all of it (weaker; this project's before issue 14)"},
    )
    fake_units: ChoiceEnum(["soft", "hard", "gumbel"]) = field(
        default="soft",
        metadata={"help": "what the discriminator sees of the generator: posteriors (wav2vec-U), their argmax one-hot or "
                  "hard Gumbel-softmax samples, both with straight-through gradients"},
    )
    gumbel_temperature: float = field(default=1.0, metadata={"help": "temperature of the Gumbel-softmax samples (fake_units=gumbel)"})


@register_criterion("wav2vec_u_gan", dataclass=Wav2vecUGANConfig)
class Wav2vecUGANCriterion(AlternatingGANCriterion):
    def __init__(self, cfg: Wav2vecUGANConfig, task):
        super().__init__(task)
        self.cfg = cfg
        sign = task.target_dictionary
        self.first_unit, self.num_units = sign.nspecial, len(sign) - sign.nspecial
        self.discriminator = UnitSequenceDiscriminator(
            self.num_units, cfg.discriminator_dim, cfg.discriminator_depth, cfg.discriminator_kernel, cfg.discriminator_dropout,
            act_after_first=cfg.discriminator_act_after_first,
        )
        self.mark_discriminator(self.discriminator)

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        logits, fake_padding = net_output["logits"], net_output["padding_mask"]  # (B, S, V), (B, S)
        fake = logits.float().softmax(-1)
        B = logits.shape[0]
        fake_score = self.discriminator(self.discriminator_input(logits.float(), fake), fake_padding)  # (B,)
        d_step = self.discriminator_step()
        logs = {"ntokens": sample["ntokens"], "nsentences": sample["nsentences"], "sample_size": B}
        if d_step:
            real = one_hot_units(sample["sign_tokens"], sample["sign_padding_mask"], self.first_unit, self.num_units)
            real_score = self.discriminator(real, sample["sign_padding_mask"])
            loss_real = F.binary_cross_entropy_with_logits(real_score, real_score.new_ones(real_score.shape), reduction="sum")
            loss_fake = F.binary_cross_entropy_with_logits(fake_score, fake_score.new_zeros(fake_score.shape), reduction="sum")
            loss = loss_real + loss_fake
            logs.update(loss_d_real=loss_real.item(), loss_d_fake=loss_fake.item())
            if self.cfg.gradient_penalty > 0:
                gp = gradient_penalty(self.discriminator, real, fake, norm=str(self.cfg.gradient_penalty_norm))
                loss = loss + self.cfg.gradient_penalty * gp
                logs["grad_pen"] = gp.item()
        else:
            loss_g = F.binary_cross_entropy_with_logits(fake_score, fake_score.new_ones(fake_score.shape), reduction="sum")
            smooth = smoothness_penalty(logits.float(), fake_padding) * B
            code = code_diversity_penalty(fake, fake_padding) * B
            loss = loss_g + self.cfg.smoothness_weight * smooth + self.cfg.code_penalty * code
            logs.update(loss_g=loss_g.item(), smoothness=smooth.item(), code_pen=code.item())
        logs["loss"] = loss.item()
        logs["code_perplexity"] = perplexity(fake[~fake_padding].mean(0)).item()
        logs["segments_per_sentence"] = (~fake_padding).sum().item() / max(B, 1)
        return loss, B, self.adversarial_logging(logs, d_step, B)

    def discriminator_input(self, logits, probs):
        """What the discriminator sees of the generator: its posteriors, or (hard) one-hot samples
        that carry the posteriors' gradient (straight-through Gumbel-softmax), so that it cannot
        tell generated from real sentences by their softness alone."""
        if self.cfg.fake_units == "soft":
            return probs
        if self.cfg.fake_units == "hard" or not self.training:
            best = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
            return best + probs - probs.detach()
        return F.gumbel_softmax(logits, tau=self.cfg.gumbel_temperature, hard=True)

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        cls.reduce_adversarial_metrics(
            logging_outputs,
            d_keys=("loss_d_real", "loss_d_fake", "grad_pen"),
            g_keys=("loss_g", "smoothness", "code_pen"),
            other_keys=("code_perplexity", "segments_per_sentence"),
        )

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
