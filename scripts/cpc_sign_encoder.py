#!/usr/bin/env python
"""CPC sign encoder of speech2sign-U (paper sec. 3.1, appendix A.1): a per-frame 2-layer MLP and
a 1-layer LSTM trained with contrastive predictive coding on visual feature files
({prefix}.npy + {prefix}.lengths), then k-means over its outputs for the sign units.

  train    --train feats/train --valid feats/valid --out cpc/
           [--epochs 60 --batch-size 16 --lr 1e-3 --steps 3 --negatives 32 --hidden 256
            --context 256 --seed 1 --device cuda|cpu]
           writes cpc/checkpoint_best.pt (best validation prediction accuracy, mean over steps),
           cpc/checkpoint_last.pt and cpc/train_log.json (loss and accuracy per epoch)
  encode   --checkpoint cpc/checkpoint_best.pt --apply feats/train feats/valid --out enc/
           [--output context|mlp]
           writes enc/{name}.npy + .lengths for each applied prefix: the LSTM context
           (character level, the default) or the MLP output (word level, appendix A.1)
  cluster  --fit enc/train --apply enc/train enc/valid -k 26 --out km/
           writes km/centroids.npy and km/{name}.km (cluster ids, one sentence per line),
           as cluster_features.py kmeans does; the paper sets k to the vocabulary size

Defaults are the paper's (appendix A.1). Training and encoding run on the GPU when there is one.
"""
import argparse
import logging
import os
import sys

from fairseq_signlang.io.readers import CorpusError, open_feature_array, read_features
from fairseq_signlang.features.cpc.training import encode_features, kmeans_units, train_cpc, unique_basenames
from fairseq_signlang.features.cpc.encoder import OUTPUTS, CPCConfig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    train = sub.add_parser("train", help="train the encoder with CPC")
    train.add_argument("--train", required=True, help="training feature prefix")
    train.add_argument("--valid", required=True, help="validation feature prefix (picks the best checkpoint)")
    train.add_argument("--out", required=True, help="output folder for checkpoints and train_log.json")
    train.add_argument("--epochs", type=int, default=60)
    train.add_argument("--batch-size", type=int, default=16, help="sentences per batch")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (betas 0.9, 0.999)")
    train.add_argument("--steps", type=int, default=3, help="K: frames ahead to predict")
    train.add_argument("--negatives", type=int, default=32, help="N: negatives per positive")
    train.add_argument("--hidden", type=int, default=256, help="MLP hidden and output units")
    train.add_argument("--context", type=int, default=256, help="LSTM hidden units")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--device", help="torch device; default cuda when available, else cpu")

    encode = sub.add_parser("encode", help="encode feature files with a trained encoder")
    encode.add_argument("--checkpoint", required=True)
    encode.add_argument("--apply", nargs="+", required=True, help="feature prefixes to encode")
    encode.add_argument("--out", required=True, help="output folder")
    encode.add_argument("--output", choices=OUTPUTS, default="context", help="LSTM context (character level) or MLP output (word level)")
    encode.add_argument("--batch-size", type=int, default=16, help="sentences per batch")
    encode.add_argument("--device", help="torch device; default cuda when available, else cpu")

    cluster = sub.add_parser("cluster", help="k-means (faiss) over encoded features")
    cluster.add_argument("--fit", required=True, help="feature prefix to fit on (the encoded train split)")
    cluster.add_argument("--apply", nargs="+", required=True, help="feature prefixes to assign")
    cluster.add_argument("-k", "--clusters", type=int, required=True)
    cluster.add_argument("--out", required=True, help="output folder")
    cluster.add_argument("--niter", type=int, default=50)
    cluster.add_argument("--seed", type=int, default=0)
    cluster.add_argument("--max-rows", type=int, default=1_000_000, help="rows sampled for fitting")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", stream=sys.stdout, force=True)
    try:
        if args.cmd == "train":
            cfg = CPCConfig(open_feature_array(args.train + ".npy").shape[1], args.hidden, args.context, args.steps, args.negatives)
            summary = train_cpc(args.train, args.valid, args.out, cfg, args.epochs, args.batch_size, args.lr, args.seed, args.device)
            print(f"best validation prediction accuracy {summary['best_valid_accuracy']:.4f} at epoch {summary['best_epoch']} "
                  f"(chance {summary['chance_accuracy']:.4f}): {summary['checkpoint_best']}")
        elif args.cmd == "encode":
            names = unique_basenames(args.apply)
            for prefix in args.apply:
                read_features(prefix)  # check every input before writing anything
            for prefix, name in zip(args.apply, names):
                encode_features(args.checkpoint, prefix, os.path.join(args.out, name), args.output, args.device, args.batch_size)
            print(f"{args.output} features of {len(names)} split(s) written to {args.out}")
        else:
            kmeans_units(args.fit, args.apply, args.clusters, args.out, args.niter, args.seed, args.max_rows)
            print(f"centroids and cluster ids written to {args.out}")
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
