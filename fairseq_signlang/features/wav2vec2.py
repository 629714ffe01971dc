"""Features from a chosen transformer layer of a fairseq wav2vec 2.0 checkpoint.

`layer` is fairseq's own (0-based) `layer` argument, as wav2vec-U's feature scripts use it:
the encoder stops after that block. The papers take layer 14 of a 24-layer model.
"""
from typing import Optional

import numpy as np
import torch

from fairseq_signlang.io.checkpoints import CheckpointError, read_fairseq_checkpoint
from fairseq_signlang.io.device import default_device
from fairseq_signlang.io.readers import CorpusError


def load_wav2vec2(path: str, device: Optional[str] = None):
    """The Wav2Vec2Model inside a checkpoint (pre-trained, or fine-tuned with CTC), in eval mode."""
    from fairseq import checkpoint_utils
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model

    state = read_fairseq_checkpoint(path)
    try:
        models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task([path], state=state)
    except Exception as e:
        raise CheckpointError(f"{path}: fairseq could not build the model of this checkpoint ({type(e).__name__}: {e})") from None
    model = models[0]
    model = getattr(getattr(model, "w2v_encoder", None), "w2v_model", model)  # fine-tuned wrapper
    if not isinstance(model, Wav2Vec2Model):
        raise CheckpointError(f"{path}: not a wav2vec 2.0 checkpoint (its model is {type(model).__name__})")
    return model.eval().to(default_device(device))


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

