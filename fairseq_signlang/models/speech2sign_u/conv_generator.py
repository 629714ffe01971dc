"""Character-level speech2sign-U generator (eq. 5): a convolution over segment-level speech features
gives, at each segment, a distribution over sign units; wav2vec-U's JOIN segmentation then merges
runs of segments that predict the same unit.

The generator scores real sign units only (no special symbols), so its logits stay finite for
the smoothness penalty; get_normalized_probs puts the dictionary's special symbols back, with
probability 0, for evaluation and fairseq-generate.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model

from fairseq_signlang.models.speech2sign_u.linear_generator import WordUnitDecoder
from fairseq_signlang.models.weights_fit import ExplainsWeightMismatch


def join_segments(logits: torch.Tensor, padding_mask: torch.Tensor, pick_random: bool):
    """Merge each run of consecutive positions with the same most probable unit into one segment.
    Training picks one random member of each run (wav2vec-U), evaluation averages the run's
    logits. logits (B, T, V), padding_mask (B, T) -> (B, S, V), (B, S), S = most runs in a row."""
    B, T, V = logits.shape
    valid = ~padding_mask
    pred = logits.detach().argmax(-1).masked_fill(padding_mask, -1)  # (B, T)
    starts = valid.clone()
    starts[:, 1:] &= pred[:, 1:] != pred[:, :-1]
    runs = starts.sum(1)  # (B,)
    S = int(runs.max()) if B else 0
    seg = (starts.long().cumsum(1) - 1).clamp(min=0).masked_fill(padding_mask, S)  # (B, T); padding -> spare slot S
    counts = torch.zeros(B, S + 1, device=logits.device).scatter_add_(1, seg, valid.float())[:, :S]  # (B, S)
    if pick_random:
        pos = torch.arange(T, device=logits.device).expand(B, T)
        first = torch.full((B, S + 1), T, device=logits.device).scatter_reduce_(1, seg, pos, "amin")[:, :S]  # (B, S)
        pick = (first + (torch.rand(B, S, device=logits.device) * counts).long()).clamp(max=T - 1)  # empty slots: any
        joined = logits.gather(1, pick[..., None].expand(B, S, V))  # (B, S, V)
    else:
        sums = logits.new_zeros(B, S + 1, V).scatter_add_(1, seg[..., None].expand(B, T, V), logits * valid[..., None])
        joined = sums[:, :S] / counts.clamp(min=1)[..., None].to(logits.dtype)
    new_padding = torch.arange(S, device=logits.device)[None] >= runs[:, None]
    return joined.masked_fill(new_padding[..., None], 0.0), new_padding


class ConvGenerator(nn.Module):
    """Conv1d from speech features to sign-unit logits, one output per input segment."""

    def __init__(self, input_dim: int, num_units: int, kernel: int, dropout: float, bias: bool):
        super().__init__()
        self.pad = ((kernel - 1) // 2, kernel // 2)  # output length = input length, for any kernel
        self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv1d(input_dim, num_units, kernel, bias=bias)

    def forward(self, feats: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(feats.masked_fill(padding_mask[..., None], 0.0)).transpose(1, 2)  # (B, D, T)
        return self.conv(F.pad(x, self.pad)).transpose(1, 2)  # (B, T, V)


@dataclass
class Speech2SignUCharModelConfig(FairseqDataclass):
    generator_kernel: int = field(default=4, metadata={"help": "convolution width over speech segments (wav2vec-U: 4)"})
    generator_dropout: float = field(default=0.1, metadata={"help": "dropout on the speech features (wav2vec-U: 0.1)"})
    generator_bias: bool = field(default=False, metadata={"help": "a bias in the generator convolution (wav2vec-U: none)"})
    segmentation: ChoiceEnum(["none", "join"]) = field(
        default="join",
        metadata={"help": "join: merge consecutive segments that predict the same unit (wav2vec-U's JOIN); none: keep every segment"},
    )


@register_model("speech2sign_u_char", dataclass=Speech2SignUCharModelConfig)
class Speech2SignUCharModel(ExplainsWeightMismatch, BaseFairseqModel):
    def __init__(self, cfg: Speech2SignUCharModelConfig, input_dim: int, num_units: int, num_specials: int):
        super().__init__()
        if cfg.generator_kernel < 1:
            raise ValueError(f"model.generator_kernel must be >= 1, got {cfg.generator_kernel}")
        self.cfg = cfg
        self.num_specials = num_specials
        self.generator = ConvGenerator(input_dim, num_units, cfg.generator_kernel, cfg.generator_dropout, cfg.generator_bias)

    @classmethod
    def build_model(cls, cfg: Speech2SignUCharModelConfig, task):
        tgt = task.target_dictionary
        return cls(cfg, task.speech_input_dim, len(tgt) - tgt.nspecial, tgt.nspecial)

    def forward(self, src_feats, padding_mask, **kwargs):
        """src_feats (B, T, D) speech segments -> logits (B, S, units) over sign units, with the
        padding mask of the (joined) segments."""
        logits = self.generator(src_feats, padding_mask)
        if self.cfg.segmentation == "join":
            logits, padding_mask = join_segments(logits, padding_mask, pick_random=self.training)
        return {"logits": logits, "padding_mask": padding_mask}

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None):
        """(B, S, |dictionary|): the special symbols come back with probability 0."""
        logits = F.pad(net_output["logits"].float(), (self.num_specials, 0), value=float("-inf"))
        return logits.log_softmax(-1) if log_probs else logits.softmax(-1)


class JoinedUnitDecoder(WordUnitDecoder):
    """fairseq-generate for the character level: the most probable unit of each segment, with
    repeats of the same unit merged (what remains after JOIN, and the units UER counts)."""

    @torch.no_grad()
    def generate(self, models, sample, **kwargs):
        hyps = super().generate(models, sample, **kwargs)
        for (hyp,) in hyps:
            units, counts = hyp["tokens"].unique_consecutive(return_counts=True)
            first = counts.cumsum(0) - counts
            hyp["tokens"], hyp["positional_scores"] = units, hyp["positional_scores"][first]
            hyp["score"] = hyp["positional_scores"].mean()
        return hyps
