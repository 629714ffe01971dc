"""Clips shown side by side, as an mp4 and as a contact sheet (USLNet figure 5: source frames,
reconstructed frames, generated frames)."""
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fairseq_signlang.io.writers import atomic_open  # noqa: E402


def to_frames(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-0.5, 0.5] -> (T, H, W, 3) uint8."""
    x = ((video.detach().float().cpu().clamp(-0.5, 0.5) + 0.5) * 255).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).numpy()


def side_by_side(clips: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Clips (T_i, H, W_i, 3) -> one clip (max T_i, H, sum W_i + gaps, 3); a shorter clip holds
    its last frame."""
    heights = {c.shape[1] for c in clips}
    if len(heights) != 1:
        raise ValueError(f"clips of different heights {sorted(heights)} cannot be put side by side")
    T = max(len(c) for c in clips)
    padded = [np.concatenate([c, np.repeat(c[-1:], T - len(c), 0)]) for c in clips]
    spacer = np.full((T, clips[0].shape[1], gap, 3), 255, dtype=np.uint8)
    parts = [p for c in padded for p in (c, spacer)][:-1]
    return np.concatenate(parts, axis=2)


def contact_sheet(rows: Sequence[np.ndarray], labels: Sequence[str], out_png: str, max_frames: int = 8) -> None:
    """One row of frames per clip, evenly spaced over the clip, labelled on the left."""
    cols = min(max_frames, max(len(r) for r in rows))
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.4 * cols, 1.5 * len(rows)), squeeze=False)
    for r, (frames, label) in enumerate(zip(rows, labels)):
        picks = np.linspace(0, len(frames) - 1, cols).round().astype(int)
        for c, t in enumerate(picks):
            ax = axes[r][c]
            ax.imshow(frames[t], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == len(rows) - 1:
                ax.set_xlabel(f"t={t}", fontsize=7)
        axes[r][0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
