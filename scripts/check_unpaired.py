#!/usr/bin/env python
"""Check that the two training corpora of an unsupervised set-up are unpaired, and that neither
holds the evaluation references' sentences (fairseq_signlang.tools.unpairedness).

Reports exact sentence overlap between the sides and of each side with each reference; the
Jensen-Shannon divergence (bits) of the sides' unigram and bigram distributions beside a
same-source baseline; out-of-vocabulary rates each way. Prints a table and a verdict, writes the
report as JSON.

Inputs, by extension: plain text, one sentence per line (.txt, .wrd, or any other such as
fairseq's train.en); .ltr letters; .jsonl word-level corpus lines (speech.jsonl / sign.jsonl of
scripts/build_word_corpus.py) or word alignments; .tsv clip manifests with a text column, or
wav2vec audio manifests with {stem}.wrd or {stem}.ltr beside them; unit sequences (.src speech
units, .sign / .ref sign units, .km cluster ids), compared only within one unit inventory.

  python scripts/check_unpaired.py --side-a corpus/train/speech.jsonl --side-b corpus/train/sign.jsonl \\
      --refs corpus/valid/speech.jsonl corpus/test/speech.jsonl --out unpairedness.json
  python scripts/check_unpaired.py --side-a uslnet/text/train.txt --side-b uslnet/video/train.tsv \\
      --refs uslnet/text/test.txt
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import write_json
from fairseq_signlang.tools.unpairedness import check_unpaired, format_report, has_overlap


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side-a", required=True, help="one training corpus (e.g. the speech or text side)")
    ap.add_argument("--side-b", required=True, help="the other training corpus (e.g. the sign side)")
    ap.add_argument("--refs", nargs="*", default=[], help="evaluation references (valid, test): sentences no side should hold")
    ap.add_argument("--names", nargs=2, default=["A", "B"], metavar=("NAME_A", "NAME_B"), help="what to call the sides in the report")
    ap.add_argument("--lowercase", action="store_true", help="fold case before comparing words (text from different sources)")
    ap.add_argument("--same-unit-space", action="store_true",
                    help="treat every unit file as one inventory (by default .src, .sign/.ref and each folder's .km are different ones)")
    ap.add_argument("--smoothing", type=float, default=0.0,
                    help="add-alpha smoothing of the unigram and bigram counts over the types seen in either corpus "
                         "(default 0: maximum likelihood; the Jensen-Shannon divergence is finite without it)")
    ap.add_argument("--baseline-draws", type=int, default=5,
                    help="random splits of both sides pooled for the same-source baseline of the divergences (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the baseline's random splits")
    ap.add_argument("--out", default="unpairedness.json", help="where to write the JSON report")
    ap.add_argument("--fail-on-overlap", action="store_true",
                    help="exit with status 1 when the sides share a sentence or a side holds a reference sentence")
    args = ap.parse_args(argv)
    try:
        if args.smoothing < 0:
            raise CorpusError(f"--smoothing must be 0 or more, got {args.smoothing}")
        report = check_unpaired(args.side_a, args.side_b, args.refs, tuple(args.names), args.lowercase, args.same_unit_space,
                                args.smoothing, max(0, args.baseline_draws), args.seed)
    except CorpusError as e:
        sys.exit(f"error: {e}")
    write_json(args.out, report)
    print(format_report(report))
    print(f"wrote {args.out}")
    if args.fail_on_overlap and has_overlap(report):
        sys.exit(1)


if __name__ == "__main__":
    main()
