"""Criteria of USLNet's video stages: `uslnet_vqvae` (eq. 2-4) and `uslnet_video_gpt` (eq. 5).

Frames are in [-0.5, 0.5], so PSNR is 10 log10(1 / MSE).
"""
import math
from dataclasses import dataclass, field

import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from fairseq_signlang.criterions.log_sums import log_totals


def psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@dataclass
class VQVAECriterionConfig(FairseqDataclass):
    commitment_weight: float = field(default=0.25, metadata={"help": "weight of the commitment loss ||E(v) - sg(e)||^2"})


@register_criterion("uslnet_vqvae", dataclass=VQVAECriterionConfig)
class VQVAECriterion(FairseqCriterion):
    """Reconstruction MSE plus commitment; the codebook itself learns by moving averages."""

    def __init__(self, task, commitment_weight: float):
        super().__init__(task)
        self.commitment_weight = commitment_weight

    def forward(self, model, sample, reduce=True):
        video = sample["net_input"]["video"]
        out = model(video)
        recon_mse = F.mse_loss(out["recon"], video)
        loss = recon_mse + self.commitment_weight * out["commitment_loss"]
        # per-batch means: sample_size 1 makes fairseq average them over batches and workers
        return loss, 1, {
            "loss": loss.item(),
            "recon_mse": recon_mse.item(),
            "commitment": out["commitment_loss"].item(),
            "perplexity": out["perplexity"].item(),
            "restarts": int(out["restarts"]),
            "nsentences": video.size(0),
            "ntokens": video.size(0) * video.size(2),
            "sample_size": 1,
        }

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        batches = sum(log.get("sample_size", 0) for log in logging_outputs)
        for key in ("loss", "recon_mse", "commitment", "perplexity"):
            metrics.log_scalar(key, sum(log.get(key, 0) for log in logging_outputs) / max(batches, 1), batches, round=5)
        metrics.log_scalar_sum("restarts", sum(log.get("restarts", 0) for log in logging_outputs), round=0)
        metrics.log_derived("psnr", lambda meters: round(psnr(meters["recon_mse"].avg), 3))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


@dataclass
class VideoGPTCriterionConfig(FairseqDataclass):
    frame_loss_weight: float = field(
        default=0.0,
        metadata={"help": "weight of eq. 5, the MSE between the input frames and frames decoded from the GPT's predicted "
                          "codes (expected code vectors, so the loss reaches the GPT); 0 = next-code cross-entropy only"},
    )


@register_criterion("uslnet_video_gpt", dataclass=VideoGPTCriterionConfig)
class VideoGPTCriterion(FairseqCriterion):
    """Next-code cross-entropy over the flattened code grid, plus eq. 5 when weighted."""

    def __init__(self, task, frame_loss_weight: float):
        super().__init__(task)
        self.frame_loss_weight = frame_loss_weight

    def forward(self, model, sample, reduce=True):
        video = sample["net_input"]["video"]
        out = model(video)
        logits, codes = out["logits"], out["codes"].flatten(1)  # (B, L, K), (B, L)
        n_codes = codes.numel()
        nll = F.cross_entropy(logits.flatten(0, 1), codes.flatten(), reduction="sum")
        loss, log = nll, {"nll_loss": nll.item()}
        if self.frame_loss_weight > 0:
            frame_mse = F.mse_loss(model.expected_frames(logits), video)
            loss = loss + self.frame_loss_weight * frame_mse * n_codes
            log["frame_mse"] = frame_mse.item() * n_codes
        log.update(loss=loss.item(), ntokens=n_codes, nsentences=video.size(0), sample_size=n_codes,
                   accuracy=(logits.argmax(-1) == codes).sum().item())
        return loss, n_codes, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = log_totals(logging_outputs)
        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1) / math.log(2), n, round=4)
        metrics.log_scalar("nll_loss", total("nll_loss") / max(n, 1) / math.log(2), n, round=4)
        metrics.log_scalar("code_accuracy", 100 * total("accuracy") / max(n, 1), n, round=2)
        if any("frame_mse" in log for log in logging_outputs):
            metrics.log_scalar("frame_mse", total("frame_mse") / max(n, 1), n, round=5)
        metrics.log_derived("ppl", lambda meters: round(2 ** meters["nll_loss"].avg, 3))

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
