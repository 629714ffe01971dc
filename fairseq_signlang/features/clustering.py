"""PCA and k-means over feature files with faiss (GPU k-means when a GPU and faiss-gpu are
there), as wav2vec-U prepares its inputs: fit on train, apply to every split, streaming."""
import os
from typing import Callable, Optional

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.writers import atomic_array_appender


def _faiss():
    import faiss

    return faiss


def use_gpu() -> bool:
    faiss = _faiss()
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def sample_rows(feats: np.ndarray, max_rows: int, seed: int = 0) -> np.ndarray:
    """At most `max_rows` rows, drawn without replacement, as contiguous float32."""
    if feats.shape[0] <= max_rows:
        return np.ascontiguousarray(feats, dtype=np.float32)
    idx = np.sort(np.random.default_rng(seed).choice(feats.shape[0], max_rows, replace=False))
    return np.ascontiguousarray(feats[idx], dtype=np.float32)


def fit_pca(feats: np.ndarray, dim: int, eigen_power: float = 0.0, max_rows: int = 1_000_000):
    """(A, b) with x' = x @ A.T + b; eigen_power -0.5 whitens (faiss.PCAMatrix)."""
    faiss = _faiss()
    if dim > feats.shape[1]:
        raise ValueError(f"PCA to {dim} dimensions from {feats.shape[1]}")
    pca = faiss.PCAMatrix(feats.shape[1], dim, eigen_power)
    pca.train(sample_rows(feats, max_rows))
    A = faiss.vector_to_array(pca.A).reshape(pca.d_out, pca.d_in).astype(np.float32)
    b = faiss.vector_to_array(pca.b).astype(np.float32)
    return A, b


def fit_standardizer(feats: np.ndarray, max_rows: int = 1_000_000):
    """(mean, std) per dimension, for features whose dimensions have unlike scales (positions
    next to areas); a constant dimension keeps std 1."""
    x = sample_rows(feats, max_rows).astype(np.float64)
    std = x.std(axis=0)
    return x.mean(axis=0).astype(np.float32), np.where(std > 1e-8, std, 1.0).astype(np.float32)


def fit_kmeans(feats: np.ndarray, k: int, niter: int = 50, seed: int = 0, max_rows: int = 2_000_000, transform: Optional[Callable] = None) -> np.ndarray:
    """k centroids (k, D); on GPU when faiss sees one. `transform` maps rows before clustering."""
    faiss = _faiss()
    x = sample_rows(feats, max_rows, seed)
    if transform is not None:
        x = np.ascontiguousarray(transform(x), dtype=np.float32)
    if x.shape[0] < k:
        raise ValueError(f"{k} clusters need at least {k} rows, there are {x.shape[0]}")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, gpu=use_gpu(), max_points_per_centroid=max(256, x.shape[0] // k + 1))
    km.train(x)
    return km.centroids.astype(np.float32)


def assign_clusters(feats: np.ndarray, centroids: np.ndarray, chunk_rows: int = 1 << 16, transform: Optional[Callable] = None) -> np.ndarray:
    """Nearest centroid of every row (after `transform`): (N,) int64."""
    faiss = _faiss()
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids))
    out = np.empty(feats.shape[0], dtype=np.int64)
    for start in range(0, feats.shape[0], chunk_rows):
        rows = np.asarray(feats[start : start + chunk_rows], dtype=np.float32)
        _, idx = index.search(np.ascontiguousarray(transform(rows) if transform is not None else rows, dtype=np.float32), 1)
        out[start : start + chunk_rows] = idx[:, 0]
    return out


def transform_rows(src_npy: str, dst_npy: str, fn: Callable[[np.ndarray], np.ndarray], chunk_rows: int = 1 << 16, desc: Optional[str] = None) -> None:
    """Stream `src_npy` through `fn` chunk by chunk into `dst_npy` (written under a temporary name)."""
    feats = np.load(src_npy, mmap_mode="r")
    if feats.shape[0] == 0:
        raise ValueError(f"{src_npy}: no rows")
    with atomic_array_appender(dst_npy) as writer:
        for start in tqdm(range(0, feats.shape[0], chunk_rows), desc=desc or os.path.basename(dst_npy), unit="chunk"):
            writer.append(np.ascontiguousarray(fn(np.asarray(feats[start : start + chunk_rows], dtype=np.float32)), dtype=np.float32))


