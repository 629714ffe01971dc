"""Writers that never leave a half-written file: write to a temporary name, then rename."""
import contextlib
import json
import os
from collections import Counter
from typing import Iterable, Sequence

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs):
    """Open a temporary sibling of `path`; it replaces `path` only if the block finishes."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_array_appender(path: str):
    """An NpyAppendArray on a temporary sibling of `path` (an .npy); it replaces `path` only if
    the block finishes, so rows are streamed without a half-written array ever standing there."""
    from npy_append_array import NpyAppendArray

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}.npy"
    writer = NpyAppendArray(tmp, delete_if_exists=True)
    try:
        yield writer
        writer.close()
        os.replace(tmp, path)
    finally:
        writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj) -> None:
    with atomic_open(path, encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def write_lines(path: str, lines: Iterable[str]) -> None:
    with atomic_open(path, encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def write_unit_sentences(path: str, sentences: Iterable[Sequence]) -> None:
    write_lines(path, (" ".join(map(str, s)) for s in sentences))


def write_cluster_ids(path: str, ids: np.ndarray, offsets: Sequence[int], lengths: Sequence[int]) -> None:
    """A `.km` file: the cluster id of every frame, one sentence of space-separated ids per line
    (sentence i is ids[offsets[i] : offsets[i] + lengths[i]]); read back by read_cluster_ids."""
    with atomic_open(path, encoding="utf-8") as f:
        for o, n in zip(offsets, lengths):
            f.write(" ".join(map(str, ids[o : o + n])) + "\n")


def write_features(prefix: str, feats: np.ndarray, lengths: Sequence[int]) -> None:
    """`{prefix}.npy` (all frames, (N, D)) + `{prefix}.lengths`, the wav2vec-U feature layout."""
    if sum(lengths) != len(feats):
        raise ValueError(f"{prefix}: lengths sum to {sum(lengths)} but there are {len(feats)} frames")
    # both files are complete before either is renamed into place
    with atomic_open(prefix + ".npy", "wb") as npy, atomic_open(prefix + ".lengths", encoding="utf-8") as lengths_file:
        np.save(npy, feats)
        lengths_file.writelines(f"{n}\n" for n in lengths)


def write_dictionary(path: str, sentences: Iterable[Sequence], symbols: Sequence = ()) -> None:
    """fairseq dictionary (`symbol count`, most frequent first) of the symbols in `sentences`,
    plus `symbols` that did not occur (count 0), so every possible unit has an index."""
    counts = Counter(str(u) for s in sentences for u in s)
    for sym in symbols:
        counts.setdefault(str(sym), 0)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    write_lines(path, (f"{sym} {n}" for sym, n in ordered))


def save_array(path: str, arr: np.ndarray) -> None:
    """np.save under a temporary name, renamed when complete."""
    with atomic_open(path, "wb") as f:
        np.save(f, arr)
