#!/usr/bin/env python
"""Frechet Video Distance between real and generated sign videos, over the I3D of
--i3d-checkpoint (PyTorch-port layout; its clip logits when it has the classifier layer, else
pooled Mixed_5c features: see fairseq_signlang/metrics/fvd.py).

Each of --real and --generated is a folder of video files or a clip manifest (TSV with a header:
id, path[, start, end][, text]). FVD's convention is 16-frame clips (--frames 16) at 224x224;
scores are only comparable under the same checkpoint, frame count, rate and size.
"""
import argparse
import json
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import atomic_open
from fairseq_signlang.io.video import VideoSet
from fairseq_signlang.metrics.fvd import FVD_SIZE, I3DClipFeatures, fvd_from_features


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="folder of videos or clip manifest: the real clips")
    ap.add_argument("--generated", required=True, help="folder of videos or clip manifest: the generated clips")
    ap.add_argument("--i3d-checkpoint", required=True, help="I3D RGB state dict (e.g. the Kinetics-400 one of the PyTorch port)")
    ap.add_argument("--fps", type=float, help="sample the videos to this rate (default: each file's own)")
    ap.add_argument("--frames", type=int, help="use the first N frames of each clip (FVD's convention: 16); default all")
    ap.add_argument("--size", type=int, default=FVD_SIZE, help=f"frame size fed to I3D (default {FVD_SIZE}, FVD's)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--json", metavar="OUT_JSON", help="also write the score and its settings here")
    args = ap.parse_args(argv)
    if args.frames is not None and args.frames < 1:
        ap.error("--frames must be positive")
    try:
        real, generated = (VideoSet(s, args.fps, args.frames) for s in (args.real, args.generated))
        extract = I3DClipFeatures(args.i3d_checkpoint, args.size, args.batch_size, args.device)
        score = fvd_from_features(extract(real, "I3D real"), extract(generated, "I3D generated"))
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"FVD {score:.2f}")
    if args.json:
        with atomic_open(args.json, encoding="utf-8") as f:
            json.dump({"fvd": score, "real": args.real, "generated": args.generated, "n_real": len(real), "n_generated": len(generated),
                       "i3d_checkpoint": args.i3d_checkpoint, "features": extract.kind, "dim": extract.dim,
                       "frames": args.frames, "fps": args.fps, "size": args.size}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
