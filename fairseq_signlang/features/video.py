"""Sign video files read and written with PyAV (which ships its own FFmpeg): frames sampled to
a fixed rate, resized, and optionally cut to a time span."""
import os
from fractions import Fraction
from typing import Optional, Tuple

import numpy as np

from ..data.readers import CorpusError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def read_video(
    path: str,
    fps: Optional[float] = None,
    size: Optional[Tuple[int, int]] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
) -> Tuple[np.ndarray, float]:
    """Frames (T, H, W, 3) uint8 RGB and their rate.

    fps: sample to this rate (nearest earlier frame for each sample time); None keeps the file's.
    size: (width, height) to resize to; start / end: seconds, to read a span of the clip.
    """
    import av

    if not os.path.isfile(path):
        raise CorpusError(f"{path}: video file not found")
    try:
        container = av.open(path)
    except Exception as e:
        raise CorpusError(f"{path}: unreadable video ({e})") from None
    with container:
        streams = container.streams.video
        if not streams:
            raise CorpusError(f"{path}: no video stream")
        stream = streams[0]
        native = float(stream.average_rate or stream.guessed_rate or 25)
        rate = fps or native
        width, height = size if size else (None, None)
        frames, next_time = [], (start or 0.0)
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * stream.time_base) if frame.pts is not None else len(frames) / native
                if start is not None and t < start - 0.5 / native:
                    continue
                if end is not None and t >= end:
                    break
                image = None
                while t + 0.5 / native >= next_time:  # this frame stands for every sample time it reaches
                    if image is None:
                        image = frame.to_ndarray(format="rgb24", width=width, height=height)
                    frames.append(image)
                    next_time += 1.0 / rate
        except av.error.FFmpegError as e:
            raise CorpusError(f"{path}: video could not be decoded ({e})") from None
    if not frames:
        raise CorpusError(f"{path}: video has no frames" + (f" between {start} and {end} s" if start or end else ""))
    return np.stack(frames), rate


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
            stream.options = {"crf": "18", "preset": "veryfast"}
            for image in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
