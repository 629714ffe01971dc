"""Feature extraction over a manifest of audio files or sign clips: sharded, resumable, streaming.

Shard r of n takes a contiguous block of manifest rows (as wav2vec-U's scripts split a
corpus), so merging the shards in rank order restores the manifest order.

A bad row (a file that is missing, unreadable or empty, a clip with no frames) stops the run
with an error naming `manifest:line`; with `skip_bad` it is listed in `{prefix}.bad` (manifest
row, tab, reason) and left out. Without `skip_bad`, missing files are found before anything is
extracted (the manifest readers check every row). An output is marked incomplete by
`{prefix}.partial` until its whole shard of the manifest is done (io/readers.py states the rule
and refuses such a corpus); rerunning the same extraction resumes it and removes the marker.
"""
import os
from typing import Callable, Optional, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.readers import PARTIAL_SUFFIX, CorpusError, check_complete, check_lengths_match, open_feature_array, read_lengths
from fairseq_signlang.io.writers import atomic_array_appender, save_array, write_lines
from fairseq_signlang.io.audio import numbered_manifest_rows, read_audio
from fairseq_signlang.io.video import numbered_clip_rows, read_video
from fairseq_signlang.features.streaming import ResumableFeatureWriter


def _require_media(where: str, path: str) -> str:
    if not os.path.isfile(path):
        raise CorpusError(f"{where}: {path} does not exist")
    return path


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
    where: Optional[Callable[[int], str]] = None,
    source: str = "",
) -> dict:
    """Extract this shard's rows (`load(i)` -> media, `extractor` -> (T, D) features) into
    `shard_prefix(prefix, rank, nshard)`. Rows already committed by an earlier (killed or
    stopped) run are not redone. A bad file (CorpusError, prefixed with `where(i)`, e.g.
    `manifest:line`) stops the run with its name and leaves the output marked incomplete
    (`.partial`), or with `skip_bad` is listed in `.bad` and left out. The marker goes only when
    every row of the shard is done. `on_features(i, feats)` runs before row i is committed;
    `source` (which manifest) is kept in the marker for the incomplete-corpus error."""
    mine = shard_rows(num_rows, rank, nshard)
    out = shard_prefix(prefix, rank, nshard)
    what = f"{source or 'manifest'} rows {mine.start + 1}..{mine.stop} of {num_rows}" + (f", rank {rank} of {nshard}" if nshard > 1 else "")
    with ResumableFeatureWriter(out, source=what) as writer:
        todo = [i for i in mine if i not in writer.done]
        for i in tqdm(todo, desc=f"features {os.path.basename(out)}", unit=unit, initial=len(mine) - len(todo), total=len(mine)):
            try:
                feats = extractor(load(i))
            except CorpusError as e:
                loc = where(i) if where is not None else ""
                message = str(e) if not loc or str(e).startswith(loc) else f"{loc}: {e}"
                if not skip_bad:
                    raise CorpusError(
                        f"{message}\n(stopped: {out}.npy/.lengths keep the {writer.num_written} utterances written so far and are "
                        f"marked incomplete by {out}{PARTIAL_SUFFIX}; fix or remove that row, or pass --skip-bad / skip_bad, "
                        f"and rerun the same command to resume)"
                    ) from None
                writer.skip(i, message)
                continue
            if on_features is not None:
                on_features(i, feats)
            writer.append(i, feats)
        writer.finish()
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
    """Speech features of an audio manifest's files (see `extract_rows`). Without `skip_bad` a
    row whose file is missing fails before anything is extracted; with it, the row is skipped
    and listed in `.bad` like any other bad file."""
    root, numbered = numbered_manifest_rows(manifest, missing_ok=skip_bad)
    rows = [(where, os.path.join(root, rel)) for where, rel, _ in numbered]

    def load(i):
        where, path = rows[i]
        return read_audio(_require_media(where, path), sample_rate)

    return extract_rows(len(rows), load, extractor, prefix, rank, nshard, skip_bad, where=lambda i: rows[i][0], source=manifest)


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
    pose_dir: Optional[str] = None,
) -> dict:
    """Sign video features of a clip manifest's clips (see `extract_rows`), each read with PyAV
    at `fps` and `size`, or with the extractor's own `read_clip(path, fps, size, start, end)`
    where it has one (`.pose` files: features/pose.py's PoseFileLandmarks); with `clip_dir`, also
    one `{clip_dir}/{id}.npy` per clip, shaped (T, *extractor.clip_shape) where the extractor has
    one (pose landmarks: (T, K, 3)); with `pose_dir` (landmark extractors, which have `parts`),
    also one `{pose_dir}/{id}.pose` per clip, at the clip's sampled rate and frame size."""
    numbered = numbered_clip_rows(manifest, missing_ok=skip_bad)
    clips = [row for _, row in numbered]
    read_clip = getattr(extractor, "read_clip", None)
    if pose_dir and (not hasattr(extractor, "parts") or read_clip is not None):
        raise ValueError(f"pose_dir: {type(extractor).__name__} tracks no landmarks in videos to write as .pose files")
    for folder in (clip_dir, pose_dir):
        if folder:
            os.makedirs(folder, exist_ok=True)
    frame_info = {}  # row -> (rate, width, height) of its frames, for the .pose header

    def load(i):
        path = _require_media(numbered[i][0], clips[i].path)
        if read_clip is not None:
            return read_clip(path, fps, size, clips[i].start, clips[i].end)
        frames, rate = read_video(path, fps, size, clips[i].start, clips[i].end)
        frame_info[i] = (rate, frames.shape[2], frames.shape[1])
        return frames

    def on_features(i, feats):
        shape = getattr(extractor, "clip_shape", feats.shape[1:])
        if clip_dir:
            save_array(os.path.join(clip_dir, f"{clips[i].id}.npy"), feats.reshape(len(feats), *shape))
        if pose_dir:
            from fairseq_signlang.features.pose import write_holistic_pose

            rate, width, height = frame_info.pop(i)
            write_holistic_pose(os.path.join(pose_dir, f"{clips[i].id}.pose"), feats.reshape(len(feats), *shape), extractor.parts, rate, width, height)

    return extract_rows(len(clips), load, extractor, prefix, rank, nshard, skip_bad, on_features if clip_dir or pose_dir else None,
                        unit="clip", where=lambda i: numbered[i][0], source=manifest)


def merge_shards(prefix: str, nshard: int, chunk_rows: int = 1 << 16) -> Optional[int]:
    """Concatenate shards 0..n-1 of `prefix` into `prefix`.npy/.lengths/.ids, streaming. Every
    shard must be complete (no `.partial`: its rank has gone through its whole block of rows)."""
    parts = [shard_prefix(prefix, r, nshard) for r in range(nshard)]
    for r, p in enumerate(parts):
        if not os.path.exists(p + ".lengths"):
            raise CorpusError(f"{p}.lengths: shard not found (has every rank finished?)")
        try:
            check_complete(p, f"{p}.lengths")
        except CorpusError as e:
            raise CorpusError(f"{e} (shard {r} of {nshard}: rerun rank {r})") from None
    lengths, ids = [], []
    with atomic_array_appender(prefix + ".npy") as writer:
        for p in parts:
            if os.path.getsize(p + ".lengths") == 0:  # a shard whose files were all bad
                continue
            lens = read_lengths(p + ".lengths")
            feats = open_feature_array(p + ".npy")
            check_lengths_match(p + ".lengths", lens, p + ".npy", feats.shape[0])
            for start in range(0, feats.shape[0], chunk_rows):
                writer.append(np.ascontiguousarray(feats[start : start + chunk_rows]))
            lengths += lens.tolist()
            with open(p + ".ids", encoding="utf-8") as f:
                ids += [line.strip() for line in f]
        write_lines(prefix + ".lengths", map(str, lengths))
        write_lines(prefix + ".ids", ids)
    if os.path.exists(prefix + PARTIAL_SUFFIX):  # left by an unfinished unsharded run into the same prefix: stale now
        os.remove(prefix + PARTIAL_SUFFIX)
    return len(lengths)
