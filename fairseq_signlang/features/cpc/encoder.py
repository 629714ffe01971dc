"""CPC sign encoder of speech2sign-U (sec. 3.1, eq. 2-3; appendix A.1).

Local visual features v_1..v_L (one vector per frame, or per letter / word segment) go
through a per-frame 2-layer MLP, z_t = MLP(v_t), and a 1-layer unidirectional LSTM,
c_1..c_L = LSTM(z_1..z_L). Contrastive predictive coding trains both without labels: from the
context c_i the model must pick the true future z_{i+k} (k = 1..K) out of N negatives z_n
drawn from other frames. K-means on c (character level) or on z (word level, appendix A.1)
then gives the sign cluster units.

Eq. 3 writes the score as c_i^T MLP(v_{i+k}). We score with one linear predictor per step,
c_i^T W_k z_{i+k}, as CPC does (van den Oord et al., 2018): a single dot product would ask the
same c_i to point at the frames 1, 2 and 3 steps ahead at once.
"""
import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from fairseq_signlang.io.checkpoints import CheckpointError, read_checkpoint
from fairseq_signlang.io.writers import atomic_open

OUTPUTS = ("context", "mlp")  # what `encode` returns: the LSTM's c or the MLP's z


@dataclass
class CPCConfig:
    input_dim: int  # dimension of the local visual features v_t
    hidden: int = 256  # MLP hidden and output units (z_t)
    context: int = 256  # LSTM hidden units (c_t)
    steps: int = 3  # K: frames ahead to predict
    negatives: int = 32  # N: negatives per positive

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"CPCConfig.{f.name} must be a positive integer, got {value!r}")


def frame_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) True on real frames, False on padding."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def pair_counts(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(K,) number of (i, i+k) pairs inside the sentences, for each step k: a sentence of
    length L has L-k of them (none when L <= k)."""
    ks = torch.arange(1, steps + 1, device=lengths.device)
    return (lengths[:, None] - ks[None, :]).clamp(min=0).sum(0)


def sample_negatives(valid: torch.Tensor, positives: torch.Tensor, num_negatives: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """For each positive frame, `num_negatives` frames drawn uniformly, with replacement, from
    the real frames of the batch other than the positive itself (padding is never drawn).

    valid: (B, T) bool mask of real frames; positives: (P,) flat indices into B*T of real
    frames. Returns (P, N) flat indices into B*T.
    """
    frames = valid.flatten().nonzero().squeeze(1)  # (M,) flat indices of the real frames, ascending
    if len(frames) < 2:
        raise ValueError(f"negatives need at least 2 real frames in the batch, there are {len(frames)}")
    rank = torch.searchsorted(frames, positives)  # (P,) where each positive sits among them
    draw = torch.randint(len(frames) - 1, (len(positives), num_negatives), device=valid.device, generator=generator)  # (P, N)
    draw += (draw >= rank[:, None]).long()  # M-1 choices: step over the positive's own slot
    return frames[draw]


class CPCSignEncoder(nn.Module):
    def __init__(self, cfg: CPCConfig):
        super().__init__()
        self.cfg = cfg
        self.mlp = nn.Sequential(nn.Linear(cfg.input_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden))
        self.lstm = nn.LSTM(cfg.hidden, cfg.context, num_layers=1, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(cfg.context, cfg.hidden, bias=False) for _ in range(cfg.steps))  # W_1..W_K
        # inputs are standardized with the training split's statistics (features such as hand
        # positions next to areas have unlike scales); kept beside the weights in checkpoints
        self.register_buffer("input_mean", torch.zeros(cfg.input_dim), persistent=False)
        self.register_buffer("input_std", torch.ones(cfg.input_dim), persistent=False)

    def set_input_standardization(self, mean, std) -> None:
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        """feats (B, T, D) right-padded, lengths (B,) -> z (B, T, H) and c (B, T, C), zero on padding.
        The LSTM runs over the padding too: it is unidirectional, so padding after a sentence
        cannot change the context of its real frames."""
        valid = frame_mask(lengths, feats.shape[1]).unsqueeze(-1)  # (B, T, 1)
        z = self.mlp((feats - self.input_mean) / self.input_std)  # (B, T, H)
        c, _ = self.lstm(z)  # (B, T, C)
        return {"z": z * valid, "c": c * valid}

    def cpc_loss(self, feats: torch.Tensor, lengths: torch.Tensor, generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """InfoNCE of eq. 3, averaged over every (i, k) with i+k inside its sentence, and the
        prediction accuracy per step (K,): the share of pairs whose positive scores strictly
        above all its negatives (chance 1/(N+1)). Sentences of length <= k add no pair for k."""
        if int(pair_counts(lengths, self.cfg.steps).sum()) == 0:
            raise ValueError("no (i, i+k) pair to predict: every sentence in the batch is a single frame")
        out = self(feats, lengths)
        z, c = out["z"], out["c"]
        B, T, H = z.shape
        valid = frame_mask(lengths, T)  # (B, T)
        z_flat = z.reshape(B * T, H)
        loss_sum = z.new_zeros(())
        correct, pairs = [], []
        for k, predictor in enumerate(self.predictors, start=1):
            b, i = valid[:, k:].nonzero(as_tuple=True)  # (P,) anchors i whose frame i+k is real
            positives = b * T + i + k  # (P,) flat index of z_{i+k}
            negatives = sample_negatives(valid, positives, self.cfg.negatives, generator)  # (P, N)
            targets = z_flat[torch.cat([positives[:, None], negatives], dim=1)]  # (P, 1+N, H), positive first
            prediction = predictor(c[b, i])  # (P, H) = W_k c_i
            logits = torch.einsum("ph,pnh->pn", prediction, targets)  # (P, 1+N)
            loss_sum = loss_sum + F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long), reduction="sum")
            correct.append((logits[:, 0] > logits[:, 1:].max(dim=1).values).sum())
            pairs.append(len(logits))
        accuracy = torch.stack([n.float() / max(p, 1) for n, p in zip(correct, pairs)])  # (K,)
        return loss_sum / sum(pairs), accuracy

    @torch.no_grad()
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor, output: str = "context") -> torch.Tensor:
        """The features the sign units are clustered from: c (B, T, C) or, with output="mlp",
        z (B, T, H)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        out = self(feats, lengths)
        return out["c"] if output == "context" else out["z"]


def save_checkpoint(path: str, model: CPCSignEncoder, epoch: int, valid_accuracy: float) -> None:
    """A plain dict of tensors and numbers (readable with weights_only=True), written under a
    temporary name and renamed when complete."""
    state = {
        "config": dataclasses.asdict(model.cfg),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "input_mean": model.input_mean.detach().cpu(),
        "input_std": model.input_std.detach().cpu(),
        "epoch": int(epoch),
        "valid_accuracy": float(valid_accuracy),
    }
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


def load_checkpoint(path: str, device: str = "cpu") -> Tuple[CPCSignEncoder, dict]:
    """(model in eval mode on `device`, the checkpoint's other entries: config, epoch,
    valid_accuracy). Anything that is not a checkpoint of `save_checkpoint` names the file."""
    state = read_checkpoint(path, "PyTorch checkpoint")
    missing = [k for k in ("config", "model", "input_mean", "input_std") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a CPC sign encoder checkpoint (no {', '.join(missing)})")
    try:
        cfg = CPCConfig(**state["config"])
        model = CPCSignEncoder(cfg)
        model.load_state_dict(state["model"])
        model.set_input_standardization(state["input_mean"], state["input_std"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a CPC sign encoder checkpoint of the expected layout ({e})") from None
    info = {k: v for k, v in state.items() if k not in ("model", "input_mean", "input_std")}
    return model.eval().to(device), info
