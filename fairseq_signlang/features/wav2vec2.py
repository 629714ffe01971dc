"""Features from a chosen transformer layer of a fairseq wav2vec 2.0 checkpoint.

`layer` is fairseq's own (0-based) `layer` argument, as wav2vec-U's feature scripts use it:
the encoder stops after that block. The papers take layer 14 of a 24-layer model.
"""
from typing import Optional

import numpy as np
import torch

from ..data.readers import CorpusError


def load_wav2vec2(path: str, device: Optional[str] = None):
    """The Wav2Vec2Model inside a checkpoint (pre-trained, or fine-tuned with CTC), in eval mode."""
    from fairseq import checkpoint_utils
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model

    import fairseq_signlang  # noqa: F401  (weights-only loading of fairseq checkpoints)

    try:
        models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task([path])
    except FileNotFoundError:
        raise CorpusError(f"{path}: checkpoint not found") from None
    except Exception as e:
        raise CorpusError(f"{path}: not a loadable fairseq checkpoint ({type(e).__name__}: {e})") from None
    model = models[0]
    model = getattr(getattr(model, "w2v_encoder", None), "w2v_model", model)  # fine-tuned wrapper
    if not isinstance(model, Wav2Vec2Model):
        raise CorpusError(f"{path}: not a wav2vec 2.0 checkpoint (its model is {type(model).__name__})")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.eval().to(device)


class Wav2Vec2LayerExtractor:
    def __init__(self, checkpoint: str, layer: int = 14, device: Optional[str] = None):
        self.model = load_wav2vec2(checkpoint, device)
        num_layers = len(self.model.encoder.layers)
        if not 0 <= layer < num_layers:
            raise CorpusError(f"{checkpoint}: layer {layer} asked for, but the model has layers 0..{num_layers - 1}")
        self.layer = layer
        self.device = next(self.model.parameters()).device
        self.dim = self.model.cfg.encoder_embed_dim

    @torch.no_grad()
    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(samples,) at 16 kHz -> (frames, dim), one frame per 20 ms."""
        source = torch.from_numpy(np.asarray(wav, dtype=np.float32)).to(self.device)[None]
        out = self.model(source=source, mask=False, features_only=True, layer=self.layer)
        return out["x"][0].float().cpu().numpy()


def save_random_wav2vec2(path: str, encoder_layers: int = 3, dim: int = 32, seed: int = 0) -> None:
    """A small randomly initialised wav2vec 2.0 saved as a fairseq checkpoint, built with
    fairseq's own classes: what tests and benchmarks run the pipeline on (no weights can be
    downloaded here)."""
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
