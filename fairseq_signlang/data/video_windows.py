"""Sign video for the USLNet VQ-VAE: clips decoded once into a memory-mapped cache, cut into
fixed-length windows.

Decoding video is far slower than a training step, so every clip of a manifest is decoded once
(PyAV, sampled to `fps`, short side resized to `resolution` and centre-cropped to a square) and
kept as a (T, R, R, 3) uint8 `.npy` in a cache folder; training then reads windows straight from
the memory-mapped files, and DataLoader workers share the pages through the OS. A cache file's
name hashes the video (path, size, mtime), the span and the settings, so editing a video or
changing fps / resolution decodes again instead of silently reusing stale frames.
"""
import hashlib
import json
import logging
import os
import struct
import uuid
from typing import Optional, Sequence

import numpy as np
import torch
from fairseq.data import FairseqDataset
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.video import ClipRow, center_crop, iter_video, numbered_clip_rows

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the decoding recipe changes, so old cache files are not reused
_NPY_HEADER = 128  # bytes; fixed so the header can be rewritten once the frame count is known


def _clip_error(row: ClipRow, where: str, message) -> CorpusError:
    return CorpusError(f"{where + ': ' if where else ''}clip {row.id!r}: {message}")


def _npy_header(shape: Sequence[int]) -> bytes:
    """A .npy (version 1.0) header for uint8 data of `shape`, always _NPY_HEADER bytes long."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(int(n) for n in shape),)
    text = text.ljust(_NPY_HEADER - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


class DecodedClipCache:
    """Clips decoded to (T, R, R, 3) uint8 frames at `fps`, kept as `{cache_dir}/{key}.npy`.

    A clip is decoded frame by frame straight into a temporary file that is renamed when complete,
    so a long clip is never whole in memory and neither a crash nor a bad video leaves a partial
    cache file; a cache file that does not load (truncated, corrupt) is decoded again.
    """

    def __init__(self, cache_dir: str, fps: float, resolution: int):
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if int(resolution) != resolution or resolution < 1:
            raise ValueError(f"resolution must be a positive integer, got {resolution}")
        self.cache_dir, self.fps, self.resolution = cache_dir, float(fps), int(resolution)
        os.makedirs(cache_dir, exist_ok=True)
        self.decoded = 0  # clips decoded by this object (the rest came from the cache)

    def key(self, row: ClipRow, where: str = "") -> str:
        try:
            st = os.stat(row.path)
        except OSError as e:
            raise _clip_error(row, where, f"{row.path}: video file not found ({e.strerror})") from None
        ident = [CACHE_FORMAT, os.path.abspath(row.path), st.st_size, st.st_mtime_ns, row.start, row.end, self.fps, self.resolution]
        return hashlib.sha1(json.dumps(ident).encode("utf-8")).hexdigest()[:24]

    def path(self, row: ClipRow, where: str = "") -> str:
        """The cache file the clip's frames are (or will be) kept in."""
        return os.path.join(self.cache_dir, self.key(row, where) + ".npy")

    def get(self, row: ClipRow, where: str = "") -> np.ndarray:
        """The clip's frames (T, R, R, 3) uint8, memory-mapped; decoded first if not cached."""
        path = self.path(row, where)
        frames = self._load(path)
        if frames is None:
            if os.path.exists(path):
                logger.warning(f"{path}: cache file of clip {row.id!r} ({row.path}) is damaged; decoding it again")
            self._decode(row, path, where)
            frames = self._load(path)
            if frames is None:  # only if something else damages the file between write and read
                raise _clip_error(row, where, f"{path}: cache file unreadable right after it was written")
        return frames

    def _load(self, path: str) -> Optional[np.ndarray]:
        try:
            frames = np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError):  # missing, truncated (mmap longer than file) or not an .npy
            return None
        R = self.resolution
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (R, R, 3) or len(frames) == 0:
            return None
        return frames

    def _decode(self, row: ClipRow, path: str, where: str) -> None:
        R = self.resolution
        # a name of its own per writer (ranks or jobs may fill one cache at once), never ending in .npy
        tmp = os.path.join(self.cache_dir, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "xb") as f:
                frames, _ = iter_video(row.path, self.fps, start=row.start, end=row.end, short_side=R)
                f.write(_npy_header((0, R, R, 3)))
                count = 0
                for image in frames:
                    f.write(center_crop(image, R).tobytes())
                    count += 1
                f.seek(0)
                f.write(_npy_header((count, R, R, 3)))
            os.replace(tmp, path)
            self.decoded += 1
        except CorpusError as e:
            raise _clip_error(row, where, e) from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """Frames (T, R, R, 3) uint8 -> FloatTensor (3, T, R, R) in [-0.5, 0.5], the VQ-VAE's input
    (copied out of the memory map, so the tensor is writable and the cache file is not held)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames (T, H, W, 3), got {frames.shape}")
    x = torch.from_numpy(np.array(frames, dtype=np.float32))
    return x.div_(255.0).sub_(0.5).permute(3, 0, 1, 2).contiguous()


class VideoWindowDataset(FairseqDataset):
    """Windows of `window_frames` frames, every `window_stride` frames, from every clip of a
    clip manifest; the trailing frames of a clip that do not fill a window are not used.

    All clips are decoded into `cache` up front, so a bad video stops the run before training
    rather than hours into it. `windows` is an (N, 2) int64 array of (clip index, first frame),
    kept as an array so that millions of windows cost little memory in every DataLoader worker.
    """

    def __init__(self, manifest: str, cache: DecodedClipCache, window_frames: int, window_stride: int = 0, skip_short: bool = False):
        super().__init__()
        if window_frames < 1 or window_stride < 0:
            raise ValueError(f"window_frames must be positive and window_stride non-negative, got {window_frames} and {window_stride}")
        self.manifest, self.cache, self.window_frames = manifest, cache, int(window_frames)
        self.window_stride = int(window_stride) or self.window_frames
        self.shuffle, self.epoch = True, 1
        self.clips, self.where, windows, short = [], [], [], []
        for where, row in tqdm(numbered_clip_rows(manifest), desc=f"decoding {os.path.basename(manifest)}", unit="clip"):
            T = len(cache.get(row, where))
            if T < self.window_frames:
                short.append(f"{where}: clip {row.id!r} has {T} frames")
                continue
            starts = np.arange(0, T - self.window_frames + 1, self.window_stride)
            windows.append(np.stack([np.full_like(starts, len(self.clips)), starts], axis=1))
            self.clips.append(row)
            self.where.append(where)
        what = f"at {cache.fps:g} fps, fewer than one window of {self.window_frames} frames"
        if short and not skip_short:
            more = f" (and {len(short) - 1} more such clips)" if len(short) > 1 else ""
            raise CorpusError(f"{short[0]} {what}{more}; set skip_short (task.skip_short_clips) to leave them out")
        if short:
            logger.warning(f"{manifest}: skipped {len(short)} clips {what}: " + "; ".join(short[:5]) + (" ..." if len(short) > 5 else ""))
        if not windows:
            raise CorpusError(f"{manifest}: no clip has a window of {self.window_frames} frames ({len(short)} shorter clips skipped)")
        self.windows = np.concatenate(windows).astype(np.int64)
        self.sizes = np.full(len(self.windows), self.window_frames, dtype=np.int64)

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        c, start = (int(x) for x in self.windows[index])
        frames = self.cache.get(self.clips[c], self.where[c])
        if len(frames) < start + self.window_frames:
            raise _clip_error(self.clips[c], self.where[c], f"now has {len(frames)} frames, fewer than when the dataset was "
                              f"indexed (window at frame {start}): its video changed during the run")
        return {"id": index, "clip": self.clips[c].id, "video": clip_tensor(frames[start : start + self.window_frames])}

    def collater(self, samples):
        if not samples:
            return {}
        video = torch.stack([s["video"] for s in samples])
        return {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": len(samples) * video.size(2),
            "net_input": {"video": video},
        }

    def num_tokens(self, index):
        return self.window_frames

    def num_tokens_vec(self, indices):
        return np.full(len(indices), self.window_frames, dtype=np.int64)

    def size(self, index):
        return self.window_frames

    def ordered_indices(self):
        """A permutation (seeded by fairseq's epoch iterator) when shuffling; windows all have the
        same size, so there is nothing to sort by."""
        if self.shuffle:
            return np.random.permutation(len(self))
        return np.arange(len(self))

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    @property
    def supports_prefetch(self):
        return False
