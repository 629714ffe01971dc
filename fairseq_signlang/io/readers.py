"""Readers for unit and feature corpora that check what they read.

Every problem is reported with the file and, where there is one, the 1-based line:
a missing file, an empty sentence, a unit that is not in the dictionary, a `.lengths`
file that disagrees with its `.npy`, non-finite feature values.
"""
import os
from typing import List, Tuple

import numpy as np
import torch
from fairseq.data import Dictionary


class CorpusError(ValueError):
    """Bad input data; the message names the file (and line)."""


def require_file(path: str, what: str = "file") -> str:
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: {what} not found")
    return path


def numbered_lines(path: str):
    """(1-based line number, text) of a UTF-8 text file; undecodable bytes name their line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorpusError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_dictionary(path: str) -> Dictionary:
    require_file(path, "dictionary")
    try:
        return Dictionary.load(path)
    except Exception as e:  # fairseq raises plain ValueError/RuntimeError without the path
        raise CorpusError(f"{path}: not a fairseq dictionary ({e})") from e


def read_units(path: str, dictionary: Dictionary, dict_path: str = "the dictionary") -> List[torch.Tensor]:
    """One sentence of space-separated unit symbols per line -> list of LongTensors of indices."""
    require_file(path, "unit file")
    out = []
    for lineno, line in numbered_lines(path):
        symbols = line.split()
        if not symbols:
            raise CorpusError(f"{path}:{lineno}: empty sentence")
        ids = [dictionary.indices.get(s, -1) for s in symbols]
        if -1 in ids:
            bad = symbols[ids.index(-1)]
            raise CorpusError(f"{path}:{lineno}: unit {bad!r} is not in {dict_path}")
        if min(ids) < dictionary.nspecial:
            bad = symbols[int(np.argmin(ids))]
            raise CorpusError(f"{path}:{lineno}: {bad!r} is a special symbol, not a unit")
        out.append(torch.tensor(ids, dtype=torch.long))
    if not out:
        raise CorpusError(f"{path}: no sentences")
    return out


def read_cluster_ids(path: str) -> List[np.ndarray]:
    """One utterance of space-separated cluster ids per line ({name}.km) -> int64 arrays."""
    require_file(path, "cluster id file")
    rows = []
    for lineno, line in numbered_lines(path):
        ids = line.split()
        if not ids or not all(x.isdigit() for x in ids):
            raise CorpusError(f"{path}:{lineno}: expected cluster ids (non-negative integers), got {line.strip()!r}")
        rows.append(np.array(ids, dtype=np.int64))
    if not rows:
        raise CorpusError(f"{path}: no sentences")
    return rows


def read_lengths(path: str) -> np.ndarray:
    require_file(path, "lengths file")
    lengths = []
    for lineno, line in numbered_lines(path):
        s = line.strip()
        if not s.isdigit() or int(s) == 0:
            raise CorpusError(f"{path}:{lineno}: expected a positive integer length, got {s!r}")
        lengths.append(int(s))
    if not lengths:
        raise CorpusError(f"{path}: no lengths")
    return np.asarray(lengths, dtype=np.int64)


def open_feature_array(npy: str) -> np.ndarray:
    """Memory-map a (frames, dim) feature array, checking only its header."""
    require_file(npy, "feature file")
    try:
        feats = np.load(npy, mmap_mode="r")
    except Exception as e:
        raise CorpusError(f"{npy}: not a readable .npy file ({e})") from e
    if feats.ndim != 2:
        raise CorpusError(f"{npy}: expected a 2-D (frames, dim) array, got shape {feats.shape}")
    return feats


def read_features(prefix: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`{prefix}.npy` (all frames, (N, D), memory-mapped) + `{prefix}.lengths`.

    Returns (features, offsets, lengths); utterance i is features[offsets[i]:offsets[i]+lengths[i]].
    """
    npy, len_path = prefix + ".npy", prefix + ".lengths"
    feats = open_feature_array(npy)
    lengths = read_lengths(len_path)
    ends = np.cumsum(lengths)
    if ends[-1] != feats.shape[0]:
        over = np.nonzero(ends > feats.shape[0])[0]
        where = f"line {over[0] + 1} runs past the end" if len(over) else f"its {len(lengths)} lines cover only {ends[-1]}"
        raise CorpusError(
            f"{len_path}:{(over[0] + 1) if len(over) else len(lengths)}: lengths sum to {ends[-1]} but "
            f"{npy} has {feats.shape[0]} rows ({where})"
        )
    offsets = ends - lengths
    chunk = 1 << 16
    for start in range(0, feats.shape[0], chunk):
        block = np.asarray(feats[start : start + chunk])
        bad_rows = np.nonzero(~np.isfinite(block).all(axis=1))[0]
        if len(bad_rows):
            row = start + int(bad_rows[0])
            utt = int(np.searchsorted(ends, row, side="right"))
            raise CorpusError(f"{npy}: row {row} (utterance {utt + 1}, line {utt + 1} of {len_path}) is not finite")
    return feats, offsets, lengths
