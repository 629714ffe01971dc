#!/usr/bin/env python
"""Sign units from unlabelled sign video: every clip of {video-data}/{split}.tsv cut into
sign-sized segments and each segment given a k-means unit (fairseq_signlang/tools/sign_lexicon.py).

The number of signs in a clip comes from its length, matched to the sentence lengths of the
(unpaired) text corpus; the clip is cut evenly (--segmentation uniform, the default: the
better units on 5 fps video) or on the peaks of the hands' speed (speed). Features are coloured-glove hand tracks, read at
--fps (0: the file's rate; the speed cue wants the full rate); a segment is described by the
means of --pieces equal parts of the hands' positions (--features positions, the default) or
of every glove column (glove: with the blobs' area, spread and tilt). K-means is fitted on the first
split. Writes {out}/{split}.km (one line of units per clip), {split}.segments.jsonl (each
segment's frames), kmeans.npz and, last, units.json (an interrupted run leaves none, and
induce_lexicon.py refuses the folder); where a manifest has text, units.json and the
printed table give the units' purity against the words by position, beside the share of the
most frequent word and how often the segment count equals the word count.

  python scripts/sign_units.py --video-data corpus/video --text corpus/text/train.txt --out units
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.tools.sign_lexicon import SEGMENT_FEATURES, SEGMENTATIONS, sign_units


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video-data", required=True, help="folder of {split}.tsv clip manifests (id, path[, start, end][, text])")
    ap.add_argument("--text", required=True, help="the text corpus, one sentence per line (its sentence lengths set the segment counts)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--splits", nargs="+", default=["train", "valid", "test"], help="k-means is fitted on the first")
    ap.add_argument("--clusters", type=int, default=40)
    ap.add_argument("--segmentation", choices=SEGMENTATIONS, default="uniform", help="uniform: even cuts (the better on 5 fps video, see the README); speed: on the peaks of the hands' speed")
    ap.add_argument("--features", choices=list(SEGMENT_FEATURES), default="positions",
                    help="positions: the hands' x, y relative to the face (the better units, see the README); glove: every glove column")
    ap.add_argument("--pieces", type=int, default=3, help="a segment's description: the means of this many equal parts of it")
    ap.add_argument("--fps", type=float, default=0.0, help="frames per second to read clips at (0: the file's own rate)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        report = sign_units(args.video_data, args.text, args.out, args.splits, args.clusters, args.segmentation, args.fps, args.seed,
                            args.features, args.pieces)
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"{report['segmentation']} segmentation, {report['clusters']} units of {report['features']} in {report['pieces']} pieces, "
          f"{report['frames_per_word']} frames per word")
    print("| split | clips | segments / clip | words / clip | segment count = word count | purity | most frequent word |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for split, s in report["splits"].items():
        print(f"| {split} | {s['clips']} | {s['segments_per_clip']} | {s.get('words_per_clip', '-')} | {s.get('count_accuracy', '-')} | "
              f"{s.get('purity', '-')} | {s.get('majority_word_share', '-')} |")


if __name__ == "__main__":
    main()
