#!/usr/bin/env python
"""Benchmark: batched torch DTW retrieval vs a per-pair dtw-python loop on the same pairs.

Both compute Sim(X, Y) = -DTW(G(X), Y) / L with cosine frame distance for every (speech,
sign) pair of a random split; the script checks they agree, then prints the timings and,
last, `speedup <ratio>` (with the library's thread setting for the sweep).

On the CPU it also times the sweep on torch's default thread count (every core) beside the
library's choice (metrics/dtw.py: one thread), and `--busy N` runs N busy-looping processes
during the timings, as other jobs on a shared machine would.
"""
import argparse
import multiprocessing
import time

import numpy as np
import torch
from dtw import dtw as reference_dtw
from scipy.spatial.distance import cdist
from tqdm import tqdm

from fairseq_signlang.io.device import default_device
from fairseq_signlang.metrics.dtw import SWEEP_THREADS
from fairseq_signlang.metrics.retrieval import dtw_similarity, pad_sequences, recall_at_k


def _spin(stop):
    while not stop.is_set():
        pass


def timed_similarity(g_pad, g_len, s_pad, s_len, num_threads, repeats: int = 3):
    """(best seconds over `repeats`, similarities) of the batched retrieval."""
    dtw_similarity(g_pad[:2], g_len[:2], s_pad[:2], s_len[:2], num_threads=num_threads)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if g_pad.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = dtw_similarity(g_pad, g_len, s_pad, s_len, num_threads=num_threads)
        if g_pad.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300, help="speech sentences (rows)")
    ap.add_argument("--candidates", type=int, default=300, help="sign sentences (columns)")
    ap.add_argument("--units", type=int, default=100, help="sign units (vocabulary)")
    ap.add_argument("--min-len", type=int, default=5)
    ap.add_argument("--max-len", type=int, default=15)
    ap.add_argument("--device", default=str(default_device()))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--busy", type=int, default=0, help="busy-looping processes to run during the timings (a shared machine)")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    lens = lambda n: rng.integers(args.min_len, args.max_len + 1, size=n)  # noqa: E731
    gen = [rng.dirichlet(np.full(args.units, 0.05), size=t).astype(np.float32) for t in lens(args.queries)]
    signs = [rng.integers(0, args.units, size=t) for t in lens(args.candidates)]
    print(f"{args.queries} x {args.candidates} pairs, lengths {args.min_len}-{args.max_len}, {args.units} units, device {args.device}")

    g_pad, g_len = pad_sequences([torch.from_numpy(g) for g in gen])
    s_pad, s_len = pad_sequences([torch.from_numpy(s) for s in signs], pad_value=0)
    g_pad, s_pad = g_pad.to(args.device), s_pad.to(args.device)
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        t_batched, ours = timed_similarity(g_pad, g_len, s_pad, s_len, SWEEP_THREADS)
        print(f"batched torch DTW: {t_batched:.3f} s" + (f" (sweep on {SWEEP_THREADS} thread)" if not g_pad.is_cuda else "")
              + (f", {args.busy} busy processes running" if args.busy else ""))
        if not g_pad.is_cuda:
            t_all, _ = timed_similarity(g_pad, g_len, s_pad, s_len, None)
            print(f"batched torch DTW on torch's {torch.get_num_threads()} threads: {t_all:.3f} s "
                  f"({t_all / t_batched:.2f}x the time on {SWEEP_THREADS})")
    finally:
        stop.set()
        for p in spinners:
            p.join()
    ours = ours.cpu().numpy()

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
