"""fairseq models for USLNet's video stages: `uslnet_vqvae` (eq. 2-4) and `uslnet_video_gpt` (eq. 5).

The GPT model carries the VQ-VAE it was trained over, frozen: its checkpoint is then all that
rendering, generation and the joint stage need. As fairseq's wav2vec 2.0 fine-tuning does with
`w2v_args`, the VQ-VAE checkpoint's model config is copied into `vqvae_args` when the GPT is first
built, so reloading the GPT checkpoint needs no VQ-VAE file. The clip geometry (frame rate,
resolution, window length) is the VQ-VAE's: chosen by the task of the video_vqvae run, kept in its
model config, and read from there by every later stage (models/uslnet/geometry.py).
"""
import logging
from dataclasses import dataclass, field
from typing import Any, List, Sequence, Union

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model
from omegaconf import open_dict

from fairseq_signlang.io.checkpoints import CheckpointError, checkpoint_model_name, read_fairseq_checkpoint
from fairseq_signlang.models.uslnet.geometry import FIELDS as GEOMETRY_FIELDS, ClipGeometry
from fairseq_signlang.models.uslnet.video_gpt import VideoGPT
from fairseq_signlang.models.uslnet.video_vqvae import VQVAE
from fairseq_signlang.models.weights_fit import ExplainsWeightMismatch

logger = logging.getLogger(__name__)


@dataclass
class UslnetVQVAEConfig(FairseqDataclass):
    embedding_dim: int = field(default=256, metadata={"help": "code vector size (paper: 256)"})
    n_codes: int = field(default=2048, metadata={"help": "codebook size (paper: 2048)"})
    n_hiddens: int = field(default=240, metadata={"help": "channels of the encoder and decoder"})
    n_res_layers: int = field(default=4, metadata={"help": "axial-attention residual blocks in encoder and decoder"})
    downsample: List[int] = field(default_factory=lambda: [4, 4, 4], metadata={"help": "down-sampling of (time, height, width), powers of two"})
    attn_heads: int = field(default=2, metadata={"help": "heads of the axial attention"})
    ema_decay: float = field(default=0.99, metadata={"help": "decay of the codebook's moving averages"})
    dead_code_threshold: float = field(
        default=1.0, metadata={"help": "codes whose moving-average usage falls below this are restarted on encoder outputs; 0 = never"}
    )
    clip_geometry: Any = field(
        default=None, metadata={"help": "fps, resolution and window_frames the VQ-VAE is trained on: taken from the task "
                                        "settings when the video_vqvae stage starts; not set by hand"}
    )


def build_vqvae(cfg) -> VQVAE:
    return VQVAE(embedding_dim=cfg.embedding_dim, n_codes=cfg.n_codes, n_hiddens=cfg.n_hiddens, n_res_layers=cfg.n_res_layers,
                 downsample=tuple(cfg.downsample), attn_heads=cfg.attn_heads, ema_decay=cfg.ema_decay,
                 dead_code_threshold=cfg.dead_code_threshold)


@register_model("uslnet_vqvae", dataclass=UslnetVQVAEConfig)
class UslnetVQVAEModel(ExplainsWeightMismatch, BaseFairseqModel):
    def __init__(self, vqvae: VQVAE, geometry: ClipGeometry):
        super().__init__()
        self.vqvae, self.geometry = vqvae, geometry

    @classmethod
    def build_model(cls, cfg: UslnetVQVAEConfig, task):
        if cfg.get("clip_geometry") is None:  # a new VQ-VAE: its geometry is the task's choice
            if task is None:
                raise ValueError("model.clip_geometry is missing and there is no task to choose it: the VQ-VAE checkpoint was "
                                 "written by an older version; train the video_vqvae stage again")
            with open_dict(cfg):
                cfg.clip_geometry = ClipGeometry.from_task_settings(task.cfg).as_dict()
        geometry = ClipGeometry.from_dict(cfg.clip_geometry)
        geometry.check_downsampling(cfg.downsample)
        model = cls(build_vqvae(cfg), geometry)
        model.derived_cfg = {"clip_geometry": cfg.clip_geometry}
        return model

    def forward(self, video):  # video: (B, 3, T, H, W) in [-0.5, 0.5]
        return self.vqvae(video)


@dataclass
class UslnetVideoGPTConfig(FairseqDataclass):
    vqvae_checkpoint: str = field(default="", metadata={"help": "checkpoint of stage video_vqvae whose codes the GPT models"})
    vqvae_args: Any = field(default=None, metadata={"help": "filled in from vqvae_checkpoint; not set by hand"})
    layers: int = field(default=8, metadata={"help": "transformer blocks (paper: 8)"})
    heads: int = field(default=6, metadata={"help": "attention heads (paper: 6)"})
    hidden: int = field(default=576, metadata={"help": "model width (paper: 576)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings, residuals and MLPs"})
    attn_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})


def load_stage_state(path: str, expected_model: Union[str, Sequence[str]]) -> dict:
    """A checkpoint written by a stage of task uslnet, checked to hold the expected model (or one of them)."""
    state = read_fairseq_checkpoint(path)
    name = checkpoint_model_name(state)
    expected = [expected_model] if isinstance(expected_model, str) else sorted(expected_model)
    if name not in expected:
        what = f"a {expected[0]} checkpoint" if len(expected) == 1 else f"one of {expected}"
        raise CheckpointError(f"{path}: holds model {name!r}, expected {what}")
    return state


def fill_legacy_geometry(vqvae_cfg, settings) -> None:
    """Checkpoints written before the VQ-VAE carried its clip geometry kept it in their task config
    (a joint one also as model.clip_geometry): take it from there."""
    if vqvae_cfg is None or vqvae_cfg.get("clip_geometry") is not None or settings is None:
        return
    if all(settings.get(k) is not None for k in GEOMETRY_FIELDS):
        with open_dict(vqvae_cfg):
            vqvae_cfg.clip_geometry = {k: settings[k] for k in GEOMETRY_FIELDS}


def adopt_stage_config(cfg, args_field: str, checkpoint_field: str, expected_model: str, needed_for: str):
    """Copy the model config of the stage checkpoint named by cfg.<checkpoint_field> into
    cfg.<args_field> and return the checkpoint's state; None when the config is already there
    (a model reloaded from its own checkpoint, whose weights come from that)."""
    if cfg[args_field] is not None:
        return None
    if not cfg[checkpoint_field]:
        raise ValueError(f"model.{checkpoint_field}: {needed_for}")
    state = load_stage_state(cfg[checkpoint_field], expected_model)
    with open_dict(cfg):
        cfg[args_field] = state["cfg"]["model"]
    return state


@register_model("uslnet_video_gpt", dataclass=UslnetVideoGPTConfig)
class UslnetVideoGPTModel(ExplainsWeightMismatch, BaseFairseqModel):
    def __init__(self, vqvae: VQVAE, gpt: VideoGPT, geometry: ClipGeometry):
        super().__init__()
        self.vqvae, self.gpt, self.geometry = vqvae, gpt, geometry
        self.vqvae.requires_grad_(False)
        self.vqvae.eval()

    @classmethod
    def build_model(cls, cfg: UslnetVideoGPTConfig, task=None):
        """The task is not consulted: shapes come from the VQ-VAE (its config and geometry)."""
        state = adopt_stage_config(cfg, "vqvae_args", "vqvae_checkpoint", "uslnet_vqvae", "the video GPT needs the checkpoint of a video_vqvae run")
        if state is not None:
            fill_legacy_geometry(cfg.vqvae_args, state["cfg"].get("task"))
        vqvae = build_vqvae(cfg.vqvae_args)
        if state is not None:
            vqvae.load_state_dict({k[len("vqvae."):]: v for k, v in state["model"].items() if k.startswith("vqvae.")})
            logger.info(f"VQ-VAE loaded from {cfg.vqvae_checkpoint}")
        if cfg.vqvae_args.get("clip_geometry") is None:
            raise ValueError(f"model.vqvae_args has no clip_geometry: {cfg.vqvae_checkpoint or 'the VQ-VAE checkpoint'} was written "
                             "by an older version; train the video_vqvae stage again")
        geometry = ClipGeometry.from_dict(cfg.vqvae_args.clip_geometry)
        geometry.check_downsampling(vqvae.downsample)
        latent = vqvae.latent_shape(geometry.window_frames, geometry.resolution, geometry.resolution)  # (t, h, w)
        gpt = VideoGPT(vqvae.n_codes, latent, n_layers=cfg.layers, n_heads=cfg.heads, hidden=cfg.hidden,
                       dropout=cfg.dropout, attn_dropout=cfg.attn_dropout)
        model = cls(vqvae, gpt, geometry)
        model.derived_cfg = {"vqvae_args": cfg.vqvae_args}
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.vqvae.eval()  # frozen: no codebook updates, batch norm in inference mode
        return self

    def forward(self, video, cond=None):
        with torch.no_grad():
            codes = self.vqvae.encode(video)  # (B, 3, T, H, W) -> (B, t, h, w)
        return {"codes": codes, "logits": self.gpt(codes, cond=cond)}  # logits: (B, t*h*w, n_codes)

    def expected_frames(self, logits):
        """Frames decoded from the expected code vector at each position: the differentiable
        stand-in for decoding the GPT's own output, for eq. 5's reconstruction loss."""
        B = logits.size(0)
        emb = logits.softmax(-1) @ self.vqvae.codebook.embeddings  # (B, L, D)
        emb = emb.transpose(1, 2).reshape(B, -1, *self.gpt.latent_shape)  # (B, D, t, h, w)
        return self.vqvae.decode_embeddings(emb)  # (B, 3, T, H, W)

    @torch.no_grad()
    def sample_frames(self, batch_size: int, cond=None, temperature: float = 1.0, top_k=None, generator=None):
        codes = self.gpt.sample(batch_size, cond=cond, temperature=temperature, top_k=top_k, generator=generator)
        return self.vqvae.decode_codes(codes), codes


def load_video_model(path: str):
    """A uslnet_vqvae or uslnet_video_gpt model from its checkpoint, in eval mode (its clip
    geometry is `model.geometry`)."""
    models = {"uslnet_vqvae": UslnetVQVAEModel, "uslnet_video_gpt": UslnetVideoGPTModel}
    state = load_stage_state(path, models)
    cfg = state["cfg"]
    fill_legacy_geometry(cfg.model if cfg.model._name == "uslnet_vqvae" else cfg.model.get("vqvae_args"), cfg.get("task"))
    model = models[cfg.model._name].build_model(cfg.model, None)
    model.load_state_dict(state["model"])
    return model.eval()
