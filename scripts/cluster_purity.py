#!/usr/bin/env python
"""Cluster purity of word-level units: per word, how many clusters its tokens fall in and the
share in clusters it is the majority word of; overall purity (the paper aims at about 90 %).
Takes word-level cluster ids ({name}.km, one utterance per line) and the words ({name}.wrd)."""
import argparse
import json
import sys

from fairseq_signlang.io.readers import CorpusError, numbered_lines, read_cluster_ids
from fairseq_signlang.io.writers import atomic_open
from fairseq_signlang.features.purity import cluster_purity


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--km", required=True, help="cluster ids, one utterance per line")
    ap.add_argument("--words", required=True, help="words, one utterance per line, aligned with --km")
    ap.add_argument("--out", help="JSON report (default: print the summary only)")
    ap.add_argument("--top", type=int, default=20, help="words shown in the summary")
    args = ap.parse_args()
    try:
        km, words = read_cluster_ids(args.km), [line.split() for _, line in numbered_lines(args.words)]
        if len(km) != len(words):
            raise CorpusError(f"{args.words}: {len(words)} lines but {args.km} has {len(km)}")
        pairs = []
        for lineno, (k, w) in enumerate(zip(km, words), 1):
            if len(k) != len(w):
                raise CorpusError(f"{args.km}:{lineno}: {len(k)} clusters for {len(w)} words")
            pairs += [(word, int(c)) for word, c in zip(w, k)]
        report = cluster_purity(pairs)
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    if args.out:
        with atomic_open(args.out, encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    print(f"purity {100 * report['purity']:.1f} % over {report['tokens']} tokens, {report['clusters']} clusters")
    for word, r in list(report["words"].items())[: args.top]:
        print(f"  {word:15s} tokens {r['tokens']:6d}  clusters {r['clusters']:4d}  purity {100 * r['purity']:5.1f} %")


if __name__ == "__main__":
    main()
