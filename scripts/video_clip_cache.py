#!/usr/bin/env python
"""Decode every clip of a clip manifest into the video cache the uslnet task reads
(task.video_cache), before training: training then starts at once, several ranks do not decode
the same clips side by side, and bad videos are found (and, with --skip-bad, listed and left
out) in one pass instead of one failed run at a time.

Use the clip geometry of the VQ-VAE the clips are for: the --fps and --resolution of its
video_vqvae run (task.fps, task.resolution there; later stages take them from the checkpoint).
They are part of each cache file's key. Run it again after adding clips: cached ones are not decoded again.
"""
import argparse
import sys

from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.data.video_windows import DecodedClipCache
from fairseq_signlang.io.video import numbered_clip_rows, write_clip_manifest
from fairseq_signlang.io.writers import write_lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True, help="clip manifest (TSV with a header: id, path[, start, end][, text])")
    ap.add_argument("--cache-dir", required=True, help="cache folder (task.video_cache; default there: {video_data}/cache)")
    ap.add_argument("--fps", type=float, default=25.0, help="frames per second (task.fps)")
    ap.add_argument("--resolution", type=int, default=64, help="square frame size after short-side resize and centre crop (task.resolution)")
    ap.add_argument("--window-frames", type=int, default=0, help="also treat clips shorter than this many frames as bad (task.window_frames)")
    ap.add_argument("--skip-bad", metavar="TSV", help="go on past missing, unreadable, empty or too short clips, listing them here (id, manifest:line, reason)")
    ap.add_argument("--kept-manifest", metavar="TSV", help="write a manifest of the clips that were kept")
    args = ap.parse_args(argv)
    try:
        cache = DecodedClipCache(args.cache_dir, args.fps, args.resolution)
        # with --skip-bad a row whose video is missing is kept here and fails (and is listed) below
        clips = numbered_clip_rows(args.manifest, missing_ok=bool(args.skip_bad))
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    kept, bad, frames, cached = [], [], 0, 0
    for where, row in tqdm(clips, desc="decoding clips", unit="clip"):
        decoded = cache.decoded
        try:
            T = len(cache.get(row, where))
            if T < args.window_frames:
                raise CorpusError(f"{where}: clip {row.id!r} has {T} frames at {args.fps:g} fps, fewer than one window of {args.window_frames} frames")
        except CorpusError as e:
            if not args.skip_bad:
                sys.exit(f"error: {e}")
            bad.append((row.id, where, " ".join(str(e).split())))
            continue
        kept.append(row)
        frames, cached = frames + T, cached + (cache.decoded == decoded)
    if args.skip_bad:
        write_lines(args.skip_bad, ["id\twhere\treason"] + ["\t".join(b) for b in bad])
    if args.kept_manifest:
        if not kept:
            sys.exit(f"error: no clip of {args.manifest} was kept; {args.kept_manifest} not written")
        write_clip_manifest(args.kept_manifest, kept)
    print(f"{args.cache_dir}: {len(kept)} clips, {frames} frames at {args.fps:g} fps, {args.resolution}x{args.resolution} "
          f"({len(kept) - cached} decoded now, {cached} already cached)")
    if bad:
        print(f"skipped {len(bad)} bad clips (listed in {args.skip_bad}):\n  " + "\n  ".join(r for _, _, r in bad), file=sys.stderr)


if __name__ == "__main__":
    main()
