"""From frame features to segment and word features (wav2vec-U's merging, speech2sign-U's
word pooling), and the word alignments that drive it."""
import json
from typing import List, Sequence, Tuple

import numpy as np

from fairseq_signlang.io.readers import CorpusError, numbered_lines

Word = Tuple[str, float, float]  # word, start, end (seconds)


def merge_equal_clusters(feats: np.ndarray, clusters: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean-pool runs of consecutive frames with the same cluster: (segments, D), (segments,) cluster ids."""
    starts = np.flatnonzero(np.r_[True, clusters[1:] != clusters[:-1]])
    sums = np.add.reduceat(np.asarray(feats, dtype=np.float64), starts, axis=0)
    counts = np.diff(np.r_[starts, len(clusters)])
    return (sums / counts[:, None]).astype(np.float32), clusters[starts]


def mean_of_pieces(frames: np.ndarray, pieces: int = 1) -> np.ndarray:
    """(T, D) -> (pieces * D,): the means of `pieces` consecutive, nearly equal parts, joined
    (a part with no frame of its own takes the nearest one)."""
    bounds = np.linspace(0, len(frames), pieces + 1)
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo = min(int(np.floor(a)), len(frames) - 1)
        parts.append(frames[lo : max(lo + 1, int(np.ceil(b)))].mean(axis=0))
    return np.concatenate(parts)


def pool_words(feats: np.ndarray, words: Sequence[Word], frame_rate: float, where: str, pieces: int = 1) -> np.ndarray:
    """Mean of the frames inside each word: (len(words), D), or with pieces > 1 the means of
    that many equal parts of the word joined, (len(words), pieces * D), which keeps the order
    of sounds within a word for features without context (log-mels). `where` names the
    alignment line in errors. A word shorter than a frame takes the frame it starts in."""
    n = feats.shape[0]
    duration = n / frame_rate
    out = np.empty((len(words), pieces * feats.shape[1]), dtype=np.float32)
    for i, (word, start, end) in enumerate(words):
        if not 0 <= start < end:
            raise CorpusError(f"{where}: word {word!r} has start {start} and end {end}")
        if end > duration + 2.0 / frame_rate:  # allow the frame rounding of the feature extractor
            raise CorpusError(f"{where}: word {word!r} ends at {end:.2f} s but the audio's features cover {duration:.2f} s")
        a = min(int(np.floor(start * frame_rate)), n - 1)
        b = max(a + 1, min(int(np.ceil(end * frame_rate)), n))
        out[i] = mean_of_pieces(feats[a:b], pieces)
    return out


def read_alignment_jsonl(path: str) -> List[List[Word]]:
    """One JSON line per utterance: a list of {"word", "start", "end"} objects or of
    [word, start, end] triples (seconds)."""
    out = []
    for lineno, line in numbered_lines(path):
        try:
            items = json.loads(line)
            words = [(str(w["word"]), float(w["start"]), float(w["end"])) if isinstance(w, dict) else (str(w[0]), float(w[1]), float(w[2])) for w in items]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise CorpusError(f"{path}:{lineno}: not a list of (word, start, end) ({e})") from None
        if not words:
            raise CorpusError(f"{path}:{lineno}: no words")
        out.append(words)
    return out


def read_librispeech_alignments(path: str) -> dict:
    """LibriSpeech forced-alignment text (`utt-id ",W1,W2," "t1,t2,t3"`, end times in seconds,
    empty words for silences) -> {utt-id: [(word, start, end)]} without the silences."""
    out = {}
    for lineno, line in numbered_lines(path):
        parts = line.split()
        if not parts:
            continue
        try:
            utt, words, ends = parts[0], parts[1].strip('"').split(","), [float(t) for t in parts[2].strip('"').split(",")]
        except (IndexError, ValueError) as e:
            raise CorpusError(f"{path}:{lineno}: expected `utt-id \"words\" \"end times\"` ({e})") from None
        if len(words) != len(ends):
            raise CorpusError(f"{path}:{lineno}: {len(words)} words but {len(ends)} end times")
        starts = [0.0] + ends[:-1]
        out[utt] = [(w.lower(), s, e) for w, s, e in zip(words, starts, ends) if w]
    return out
