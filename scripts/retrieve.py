#!/usr/bin/env python
"""Rank a whole split with a trained word-level speech2sign-U checkpoint (eq. 13 DTW retrieval).

Writes, under --out: metrics.json (UER, recall@1/5/10 both ways), rankings.json (every
query's top candidates and the rank of its true match) and alignments.png (the DTW path of
a few true pairs over their similarity maps).

--prune ranks with lower bounds on DTW and aligns only the candidates they cannot rule out: the
same recall, to the last bit, from a fraction of the pairs (large splits); rankings.json then
counts the candidates above each true match up to 10 and lists no top candidates.
"""
import argparse
import sys

import fairseq_signlang  # noqa: F401  (registers the task; safe checkpoint loading)
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint
from fairseq_signlang.tools.reports import write_evaluation


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="checkpoint_best.pt or checkpoint_last.pt from fairseq-hydra-train")
    ap.add_argument("--data", help="data folder (default: the one stored in the checkpoint)")
    ap.add_argument("--split", default="test", help="split with {split}.src and {split}.ref")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--pairs", type=int, default=6, help="pairs drawn in alignments.png")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--prune", action="store_true", help="exact recall without aligning every pair (see above)")
    ap.add_argument("--band", type=int, help="Sakoe-Chiba band of the DTW (default: the checkpoint's task.retrieval_band, "
                    "normally none); a different metric, not a faster way to the same one")
    args = ap.parse_args()
    try:
        model, task = load_checkpoint(args.checkpoint, args.data, args.device)
        task.cfg.retrieval_prune = args.prune
        if args.band is not None:
            task.cfg.retrieval_band = args.band
        result = evaluate_split(model, task, args.split)
    except (CorpusError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    metrics = write_evaluation(result, args.out, task, args.pairs)
    print(" ".join(f"{k}={v}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
