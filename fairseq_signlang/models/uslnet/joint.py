"""USLNet, joined: the MASS text model, the VQ-VAE + GPT video model and the sliding-window
aligner (sec. 2.3-2.4). Model `uslnet`, trained by stage `joint` of task uslnet.

As a fairseq encoder-decoder it translates sign video into text: its encoder is the video
encoder (VQ-VAE encoder and codebook, eq. 2-3) followed by the aligner's video-to-text mapping
(eq. 7), and its decoder is the MASS text decoder, so fairseq-generate's SequenceGenerator drives
it unchanged. The other direction (text -> video) is `generate_codes`: text encoder, aligner
(eq. 6), GPT sampling conditioned position-wise, VQ-VAE decoder.

The number of text memory positions the aligner makes from a clip is `round(duration *
tokens_per_second)`, a rate the task measures on the unpaired corpora (mean sentence length over
mean clip duration) when the model is first built, so a clip of a long sentence gets more
positions; a pseudo clip made from an m-token sentence is given duration m / tokens_per_second,
so it maps back to m positions. The clip geometry is the video stage's (`model.geometry`).

The text and video stages' configs are copied into `text_args` / `video_args` when the model is
first built (as fairseq's wav2vec 2.0 fine-tuning keeps `w2v_args`), so a joint checkpoint
reloads without the stage checkpoints.
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import FairseqEncoder, FairseqEncoderDecoderModel, register_model
from omegaconf import open_dict

from fairseq_signlang.models.eval_mode import eval_mode
from fairseq_signlang.models.uslnet.mass_transformer import FragmentPositions, UslnetTextModel
from fairseq_signlang.models.uslnet.sliding_window_aligner import CONNECTIONS, DEFAULT_SHARPNESS, SlidingWindowAligner
from fairseq_signlang.models.uslnet.video import UslnetVideoGPTModel, adopt_stage_config, fill_legacy_geometry, load_stage_state
from fairseq_signlang.models.weights_fit import ExplainsWeightMismatch

logger = logging.getLogger(__name__)

# aligner settings the weights of a joint checkpoint fix (model.init_checkpoint replaces them)
ARCHITECTURE = ("connection", "sharpness", "position_dim", "max_text_len")


@dataclass
class UslnetModelConfig(FairseqDataclass):
    text_checkpoint: str = field(default="", metadata={"help": "checkpoint of stage text_mass (the pretrained MASS model)"})
    video_checkpoint: str = field(default="", metadata={"help": "checkpoint of stage video_gpt (VQ-VAE + GPT)"})
    init_checkpoint: str = field(
        default="", metadata={"help": "a joint (uslnet) checkpoint to start from instead, e.g. supervised fine-tuning after unsupervised training (U+S)"}
    )
    text_args: Any = field(default=None, metadata={"help": "filled in from text_checkpoint; not set by hand"})
    video_args: Any = field(default=None, metadata={"help": "filled in from video_checkpoint; not set by hand"})
    connection: ChoiceEnum(list(CONNECTIONS)) = field(
        default="soft", metadata={"help": "length mapper: soft (the paper's), hard (current window only) or pooling (baseline)"}
    )
    sharpness: float = field(default=DEFAULT_SHARPNESS, metadata={"help": "scale of the aligner's Gaussian logits (eq. 10)"})
    position_dim: int = field(
        default=16, metadata={"help": "aligner: width each code position of a frame is projected to before the frame is mapped as a whole"}
    )
    max_text_len: int = field(default=64, metadata={"help": "longest sentence in tokens (the pooling baseline's fixed length)"})
    tokens_per_second: float = field(default=0.0, metadata={"help": "text memory positions per second of video; 0 = measured by the task"})
    freeze_video_encoder: bool = field(default=False, metadata={"help": "keep the VQ-VAE encoder and codebook fixed (table 5)"})
    freeze_video_decoder: bool = field(default=False, metadata={"help": "keep the GPT and the VQ-VAE decoder fixed"})
    freeze_text_encoder: bool = field(default=False, metadata={"help": "keep the text encoder fixed"})
    freeze_text_decoder: bool = field(default=False, metadata={"help": "keep the text decoder fixed"})


def memory_out(states: torch.Tensor, lengths: torch.Tensor) -> Dict[str, List[torch.Tensor]]:
    """(B, m, C) states -> the encoder_out dict fairseq's transformer decoder attends to."""
    pad_mask = torch.arange(states.size(1), device=states.device)[None] >= lengths[:, None]  # (B, m)
    return {
        "encoder_out": [states.transpose(0, 1)],  # (m, B, C)
        "encoder_padding_mask": [pad_mask],
        "encoder_embedding": [],
        "encoder_states": [],
        "src_tokens": [],
        "src_lengths": [lengths[:, None]],
    }


class VideoTextEncoder(FairseqEncoder):
    """Sign video -> text memory for the text decoder: VQ-VAE codes, their codebook vectors, the
    aligner's video-to-text mapping to as many positions as the clip's duration calls for."""

    def __init__(self, dictionary, video: UslnetVideoGPTModel, aligner: SlidingWindowAligner, tokens_per_second: float, max_len: int):
        super().__init__(dictionary)
        # shared with UslnetModel, which registers (and saves) them: kept here as plain references
        object.__setattr__(self, "video", video)
        object.__setattr__(self, "aligner", aligner)
        self.tokens_per_second, self.max_len = tokens_per_second, max_len

    def memory_lengths(self, durations: torch.Tensor) -> torch.Tensor:
        return (durations * self.tokens_per_second).round().long().clamp(1, self.max_len)

    def forward_codes(self, codes: torch.Tensor, durations: torch.Tensor):
        emb = self.video.vqvae.codebook.lookup(codes)  # (B, t, h, w) -> (B, D, t, h, w)
        frames = emb.flatten(3).permute(0, 2, 3, 1)  # (B, t, h*w, D): t frames of the code grid
        lengths = self.memory_lengths(durations)
        return memory_out(self.aligner.video_to_text(frames, lengths), lengths)  # memory (B, m, C_text)

    def forward(self, source: torch.Tensor, durations: torch.Tensor, padding_mask=None, **kwargs):
        with torch.no_grad():
            codes = self.video.vqvae.encode(source)  # (B, 3, T, H, W) -> (B, t, h, w)
        return self.forward_codes(codes, durations)

    def reorder_encoder_out(self, encoder_out, new_order):
        return {
            "encoder_out": [encoder_out["encoder_out"][0].index_select(1, new_order)],
            "encoder_padding_mask": [encoder_out["encoder_padding_mask"][0].index_select(0, new_order)],
            "encoder_embedding": [],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [encoder_out["src_lengths"][0].index_select(0, new_order)],
        }

    def max_positions(self):
        return None


@register_model("uslnet", dataclass=UslnetModelConfig)
class UslnetModel(ExplainsWeightMismatch, FairseqEncoderDecoderModel):
    def __init__(self, cfg, text: UslnetTextModel, video: UslnetVideoGPTModel, aligner: SlidingWindowAligner, dictionary):
        encoder = VideoTextEncoder(dictionary, video, aligner, cfg.tokens_per_second, cfg.max_text_len)
        super().__init__(encoder, text.decoder)
        self.cfg = cfg
        self.text_encoder = text.encoder
        self.fragment_positions = FragmentPositions(self.decoder)
        self.video, self.aligner = video, aligner
        self.apply_freezing()

    @property
    def geometry(self):
        return self.video.geometry

    @classmethod
    def build_model(cls, cfg: UslnetModelConfig, task):
        init_state = None
        if cfg.get("video_args") is not None:  # reloaded from its own checkpoint, perhaps an older one
            fill_legacy_geometry(cfg.video_args.get("vqvae_args"), cfg.get("clip_geometry"))
        if cfg.init_checkpoint:
            init_state = load_stage_state(cfg.init_checkpoint, "uslnet")
            joint = init_state["cfg"]["model"]
            fill_legacy_geometry(joint.video_args.get("vqvae_args"), joint.get("clip_geometry"))
            for key in ("text_checkpoint", "video_checkpoint"):
                if cfg[key]:
                    logger.warning(f"model.{key}={cfg[key]} is not used: model.init_checkpoint carries its stage's weights")
            with open_dict(cfg):
                cfg.text_args, cfg.video_args = joint.text_args, joint.video_args
                for key in ARCHITECTURE:  # the weights fix them
                    if str(cfg[key]) != str(joint[key]):
                        logger.warning(f"model.{key}={cfg[key]} is replaced by {joint[key]}, the value model.init_checkpoint was trained with")
                    cfg[key] = joint[key]
                if not cfg.tokens_per_second:
                    logger.info(f"model.tokens_per_second=0: {joint.tokens_per_second:.3f}, the rate model.init_checkpoint was trained with")
                cfg.tokens_per_second = cfg.tokens_per_second or joint.tokens_per_second
        text_state = adopt_stage_config(cfg, "text_args", "text_checkpoint", "uslnet_text",
                                        "the joint stage starts from a text_mass checkpoint (or model.init_checkpoint)")
        if text_state is not None:
            with open_dict(cfg):
                cfg.text_args.init_checkpoint = ""  # its weights are the checkpoint's own
        video_state = adopt_stage_config(cfg, "video_args", "video_checkpoint", "uslnet_video_gpt",
                                         "the joint stage starts from a video_gpt checkpoint (or model.init_checkpoint)")
        if video_state is not None:
            fill_legacy_geometry(cfg.video_args.get("vqvae_args"), video_state["cfg"].get("task"))
        text = UslnetTextModel.build_model(cfg.text_args, task)
        if text_state is not None:
            text.load_state_dict(text_state["model"])
            logger.info(f"text model loaded from {cfg.text_checkpoint}")
        video = UslnetVideoGPTModel.build_model(cfg.video_args)
        if video_state is not None:
            video.load_state_dict(video_state["model"])
            logger.info(f"video model loaded from {cfg.video_checkpoint}")
        if cfg.tokens_per_second <= 0:  # measured once, on the unpaired training corpora cut as the video model cuts clips
            measure = getattr(task, "measure_tokens_per_second", None)
            if measure is None:
                raise ValueError("model.tokens_per_second is 0 and the task cannot measure a rate (it needs train text and video)")
            with open_dict(cfg):
                cfg.tokens_per_second = float(measure(video.geometry))
        t, h, w = video.gpt.latent_shape
        aligner = SlidingWindowAligner(
            text_dim=text.encoder.embed_tokens.embedding_dim, video_dim=video.vqvae.embedding_dim, video_cond_dim=video.gpt.hidden,
            frame_positions=h * w, position_dim=cfg.position_dim, connection=str(cfg.connection), sharpness=cfg.sharpness,
            max_text_len=cfg.max_text_len, max_video_len=t,
        )
        model = cls(cfg, text, video, aligner, task.target_dictionary)
        if init_state is not None:
            model.load_state_dict(init_state["model"])
            logger.info(f"joint model loaded from {cfg.init_checkpoint}")
        model.derived_cfg = {k: cfg[k] for k in ("text_args", "video_args", "tokens_per_second", *ARCHITECTURE)}
        return model

    def apply_freezing(self):
        vqvae = self.video.vqvae
        parts = {
            "freeze_video_encoder": [vqvae.encoder, vqvae.codebook],
            "freeze_video_decoder": [self.video.gpt, vqvae.decoder],
            "freeze_text_encoder": [self.text_encoder],
            "freeze_text_decoder": [self.decoder],
        }
        for flag, modules in parts.items():
            for m in modules:
                m.requires_grad_(not getattr(self.cfg, flag))

    def train(self, mode: bool = True):
        super().train(mode)
        # the video stage's model keeps its VQ-VAE in eval mode; here it trains (the codebook by
        # moving averages, eq. 4) unless the video encoder is frozen
        self.video.vqvae.train(mode and not self.cfg.freeze_video_encoder)
        return self

    def max_positions(self):
        return None  # clips are one code grid each; sentences are checked by the task

    def max_decoder_positions(self):
        return self.decoder.max_positions()

    def forward(self, source, durations, prev_output_tokens, padding_mask=None, **kwargs):
        """Sign video (B, 3, T, H, W) -> text logits (B, M, V), teacher forced."""
        return self.decoder(prev_output_tokens, encoder_out=self.encoder(source, durations))

    # ---- the pieces the losses of eq. 13 are made of --------------------------------------

    def encode_text(self, src_tokens, src_lengths):
        return self.text_encoder(src_tokens, src_lengths=src_lengths)

    def decode_text(self, prev_output_tokens, encoder_out, fragment_positions=None):
        with self.fragment_positions.using(fragment_positions):
            return self.decoder(prev_output_tokens, encoder_out=encoder_out)  # (logits (B, M, V), extra)

    def text_to_cond(self, encoder_out, src_lengths):
        """Text encoder states -> the GPT's position-wise conditioning (eq. 6): (B, L, hidden)."""
        states = encoder_out["encoder_out"][0].transpose(0, 1)  # (S, B, C) -> (B, S, C)
        return self.aligner.text_to_video(states, src_lengths, self.video.gpt.latent_shape[0])  # (B, t*h*w, hidden)

    def pseudo_durations(self, text_lengths):
        return text_lengths.float() / self.encoder.tokens_per_second

    @torch.no_grad()
    def generate_codes(self, src_tokens, src_lengths, temperature: float = 1.0, top_k: Optional[int] = None, generator=None):
        """Text -> sign video codes (B, t, h, w): text encoder, aligner, GPT sampling."""
        cond = self.text_to_cond(self.encode_text(src_tokens, src_lengths), src_lengths)
        return self.video.gpt.sample(src_tokens.size(0), cond=cond, temperature=temperature, top_k=top_k, generator=generator)

    @torch.no_grad()
    def greedy_translate(self, encoder_out, max_len: int):
        """Greedy text decoding (B, <= max_len + 1 tokens ending in eos, pad after): the pseudo text
        of video-text-video back-translation."""
        with eval_mode(self):
            dictionary = self.encoder.dictionary
            B = encoder_out["encoder_out"][0].size(1)
            device = encoder_out["encoder_out"][0].device
            tokens = torch.full((B, 1), dictionary.eos(), dtype=torch.long, device=device)
            done = torch.zeros(B, dtype=torch.bool, device=device)
            for _ in range(max_len + 1):
                logits, _ = self.decoder(tokens, encoder_out=encoder_out)
                logits[:, -1, dictionary.pad()] = -float("inf")
                if tokens.size(1) > max_len:
                    next_token = torch.full((B,), dictionary.eos(), dtype=torch.long, device=device)
                else:
                    next_token = logits[:, -1].argmax(-1)
                next_token = next_token.masked_fill(done, dictionary.pad())
                tokens = torch.cat([tokens, next_token[:, None]], 1)
                done |= next_token.eq(dictionary.eos())
                if done.all():
                    break
            out = tokens[:, 1:]  # drop the start symbol
            lengths = out.ne(dictionary.pad()).sum(1)
            return out, lengths
