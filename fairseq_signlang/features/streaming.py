"""Resumable streaming of per-utterance features to `{prefix}.npy` + `{prefix}.lengths`.

Beside them, `{prefix}.ids` holds the manifest row of each utterance (line-aligned with
`.lengths`) and `{prefix}.bad` the rows left out with their reason. For each utterance the
frames are appended first (npy-append-array), then its id, then its length: the `.lengths`
line is the commit. Opening a writer on existing files keeps exactly the committed
utterances, cutting off frames or an id written before a kill, so a rerun finishes with files
identical to an uninterrupted run and nothing is held in memory but one utterance.

Completeness: opening a writer first writes `{prefix}.partial`, and only `finish()` (called once
every row the output is meant to hold has been appended or skipped) deletes it. While it exists
the readers of io/readers.py refuse the corpus as incomplete (the rule is in that module's
docstring), so the consistent-looking pair an error or a kill leaves behind cannot pass for a
whole corpus; rerunning the same extraction resumes and then finishes it.
"""
import os
from typing import List, Set

import numpy as np
from npy_append_array import NpyAppendArray
from npy_append_array.npy_append_array import recover

from fairseq_signlang.io.readers import PARTIAL_SUFFIX


def _complete_lines(path: str) -> list:
    """The newline-terminated lines of a file, cutting a partial last line off the file."""
    if not os.path.exists(path):
        return []
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            f.truncate(end)
    return data[:end].decode("utf-8").splitlines()


def _keep_lines(path: str, lines: list) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def _truncate_rows(npy: str, rows: int) -> None:
    """Cut an .npy written by npy-append-array to its first `rows` rows, header included."""
    with open(npy, "rb+") as f:
        version = np.lib.format.read_magic(f)
        shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        f.truncate(f.tell() + rows * row_bytes)
    recover(npy)  # rewrite the header's row count to match the data


def _write_marker(path: str, text: str) -> None:
    """The in-progress marker, on disk (fsynced) before any output file is touched: only its
    existence counts, so a marker cut short by a crash still marks the output incomplete."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


class ResumableFeatureWriter:
    def __init__(self, prefix: str, source: str = ""):
        """`source`: what is being extracted (manifest, rows), kept in `{prefix}.partial` so the
        error for an unfinished output can say which extraction to rerun."""
        self.prefix = prefix
        os.makedirs(os.path.dirname(os.path.abspath(prefix)) or ".", exist_ok=True)
        self.marker_path = prefix + PARTIAL_SUFFIX
        _write_marker(self.marker_path, source or "feature extraction")
        self.npy_path = prefix + ".npy"
        lengths = [int(x) for x in _complete_lines(prefix + ".lengths")]
        ids = _complete_lines(prefix + ".ids")[: len(lengths)]
        if len(ids) < len(lengths):
            raise ValueError(f"{prefix}.ids has {len(ids)} lines for {len(lengths)} in {prefix}.lengths: not a file pair this writer made")
        _keep_lines(prefix + ".ids", ids)
        rows = sum(lengths)
        if os.path.exists(self.npy_path):
            if rows:
                _truncate_rows(self.npy_path, rows)
            else:
                os.remove(self.npy_path)
        bad = [line.split("\t", 1) for line in _complete_lines(prefix + ".bad")]
        self.bad_reasons: List[str] = [reason for _, reason in bad]
        self.done: Set[int] = {int(i) for i in ids} | {int(row) for row, _ in bad}
        self.num_written = len(lengths)
        self._npy = NpyAppendArray(self.npy_path)
        self._ids = open(prefix + ".ids", "a", encoding="utf-8")
        self._lengths = open(prefix + ".lengths", "a", encoding="utf-8")
        self._bad = open(prefix + ".bad", "a", encoding="utf-8")

    def append(self, row: int, feats: np.ndarray) -> None:
        """Commit the features (T, D) of manifest row `row`."""
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise ValueError(f"row {row}: expected (frames, dim) features with frames > 0, got {feats.shape}")
        self._npy.append(np.ascontiguousarray(feats, dtype=np.float32))
        self._npy.fp.flush()
        for f, text in ((self._ids, str(row)), (self._lengths, str(feats.shape[0]))):
            f.write(text + "\n")
            f.flush()
        os.fsync(self._lengths.fileno())
        self.done.add(row)
        self.num_written += 1

    def skip(self, row: int, reason: str) -> None:
        """Record a manifest row left out (a bad file), so a rerun does not try it again."""
        self._bad.write(f"{row}\t{reason}\n")
        self._bad.flush()
        self.bad_reasons.append(reason)
        self.done.add(row)

    def close(self) -> None:
        """Close the files; the output stays marked incomplete unless `finish()` was called."""
        self._npy.close()
        for f in (self._ids, self._lengths, self._bad):
            f.close()

    def finish(self) -> None:
        """Close the files and mark the output complete: call it only when every row it is meant
        to hold has been appended or skipped."""
        self.close()
        for path in (self.npy_path, self.prefix + ".ids", self.prefix + ".bad"):  # on disk before the marker goes
            if os.path.exists(path):
                with open(path, "rb+") as f:
                    os.fsync(f.fileno())
        if os.path.exists(self.marker_path):
            os.remove(self.marker_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
