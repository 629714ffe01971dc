"""Feature extraction over a manifest of audio files or sign clips: sharded, resumable, streaming.

Shard r of n takes a contiguous block of manifest rows (as wav2vec-U's scripts split a
corpus), so merging the shards in rank order restores the manifest order.
"""
import os
from typing import Callable, Optional, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError, read_lengths
from fairseq_signlang.io.writers import atomic_array_appender, save_array, write_lines
from fairseq_signlang.io.audio import read_audio, read_manifest
from fairseq_signlang.io.video import read_clip_manifest, read_video
from fairseq_signlang.features.streaming import ResumableFeatureWriter


def shard_prefix(prefix: str, rank: int, nshard: int) -> str:
    return prefix if nshard == 1 else f"{prefix}_{rank}_{nshard}"


def shard_rows(num_rows: int, rank: int, nshard: int) -> range:
    if not 0 <= rank < nshard:
        raise ValueError(f"rank {rank} is outside 0..{nshard - 1}")
    return range(num_rows * rank // nshard, num_rows * (rank + 1) // nshard)


def extract_rows(
    num_rows: int,
    load: Callable[[int], np.ndarray],
    extractor: Callable[[np.ndarray], np.ndarray],
    prefix: str,
    rank: int = 0,
    nshard: int = 1,
    skip_bad: bool = False,
    on_features: Optional[Callable[[int, np.ndarray], None]] = None,
    unit: str = "utt",
) -> dict:
    """Extract this shard's rows (`load(i)` -> media, `extractor` -> (T, D) features) into
    `shard_prefix(prefix, rank, nshard)`. Rows already committed by an earlier (killed) run are
    not redone. A bad file (CorpusError) stops the run with its name, or with `skip_bad` is
    listed in `.bad` and left out. `on_features(i, feats)` runs before row i is committed."""
    mine = shard_rows(num_rows, rank, nshard)
    out = shard_prefix(prefix, rank, nshard)
    with ResumableFeatureWriter(out) as writer:
        todo = [i for i in mine if i not in writer.done]
        for i in tqdm(todo, desc=f"features {os.path.basename(out)}", unit=unit, initial=len(mine) - len(todo), total=len(mine)):
            try:
                feats = extractor(load(i))
            except CorpusError as e:
                if not skip_bad:
                    raise
                writer.skip(i, str(e))
                continue
            if on_features is not None:
                on_features(i, feats)
            writer.append(i, feats)
        return {"prefix": out, "rows": writer.num_written, "bad": list(writer.bad_reasons)}


def extract_manifest(
    manifest: str,
    prefix: str,
    extractor: Callable[[np.ndarray], np.ndarray],
    rank: int = 0,
    nshard: int = 1,
    skip_bad: bool = False,
    sample_rate: int = 16000,
) -> dict:
    """Speech features of an audio manifest's files (see `extract_rows`)."""
    root, rows = read_manifest(manifest)
    return extract_rows(len(rows), lambda i: read_audio(os.path.join(root, rows[i][0]), sample_rate), extractor, prefix, rank, nshard, skip_bad)


def extract_clips(
    manifest: str,
    prefix: str,
    extractor: Callable[[np.ndarray], np.ndarray],
    fps: Optional[float] = None,
    size: Optional[Tuple[int, int]] = None,
    clip_dir: Optional[str] = None,
    rank: int = 0,
    nshard: int = 1,
    skip_bad: bool = False,
) -> dict:
    """Sign video features of a clip manifest's clips (see `extract_rows`), each read with PyAV
    at `fps` and `size`; with `clip_dir`, also one `{clip_dir}/{id}.npy` per clip, shaped
    (T, *extractor.clip_shape) where the extractor has one (pose landmarks: (T, K, 3))."""
    clips = read_clip_manifest(manifest)
    if clip_dir:
        os.makedirs(clip_dir, exist_ok=True)

    def load(i):
        return read_video(clips[i].path, fps, size, clips[i].start, clips[i].end)[0]

    def save_clip(i, feats):
        shape = getattr(extractor, "clip_shape", feats.shape[1:])
        save_array(os.path.join(clip_dir, f"{clips[i].id}.npy"), feats.reshape(len(feats), *shape))

    return extract_rows(len(clips), load, extractor, prefix, rank, nshard, skip_bad, save_clip if clip_dir else None, unit="clip")


def merge_shards(prefix: str, nshard: int, chunk_rows: int = 1 << 16) -> Optional[int]:
    """Concatenate shards 0..n-1 of `prefix` into `prefix`.npy/.lengths/.ids, streaming."""
    parts = [shard_prefix(prefix, r, nshard) for r in range(nshard)]
    for p in parts:
        if not os.path.exists(p + ".lengths"):
            raise CorpusError(f"{p}.lengths: shard not found (has every rank finished?)")
    lengths, ids = [], []
    with atomic_array_appender(prefix + ".npy") as writer:
        for p in parts:
            if os.path.getsize(p + ".lengths") == 0:  # a shard whose files were all bad
                continue
            lens = read_lengths(p + ".lengths")
            feats = np.load(p + ".npy", mmap_mode="r")
            if feats.shape[0] != lens.sum():
                raise CorpusError(f"{p}.npy: {feats.shape[0]} rows but {p}.lengths sums to {lens.sum()}")
            for start in range(0, feats.shape[0], chunk_rows):
                writer.append(np.ascontiguousarray(feats[start : start + chunk_rows]))
            lengths += lens.tolist()
            with open(p + ".ids", encoding="utf-8") as f:
                ids += [line.strip() for line in f]
        write_lines(prefix + ".lengths", map(str, lengths))
        write_lines(prefix + ".ids", ids)
    return len(lengths)
