"""Random-weight stand-ins for the pretrained models a user brings (no weights can be downloaded
here), saved in the layouts the package's loaders read, and the tiny text-model size."""
import torch
import torch.nn as nn

from fairseq_signlang.features.visual_models import I3D_WIDTHS, VGG, VGG19_LAYOUT, InceptionI3D

# the 2+2-layer, 64-dim MASS text model the tests build
TINY_SETTINGS = dict(
    encoder_layers=2, decoder_layers=2, encoder_embed_dim=64, decoder_embed_dim=64,
    encoder_ffn_embed_dim=128, decoder_ffn_embed_dim=128, encoder_attention_heads=4, decoder_attention_heads=4,
)


def save_random_wav2vec2(path: str, encoder_layers: int = 3, dim: int = 32, seed: int = 0) -> None:
    """A small randomly initialised wav2vec 2.0 saved as a fairseq checkpoint, built with
    fairseq's own classes: what the tests run the pipeline on (no weights can be downloaded
    here)."""
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(
        encoder_layers=encoder_layers, encoder_embed_dim=dim, encoder_ffn_embed_dim=2 * dim,
        encoder_attention_heads=2, conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
        final_dim=16, conv_pos=16, conv_pos_groups=4, latent_vars=8, latent_groups=2,
    )
    model = Wav2Vec2Model(cfg)
    model_cfg = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)
    model_cfg["_name"] = "wav2vec2"
    state = {
        "cfg": {"model": model_cfg, "task": {"_name": "audio_pretraining", "data": "."}, "common": {}, "checkpoint": {}},
        "model": model.state_dict(),
        "optimizer_history": [{"criterion_name": "wav2vec", "optimizer_name": "adam", "lr_scheduler_state": {}, "num_updates": 0}],
        "extra_state": {},
    }
    torch.save(state, path)


def save_random_visual_model(path: str, kind: str, width: float = 1.0, seed: int = 0) -> None:
    """A randomly initialised I3D or VGG-19 with channels scaled by `width`, saved as a bare
    state dict: what the tests run the pipeline on."""
    torch.manual_seed(seed)
    scale = lambda c: max(4, int(round(c * width)))  # noqa: E731
    if kind == "i3d":
        widths = {k: scale(v) if isinstance(v, int) else tuple(map(scale, v)) for k, v in I3D_WIDTHS.items()}
        model = InceptionI3D(widths)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):  # statistics away from the identity, as trained ones are
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    else:
        model = VGG(tuple(v if v == "M" else scale(v) for v in VGG19_LAYOUT), hidden=scale(4096), num_classes=scale(1000))
    torch.save(model.state_dict(), path)
