"""USLNet's joint objective (eq. 13) and its supervised counterpart.

Unsupervised batches (text and video unpaired):
  L = a1 L_text (MASS, eq. 1) + a2 L_codebook (eq. 4, with reconstruction) + a3 L_video (next-code
      cross-entropy, plus eq. 5 when frame_loss_weight > 0) + a4 L_T2V2T (eq. 11) + a5 L_V2T2V (eq. 12)
Back-translation makes its pseudo data on line with the model in eval mode and no gradient
(text -> GPT-sampled codes; video -> greedy text), then trains the way back to the original,
as unsupervised NMT does. Eq. 11 and 12 are written as squared errors in the paper; over
discrete text and codes they are the cross-entropy of the original given the pseudo data.

With task.joint_mode=pseudo_parallel each unpaired batch's clips also carry pseudo translations,
and the supervised terms below are added on them (alpha_pseudo).

Supervised batches (clips with their text): video -> text cross-entropy plus text -> video
next-code cross-entropy. Validation batches are paired: the video -> text loss is logged as
`translation_nll` (bits per token) with its token `accuracy`; it reads the clips' text, so it
is reported, not used to choose. What the configs choose by is `round_trip_nll`: each valid
sentence alone, text -> GPT-sampled codes -> text, the label-free round trip that unsupervised
NMT selects its models by (Lample et al. 2018).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from fairseq_signlang.criterions.log_sums import log_totals
from fairseq_signlang.models.eval_mode import eval_mode

TERMS = ("text", "codebook", "video", "t2v2t", "v2t2v", "pseudo_v2t", "pseudo_t2v", "sup_v2t", "sup_t2v")
MEANS = ("recon_mse", "perplexity", "pseudo_text_len")  # logged as the mean over the batches that have them


@dataclass
class UslnetJointCriterionConfig(FairseqDataclass):
    alpha_text: float = field(default=1.0, metadata={"help": "a1: MASS text reconstruction (eq. 1)"})
    alpha_codebook: float = field(default=1.0, metadata={"help": "a2: VQ-VAE reconstruction + commitment (eq. 2-4)"})
    alpha_video: float = field(default=1.0, metadata={"help": "a3: GPT video reconstruction (eq. 5)"})
    alpha_t2v2t: float = field(default=1.0, metadata={"help": "a4: text-video-text back-translation (eq. 11)"})
    alpha_v2t2v: float = field(default=1.0, metadata={"help": "a5: video-text-video back-translation (eq. 12)"})
    commitment_weight: float = field(default=0.25, metadata={"help": "commitment loss weight inside L_codebook"})
    frame_loss_weight: float = field(default=0.0, metadata={"help": "weight of the decoded-frame MSE inside L_video (eq. 5)"})
    bt_temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the GPT's pseudo videos"})
    bt_max_len_ratio: float = field(default=1.5, metadata={"help": "pseudo text is at most this times the clip's memory length"})
    valid_round_trip: bool = field(
        default=True,
        metadata={"help": "validation also scores the text -> video -> text round trip of the valid sentences alone "
                          "(round_trip_nll, bits per token; the GPT's codes drawn with a fixed seed, so checkpoints "
                          "compare on the same draws): needs no clip's text, so the configs choose checkpoints by it"})
    alpha_pseudo: float = field(
        default=1.0, metadata={"help": "task.joint_mode=pseudo_parallel: weight of the video -> text and text -> video "
                                       "cross-entropy on each clip's pseudo translation, added to eq. 13"})


def token_nll(logits, target, pad):
    """Mean cross-entropy over non-pad targets, and (correct, count) for accuracy."""
    nll = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad, reduction="sum")
    real = target.ne(pad)
    count = int(real.sum())
    correct = int((logits.argmax(-1).eq(target) & real).sum())
    return nll / max(count, 1), correct, count


def code_nll(logits, codes):
    return F.cross_entropy(logits.flatten(0, 1), codes.flatten())


@register_criterion("uslnet_joint", dataclass=UslnetJointCriterionConfig)
class UslnetJointCriterion(FairseqCriterion):
    def __init__(self, task, alpha_text, alpha_codebook, alpha_video, alpha_t2v2t, alpha_v2t2v, commitment_weight,
                 frame_loss_weight, bt_temperature, bt_max_len_ratio, valid_round_trip=True, alpha_pseudo=1.0):
        super().__init__(task)
        self.alpha_pseudo, self.valid_round_trip = alpha_pseudo, valid_round_trip
        self.alphas = {"text": alpha_text, "codebook": alpha_codebook, "video": alpha_video, "t2v2t": alpha_t2v2t, "v2t2v": alpha_v2t2v}
        self.commitment_weight, self.frame_loss_weight = commitment_weight, frame_loss_weight
        self.bt_temperature, self.bt_max_len_ratio = bt_temperature, bt_max_len_ratio

    def forward(self, model, sample, reduce=True):
        if "text" in sample:
            terms, log = self.unsupervised(model, sample)
        else:
            terms, log = self.supervised(model, sample)
        loss = sum(terms.values())
        log.update({k: v.item() for k, v in terms.items()}, loss=loss.item(), nsentences=sample["nsentences"],
                   ntokens=sample["ntokens"], sample_size=1, batches=1)
        # a count beside each mean, so that logs of batches and of distributed workers add up
        log.update({f"{k}_n": 1 for k in (*TERMS, *MEANS) if k in log})
        return loss, 1, log

    # ---- unsupervised (eq. 13) -----------------------------------------------------------

    def unsupervised(self, model, sample):
        pad = self.padding_idx
        terms, log = {}, {}
        video, durations = sample["video"]["net_input"]["source"], sample["video"]["net_input"]["durations"]
        tokens, lengths = sample["sentences"]["tokens"], sample["sentences"]["lengths"]
        if self.alphas["text"]:
            mass = sample["text"]["net_input"]
            enc = model.encode_text(mass["src_tokens"], mass["src_lengths"])
            logits, _ = model.decode_text(mass["prev_output_tokens"], enc, mass["fragment_positions"])
            nll, correct, count = token_nll(logits, sample["text"]["target"], pad)
            terms["text"] = self.alphas["text"] * nll
            log.update(mass_correct=correct, mass_count=count)
        if self.alphas["codebook"]:
            vq = model.video.vqvae(video)
            recon = F.mse_loss(vq["recon"], video)
            terms["codebook"] = self.alphas["codebook"] * (recon + self.commitment_weight * vq["commitment_loss"])
            log.update(recon_mse=recon.item(), perplexity=vq["perplexity"].item())
            codes = vq["codes"].detach()  # (B, t, h, w), quantised before this step's codebook update
        else:
            with torch.no_grad():
                codes = model.video.vqvae.encode(video)
        if self.alphas["video"]:
            logits = model.video.gpt(codes)
            loss = code_nll(logits, codes)
            if self.frame_loss_weight > 0:
                loss = loss + self.frame_loss_weight * F.mse_loss(model.video.expected_frames(logits), video)
            terms["video"] = self.alphas["video"] * loss
        if self.alphas["t2v2t"]:
            nll, correct, count = self.text_video_text(model, tokens, lengths, sample["sentences"]["prev_output_tokens"])
            terms["t2v2t"] = self.alphas["t2v2t"] * nll
            log.update(t2v2t_correct=correct, t2v2t_count=count)
        if self.alphas["v2t2v"]:
            with torch.no_grad(), eval_mode(model):
                memory = model.encoder.forward_codes(codes, durations)
                max_len = int(math.ceil(self.bt_max_len_ratio * int(memory["src_lengths"][0].max())))
                pseudo, pseudo_lengths = model.greedy_translate(memory, max_len)
            cond = model.text_to_cond(model.encode_text(pseudo, pseudo_lengths), pseudo_lengths)
            terms["v2t2v"] = self.alphas["v2t2v"] * code_nll(model.video.gpt(codes, cond=cond), codes)
            log.update(pseudo_text_len=float(pseudo_lengths.float().mean()))
        if "target" in sample["video"] and self.alpha_pseudo:
            terms.update(self.pseudo_parallel(model, sample["video"], log))
        return terms, log

    def pseudo_parallel(self, model, clips, log) -> dict:
        """The supervised terms on clips paired with pseudo translations (a lexicon's word-by-word
        ones, or an earlier model's), as unsupervised NMT starts from word-by-word translation."""
        terms, sup_log = self.supervised(model, clips)
        log.update(pseudo_correct=sup_log["translation_correct"], pseudo_count=sup_log["translation_count"])
        return {f"pseudo_{k[len('sup_'):]}": self.alpha_pseudo * v for k, v in terms.items()}

    # ---- supervised and validation -------------------------------------------------------

    def supervised(self, model, sample):
        net_input, target = sample["net_input"], sample["target"]
        with torch.no_grad():
            codes = model.video.vqvae.encode(net_input["source"])  # (B, t, h, w), shared by both directions
        memory = model.encoder.forward_codes(codes, net_input["durations"])
        logits, _ = model.decoder(net_input["prev_output_tokens"], encoder_out=memory)  # as model(**net_input)
        nll, correct, count = token_nll(logits, target, self.padding_idx)
        terms = {"sup_v2t": nll}
        log = {"translation_nll_sum": nll.item() * count, "translation_correct": correct, "translation_count": count}
        if model.training:
            lengths = target.ne(self.padding_idx).sum(1)
            cond = model.text_to_cond(model.encode_text(target, lengths), lengths)
            terms["sup_t2v"] = code_nll(model.video.gpt(codes, cond=cond), codes)
        elif self.valid_round_trip:
            log.update(self.round_trip(model, target, net_input["prev_output_tokens"]))
        return terms, log

    def text_video_text(self, model, tokens, lengths, prev_output_tokens, draws=None):
        """Sentences -> GPT-sampled sign codes (no gradient) -> the same sentences: eq. 11's
        cross-entropy, (nll, correct, count)."""
        with torch.no_grad(), eval_mode(model):
            codes = model.generate_codes(tokens, lengths, temperature=self.bt_temperature, generator=draws)  # (B, t, h, w)
        memory = model.encoder.forward_codes(codes, model.pseudo_durations(lengths))
        logits, _ = model.decode_text(prev_output_tokens, memory)
        return token_nll(logits, tokens, self.padding_idx)

    @torch.no_grad()
    def round_trip(self, model, tokens, prev_output_tokens) -> dict:
        """Eq. 11 on held-out sentences, the codes drawn with a fixed seed: how much of each
        sentence survives the way through video. Reads no clip, so it can choose checkpoints
        where the clips have no text."""
        draws = torch.Generator(device=tokens.device).manual_seed(0)
        nll, correct, count = self.text_video_text(model, tokens, tokens.ne(self.padding_idx).sum(1), prev_output_tokens, draws)
        return {"round_trip_nll_sum": nll.item() * count, "round_trip_correct": correct, "round_trip_count": count}

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = log_totals(logging_outputs)
        batches = total("batches")
        metrics.log_scalar("loss", total("loss") / max(batches, 1), batches, round=4)
        for term in TERMS:
            n = total(f"{term}_n")
            if n:
                metrics.log_scalar(f"loss_{term}", total(term) / n, n, round=4)
        for name in ("mass", "t2v2t", "pseudo", "translation", "round_trip"):
            count = total(f"{name}_count")
            if count:
                metrics.log_scalar(f"{name}_accuracy", 100 * total(f"{name}_correct") / count, count, round=2)
        for name in ("translation", "round_trip"):
            count = total(f"{name}_count")
            if count:
                metrics.log_scalar(f"{name}_nll", total(f"{name}_nll_sum") / count / math.log(2), count, round=4)
        for key in MEANS:
            n = total(f"{key}_n")
            if n:
                metrics.log_scalar(key, total(key) / n, n, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
