"""Energy-based voice activity detection and silence removal.

wav2vec-U (and speech2sign-U's character level, section 3.1) removes the silences between
speech before extracting features. This detector marks 10 ms frames whose energy is within
`range_db` of the loudest frame and above the noise floor by `floor_db`, fills pauses shorter
than `min_silence`, drops blips shorter than `min_speech`, and pads each speech span by `pad`.
"""
from typing import List, Tuple

import numpy as np


def frame_energy_db(wav: np.ndarray, sample_rate: int, win: float = 0.025, hop: float = 0.010) -> np.ndarray:
    """Log energy of 25 ms frames every 10 ms: (frames,)."""
    w, h = int(win * sample_rate), int(hop * sample_rate)
    wav = np.asarray(wav, dtype=np.float64)
    if len(wav) < w:
        wav = np.pad(wav, (0, w - len(wav)))
    frames = np.lib.stride_tricks.sliding_window_view(wav, w)[::h]
    return 10.0 * np.log10((frames**2).mean(axis=1) + 1e-12)


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of the runs of True in a boolean vector."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def speech_spans(
    wav: np.ndarray,
    sample_rate: int = 16000,
    range_db: float = 40.0,
    floor_db: float = 6.0,
    min_silence: float = 0.2,
    min_speech: float = 0.05,
    pad: float = 0.05,
) -> List[Tuple[int, int]]:
    """Speech as [(start, end)) sample spans, in order and not overlapping; [] for silence."""
    hop = int(0.010 * sample_rate)
    energy = frame_energy_db(wav, sample_rate)
    floor = np.percentile(energy, 10)
    speech = (energy > energy.max() - range_db) & (energy > floor + floor_db)
    for start, end in _runs(~speech):  # short pauses belong to the speech around them
        if 0 < start and end < len(speech) and (end - start) * 0.010 < min_silence:
            speech[start:end] = True
    spans = []
    for start, end in _runs(speech):
        if (end - start) * 0.010 < min_speech:
            continue
        a = max(0, start * hop - int(pad * sample_rate))
        b = min(len(wav), end * hop + int((0.025 + pad) * sample_rate))  # a frame reaches 25 ms past its start
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return spans


def remove_silence(wav: np.ndarray, spans: List[Tuple[int, int]]) -> np.ndarray:
    """The speech spans of `wav` joined, silences between them left out."""
    return np.concatenate([wav[a:b] for a, b in spans]) if spans else wav[:0]


def trim_silence(wav: np.ndarray, sample_rate: int = 16000, **kwargs) -> np.ndarray:
    """`wav` from the start of its first speech span to the end of its last."""
    spans = speech_spans(wav, sample_rate, **kwargs)
    return wav[spans[0][0] : spans[-1][1]] if spans else wav[:0]
