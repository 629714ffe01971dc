"""Word-level speech2sign-U generator (eq. 7): one linear map, no bias, softmax over sign units.

Speech words come either as unit ids (one-hot input, so G(.|x) is the softmax of W's column
x) or as continuous pooled features. Output classes that are not sign units (the dictionary's
special symbols) are masked out, so G(y|x) sums to one over real sign units only.
"""
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from fairseq_signlang.models.speech2sign_u.hmm import scaled_emissions, token_emissions
from fairseq_signlang.models.weights_fit import ExplainsWeightMismatch


class LinearGenerator(nn.Module):
    def __init__(self, input_dim: int, num_outputs: int, invalid_outputs: Optional[torch.Tensor] = None):
        super().__init__()
        self.proj = nn.Linear(input_dim, num_outputs, bias=False)
        mask = torch.zeros(num_outputs, dtype=torch.bool)
        if invalid_outputs is not None:
            mask[invalid_outputs] = True
        self.register_buffer("invalid_outputs", mask, persistent=False)

    def _masked(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.masked_fill(self.invalid_outputs, float("-inf"))

    def logits_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T, input_dim) -> logits (B, T, num_outputs)."""
        return self._masked(self.proj(feats))

    def unit_posteriors(self) -> torch.Tensor:
        """G as a matrix: (input_dim, num_outputs), row x is G(.|x) for speech unit x."""
        return self._masked(self.proj.weight.t()).softmax(dim=-1)

    @torch.no_grad()
    def set_unit_posteriors(self, G: torch.Tensor) -> None:
        """Make unit_posteriors() equal G (input_dim, num_outputs): decipherment's closed-form M-step."""
        self.proj.weight.copy_(G.clamp(min=1e-30).log().t())


@dataclass
class Speech2SignUWordModelConfig(FairseqDataclass):
    init_std: float = field(
        default=0.0,
        metadata={"help": "std of a normal init of the generator weights; 0 keeps PyTorch's default (uniform, about uniform G)"},
    )


@register_model("speech2sign_u_word", dataclass=Speech2SignUWordModelConfig)
class Speech2SignUWordModel(ExplainsWeightMismatch, BaseFairseqModel):
    def __init__(self, cfg: Speech2SignUWordModelConfig, input_dim: int, num_outputs: int, invalid_outputs, discrete_input: bool):
        super().__init__()
        self.cfg = cfg
        self.discrete_input = discrete_input
        self.generator = LinearGenerator(input_dim, num_outputs, invalid_outputs)
        if cfg.init_std > 0:
            nn.init.normal_(self.generator.proj.weight, std=cfg.init_std)

    @classmethod
    def build_model(cls, cfg: Speech2SignUWordModelConfig, task):
        tgt = task.target_dictionary
        invalid = torch.arange(tgt.nspecial)
        return cls(cfg, task.speech_input_dim, len(tgt), invalid, task.discrete_speech)

    def forward(self, padding_mask, src_tokens=None, src_feats=None, **kwargs):
        """Unit input: the posterior matrix G (|X|, |Y|) and the units, from which the criterion
        takes count statistics and get_normalized_probs per-token posteriors, so no (B, T, |Y|)
        tensor is built during training. Feature input: logits (B, T, |Y|)."""
        if self.discrete_input:
            out = {"unit_posteriors": self.generator.unit_posteriors(), "units": src_tokens}
        else:
            out = {"logits": self.generator.logits_from_features(src_feats)}
        out["padding_mask"] = padding_mask
        return out

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None):
        """Per-token posteriors G(y | x_t): (B, T, |Y|)."""
        if "logits" in net_output:
            logits = net_output["logits"].float()
            return logits.log_softmax(-1) if log_probs else logits.softmax(-1)
        probs = net_output["unit_posteriors"][net_output["units"]]
        return probs.clamp(min=1e-30).log() if log_probs else probs


def decode_units(model, net_output, chain=None, unit_frequency=None) -> torch.Tensor:
    """The recognised unit of each speech position, (B, T): its most probable one, or with a sign
    chain the Viterbi path under the sign n-gram with G(y|x)/p(y) as emissions."""
    if chain is None:
        return model.get_normalized_probs(net_output, log_probs=False).argmax(-1)
    G, prior = scaled_emissions(model, net_output, unit_frequency)
    lengths = (~net_output["padding_mask"]).sum(1)
    return chain.to(G.device).best_units(token_emissions(G, prior, net_output), lengths).clamp(min=0)


class WordUnitDecoder:
    """Inference for fairseq-generate: one sign unit per speech word, the most probable one (or
    the Viterbi path under the sign n-gram, given its chain). Returns fairseq's hypothesis format
    (one hypothesis per sentence)."""

    symbols_to_strip_from_output = frozenset()  # outputs never hold special symbols (masked out)

    def __init__(self, chain=None, unit_frequency=None):
        self.chain, self.unit_frequency = chain, unit_frequency

    @torch.no_grad()
    def generate(self, models, sample, **kwargs):
        model = models[0]
        net_output = model(**sample["net_input"])
        lprobs = model.get_normalized_probs(net_output, log_probs=True)
        units = decode_units(model, net_output, self.chain, self.unit_frequency)
        scores = lprobs.gather(-1, units[..., None])[..., 0]
        valid = ~net_output["padding_mask"]
        return [
            [{"tokens": u[v], "score": s[v].mean(), "positional_scores": s[v], "alignment": None}]
            for u, s, v in zip(units, scores, valid)
        ]
