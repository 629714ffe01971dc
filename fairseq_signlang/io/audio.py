"""Audio files and wav2vec-style manifests ({split}.tsv: the root folder, then
`relative/path<TAB>num_samples` per line), read with soundfile (no torchaudio)."""
import os
from math import gcd
from typing import Iterable, List, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from fairseq_signlang.io.readers import CorpusError, numbered_lines

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def read_audio(path: str, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples at `sample_rate` (resampled when the file has another rate)."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: audio file not found")
    try:
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises its own LibsndfileError / RuntimeError
        raise CorpusError(f"{path}: unreadable audio ({e})") from None
    if wav.shape[0] == 0:
        raise CorpusError(f"{path}: audio has no samples")
    wav = wav.mean(axis=1)
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
    if not np.isfinite(wav).all():
        raise CorpusError(f"{path}: audio holds non-finite samples")
    return wav


def audio_frames(path: str) -> int:
    """Number of samples in the file (at its own rate), checking that it is readable and not empty."""
    try:
        frames = sf.info(path).frames
    except Exception as e:
        raise CorpusError(f"{path}: unreadable audio ({e})") from None
    if frames <= 0:
        raise CorpusError(f"{path}: audio has no samples")
    return frames


def find_audio(root: str, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> List[str]:
    """Audio files under `root`, as sorted relative paths."""
    exts = tuple(e.lower() for e in extensions)
    out = []
    for folder, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(folder, f), root) for f in files if f.lower().endswith(exts)]
    return sorted(out)


def read_manifest(path: str) -> Tuple[str, List[Tuple[str, int]]]:
    """(root, [(relative path, num_samples)]) of a manifest; checks every row and that its file exists."""
    root, rows = numbered_manifest_rows(path)
    return root, [(rel, n) for _, rel, n in rows]


def numbered_manifest_rows(path: str, missing_ok: bool = False) -> Tuple[str, List[Tuple[str, str, int]]]:
    """(root, [(`manifest:line`, relative path, num_samples)]), checked as read_manifest does; with
    `missing_ok` a row whose file does not exist is kept, for an extraction to skip and list."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: manifest not found")
    lines = list(numbered_lines(path))
    if not lines or not lines[0][1].strip():
        raise CorpusError(f"{path}:1: expected the root folder on the first line")
    root = lines[0][1].strip()
    rows = []
    for lineno, line in lines[1:]:
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise CorpusError(f"{path}:{lineno}: expected `relative/path<TAB>num_samples`, got {line.strip()!r}")
        if not missing_ok and not os.path.isfile(os.path.join(root, parts[0])):
            raise CorpusError(f"{path}:{lineno}: {os.path.join(root, parts[0])} does not exist")
        rows.append((f"{path}:{lineno}", parts[0], int(parts[1])))
    return root, rows
