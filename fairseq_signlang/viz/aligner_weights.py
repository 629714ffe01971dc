"""Pictures of the sliding-window aligner's length-mapping weights (USLNet figure 3)."""
import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator  # noqa: E402

from fairseq_signlang.io.writers import atomic_open  # noqa: E402
from fairseq_signlang.models.uslnet.sliding_window_aligner import DEFAULT_SHARPNESS, window_distance, length_weights, window_of  # noqa: E402


def plot_length_weights(m: int, n: int, out_png: str, connections: Sequence[str] = ("soft", "hard"),
                        sharpness: float = DEFAULT_SHARPNESS) -> None:
    """One heat map per connection (target rows i down, source columns j across) with each
    row's current window outlined in red, then figure 3's right half: the logit curve
    sharpness * phi(d) with eq. 10's intervals W_c / W_a / W_o and the first target's sources on it."""
    if not connections:
        raise ValueError("connections must name at least one connection")
    weights = [length_weights(m, n, c, sharpness).numpy() for c in connections]
    vmax = max(float(w.max()) for w in weights)
    fig, axes = plt.subplots(1, len(weights) + 1, figsize=(4.2 * (len(weights) + 1), 3.8), squeeze=False)
    for ax, connection, w in zip(axes[0], connections, weights):
        im = ax.imshow(w, cmap="viridis", vmin=0, vmax=vmax, aspect="auto", origin="upper")
        for i in range(n):
            first, last = window_of(i, m, n)
            ax.add_patch(Rectangle((first - 0.5, i - 0.5), last - first, 1, fill=False, edgecolor="red", linewidth=1.5))
        if m * n <= 150:  # small enough to print the weights in the cells
            for i in range(n):
                for j in range(m):
                    ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if w[i, j] > 0.6 * vmax else "white")
        for axis, length in ((ax.xaxis, m), (ax.yaxis, n)):  # positions counted from 1, as in the paper
            axis.set_major_locator(FixedLocator(range(length)) if length <= 30 else MaxNLocator(integer=True))
            axis.set_major_formatter(FuncFormatter(lambda v, _: str(int(v) + 1)))
            axis.set_tick_params(labelsize=7)
        ax.set_xlabel("source position j")
        ax.set_ylabel("target position i")
        ax.set_title(f"{connection}: {m} -> {n}, window {-(-m // n)}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)

    ax = axes[0][-1]
    phi = lambda d: torch.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)  # noqa: E731
    d = torch.linspace(0, 3.2, 200)
    ax.plot(d, sharpness * phi(d), color="black", linewidth=1)
    for lo, hi, name, colour in ((0, 1, "$W_c$", "tab:red"), (1, 2, "$W_a$", "tab:orange"), (2, 3, "$W_o$", "tab:blue")):
        ax.axvspan(lo, hi, color=colour, alpha=0.15)
        ax.text((lo + hi) / 2, sharpness * phi(torch.tensor(0.0)) * 1.02, name, ha="center", va="bottom", fontsize=9)
    d0 = window_distance(torch.tensor([m]), torch.tensor([n]), m, n)[0, 0]  # target 1's distances (m,)
    ax.scatter(d0, sharpness * phi(d0), color="red", zorder=3, s=18)
    if m <= 30:  # label each point with its source positions (several share a distance)
        labels = {}
        for j, dj in enumerate(d0.tolist()):
            labels.setdefault(round(dj, 6), []).append(str(j + 1))
        for dj, js in labels.items():
            ax.annotate(",".join(js), (dj, float(sharpness * phi(torch.tensor(dj)))), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlim(0, 3.2)
    ax.set_ylim(0, sharpness * 0.46)
    ax.set_xlabel(r"distance from target 1's window d ($\sigma$)")
    ax.set_ylabel(r"logit $\beta$ = sharpness $\cdot\ \varphi(d)$")
    ax.set_title(f"eq. 10, sharpness {sharpness:g}: sources of target 1", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
