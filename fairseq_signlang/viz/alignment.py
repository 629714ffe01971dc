"""Pictures of DTW retrieval: similarity maps with their alignment paths (speech2sign-U fig. 5-7)."""
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fairseq_signlang.metrics.dtw import dtw_path  # noqa: E402
from fairseq_signlang.io.writers import atomic_open  # noqa: E402


def plot_alignments(
    similarity_maps: Sequence[np.ndarray],
    out_png: str,
    titles: Optional[Sequence[str]] = None,
    speech_labels: Optional[Sequence[List[str]]] = None,
    sign_labels: Optional[Sequence[List[str]]] = None,
) -> None:
    """One panel per pair: frame similarity (1 - cosine distance; speech down, sign across)
    with the DTW path of the matching cost drawn over it."""
    n = len(similarity_maps)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for p, sim in enumerate(similarity_maps):
        ax = axes[p // cols][p % cols]
        im = ax.imshow(sim, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="upper")
        _, i1, i2 = dtw_path(1.0 - sim)
        ax.plot(i2, i1, color="red", marker="o", markersize=3, linewidth=1.5)
        if speech_labels is not None:
            ax.set_yticks(range(len(speech_labels[p])), speech_labels[p], fontsize=7)
        if sign_labels is not None:
            ax.set_xticks(range(len(sign_labels[p])), sign_labels[p], fontsize=7, rotation=90)
        ax.set_ylabel("speech (recognised sign)" if speech_labels is not None else "speech")
        ax.set_xlabel("sign")
        if titles is not None:
            ax.set_title(titles[p], fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for p in range(n, rows * cols):
        axes[p // cols][p % cols].axis("off")
    fig.tight_layout()
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def plot_curves(steps: Sequence[int], series: dict, out_png: str, xlabel: str = "updates") -> None:
    """Training curves: one line per named series over the same steps."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        ax.plot(steps[: len(values)], values, label=name)
    ax.set_xlabel(xlabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
