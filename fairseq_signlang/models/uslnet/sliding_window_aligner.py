"""USLNet's sliding-window aligner (section 2.3, eq. 6-10): maps text and video representation
sequences onto each other in hidden size (dimension mapper M_D, a linear layer) and in length
(length mapper M_L):

    D_v = M_L(M_D_{T->V}(E_t))   (eq. 6)        D_t = M_L(M_D_{V->T}(E_v))   (eq. 7)

Length mapper, source length m -> target length n (either may be the larger): target i is a
weighted sum of ALL source positions, v_i = sum_j alpha_ij t_j, alpha_i = softmax_j(beta_ij)
(eq. 8-9). Signers who translate from text keep a roughly English word order, so each target
has a current window of source positions that dominates:

  * windows: size w = ceil(m / n), target i's window is [floor(i m / n), floor(i m / n) + w).
    The last window ends exactly at m, windows move monotonically with i and every source
    position lies in some window. For m > n neighbouring windows may overlap (6 -> 4: [0, 2),
    [1, 3), [3, 5), [4, 6)); for m < n, w = 1 and runs of at most ceil(n / m) consecutive
    targets share one source position as their window; m == n is the identity.
  * logits (eq. 10): beta_ij = sharpness * phi(d_ij), phi the standard normal density and d_ij
    the distance of source j from target i's window in units of sigma, increasing with
    |j - centre_i|: 2 |j - centre_i| / w in [0, 1) inside the current window W_c (0 at its
    centre); 1 + (e - 1) / w in [1, 2) for the w positions either side of it (the adjacent
    windows W_a, e = 1..w positions past the window's edge); the same line continued, clamped
    at 3, for all other positions W_o. So beta falls in (p(mu+sigma), p(mu)] on W_c,
    (p(mu+2sigma), p(mu+sigma)] on W_a and [p(mu+3sigma), p(mu+2sigma)] on W_o, as in eq. 10.

connection picks the variant compared in tables 4 and 7:
  * "soft" (the paper's method): the softmax above, every source position contributes.
  * "hard": the same logits with everything outside the current window at -inf, so only the
    window contributes.
  * "pooling" (the baseline): the source is zero-padded to a fixed max_source_len and a learned
    linear layer over the length axis maps it to max_target_len positions, of which the first n
    are kept. It has no bias: one added per position to every channel would carry no source.

In a padded batch every example gets the weights of its own (m_b, n_b): padded source positions
get zero weight and padded target rows are zeros.
"""
import math
from typing import Tuple

import torch
import torch.nn as nn

# phi only spans 0.0044 (3 sigma) .. 0.399 (centre), so unscaled the softmax would be almost
# uniform. At 10 a window centre outweighs the first adjacent position by e^1.57 ~ 4.8 and a far
# one by e^3.9 ~ 52: in the paper's 6 -> 4 example the current window takes 71-79 % of the mass
# while every word still contributes (56-75 % for 37 -> 8, 100 -> 10 or 20 -> 1024, where more
# positions lie far away); larger values approach the hard connection.
DEFAULT_SHARPNESS = 10.0


def window_of(i: int, m: int, n: int) -> Tuple[int, int]:
    """Target i's current window over m source positions, as (first, last_exclusive)."""
    _check_lengths(m, n)
    if not 0 <= i < n:
        raise ValueError(f"target position i={i} is outside 0..{n - 1}")
    first = i * m // n
    return first, first + -(-m // n)


def window_distance(m: torch.Tensor, n: torch.Tensor, m_max: int, n_max: int) -> torch.Tensor:
    """d_ij in units of sigma for every example's (m_b, n_b): (B, n_max, m_max); eq. 10's
    W_c / W_a / W_o are d in [0, 1) / [1, 2) / [2, 3]. Padded rows reuse the last real row."""
    m, n = m.view(-1, 1, 1), n.view(-1, 1, 1)                                         # (B, 1, 1)
    i = torch.minimum(torch.arange(n_max, device=m.device).view(1, -1, 1), n - 1)     # (B, n_max, 1)
    j = torch.arange(m_max, device=m.device).view(1, 1, -1)                           # (1, 1, m_max)
    w = (m + n - 1) // n                                                              # (B, 1, 1)
    first = i * m // n                                                                # (B, n_max, 1)
    half = (w - 1) / 2
    delta = (j - (first + half)).abs()                                                # (B, n_max, m_max)
    inside = (j >= first) & (j < first + w)
    return torch.where(inside, 2 * delta / w, (delta + half) / w).clamp(max=3.0)


def _check_lengths(m: int, n: int) -> None:
    for name, value in (("m", m), ("n", n)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer length, got {value!r}")


class LengthMapper(nn.Module):
    """M_L: (B, m, d) with per-example source lengths -> (B, n_max, d) with per-example target
    lengths. Subclasses are the connections of CONNECTIONS; `length_mapper` picks one."""

    def forward(self, x: torch.Tensor, source_lengths: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        B, m_max, _ = x.shape
        for name, lengths in (("source_lengths", source_lengths), ("target_lengths", target_lengths)):
            if lengths.shape != (B,):
                raise ValueError(f"{name} must have shape ({B},), got {tuple(lengths.shape)}")
            if bool((lengths < 1).any()):
                raise ValueError(f"{name} must be positive, got {lengths.tolist()}")
        if int(source_lengths.max()) > m_max:
            raise ValueError(f"source_lengths {source_lengths.tolist()} exceed the input length {m_max}")
        return self.map(x, source_lengths.to(x.device), target_lengths.to(x.device))

    def map(self, x: torch.Tensor, source_lengths: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SoftConnection(LengthMapper):
    """The paper's method: softmax over the Gaussian logits of eq. 10, every source position
    contributes. No parameters."""

    def __init__(self, sharpness: float = DEFAULT_SHARPNESS, **unused):
        super().__init__()
        if not sharpness > 0:
            raise ValueError(f"sharpness must be positive, got {sharpness!r}")
        self.sharpness = sharpness

    def dropped(self, d: torch.Tensor) -> torch.Tensor:
        """Source positions left out of the softmax besides padding: none."""
        return torch.zeros_like(d, dtype=torch.bool)

    def weights(self, m: torch.Tensor, n: torch.Tensor, m_max: int, n_max: int) -> torch.Tensor:
        """alpha for a padded batch: (B, n_max, m_max), zero at padded sources and padded targets."""
        d = window_distance(m, n, m_max, n_max)
        beta = self.sharpness * torch.exp(-0.5 * d * d) / math.sqrt(2 * math.pi)
        drop = torch.arange(m_max, device=m.device).view(1, 1, -1) >= m.view(-1, 1, 1)    # padded sources
        alpha = beta.masked_fill(drop | self.dropped(d), float("-inf")).softmax(-1)
        padded_target = torch.arange(n_max, device=m.device).view(1, -1, 1) >= n.view(-1, 1, 1)
        return alpha.masked_fill(padded_target, 0.0)

    def map(self, x, source_lengths, target_lengths):
        alpha = self.weights(source_lengths, target_lengths, x.shape[1], int(target_lengths.max()))
        return alpha.to(x.dtype) @ x                                                    # (B, n_max, d)


class HardConnection(SoftConnection):
    """The same logits with everything outside the current window at -inf: only the window
    contributes."""

    def dropped(self, d: torch.Tensor) -> torch.Tensor:
        return d >= 1.0                                                                 # outside the current window


class PoolingConnection(LengthMapper):
    """The fixed-length baseline: the source zero-padded to max_source_len, a learned linear
    layer over the length axis to max_target_len positions, the first n kept."""

    def __init__(self, max_source_len: int = 0, max_target_len: int = 0, **unused):
        super().__init__()
        if max_source_len < 1 or max_target_len < 1:
            raise ValueError(f"connection 'pooling' needs positive max_source_len and max_target_len, got {max_source_len} and {max_target_len}")
        self.max_source_len, self.max_target_len = max_source_len, max_target_len
        self.pool = nn.Linear(max_source_len, max_target_len, bias=False)

    def map(self, x, source_lengths, target_lengths):
        n_max = int(target_lengths.max())
        if int(source_lengths.max()) > self.max_source_len:
            raise ValueError(f"source_lengths {source_lengths.tolist()} exceed max_source_len {self.max_source_len}")
        if n_max > self.max_target_len:
            raise ValueError(f"target_lengths {target_lengths.tolist()} exceed max_target_len {self.max_target_len}")
        x = x[:, : self.max_source_len]
        x = x.masked_fill(torch.arange(x.shape[1], device=x.device).view(1, -1, 1) >= source_lengths.view(-1, 1, 1), 0.0)
        x = nn.functional.pad(x, (0, 0, 0, self.max_source_len - x.shape[1]))           # (B, max_source_len, d)
        y = self.pool(x.transpose(1, 2)).transpose(1, 2)[:, :n_max]                     # (B, n_max, d)
        return y.masked_fill(torch.arange(n_max, device=x.device).view(1, -1, 1) >= target_lengths.view(-1, 1, 1), 0.0)


# the variants compared in the paper's tables 4 and 7
CONNECTIONS = {"soft": SoftConnection, "hard": HardConnection, "pooling": PoolingConnection}


def length_mapper(connection: str = "soft", sharpness: float = DEFAULT_SHARPNESS, max_source_len: int = 0, max_target_len: int = 0) -> LengthMapper:
    """The length mapper of a connection type; max_source_len / max_target_len are pooling's."""
    if connection not in CONNECTIONS:
        raise ValueError(f"connection must be one of {tuple(CONNECTIONS)}, got {connection!r}")
    return CONNECTIONS[connection](sharpness=sharpness, max_source_len=max_source_len, max_target_len=max_target_len)


def length_weights(m: int, n: int, connection: str = "soft", sharpness: float = DEFAULT_SHARPNESS) -> torch.Tensor:
    """The fixed length-mapping weights alpha from m source to n target positions: (n, m),
    rows summing to one. Pooling's weights are learned, see PoolingConnection."""
    if connection == "pooling":
        raise ValueError("connection 'pooling' has learned weights: use length_mapper('pooling', ...)")
    mapper = length_mapper(connection, sharpness)
    _check_lengths(m, n)
    return mapper.weights(torch.tensor([m]), torch.tensor([n]), m, n)[0]


class SlidingWindowAligner(nn.Module):
    """Text <-> video representations for cross-modal back-translation: a dimension mapper per
    direction, then the length mapper. The video side is a sequence of frames of the code grid
    (time steps, each of `frame_positions` = h * w code positions), the "n frames" the paper
    aligns words with; keeping a frame whole keeps where in the picture each code is (a hand at
    the chin or at the chest), which averaging code vectors over a window would lose.

    The dimension mappers work on whole frames, factored through a small per-position width so
    they stay affordable for large grids: video -> text projects each code vector to
    `position_dim` and maps the concatenated frame to text_dim; text -> video maps a text state
    to a frame of `position_dim` vectors and each of them to the GPT's width.

    text_dim is the text encoder's hidden size (1024 in the paper), video_dim the codebook vector
    size (256), video_cond_dim the video GPT's hidden size (576). max_text_len / max_video_len
    (in frames) are used by connection 'pooling' only."""

    def __init__(self, text_dim: int, video_dim: int, video_cond_dim: int, frame_positions: int = 1, position_dim: int = 16,
                 connection: str = "soft", sharpness: float = DEFAULT_SHARPNESS, max_text_len: int = 0, max_video_len: int = 0):
        super().__init__()
        if connection == "pooling" and (max_text_len < 1 or max_video_len < 1):
            raise ValueError(f"connection 'pooling' needs positive max_text_len and max_video_len, got {max_text_len} and {max_video_len}")
        if frame_positions < 1 or position_dim < 1:
            raise ValueError(f"frame_positions and position_dim must be positive, got {frame_positions} and {position_dim}")
        self.frame_positions, self.position_dim = frame_positions, position_dim
        frame_dim = frame_positions * position_dim
        self.video_in = nn.Linear(video_dim, position_dim)                              # per code position
        self.video_to_text_dim = nn.Linear(frame_dim, text_dim)                         # M_D_{V->T}, a whole frame
        self.text_to_video_dim = nn.Linear(text_dim, frame_dim)                         # M_D_{T->V}, to a whole frame
        self.video_out = nn.Linear(position_dim, video_cond_dim)                        # per code position
        self.text_to_video_len = length_mapper(connection, sharpness, max_text_len, max_video_len)
        self.video_to_text_len = length_mapper(connection, sharpness, max_video_len, max_text_len)

    def text_to_video(self, text_states: torch.Tensor, text_lengths: torch.Tensor, video_frames: int) -> torch.Tensor:
        """Eq. 6: (B, m, text_dim) text encoder states -> (B, video_frames * frame_positions,
        video_cond_dim), the video GPT's conditioning over its code grid in raster order (the
        same number of frames for every example)."""
        if int(video_frames) != video_frames or video_frames < 1:
            raise ValueError(f"video_frames must be a positive integer, got {video_frames!r}")
        B = text_states.shape[0]
        x = self.text_to_video_dim(text_states)                                         # (B, m, P * r)
        x = self.text_to_video_len(x, text_lengths, torch.full_like(text_lengths, int(video_frames)))  # (B, n, P * r)
        x = x.view(B, int(video_frames) * self.frame_positions, self.position_dim)      # (B, n * P, r)
        return self.video_out(x)                                                        # (B, n * P, video_cond_dim)

    def video_to_text(self, video_states: torch.Tensor, text_lengths: torch.Tensor) -> torch.Tensor:
        """Eq. 7: (B, n, frame_positions, video_dim) codebook embeddings, n frames each ->
        (B, m_max, text_dim) text decoder inputs, zero past each example's text length."""
        B, n, P, _ = video_states.shape
        if P != self.frame_positions:
            raise ValueError(f"video frames have {P} code positions, the aligner was built for {self.frame_positions}")
        x = self.video_in(video_states).reshape(B, n, P * self.position_dim)             # (B, n, P * r)
        x = self.video_to_text_dim(x)                                                   # (B, n, text_dim)
        return self.video_to_text_len(x, torch.full_like(text_lengths, n), text_lengths)
