"""Readers for unit and feature corpora that check what they read.

Every problem is reported with the file and, where there is one, the 1-based line:
a missing file, an empty sentence, a unit that is not in the dictionary, a negative or
malformed dictionary count, a `.lengths` file that disagrees with its `.npy` (at the first
line where the running total of lengths passes the array's rows), features that are not
floating point, non-finite feature values.

Complete and incomplete feature corpora. A feature extraction (features/pipeline.py through
features/streaming.py's ResumableFeatureWriter) streams `{prefix}.npy` + `{prefix}.lengths` one
utterance at a time, so when it stops early (an error, a kill) the pair it leaves is consistent
and would load, yet holds only part of its manifest. The rule: **a feature corpus
`{prefix}.npy` + `{prefix}.lengths` is incomplete while `{prefix}.partial` exists.** The
extraction writes that marker before it touches any output file and deletes it only after the
last row of its manifest (or shard) has been written or listed in `{prefix}.bad`; every reader
of a feature corpus here (`read_lengths`, `open_feature_array`, `read_features`, and through them
merge_shards, the tasks, pooling, clustering and the CPC encoder) refuses a corpus with the
marker, naming the file and telling how to finish it: rerun the same extraction command, which
resumes after the last utterance written. Every other writer of `.npy` + `.lengths` pairs
(`write_features`, `atomic_array_appender` users: pooling, PCA, merge_shards, the CPC encoder,
the corpus builders) writes complete files under a temporary name and renames them, so it never
needs the marker, and what it wrote loads as before.
"""
import os
from typing import List, Tuple

import numpy as np
import torch
from fairseq.data import Dictionary


class CorpusError(ValueError):
    """Bad input data; the message names the file (and line)."""


PARTIAL_SUFFIX = ".partial"  # `{prefix}.partial`: an extraction into `prefix` has not finished


def check_complete(prefix: str, what: str) -> None:
    """Refuse the feature corpus `prefix` while an extraction into it is unfinished (see the
    module docstring); `what` is the file being read, named in the message."""
    marker = prefix + PARTIAL_SUFFIX
    if not os.path.exists(marker):
        return
    try:
        with open(marker, encoding="utf-8", errors="replace") as f:
            source = f.readline().strip()
    except OSError:
        source = ""
    raise CorpusError(
        f"{what}: incomplete: the feature extraction writing {prefix}.npy/.lengths stopped before the end of its manifest"
        f"{f' ({source})' if source else ''}, so it holds only part of the corpus ({marker} marks it). "
        f"Rerun the same extraction command to resume it from the last utterance written."
    )


def _feature_prefix(path: str, suffix: str) -> str:
    return path[: -len(suffix)] if path.endswith(suffix) else path


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


def check_dictionary_lines(path: str) -> None:
    """Each line `symbol count [#fairseq:overwrite]`, parsed as fairseq's Dictionary.add_from_file
    parses it, with a count that is a non-negative integer and no symbol twice (unless flagged
    to overwrite); fairseq itself accepts negative counts and names no line."""
    seen = set()
    for lineno, line in numbered_lines(path):
        parts = line.rstrip().rsplit(" ", 1)
        overwrite = len(parts) == 2 and parts[1] == "#fairseq:overwrite"
        if overwrite:
            parts = parts[0].rsplit(" ", 1)
        if len(parts) != 2:
            raise CorpusError(f"{path}:{lineno}: expected `symbol count` (fairseq dictionary), got {line.strip()!r}")
        symbol, field = parts
        try:
            count = int(field)
        except ValueError:
            raise CorpusError(f"{path}:{lineno}: count of {symbol!r} is not an integer: {field!r}") from None
        if count < 0:
            raise CorpusError(f"{path}:{lineno}: count of {symbol!r} is negative ({count}); counts are occurrences, 0 or more")
        if symbol in seen and not overwrite:
            raise CorpusError(f"{path}:{lineno}: symbol {symbol!r} is listed twice (add #fairseq:overwrite to mean it)")
        seen.add(symbol)


def load_dictionary(path: str) -> Dictionary:
    require_file(path, "dictionary")
    check_dictionary_lines(path)
    try:
        return Dictionary.load(path)
    except Exception as e:  # fairseq raises plain ValueError/RuntimeError without the path
        raise CorpusError(f"{path}: not a fairseq dictionary ({e})") from e


def read_units(path: str, dictionary: Dictionary, dict_path: str = "the dictionary") -> List[torch.Tensor]:
    """One sentence of space-separated unit symbols per line -> list of LongTensors of indices."""
    ids, lengths = read_units_flat(path, dictionary, dict_path)
    return list(ids.split(lengths.tolist()))


def read_units_flat(path: str, dictionary: Dictionary, dict_path: str = "the dictionary") -> Tuple[torch.Tensor, torch.Tensor]:
    """`read_units` as one LongTensor of all indices and one of sentence lengths: what packed
    corpora hold, without a tensor per line (290k sentences: about 1.5 s instead of 11). Checks
    and messages are read_units': the first bad line of the file is named."""
    require_file(path, "unit file")
    symbols, lengths, unreadable = [], [], None
    try:
        for _, line in numbered_lines(path):
            words = line.split()
            symbols.extend(words)
            lengths.append(len(words))
    except CorpusError as e:  # not UTF-8: reported unless an earlier line is already wrong
        unreadable = e
    get = dictionary.indices.get
    ids = np.fromiter((get(w, -1) for w in symbols), dtype=np.int64, count=len(symbols))
    lens = np.asarray(lengths, dtype=np.int64)
    bad_token = np.flatnonzero(ids < dictionary.nspecial)  # unknown (-1) or a special symbol
    empty = np.flatnonzero(lens == 0)
    ends = np.cumsum(lens)
    first_token_line = int(np.searchsorted(ends, bad_token[0], side="right")) if len(bad_token) else len(lens)
    first_empty = int(empty[0]) if len(empty) else len(lens)
    if first_empty < first_token_line:
        raise CorpusError(f"{path}:{first_empty + 1}: empty sentence")
    if first_token_line < len(lens):
        i = first_token_line
        line_ids, line_symbols = ids[ends[i] - lens[i] : ends[i]], symbols[ends[i] - lens[i] : ends[i]]
        if (line_ids == -1).any():
            raise CorpusError(f"{path}:{i + 1}: unit {line_symbols[int(np.argmax(line_ids == -1))]!r} is not in {dict_path}")
        raise CorpusError(f"{path}:{i + 1}: {line_symbols[int(np.argmin(line_ids))]!r} is a special symbol, not a unit")
    if unreadable is not None:
        raise unreadable
    if not len(lens):
        raise CorpusError(f"{path}: no sentences")
    return torch.from_numpy(ids), torch.from_numpy(lens)


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
    check_complete(_feature_prefix(path, ".lengths"), path)
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
    """Memory-map a (frames, dim) floating-point feature array, checking only its header (and
    that no extraction into it is unfinished)."""
    require_file(npy, "feature file")
    check_complete(_feature_prefix(npy, ".npy"), npy)
    try:
        feats = np.load(npy, mmap_mode="r")
    except Exception as e:
        raise CorpusError(f"{npy}: not a readable .npy file ({e})") from e
    if feats.ndim != 2:
        raise CorpusError(f"{npy}: expected a 2-D (frames, dim) array, got shape {feats.shape}")
    if not np.issubdtype(feats.dtype, np.floating):
        raise CorpusError(f"{npy}: feature values are {feats.dtype}, expected floating point (e.g. float32); "
                          f"integer ids belong in a unit file (.km / .src), not a feature array")
    return feats


def check_lengths_match(len_path: str, lengths: np.ndarray, npy: str, rows: int) -> np.ndarray:
    """The running ends of `lengths`, checked against the `rows` of `npy`. A mismatch names the
    first line of `len_path` whose running total passes `rows`, or, when the lengths stop short,
    the last line (after it, rows of the array belong to no utterance)."""
    ends = np.cumsum(lengths)
    if len(ends) and ends[-1] == rows:
        return ends
    over = np.nonzero(ends > rows)[0]
    if len(over):
        line = int(over[0]) + 1
        before = int(ends[line - 2]) if line > 1 else 0
        raise CorpusError(
            f"{len_path}:{line}: lengths sum to {int(ends[-1])} but {npy} has {rows} rows (line {line} runs past the end: "
            f"lines 1..{line} need {int(ends[line - 1])} rows, {rows - before} were left for line {line}'s {int(lengths[line - 1])})"
        )
    total = int(ends[-1]) if len(ends) else 0
    raise CorpusError(
        f"{len_path}:{len(lengths)}: lengths sum to {total} but {npy} has {rows} rows "
        f"(its {len(lengths)} lines cover only {total}; the last {rows - total} rows belong to no line)"
    )


def read_features(prefix: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`{prefix}.npy` (all frames, (N, D), memory-mapped) + `{prefix}.lengths`.

    Returns (features, offsets, lengths); utterance i is features[offsets[i]:offsets[i]+lengths[i]].
    """
    npy, len_path = prefix + ".npy", prefix + ".lengths"
    feats = open_feature_array(npy)
    lengths = read_lengths(len_path)
    ends = check_lengths_match(len_path, lengths, npy, feats.shape[0])
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
