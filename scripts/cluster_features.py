#!/usr/bin/env python
"""PCA and k-means over feature files ({prefix}.npy + {prefix}.lengths), fitted on one split and
applied to all, with faiss (k-means on GPU when there is one and faiss-gpu is installed).

  pca     --fit feats/train --dim 512 --out pca/ --apply feats/train feats/valid
          writes pca/A.npy, pca/b.npy and pca/{name}.npy + .lengths for each applied prefix
  kmeans  --fit feats/train -k 400 --out km/ --apply feats/train feats/valid [--standardize]
          writes km/centroids.npy and km/{name}.km (cluster ids, one utterance per line);
          --standardize clusters z-scores (mean and std from the fit split, saved as
          km/mean.npy and km/std.npy), for features whose dimensions have unlike scales
"""
import argparse
import os
import shutil
import sys

from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.io.writers import save_array, write_cluster_ids
from fairseq_signlang.features.clustering import assign_clusters, fit_kmeans, fit_pca, fit_standardizer, transform_rows, use_gpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("pca", "kmeans"):
        p = sub.add_parser(name)
        p.add_argument("--fit", required=True, help="feature prefix to fit on (the train split)")
        p.add_argument("--apply", nargs="*", default=[], help="feature prefixes to transform / assign")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--max-rows", type=int, default=1_000_000, help="rows sampled for fitting")
    sub.choices["pca"].add_argument("--dim", type=int, required=True)
    sub.choices["pca"].add_argument("--eigen-power", type=float, default=0.0, help="-0.5 whitens")
    sub.choices["kmeans"].add_argument("-k", "--clusters", type=int, required=True)
    sub.choices["kmeans"].add_argument("--niter", type=int, default=50)
    sub.choices["kmeans"].add_argument("--seed", type=int, default=0)
    sub.choices["kmeans"].add_argument("--standardize", action="store_true", help="cluster per-dimension z-scores")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    try:
        fit_feats, _, _ = read_features(args.fit)
        for prefix in args.apply:
            read_features(prefix)  # check every input before writing anything
        if args.cmd == "pca":
            A, b = fit_pca(fit_feats, args.dim, args.eigen_power, args.max_rows)
            save_array(os.path.join(args.out, "A.npy"), A)
            save_array(os.path.join(args.out, "b.npy"), b)
            for prefix in args.apply:
                dst = os.path.join(args.out, os.path.basename(prefix))
                transform_rows(prefix + ".npy", dst + ".npy", lambda x: x @ A.T + b)
                shutil.copyfile(prefix + ".lengths", dst + ".lengths")
            print(f"PCA {fit_feats.shape[1]} -> {args.dim} written to {args.out}")
        else:
            print(f"k-means with {args.clusters} clusters on {'GPU' if use_gpu() else 'CPU'}")
            transform = None
            if args.standardize:
                mean, std = fit_standardizer(fit_feats, args.max_rows)
                save_array(os.path.join(args.out, "mean.npy"), mean)
                save_array(os.path.join(args.out, "std.npy"), std)
                transform = lambda x: (x - mean) / std  # noqa: E731
            centroids = fit_kmeans(fit_feats, args.clusters, args.niter, args.seed, args.max_rows, transform)
            save_array(os.path.join(args.out, "centroids.npy"), centroids)
            for prefix in tqdm(args.apply, desc="assign", unit="split"):
                feats, offsets, lengths = read_features(prefix)
                ids = assign_clusters(feats, centroids, transform=transform)
                write_cluster_ids(os.path.join(args.out, os.path.basename(prefix) + ".km"), ids, offsets, lengths)
            print(f"centroids and cluster ids written to {args.out}")
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
