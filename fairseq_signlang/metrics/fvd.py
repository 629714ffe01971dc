"""Frechet Video Distance (Unterthiner et al., 2019), the generation metric USLNet reports:
the Frechet distance between Gaussians fitted to I3D features of real and of generated videos.

FVD's reference implementation feeds 224x224 frames scaled to [-1, 1] (bilinear resize) to the
Kinetics-400 I3D and takes its 400 clip logits. Here I3D is the user's checkpoint in the
PyTorch-port layout (features/visual_models.py): when it holds the classifier
(`logits.conv3d.weight` / `.bias`) the features are those clip logits, computed as the original
network does (Mixed_5c -> 2x7x7 average pool -> 1x1x1 conv -> mean over time); without it they
are Mixed_5c averaged over time and space (1024-d at paper size). Scores from the two are not
comparable, and neither is comparable across checkpoints, frame sizes or clip lengths.
"""
import warnings
from typing import Iterable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from tqdm import tqdm

from fairseq_signlang.io.device import default_device
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.features.visual_models import build_from_checkpoint, load_state_dict

FVD_SIZE = 224


def gaussian_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64, of features (N, D)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"gaussian_stats needs features of shape (N, D), got {x.shape}")
    if len(x) < 2:
        raise ValueError(f"gaussian_stats needs at least 2 feature vectors for a covariance, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("gaussian_stats: the features hold NaN or infinite values")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrtm(m: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # singular products are expected and handled by the caller
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return linalg.sqrtm(m)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    S1 S2 is not symmetric, so its square root may come back with round-off imaginary parts
    (dropped when small) or, for a near-singular product, not finite: then eps * I is added to
    both covariances' diagonals and the root taken again, as the FID/FVD reference code does."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    s1, s2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    D = mu1.shape[0]
    if mu1.shape != (D,) or mu2.shape != (D,) or s1.shape != (D, D) or s2.shape != (D, D):
        raise ValueError(f"frechet_distance: shapes do not agree: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    covmean = _sqrtm(s1 @ s2)

    def bad(c):
        scale = max(1.0, float(np.abs(np.real(c)).max())) if np.isfinite(c).all() else 1.0
        return not np.isfinite(c).all() or (np.iscomplexobj(c) and np.abs(np.diagonal(c).imag).max() > 1e-3 * scale)

    if bad(covmean):
        offset = np.eye(D) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
        if bad(covmean):
            what = "not finite" if not np.isfinite(covmean).all() else f"imaginary part {np.abs(np.diagonal(covmean).imag).max():.3g}"
            raise ValueError(f"frechet_distance: the square root of sigma1 @ sigma2 is unusable ({what}) even with eps={eps} added")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(np.real(covmean)))


def fvd_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


class I3DClipFeatures:
    """Videos (T, H, W, 3) uint8 -> one I3D clip feature each (see the module docstring)."""

    def __init__(self, checkpoint: str, size: int = FVD_SIZE, batch_size: int = 8, device: Optional[str] = None):
        self.device = default_device(device)
        self.model = build_from_checkpoint(checkpoint, "i3d").to(self.device)
        state = load_state_dict(checkpoint)
        self.weight = state.get("logits.conv3d.weight")
        if self.weight is not None:
            C = self.model.out_channels
            if self.weight.shape[1:] != (C, 1, 1, 1) or "logits.conv3d.bias" not in state:
                raise CorpusError(f"{checkpoint}: logits.conv3d.weight of shape {tuple(self.weight.shape)} (with a bias) does not fit a {C}-channel I3D; expected (classes, {C}, 1, 1, 1)")
            self.weight = self.weight.flatten(1).float().to(self.device)  # (K, C)
            self.bias = state["logits.conv3d.bias"].float().to(self.device)
        self.kind = "logits" if self.weight is not None else "mixed_5c_pool"
        self.dim = self.weight.shape[0] if self.weight is not None else self.model.out_channels
        self.size, self.batch_size = size, batch_size

    @torch.no_grad()
    def _forward(self, clips: torch.Tensor) -> np.ndarray:
        x = self.model(clips).mean(dim=(3, 4))  # (B, C, T'): the 7x7 spatial pool at 224 px
        if self.weight is None:
            return x.mean(dim=2).float().cpu().numpy()
        x = F.avg_pool1d(x, kernel_size=min(2, x.shape[2]), stride=1)  # the 2-frame temporal pool
        return (torch.einsum("kc,bct->bkt", self.weight, x).mean(dim=2) + self.bias).float().cpu().numpy()

    def _prepare(self, index: int, video) -> torch.Tensor:
        v = np.asarray(video)
        if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8 or len(v) == 0:
            raise ValueError(f"video {index}: expected (T, H, W, 3) uint8 frames with T > 0, got {v.dtype} {v.shape}")
        x = torch.from_numpy(v).to(self.device).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
        if x.shape[2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x / 127.5 - 1.0).transpose(0, 1)  # (3, T, size, size) in [-1, 1]

    def __call__(self, videos: Iterable[np.ndarray], desc: str = "I3D features") -> np.ndarray:
        """Consecutive videos of the same length share a batch; any lengths are accepted."""
        out, batch = [], []
        total = len(videos) if hasattr(videos, "__len__") else None
        for i, video in enumerate(tqdm(videos, desc=desc, unit="video", total=total, disable=total is not None and total < 2 * self.batch_size)):
            x = self._prepare(i, video)
            if batch and (len(batch) == self.batch_size or batch[0].shape != x.shape):
                out.append(self._forward(torch.stack(batch)))
                batch = []
            batch.append(x)
        if batch:
            out.append(self._forward(torch.stack(batch)))
        if not out:
            raise ValueError("i3d_features: no videos")
        return np.concatenate(out).astype(np.float64)


def i3d_features(videos: Iterable[np.ndarray], checkpoint: str, batch_size: int = 8, device: Optional[str] = None, size: int = FVD_SIZE) -> np.ndarray:
    """I3D clip features (N, D) of videos (T, H, W, 3) uint8: the checkpoint's 400 (or K) clip
    logits when it has a classifier, else pooled Mixed_5c. Frames are resized to size x size."""
    return I3DClipFeatures(checkpoint, size, batch_size, device)(videos)


def fvd(real_videos: Iterable[np.ndarray], generated_videos: Iterable[np.ndarray], checkpoint: str, batch_size: int = 8, device: Optional[str] = None, size: int = FVD_SIZE) -> float:
    """FVD between two sets of videos (T, H, W, 3) uint8 (at least 2 each), one I3D for both."""
    extract = I3DClipFeatures(checkpoint, size, batch_size, device)
    return fvd_from_features(extract(real_videos, "I3D real"), extract(generated_videos, "I3D generated"))


