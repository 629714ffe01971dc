"""USLNet's text model: a MASS transformer (Song et al. 2019; USLNet section 2.1, eq. 1).

It is fairseq's own transformer (TransformerEncoderBase / TransformerDecoderBase inside a
FairseqEncoderDecoderModel), so fairseq-generate / SequenceGenerator drive it unchanged. The
one addition: `forward(..., fragment_positions=(B, M))` makes the decoder's position
embeddings use the masked fragment's original positions in the sentence instead of 0..M-1.
A forward hook on `decoder.embed_positions` does it, so the state-dict keys stay fairseq's and
`transformer` checkpoints load (`init_checkpoint`, for continued pre-training as in the paper).

The config is flat, with the `transformer` model's argparse names, so the same keys work on
the command line (`--encoder-layers 2`; as everywhere in fairseq, a flag flips a true default)
and in a hydra yaml:

    model:
      _name: uslnet_text
      encoder_layers: 2            # decoder_layers likewise; default 6 (paper)
      encoder_embed_dim: 64        # decoder_embed_dim; default 1024 (paper)
      encoder_ffn_embed_dim: 128   # decoder_ffn_embed_dim; default 4096
      encoder_attention_heads: 4   # decoder_attention_heads; default 16
      encoder_learned_pos: true    # decoder_learned_pos; learned positions as in MASS
      encoder_normalize_before: false  # decoder_normalize_before
      max_source_positions: 512    # max_target_positions (fragment positions must fit)
      dropout: 0.1                 # attention_dropout, activation_dropout, activation_fn
      share_all_embeddings: true   # one dictionary for source and target
      layernorm_embedding: false   # no_scale_embedding, no_token_positional_embeddings
      init_checkpoint: ""          # a fairseq transformer / uslnet_text checkpoint to start from

Defaults are the paper's size.
A trained model loaded back from its own checkpoint (fairseq-generate) does not read
init_checkpoint again: task uslnet clears it when building from a checkpoint.
"""
import argparse
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Optional

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model
from fairseq.models.transformer import TransformerConfig, TransformerModelBase

from fairseq_signlang.io.checkpoints import CheckpointError, read_fairseq_checkpoint
from fairseq_signlang.models.weights_fit import ExplainsWeightMismatch

logger = logging.getLogger(__name__)

# settings invisible in the weights; a checkpoint that differs in them gets a warning
_SILENT_SETTINGS = ("activation_fn", "no_scale_embedding", "encoder_normalize_before", "decoder_normalize_before")


@dataclass
class UslnetTextConfig(FairseqDataclass):
    encoder_embed_dim: int = field(default=1024, metadata={"help": "encoder embedding dimension"})
    encoder_ffn_embed_dim: int = field(default=4096, metadata={"help": "encoder FFN dimension"})
    encoder_layers: int = field(default=6, metadata={"help": "encoder layers"})
    encoder_attention_heads: int = field(default=16, metadata={"help": "encoder attention heads"})
    encoder_normalize_before: bool = field(default=False, metadata={"help": "pre-norm encoder layers"})
    encoder_learned_pos: bool = field(default=True, metadata={"help": "learned encoder positions (else sinusoidal)"})
    decoder_embed_dim: int = field(default=1024, metadata={"help": "decoder embedding dimension"})
    decoder_ffn_embed_dim: int = field(default=4096, metadata={"help": "decoder FFN dimension"})
    decoder_layers: int = field(default=6, metadata={"help": "decoder layers"})
    decoder_attention_heads: int = field(default=16, metadata={"help": "decoder attention heads"})
    decoder_normalize_before: bool = field(default=False, metadata={"help": "pre-norm decoder layers"})
    decoder_learned_pos: bool = field(default=True, metadata={"help": "learned decoder positions (else sinusoidal)"})
    max_source_positions: int = field(default=512, metadata={"help": "longest encoder input"})
    max_target_positions: int = field(
        default=512, metadata={"help": "longest decoder input; fragment positions index this table too"}
    )
    activation_fn: ChoiceEnum(utils.get_available_activation_fns()) = field(
        default="relu", metadata={"help": "FFN activation (MASS itself used gelu)"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout probability"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    share_all_embeddings: bool = field(
        default=True, metadata={"help": "one embedding table for encoder, decoder and output (one dictionary)"}
    )
    share_decoder_input_output_embed: bool = field(
        default=True, metadata={"help": "tie decoder input and output embeddings"}
    )
    layernorm_embedding: bool = field(default=False, metadata={"help": "layer norm after the embeddings"})
    no_scale_embedding: bool = field(default=False, metadata={"help": "do not scale embeddings by sqrt(dim)"})
    no_token_positional_embeddings: bool = field(default=False, metadata={"help": "no position embeddings"})
    init_checkpoint: str = field(
        default="",
        metadata={"help": "fairseq checkpoint (model transformer or uslnet_text, same sizes) whose weights initialise the model"},
    )


def to_transformer_config(cfg) -> TransformerConfig:
    """Our flat config (dataclass, DictConfig or Namespace) -> fairseq's nested TransformerConfig."""
    flat = {f.name: getattr(cfg, f.name, f.default) for f in fields(UslnetTextConfig)}
    flat["activation_fn"] = str(flat["activation_fn"])
    flat["decoder_input_dim"] = flat["decoder_output_dim"] = flat["decoder_embed_dim"]
    return TransformerConfig.from_namespace(argparse.Namespace(**flat))


def _first(names, limit=5):
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def load_init_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Copy the weights of a fairseq checkpoint into `model`; every key and shape must match."""
    state = read_fairseq_checkpoint(path)
    theirs, ours = state["model"], model.state_dict()
    missing, unexpected = set(ours) - set(theirs), set(theirs) - set(ours)
    bad_shape = [k for k in set(ours) & set(theirs) if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    if bad_shape:
        problems.append("shape mismatch: " + ", ".join(
            f"{k} {tuple(theirs[k].shape)} vs ours {tuple(ours[k].shape)}" for k in sorted(bad_shape)[:5]))
        if any(k.endswith("embed_tokens.weight") for k in bad_shape):
            problems.append("the dictionaries differ: use the one the checkpoint was trained with (<mask> included)")
    if problems:
        raise CheckpointError(f"init_checkpoint {path} does not fit this model: " + "; ".join(problems))
    # keys that share one tensor here must agree there, or the last one loaded would win silently
    by_tensor = {}
    for k, v in ours.items():
        by_tensor.setdefault(v.data_ptr(), []).append(k)
    for keys in by_tensor.values():
        if any(not torch.equal(theirs[keys[0]], theirs[k]) for k in keys[1:]):
            raise CheckpointError(f"init_checkpoint {path}: {', '.join(keys)} are one shared table in this model "
                             "but differ in the checkpoint (set share_all_embeddings as it was trained)")
    model_cfg = state["cfg"].get("model") if state.get("cfg") is not None else None  # Namespace or DictConfig
    for name in _SILENT_SETTINGS:
        theirs_v, ours_v = getattr(model_cfg, name, None), getattr(model.cfg, name, None)
        if theirs_v is not None and str(theirs_v) != str(ours_v):
            logger.warning(f"init_checkpoint {path}: {name}={theirs_v} there but {ours_v} here")
    model.load_state_dict(theirs, strict=True)
    logger.info(f"initialised uslnet_text from {path}")


class FragmentPositions:
    """A forward hook on a decoder's position table: inside `using(positions)` the decoder embeds
    the given original positions (B, M) instead of 0..M-1; outside, it changes nothing."""

    def __init__(self, decoder):
        self.positions: Optional[torch.Tensor] = None
        if decoder.embed_positions is not None:
            decoder.embed_positions.register_forward_hook(self)

    @contextmanager
    def using(self, positions: Optional[torch.Tensor]):
        self.positions = positions
        try:
            yield
        finally:
            self.positions = None

    def __call__(self, module, inputs, output):
        """While fragment positions are set, embed them instead of 0..M-1: index
        padding_idx + 1 + position, as fairseq numbers positions; -1 (pad) -> padding_idx."""
        positions = self.positions
        if positions is None:
            return None
        if positions.shape != output.shape[:2]:
            raise ValueError(f"fragment_positions {tuple(positions.shape)} must have the shape of "
                             f"prev_output_tokens {tuple(output.shape[:2])} (no incremental decoding)")
        pad = module.padding_idx
        index = torch.where(positions >= 0, positions + pad + 1, torch.full_like(positions, pad))  # (B, M)
        if hasattr(module, "weight"):  # learned
            table = module.weight
        else:  # sinusoidal: the table grows on demand
            table = module.weights
            if int(index.max()) >= table.size(0):
                table = module.get_embedding(int(index.max()) + 1, module.embedding_dim, pad).to(table)
            table = table.detach()
        if int(index.max()) >= table.size(0):
            raise ValueError(f"fragment position {int(positions.max())} is beyond the decoder's "
                             f"max_target_positions ({table.size(0) - pad - 1})")
        return F.embedding(index, table, padding_idx=pad)  # (B, M, C)


@register_model("uslnet_text", dataclass=UslnetTextConfig)
class UslnetTextModel(ExplainsWeightMismatch, TransformerModelBase):
    """fairseq's transformer plus fragment positions for the MASS decoder."""

    def __init__(self, cfg, encoder, decoder):
        super().__init__(cfg, encoder, decoder)
        self.fragment_positions = FragmentPositions(decoder)

    @classmethod
    def add_args(cls, parser):
        gen_parser_from_dataclass(parser, UslnetTextConfig(), delete_default=True)

    @classmethod
    def build_model(cls, cfg, task):
        # one dictionary for both sides (task uslnet has no text source dictionary: its joint model reads video)
        dictionary = task.target_dictionary
        model = super().build_model(to_transformer_config(cfg), SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary))
        if getattr(cfg, "init_checkpoint", ""):
            load_init_checkpoint(model, cfg.init_checkpoint)
        return model

    def forward(
        self,
        src_tokens,
        src_lengths,
        prev_output_tokens,
        fragment_positions: Optional[torch.Tensor] = None,
        return_all_hiddens: bool = True,
        features_only: bool = False,
        alignment_layer: Optional[int] = None,
        alignment_heads: Optional[int] = None,
        **kwargs,
    ):
        """src_tokens (B, S), prev_output_tokens (B, M), fragment_positions (B, M) original
        0-based positions (-1 at pads) or None for plain transformer behaviour -> (logits (B, M, V), extra)."""
        with self.fragment_positions.using(fragment_positions):
            return super().forward(src_tokens, src_lengths, prev_output_tokens, return_all_hiddens,
                                   features_only, alignment_layer, alignment_heads)
