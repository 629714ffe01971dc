#!/usr/bin/env python
"""Speech features for every file of a manifest, streamed to {prefix}.npy + {prefix}.lengths.

With --checkpoint: the output of transformer layer --layer of a fairseq wav2vec 2.0 checkpoint
(pre-trained or CTC fine-tuned). Without: log-mel filterbanks (or --mfcc N coefficients)
computed here, the offline stand-in. --nshard/--rank split the manifest into contiguous
blocks for several processes or machines (outputs {prefix}_{rank}_{nshard}.*; merge them with
scripts/merge_feature_shards.py). Rerunning after a kill resumes where the last committed
utterance ended; `.ids` gives each utterance's manifest row, `.bad` the rows left out.
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.features.pipeline import extract_manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="{split}.tsv from scripts/speech_manifest.py")
    ap.add_argument("--out", required=True, help="output prefix, e.g. feats/train")
    ap.add_argument("--checkpoint", help="fairseq wav2vec 2.0 checkpoint; default: log-mel features")
    ap.add_argument("--layer", type=int, default=14, help="transformer layer (fairseq's 0-based `layer`, as wav2vec-U uses it)")
    ap.add_argument("--mels", type=int, default=80, help="log-mel bands (without --checkpoint)")
    ap.add_argument("--mfcc", type=int, default=0, help="N > 0: N MFCCs instead of log-mels (without --checkpoint)")
    ap.add_argument("--cmvn", action="store_true", help="per-utterance mean and variance normalisation (without --checkpoint)")
    ap.add_argument("--nshard", type=int, default=1)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--skip-bad", action="store_true", help="list unreadable, empty or missing files in {prefix}.bad and go on")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args()
    try:
        if args.checkpoint:
            from fairseq_signlang.features.wav2vec2 import Wav2Vec2LayerExtractor

            extractor = Wav2Vec2LayerExtractor(args.checkpoint, args.layer, args.device)
        else:
            from fairseq_signlang.features.logmel import LogMelExtractor

            extractor = LogMelExtractor(num_mels=args.mels, num_mfcc=args.mfcc, cmvn=args.cmvn)
        summary = extract_manifest(args.manifest, args.out, extractor, args.rank, args.nshard, args.skip_bad)
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"{summary['prefix']}: {summary['rows']} utterances, dim {extractor.dim}")
    if summary["bad"]:
        print(f"left out {len(summary['bad'])} bad files (see {summary['prefix']}.bad):\n  " + "\n  ".join(summary["bad"]), file=sys.stderr)


if __name__ == "__main__":
    main()
