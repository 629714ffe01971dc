"""The VQ-VAE's video data path: the decoded-clip cache (resize, centre crop, fps, spans, reuse,
invalidation, errors that leave no partial file), the window dataset and the cache-filling CLI."""
import logging
import os
import runpy
import shutil

import numpy as np
import pytest
import torch

from fairseq_signlang.data import video_windows
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.data.video_windows import DecodedClipCache, VideoWindowDataset, clip_tensor
from fairseq_signlang.models.uslnet.geometry import check_downsampling
from fairseq_signlang.io.video import ClipRow, write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clip_frames(T, H, W):
    """A white 4x4 marker at the centre, a grey band at the left edge (cropped away from a wide
    frame) and, below the marker, a strip whose level (10 + 10 t) tells which source frame t is
    shown; at half size both land at the same place in the 16x16 centre crop of a wide or tall frame."""
    frames = np.zeros((T, H, W, 3), np.uint8)
    frames[:, H // 2 - 2 : H // 2 + 2, W // 2 - 2 : W // 2 + 2] = 255
    frames[:, 8:, :4] = 128
    for t in range(T):
        frames[t, H // 2 + 4 : H // 2 + 12, W // 2 - 8 : W // 2 + 8] = 10 + 10 * t
    return frames


def shown_frame(image):
    return round((float(image[11:13, 5:11].mean()) - 10) / 10)


def marker_centre(image):
    ys, xs = np.nonzero(image[:10, :, 0] > 160)  # above the strip (dark in frame 0), brighter than the band
    return ys.mean(), xs.mean()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    paths = {"wide": (20, 32, 48), "tall": (10, 48, 32), "short": (5, 32, 48)}
    for name, shape in paths.items():
        write_video(str(root / f"{name}.mp4"), clip_frames(*shape), fps=10)
    (root / "junk.mp4").write_bytes(b"\x00\x01 not a video at all" * 20)
    return root


def row(videos, name, start=None, end=None):
    return ClipRow(name, str(videos / f"{name}.mp4"), start, end)


def manifest(path, lines):
    path.write_text("id\tpath\tstart\tend\n" + "".join(line + "\n" for line in lines))
    return str(path)


def assert_cache_clean(cache_dir):
    """No temporary file left, and every cache file loads completely."""
    for name in os.listdir(cache_dir):
        assert name.endswith(".npy") and not name.startswith("."), name
        frames = np.load(os.path.join(cache_dir, name))
        assert frames.dtype == np.uint8 and frames.ndim == 4 and len(frames) > 0


def test_resize_centre_crop_fps_and_spans(videos, tmp_path):
    cache = DecodedClipCache(str(tmp_path / "cache"), fps=10, resolution=16)
    wide = cache.get(row(videos, "wide"))
    assert isinstance(wide, np.memmap) and wide.shape == (20, 16, 16, 3) and wide.dtype == np.uint8
    for frames in (wide, cache.get(row(videos, "tall"))):
        y, x = marker_centre(frames[0])
        assert abs(y - 7.5) <= 0.6 and abs(x - 7.5) <= 0.6  # the source's centre is the crop's centre
    assert wide[:, :, :2].max() < 60  # the wide clip's left band was cropped away (at 48 -> 24 wide, 4 columns each side)
    assert [shown_frame(f) for f in wide] == list(range(20))
    assert [shown_frame(f) for f in cache.get(row(videos, "tall"))] == list(range(10))

    half = DecodedClipCache(str(tmp_path / "cache"), fps=5, resolution=16).get(row(videos, "wide"))
    assert [shown_frame(f) for f in half] == list(range(0, 20, 2))
    assert len(DecodedClipCache(str(tmp_path / "cache"), fps=20, resolution=16).get(row(videos, "wide"))) == 40
    span = cache.get(row(videos, "wide", 0.5, 1.5))
    assert [shown_frame(f) for f in span] == list(range(5, 15))
    assert DecodedClipCache(str(tmp_path / "cache"), fps=10, resolution=8).get(row(videos, "wide")).shape == (20, 8, 8, 3)
    assert_cache_clean(tmp_path / "cache")


def test_cache_is_reused_and_invalidated(videos, tmp_path, monkeypatch, caplog):
    cache_dir = tmp_path / "cache"
    clip = ClipRow("w", str(tmp_path / "w.mp4"))
    shutil.copy(videos / "wide.mp4", clip.path)
    first = DecodedClipCache(str(cache_dir), 10, 16).get(clip)
    (name,) = os.listdir(cache_dir)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as m:
        m.setattr(video_windows, "iter_video", no_decoding)
        cache = DecodedClipCache(str(cache_dir), 10, 16)  # a new run: the file on disk is reused
        again = cache.get(clip)
        assert isinstance(again, np.memmap) and np.array_equal(again, first) and cache.decoded == 0
        with pytest.raises(AssertionError, match="decoded again"):  # another resolution is another file
            DecodedClipCache(str(cache_dir), 10, 8).get(clip)
        os.utime(clip.path, ns=(1, 1))  # an edited video is decoded again
        with pytest.raises(AssertionError, match="decoded again"):
            cache.get(clip)
    assert cache.get(clip).shape == (20, 16, 16, 3) and cache.decoded == 1 and len(os.listdir(cache_dir)) == 2

    path = cache.path(clip)  # a truncated cache file (a disk full, a copy cut short) is decoded again
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(cache.get(clip), first) and cache.decoded == 2
    assert "damaged; decoding it again" in caplog.text
    assert_cache_clean(cache_dir)


def test_errors_name_the_clip_and_leave_no_partial_file(videos, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cache = DecodedClipCache(str(cache_dir), 10, 16)
    cache.get(row(videos, "wide"))
    with pytest.raises(CorpusError, match=rf"m.tsv:7: clip 'junk': {videos}/junk.mp4: unreadable video"):
        cache.get(row(videos, "junk"), "m.tsv:7")
    with pytest.raises(CorpusError, match=rf"clip 'wide': {videos}/wide.mp4: video has no frames between 5.0 and 6.0 s"):
        cache.get(row(videos, "wide", 5.0, 6.0))
    with pytest.raises(CorpusError, match=r"m.tsv:2: clip 'gone': .*gone.mp4: video file not found"):
        cache.get(ClipRow("gone", str(tmp_path / "gone.mp4")), "m.tsv:2")
    assert_cache_clean(cache_dir)

    def fails_midway(error):
        def frames(*args, **kwargs):
            def gen():
                yield from np.zeros((3, 16, 20, 3), np.uint8)
                raise error
            return gen(), 10.0
        return frames

    monkeypatch.setattr(video_windows, "iter_video", fails_midway(CorpusError("x.mp4: video could not be decoded (boom)")))
    with pytest.raises(CorpusError, match="m.tsv:3: clip 'tall': x.mp4: video could not be decoded"):
        cache.get(row(videos, "tall"), "m.tsv:3")
    monkeypatch.setattr(video_windows, "iter_video", fails_midway(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cache.get(row(videos, "tall"))
    assert len(os.listdir(cache_dir)) == 1
    assert_cache_clean(cache_dir)


def test_windows_items_and_collater(videos, tmp_path):
    m = manifest(tmp_path / "train.tsv", [f"wide\t{videos}/wide.mp4\t\t", f"tall\t{videos}/tall.mp4\t\t"])
    cache = DecodedClipCache(str(tmp_path / "cache"), 10, 16)
    ds = VideoWindowDataset(m, cache, window_frames=4)
    assert [c.id for c in ds.clips] == ["wide", "tall"]
    assert ds.windows.tolist() == [[0, 0], [0, 4], [0, 8], [0, 12], [0, 16], [1, 0], [1, 4]]
    overlapping = VideoWindowDataset(m, cache, window_frames=4, window_stride=3)
    assert overlapping.windows.tolist() == [[0, s] for s in range(0, 17, 3)] + [[1, 0], [1, 3], [1, 6]]
    assert cache.decoded == 2  # the second dataset read the cache

    item = ds[6]
    assert item["id"] == 6 and item["clip"] == "tall" and item["video"].shape == (3, 4, 16, 16) and item["video"].dtype == torch.float32
    assert torch.equal(item["video"], clip_tensor(cache.get(ds.clips[1])[4:8]))
    assert [shown_frame(f) for f in (item["video"].permute(1, 2, 3, 0).numpy() + 0.5) * 255] == [4, 5, 6, 7]
    batch = ds.collater([ds[i] for i in (0, 3, 6)])
    video = batch["net_input"]["video"]
    assert video.shape == (3, 3, 4, 16, 16) and batch["id"].tolist() == [0, 3, 6]
    assert batch["nsentences"] == 3 and batch["ntokens"] == 12
    assert video.min() == -0.5 and 0.2 < video.max() <= 0.5  # black is -0.5; the (blurred) white marker is bright
    assert ds.collater([]) == {}
    assert ds.num_tokens(0) == ds.size(0) == 4 and ds.sizes.tolist() == [4] * 7
    assert sorted(ds.ordered_indices().tolist()) == list(range(7))
    ds.shuffle = False
    ds.set_epoch(2)
    assert ds.ordered_indices().tolist() == list(range(7)) and ds.epoch == 2
    assert clip_tensor(np.full((2, 4, 4, 3), 255, np.uint8)).eq(0.5).all()


def test_short_clips_bad_videos_and_skip_short(videos, tmp_path, caplog):
    cache_dir = tmp_path / "cache"
    cache = DecodedClipCache(str(cache_dir), 10, 16)
    # line 1 header, 2 wide, 3 blank, 4 short
    m = manifest(tmp_path / "m.tsv", [f"wide\t{videos}/wide.mp4\t\t", "", f"short\t{videos}/short.mp4\t\t"])
    with pytest.raises(CorpusError, match=rf"{m}:4: clip 'short' has 5 frames at 10 fps, fewer than one window of 8 frames"):
        VideoWindowDataset(m, cache, window_frames=8)
    with caplog.at_level(logging.WARNING):
        ds = VideoWindowDataset(m, cache, window_frames=8, skip_short=True)
    assert [c.id for c in ds.clips] == ["wide"] and ds.windows.tolist() == [[0, 0], [0, 8]]
    assert "skipped 1 clips" in caplog.text and f"{m}:4: clip 'short' has 5 frames" in caplog.text
    with pytest.raises(CorpusError, match="no clip has a window of 32 frames"):
        VideoWindowDataset(m, cache, window_frames=32, skip_short=True)

    bad = manifest(tmp_path / "bad.tsv", [f"wide\t{videos}/wide.mp4\t\t", f"junk\t{videos}/junk.mp4\t\t"])
    with pytest.raises(CorpusError, match=rf"{bad}:3: clip 'junk': .*junk.mp4: unreadable video"):
        VideoWindowDataset(bad, cache, window_frames=4)
    empty = manifest(tmp_path / "empty.tsv", [f"late\t{videos}/wide.mp4\t4.0\t9.0"])
    with pytest.raises(CorpusError, match=rf"{empty}:2: clip 'late': .*wide.mp4: video has no frames between 4.0 and 9.0 s"):
        VideoWindowDataset(empty, cache, window_frames=4)
    assert_cache_clean(cache_dir)


def test_check_downsampling():
    check_downsampling(64, 16, (4, 4, 4))
    with pytest.raises(ValueError, match=r"task.resolution 60 is not divisible by the VQ-VAE's spatial down-sampling 8 \(model.downsample\)"):
        check_downsampling(60, 16, (4, 8, 8))
    with pytest.raises(ValueError, match=r"task.window_frames 10 is not divisible by the VQ-VAE's temporal down-sampling 4 \(model.downsample\)"):
        check_downsampling(64, 10, (4, 4, 4))
    with pytest.raises(ValueError, match="model.downsample must be three positive integers"):
        check_downsampling(64, 16, (4, 4))


def test_cli_skip_bad(videos, tmp_path, capsys):
    main = runpy.run_path(os.path.join(REPO, "scripts", "video_clip_cache.py"))["main"]
    m = manifest(tmp_path / "m.tsv", [f"wide\t{videos}/wide.mp4\t\t", f"junk\t{videos}/junk.mp4\t\t", f"short\t{videos}/short.mp4\t\t"])
    args = ["--manifest", m, "--cache-dir", str(tmp_path / "cache"), "--fps", "10", "--resolution", "16", "--window-frames", "8"]
    with pytest.raises(SystemExit, match=rf"error: {m}:3: clip 'junk': .*unreadable video"):
        main(args)
    main(args + ["--skip-bad", str(tmp_path / "skipped.tsv"), "--kept-manifest", str(tmp_path / "kept.tsv")])
    skipped = [line.split("\t") for line in (tmp_path / "skipped.tsv").read_text().splitlines()]
    assert [s[:2] for s in skipped] == [["id", "where"], ["junk", f"{m}:3"], ["short", f"{m}:4"]]
    assert "unreadable video" in skipped[1][2] and "has 5 frames" in skipped[2][2]
    assert "1 clips, 20 frames" in capsys.readouterr().out
    ds = VideoWindowDataset(str(tmp_path / "kept.tsv"), DecodedClipCache(str(tmp_path / "cache"), 10, 16), 8)
    assert [c.id for c in ds.clips] == ["wide"] and ds.cache.decoded == 0
    assert_cache_clean(tmp_path / "cache")
