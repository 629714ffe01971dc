#!/usr/bin/env python
"""Concatenate the shards {prefix}_{rank}_{nshard}.npy/.lengths/.ids of extract_speech_features.py
into {prefix}.npy/.lengths/.ids, in rank (= manifest) order, streaming. A shard whose rank has
not finished (its {prefix}_{rank}_{nshard}.partial marker is still there) is refused: rerun that
rank's extraction command first, it resumes where it stopped."""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.features.pipeline import merge_shards


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="the prefix given to extract_speech_features.py")
    ap.add_argument("--nshard", type=int, required=True)
    args = ap.parse_args()
    try:
        n = merge_shards(args.out, args.nshard)
    except CorpusError as e:
        sys.exit(f"error: {e}")
    print(f"{args.out}: {n} utterances from {args.nshard} shards")


if __name__ == "__main__":
    main()
