"""Sign-sized segments of unlabelled sign video, and one discrete unit per segment.

USLNet's lexicon step needs the video corpus as sentences of sign units, one unit per sign,
without any annotation. Two label-free cues cut a clip into signs:
  - its length: a clip of rank q among the video corpus's clip lengths gets the sentence
    length at quantile q of the (unpaired) text corpus (`LengthMatchedCounts`), since a
    sentence of more words is signed as a longer clip;
  - equal parts (`uniform_bounds`), or the hands' speed: between signs the hands travel from
    one sign's place to the next's, faster than within a sign, so the boundaries can go on the
    highest peaks of the speed (`speed_peak_bounds`; equal parts without enough peaks).
Each segment is pooled to a fixed-size vector (the means of its first and second half) and
k-means over the training segments gives the units. Where a manifest has its text, each
segment's word for a purity report is the word at the same relative position in the sentence
(`position_labels`), an estimate that assumes equally long signs.
"""
from typing import List, Sequence, Tuple

import numpy as np

from fairseq_signlang.features.pooling import mean_of_pieces

Bounds = List[Tuple[int, int]]  # per segment: first frame, end frame


class LengthMatchedCounts:
    """Clip length in frames -> number of signs, by matching the clip-length distribution of the
    video corpus to the sentence-length distribution of the text corpus (quantile to quantile)."""

    def __init__(self, clip_frames: Sequence[int], sentence_lengths: Sequence[int]):
        if len(clip_frames) == 0 or len(sentence_lengths) == 0:
            raise ValueError("LengthMatchedCounts needs clip lengths and sentence lengths")
        self.clip_frames = np.sort(np.asarray(clip_frames, dtype=np.float64))
        self.sentence_lengths = np.asarray(sentence_lengths, dtype=np.float64)

    def __call__(self, frames: int) -> int:
        lo, hi = np.searchsorted(self.clip_frames, frames, "left"), np.searchsorted(self.clip_frames, frames, "right")
        q = min(max((lo + hi) / 2 / len(self.clip_frames), 0.0), 1.0)  # mid-rank of the clip among the corpus's clips
        return max(1, min(int(frames), int(np.quantile(self.sentence_lengths, q, method="nearest"))))


def hand_speed(feats: np.ndarray, position_columns: Sequence[int], smooth: int = 3) -> np.ndarray:
    """(T, D) features -> (T,): the frame-to-frame displacement of the given position columns
    (the hands' x, y), smoothed by a moving average of `smooth` frames."""
    positions = np.asarray(feats, dtype=np.float64)[:, list(position_columns)]  # (T, P)
    speed = np.r_[0.0, np.linalg.norm(np.diff(positions, axis=0), axis=1)] if len(positions) > 1 else np.zeros(len(positions))
    if smooth > 1 and len(speed) >= smooth:
        speed = np.convolve(speed, np.ones(smooth) / smooth, mode="same")
    return speed


def uniform_bounds(frames: int, count: int) -> Bounds:
    edges = np.linspace(0, frames, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def speed_peak_bounds(speed: np.ndarray, count: int, min_gap: int) -> Bounds:
    """`count` segments cut at the `count - 1` highest local maxima of the speed that are at
    least `min_gap` frames from each other and from the clip's ends; equal parts where there
    are not enough such maxima."""
    T = len(speed)
    peaks = [t for t in range(1, T - 1) if speed[t] >= speed[t - 1] and speed[t] > speed[t + 1]]
    cuts: List[int] = []
    for t in sorted(peaks, key=lambda t: -speed[t]):
        if len(cuts) == count - 1:
            break
        if min_gap <= t <= T - min_gap and all(abs(t - c) >= min_gap for c in cuts):
            cuts.append(t)
    if len(cuts) < count - 1:
        return uniform_bounds(T, count)
    edges = [0, *sorted(cuts), T]
    return list(zip(edges[:-1], edges[1:]))


def pool_segments(feats: np.ndarray, bounds: Bounds, pieces: int = 2) -> np.ndarray:
    """(T, D) -> (segments, pieces * D): each segment's means over `pieces` equal parts."""
    return np.stack([mean_of_pieces(feats[a:b], pieces) for a, b in bounds]).astype(np.float32)


def position_labels(bounds: Bounds, frames: int, words: Sequence[str]) -> List[str]:
    """Per segment, the word at the relative position of its centre (for purity reports only)."""
    return [words[min(int((a + b) / 2 / frames * len(words)), len(words) - 1)] for a, b in bounds]
