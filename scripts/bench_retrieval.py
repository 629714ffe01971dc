#!/usr/bin/env python
"""Benchmark: batched torch DTW retrieval vs a per-pair dtw-python loop on the same pairs.

Both compute Sim(X, Y) = -DTW(G(X), Y) / L with cosine frame distance for every (speech,
sign) pair of a random split; the script checks they agree, then prints the timings and,
last, `speedup <ratio>`.
"""
import argparse
import time

import numpy as np
import torch
from dtw import dtw as reference_dtw
from scipy.spatial.distance import cdist
from tqdm import tqdm

from fairseq_signlang.io.device import default_device
from fairseq_signlang.metrics.retrieval import dtw_similarity, pad_sequences, recall_at_k


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300, help="speech sentences (rows)")
    ap.add_argument("--candidates", type=int, default=300, help="sign sentences (columns)")
    ap.add_argument("--units", type=int, default=100, help="sign units (vocabulary)")
    ap.add_argument("--min-len", type=int, default=5)
    ap.add_argument("--max-len", type=int, default=15)
    ap.add_argument("--device", default=str(default_device()))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    lens = lambda n: rng.integers(args.min_len, args.max_len + 1, size=n)  # noqa: E731
    gen = [rng.dirichlet(np.full(args.units, 0.05), size=t).astype(np.float32) for t in lens(args.queries)]
    signs = [rng.integers(0, args.units, size=t) for t in lens(args.candidates)]
    print(f"{args.queries} x {args.candidates} pairs, lengths {args.min_len}-{args.max_len}, {args.units} units, device {args.device}")

    g_pad, g_len = pad_sequences([torch.from_numpy(g) for g in gen])
    s_pad, s_len = pad_sequences([torch.from_numpy(s) for s in signs], pad_value=0)
    g_pad, s_pad = g_pad.to(args.device), s_pad.to(args.device)
    dtw_similarity(g_pad[:2], g_len[:2], s_pad[:2], s_len[:2])  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ours = dtw_similarity(g_pad, g_len, s_pad, s_len)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_batched = time.perf_counter() - t0
    ours = ours.cpu().numpy()
    print(f"batched torch DTW: {t_batched:.3f} s")

    eye = np.eye(args.units)
    reference = np.empty((args.queries, args.candidates))
    t0 = time.perf_counter()
    for i, g in enumerate(tqdm(gen, desc="dtw-python pairs", unit="query")):
        for j, s in enumerate(signs):
            reference[i, j] = -reference_dtw(cdist(g, eye[s], metric="cosine")).distance / len(s)
    t_loop = time.perf_counter() - t0
    print(f"per-pair dtw-python loop: {t_loop:.3f} s")

    diff = float(np.abs(ours - reference).max())
    print(f"max |difference| of similarities: {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit(f"batched and reference similarities disagree (max difference {diff})")
    r_ours = recall_at_k(torch.from_numpy(ours).double())
    r_ref = recall_at_k(torch.from_numpy(reference))
    print("recall@k (batched):  ", {k: round(v, 2) for k, v in r_ours.items()})
    print("recall@k (reference):", {k: round(v, 2) for k, v in r_ref.items()})
    print(f"speedup {t_loop / t_batched:.1f}")


if __name__ == "__main__":
    main()
