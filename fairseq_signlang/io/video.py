"""Sign video files read and written with PyAV (which ships its own FFmpeg): frames sampled to
a fixed rate, resized, and optionally cut to a time span; and clip manifests.

A clip manifest is a TSV file whose header names its columns: `id` and `path` always, then
optionally `start` and `end` (seconds, a span of the file) and `text` (a translation or gloss),
the layout BOBSL, OpenASL, How2Sign and MS-ASL users convert to. Relative paths are relative
to the manifest's folder.
"""
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, List, Optional, Tuple

import numpy as np

from fairseq_signlang.io.readers import CorpusError, numbered_lines
from fairseq_signlang.io.writers import atomic_open

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def read_video(path: str, *options, **named_options) -> Tuple[np.ndarray, float]:
    """Frames (T, H, W, 3) uint8 RGB and their rate: iter_video's frames (same arguments), all
    in memory."""
    frames, rate = iter_video(path, *options, **named_options)
    return np.stack(list(frames)), rate


def iter_video(
    path: str,
    fps: Optional[float] = None,
    size: Optional[Tuple[int, int]] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
    short_side: Optional[int] = None,
) -> Tuple[Iterator[np.ndarray], float]:
    """(frames, rate): the frames (H, W, 3) uint8 RGB yielded one at a time, so that a long clip
    never has to be whole in memory. The file is opened (and checked) at the call; the iterator
    raises CorpusError for a decoding error or when it would yield no frame.

    fps: sample to this rate (nearest earlier frame for each sample time); None keeps the file's.
    size: (width, height) to resize to; short_side: instead, resize so the shorter side has this
    length, keeping the aspect ratio; start / end: seconds, to read a span of the clip.
    """
    import av

    if not os.path.isfile(path):
        raise CorpusError(f"{path}: video file not found")
    try:
        container = av.open(path)
    except Exception as e:
        raise CorpusError(f"{path}: unreadable video ({e})") from None
    streams = container.streams.video
    if not streams:
        container.close()
        raise CorpusError(f"{path}: no video stream")
    stream = streams[0]
    native = float(stream.average_rate or stream.guessed_rate or 25)
    rate = fps or native
    return _decode_frames(container, stream, path, native, rate, size, start, end, short_side), rate


def _decode_frames(container, stream, path, native, rate, size, start, end, short_side):
    import av

    width, height = size if size else (None, None)
    count, first = 0, (start or 0.0)  # sample k is at first + k / rate (not summed: no drift)
    with container:
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else index / native
                if start is not None and t < start - 0.5 / native:
                    continue
                if end is not None and t >= end:
                    break
                if short_side and width is None:  # display size: non-square pixels are stretched first
                    sar = stream.sample_aspect_ratio
                    w, h = frame.width * (float(sar) if sar else 1.0), frame.height
                    width, height = (max(short_side, round(x * short_side / min(w, h))) for x in (w, h))
                image = None
                # this frame stands for every sample time it reaches; a tie goes to the earlier frame
                while t + 0.5 / native + 1e-6 >= first + count / rate:
                    if image is None:
                        image = frame.to_ndarray(format="rgb24", width=width, height=height)
                    yield image
                    count += 1
        except av.error.FFmpegError as e:
            raise CorpusError(f"{path}: video could not be decoded ({e})") from None
    if not count:
        raise CorpusError(f"{path}: video has no frames" + (f" between {start} and {end} s" if start or end else ""))


def write_video(path: str, frames: np.ndarray, fps: float = 25.0) -> None:
    """Frames (T, H, W, 3) uint8 -> an H.264 mp4 (even width and height), written under a
    temporary name and renamed."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"write_video needs (T, H, W, 3) frames with T > 0, got {frames.shape}")
    T, H, W, _ = frames.shape
    frames = frames[:, : H - H % 2, : W - W % 2]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}{os.path.splitext(path)[1]}"
    try:
        with av.open(tmp, mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # cpu-independent: x264's fastest SIMD routines here make the same frames encode (and decode)
            # differently run to run; with it a corpus is byte-identical per seed, at no cost in speed
            stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "cpu-independent=1"}
            for image in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass(frozen=True)
class ClipRow:
    id: str
    path: str
    start: Optional[float] = None
    end: Optional[float] = None
    text: Optional[str] = None


CLIP_COLUMNS = ("id", "path", "start", "end", "text")


def read_clip_manifest(path: str) -> List[ClipRow]:
    """Rows of a clip manifest, checked: known columns, unique ids, spans with start < end and
    every video present."""
    return [row for _, row in numbered_clip_rows(path)]


def numbered_clip_rows(path: str, missing_ok: bool = False) -> List[Tuple[str, ClipRow]]:
    """(`manifest:line`, row) for every row of a clip manifest, checked as read_clip_manifest
    does; with `missing_ok` a row whose video does not exist is kept (reading it then fails with
    a CorpusError that an extraction can skip and list like any other bad clip)."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: clip manifest not found")
    lines = list(numbered_lines(path))
    if not lines:
        raise CorpusError(f"{path}: empty clip manifest (expected a header `id<TAB>path[<TAB>start<TAB>end][<TAB>text]`)")
    header = lines[0][1].rstrip("\r\n").split("\t")
    unknown = [c for c in header if c not in CLIP_COLUMNS]
    if unknown or "id" not in header or "path" not in header:
        raise CorpusError(f"{path}:1: header must name columns from {CLIP_COLUMNS} including id and path, got {header}")
    root, rows, seen = os.path.dirname(os.path.abspath(path)), [], set()
    for lineno, line in lines[1:]:
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if len(cells) != len(header):
            raise CorpusError(f"{path}:{lineno}: {len(cells)} columns, the header has {len(header)}")
        row = dict(zip(header, cells))
        try:
            start, end = (float(row[k]) if row.get(k, "") != "" else None for k in ("start", "end"))
        except ValueError:
            raise CorpusError(f"{path}:{lineno}: start and end must be seconds, got {row.get('start')!r} and {row.get('end')!r}") from None
        if start is not None and end is not None and not 0 <= start < end:
            raise CorpusError(f"{path}:{lineno}: span {start} .. {end} s is empty or negative")
        if row["id"] in seen or not row["id"]:
            raise CorpusError(f"{path}:{lineno}: clip id {row['id']!r} is empty or used twice")
        seen.add(row["id"])
        video = os.path.normpath(os.path.join(root, row["path"]))
        if not missing_ok and not os.path.isfile(video):
            raise CorpusError(f"{path}:{lineno}: {video} does not exist")
        rows.append((f"{path}:{lineno}", ClipRow(row["id"], video, start, end, row.get("text"))))
    if not rows:
        raise CorpusError(f"{path}: no clips")
    return rows


def write_clip_manifest(path: str, rows: List[ClipRow]) -> None:
    """Clip rows -> a manifest with the columns they use, paths relative to the manifest."""
    columns = ["id", "path"] + (["start", "end"] if any(r.start is not None or r.end is not None for r in rows) else []) + (["text"] if any(r.text for r in rows) else [])
    root = os.path.dirname(os.path.abspath(path))
    with atomic_open(path, encoding="utf-8") as f:
        f.write("\t".join(columns) + "\n")
        for r in rows:
            cells = {"id": r.id, "path": os.path.relpath(os.path.abspath(r.path), root), "start": "" if r.start is None else repr(r.start), "end": "" if r.end is None else repr(r.end), "text": r.text or ""}
            f.write("\t".join(cells[c] for c in columns) + "\n")


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """The central size x size square of an image (H, W, 3) or of frames (T, H, W, 3)."""
    top, left = (frames.shape[-3] - size) // 2, (frames.shape[-2] - size) // 2
    return frames[..., top : top + size, left : left + size, :]


def sample_evenly(frames: np.ndarray, count: int) -> np.ndarray:
    """`count` frames spread evenly over a whole clip (repeating frames of a shorter one): how
    the joint stage makes one VQ-VAE window of a clip, in training, translation and FVD alike."""
    return frames[np.linspace(0, len(frames) - 1, count).round().astype(np.int64)]


class VideoSet:
    """The clips of a folder of video files (sorted by name) or of a clip manifest, read one at a
    time (a set need not fit in memory) at `fps` when given and cut to their first `frames`
    frames (a shorter clip is an error: FVD compares clips of one length)."""

    def __init__(self, source: str, fps: Optional[float] = None, frames: Optional[int] = None):
        if os.path.isdir(source):
            names = sorted(n for n in os.listdir(source) if n.lower().endswith(VIDEO_EXTENSIONS))
            if not names:
                raise CorpusError(f"{source}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
            self.rows = [ClipRow(os.path.splitext(n)[0], os.path.join(source, n)) for n in names]
        else:
            self.rows = read_clip_manifest(source)
        self.fps, self.frames = fps, frames

    def __len__(self):
        return len(self.rows)

    def __iter__(self) -> Iterator[np.ndarray]:
        for row in self.rows:
            video, rate = read_video(row.path, fps=self.fps, start=row.start, end=row.end)
            if self.frames:
                if len(video) < self.frames:
                    raise CorpusError(f"{row.path}: clip {row.id!r} has {len(video)} frames at {rate:g} fps, fewer than the {self.frames} asked for")
                video = video[: self.frames]
            yield video
