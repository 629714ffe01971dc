#!/usr/bin/env python
"""Sign video features for every clip of a clip manifest, streamed to {prefix}.npy +
{prefix}.lengths (+ .ids, .bad), and with --clip-dir also one {clip-dir}/{id}.npy per clip.

  --features i3d     I3D RGB (Mixed_5c, averaged), one feature per --window frames every --stride
                     frames, from --checkpoint (the PyTorch I3D layout, e.g. ImageNet + Charades)
  --features vgg     per-frame VGG fc7 from --checkpoint (torchvision layout, VGG-11 .. VGG-19)
  --features pose    MediaPipe Holistic landmarks per frame (pip install -e .[pose]); per-clip
                     files keep the (T, K, 3) shape, the concatenated form is (T, 3K); with
                     --pose-dir also one {id}.pose per clip (pose-format, for the sign-language-
                     processing tools)
  --features pose_file  the same landmarks read from a manifest of .pose files (pose-format, e.g.
                     made by those tools with MediaPipe Holistic) instead of videos: no MediaPipe
                     needed; resampled to --fps and cut to start/end like a video
  --features gloves  coloured-glove hand tracking (the offline stand-in for the procedural signer)

The manifest is a TSV with a header: id, path, and optionally start, end (seconds) and text
(scripts/build_word_corpus.py writes one as clips.tsv). Clips are read with PyAV at --fps and
resized to --size. --nshard/--rank and resuming after a kill work as for speech features.
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.features.pipeline import extract_clips


def build_extractor(args):
    if args.features in ("i3d", "vgg") and not args.checkpoint:
        raise CorpusError(f"--features {args.features} needs --checkpoint (no weights can be downloaded; see README)")
    if args.features == "i3d":
        from fairseq_signlang.features.visual_models import I3DExtractor

        return I3DExtractor(args.checkpoint, args.window, args.stride, args.batch_size, args.device)
    if args.features == "vgg":
        from fairseq_signlang.features.visual_models import VGGFrameExtractor

        return VGGFrameExtractor(args.checkpoint, args.batch_size, args.device)
    if args.pose_dir and args.features != "pose":
        raise CorpusError("--pose-dir writes the landmarks MediaPipe tracks: it needs --features pose")
    if args.features == "pose":
        from fairseq_signlang.features.pose import HolisticLandmarks

        return HolisticLandmarks(face=args.face)
    if args.features == "pose_file":
        from fairseq_signlang.features.pose import PoseFileLandmarks

        return PoseFileLandmarks(face=args.face)
    from fairseq_signlang.features.glove_tracker import GloveTracker

    return GloveTracker()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="clip manifest (TSV with a header: id, path[, start, end][, text])")
    ap.add_argument("--out", required=True, help="output prefix, e.g. feats/clips")
    ap.add_argument("--features", choices=["i3d", "vgg", "pose", "pose_file", "gloves"], required=True)
    ap.add_argument("--checkpoint", help="I3D or VGG weights (a state dict, or one under 'state_dict' / 'model')")
    ap.add_argument("--clip-dir", help="also write one {id}.npy per clip here")
    ap.add_argument("--pose-dir", help="pose: also write one {id}.pose per clip here (pose-format's MediaPipe Holistic header)")
    ap.add_argument("--fps", type=float, default=25.0, help="frames per second to sample (0: the file's own rate)")
    ap.add_argument("--size", type=int, help="resize frames to SIZE x SIZE (default 224 for i3d and vgg, else unchanged)")
    ap.add_argument("--window", type=int, default=16, help="i3d: frames per window")
    ap.add_argument("--stride", type=int, default=4, help="i3d: frames between windows")
    ap.add_argument("--face", action="store_true", help="pose, pose_file: add the 468 face landmarks")
    ap.add_argument("--batch-size", type=int, default=8, help="i3d windows or vgg frames per forward pass")
    ap.add_argument("--nshard", type=int, default=1)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--skip-bad", action="store_true", help="list unreadable, empty or missing videos in {prefix}.bad and go on")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args()
    size = args.size or (224 if args.features in ("i3d", "vgg") else None)
    try:
        extractor = build_extractor(args)
        summary = extract_clips(
            args.manifest, args.out, extractor, fps=args.fps or None, size=(size, size) if size else None,
            clip_dir=args.clip_dir, pose_dir=args.pose_dir, rank=args.rank, nshard=args.nshard, skip_bad=args.skip_bad,
        )
    except (ValueError, ImportError) as e:  # CorpusError and CheckpointError are ValueErrors
        sys.exit(f"error: {e}")
    rate = extractor.frame_rate(args.fps) if args.fps else "the video's rate"
    print(f"{summary['prefix']}: {summary['rows']} clips, dim {extractor.dim}, {rate} features per second")
    if summary["bad"]:
        print(f"left out {len(summary['bad'])} bad clips (see {summary['prefix']}.bad):\n  " + "\n  ".join(summary["bad"]), file=sys.stderr)


if __name__ == "__main__":
    main()
