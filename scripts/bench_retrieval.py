#!/usr/bin/env python
"""Benchmark: DTW retrieval of a split, four ways on the same pairs.

1. batched torch DTW (metrics/dtw.py): Sim(X, Y) = -DTW(G(X), Y) / L of every (speech, sign)
   pair, cosine frame distance, dtw-python's symmetric2 steps; the sweep on one thread.
2. a per-pair dtw-python loop: the reference; the script checks that 1 agrees with it.
3. dtaidistance's C implementation (dtw_ndim.distance_matrix_fast, OpenMP on every core), the
   fastest CPU peer a user would pick. It sums squared Euclidean frame distances with symmetric1
   steps (a diagonal step counts its cell once) and returns the square root. On L2-normalised
   frames the squared Euclidean distance is 2 x the cosine distance, so it aligns the same pairs,
   of the same shapes, over the same cells, under another step pattern; the script checks it
   against dtw-python's symmetric1 DTW of 2 x cosine distance on the first rows.
4. the pruned ranking (metrics/retrieval.py: pruned_target_ranks): recall@1/5/10 both ways from
   lower bounds and the few alignments they cannot settle; the script checks that its recall
   equals the full matrix's exactly, and counts the pairs it aligned.

Two splits: --size sentences (300) and --large (2500, the paper's largest test split; 0 skips
it; dtw-python is projected there from its per-pair time on the first). Each speech query is a
generator posterior that reads its own sign sentence: each word puts half its mass on its sign
unit with probability 1 - --noise, and is a Dirichlet draw otherwise (--noise 1: posteriors
that know nothing, recall at chance). Timings are the best of a few runs; the table at the end
gives each method's time and how many times faster than dtaidistance it is, measured in this
run. The machine's load average is printed before and after: on a shared machine it moves the
figures.

On the CPU it also times the sweep on torch's default thread count (every core) beside the
library's choice (metrics/dtw.py: one thread), and `--busy N` runs N busy-looping processes
during those timings, as other jobs on a shared machine would.
"""
import argparse
import multiprocessing
import os
import time
from typing import Optional

import numpy as np
import torch
from dtaidistance import dtw_ndim
from dtw import dtw as reference_dtw
from dtw import symmetric1
from scipy.spatial.distance import cdist
from tqdm import tqdm

from fairseq_signlang.io.device import default_device
from fairseq_signlang.metrics import retrieval
from fairseq_signlang.metrics.dtw import SWEEP_THREADS
from fairseq_signlang.metrics.retrieval import dtw_similarity, pad_sequences, recall_at_k, recall_from_ranks

OMP_THREADS = os.environ.get("OMP_NUM_THREADS", os.cpu_count())  # dtaidistance's OpenMP threads


def _spin(stop):
    while not stop.is_set():
        pass


def make_split(rng, n: int, units: int, min_len: int, max_len: int, noise: float):
    """n sign sentences of random units and, for each, the posteriors of a generator reading it."""
    signs = [rng.integers(0, units, size=t) for t in rng.integers(min_len, max_len + 1, size=n)]
    gen = []
    for s in signs:
        p = rng.dirichlet(np.full(units, 0.05), size=len(s))
        read = rng.random(len(s)) >= noise
        p[read] = 0.5 * p[read] + 0.5 * np.eye(units)[s[read]]
        gen.append(p.astype(np.float32))
    return gen, signs


def best_time(fn, repeats: int, cuda: bool):
    """(best seconds over `repeats`, the last result) of fn()."""
    best, out = float("inf"), None
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def dtaidistance_matrix(gen, signs, units: int) -> np.ndarray:
    """dtaidistance's DTW of every (query, sign) pair on L2-normalised frames: (Q, C)."""
    eye = np.eye(units)
    series = [g / np.linalg.norm(g, axis=1, keepdims=True) for g in (x.astype(np.float64) for x in gen)] + [eye[s] for s in signs]  # C doubles
    Q = len(gen)
    flat = dtw_ndim.distance_matrix_fast(series, block=((0, Q), (Q, Q + len(signs))), compact=True, parallel=True)
    return np.asarray(flat).reshape(Q, len(signs))


def pruned(g_pad, g_len, s_pad, s_len, aligned: list):
    """recall@k of the pruned ranking, and the number of pairs it aligned appended to `aligned`."""
    count, align = [0], retrieval.pair_similarity

    def counted(qn, gl, u, sl, qi, cj, *a, **k):
        count[0] += len(qi)
        return align(qn, gl, u, sl, qi, cj, *a, **k)

    retrieval.pair_similarity = counted
    try:
        return recall_from_ranks(retrieval.pruned_target_ranks(g_pad, g_len, s_pad, s_len))
    finally:
        retrieval.pair_similarity = align
        aligned.append(count[0])


def run_split(name, gen, signs, args, repeats: int, per_pair: Optional[float] = None):
    """Times of the four methods on one split, and the share of pairs the pruned ranking aligned.
    The dtw-python loop runs unless `per_pair` (its seconds a pair) projects it."""
    n, pairs = len(gen), len(gen) * len(signs)
    g_pad, g_len = pad_sequences([torch.from_numpy(g) for g in gen])
    s_pad, s_len = pad_sequences([torch.from_numpy(s) for s in signs], pad_value=0)
    g_pad, s_pad = g_pad.to(args.device), s_pad.to(args.device)
    cuda = g_pad.is_cuda
    print(f"\n{name}: {n} x {n} pairs, lengths {args.min_len}-{args.max_len}, {args.units} units, noise {args.noise}, device {args.device}")
    times = {}
    dtw_similarity(g_pad[:2], g_len[:2], s_pad[:2], s_len[:2])  # warm-up
    times["batched"], ours = best_time(lambda: dtw_similarity(g_pad, g_len, s_pad, s_len), repeats, cuda)
    print(f"batched torch DTW: {times['batched']:.3f} s" + ("" if cuda else f" (sweep on {SWEEP_THREADS} thread)"))
    if per_pair is None and not cuda:
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
        for p in spinners:
            p.start()
        try:
            t_one, _ = best_time(lambda: dtw_similarity(g_pad, g_len, s_pad, s_len), repeats, cuda)
            t_all, _ = best_time(lambda: dtw_similarity(g_pad, g_len, s_pad, s_len, num_threads=None), repeats, cuda)
        finally:
            stop.set()
            for p in spinners:
                p.join()
        print(f"  sweep on {SWEEP_THREADS} thread {t_one:.3f} s, on torch's {torch.get_num_threads()} threads {t_all:.3f} s "
              f"({t_all / t_one:.2f}x the time)" + (f", {args.busy} busy processes running" if args.busy else ""))
    ours = ours.cpu().numpy()

    eye = np.eye(args.units)
    costs = lambda i: ((j, cdist(gen[i], eye[s], metric="cosine")) for j, s in enumerate(signs))  # noqa: E731
    if per_pair is None:
        reference = np.empty((n, len(signs)))
        t0 = time.perf_counter()
        for i in tqdm(range(n), desc="dtw-python pairs", unit="query"):
            for j, c in costs(i):
                reference[i, j] = -reference_dtw(c).distance / len(signs[j])
        times["dtw-python"] = time.perf_counter() - t0
        diff = float(np.abs(ours - reference).max())
        print(f"per-pair dtw-python loop: {times['dtw-python']:.3f} s; max |difference| of similarities {diff:.2e}")
        if diff > 1e-4:
            raise SystemExit(f"batched and reference similarities disagree (max difference {diff})")
    else:
        times["dtw-python"] = per_pair * pairs
        print(f"per-pair dtw-python loop: about {times['dtw-python']:.0f} s (projected from {per_pair * 1e6:.0f} us a pair)")

    times["dtaidistance"], theirs = best_time(lambda: dtaidistance_matrix(gen, signs, args.units), repeats, False)
    rows = min(n, 10)
    sym1 = np.array([[np.sqrt(reference_dtw(2 * c, step_pattern=symmetric1).distance) for _, c in costs(i)] for i in range(rows)])
    diff = float(np.abs(theirs[:rows] - sym1).max())
    print(f"dtaidistance distance_matrix_fast (parallel, {OMP_THREADS} threads): {times['dtaidistance']:.3f} s; "
          f"max |difference| from dtw-python symmetric1 on 2 x cosine, first {rows} rows: {diff:.2e}")
    if diff > 1e-6:
        raise SystemExit(f"dtaidistance does not compute what this benchmark says it does (max difference {diff})")

    aligned = []
    pruned(g_pad[:2], g_len[:2], s_pad[:2], s_len[:2], [])  # warm-up
    times["pruned"], recall = best_time(lambda: pruned(g_pad, g_len, s_pad, s_len, aligned), repeats, cuda)
    full = recall_at_k(torch.from_numpy(ours))
    same = recall == full
    print(f"pruned ranking: {times['pruned']:.3f} s, aligned {aligned[-1]} pairs ({100.0 * aligned[-1] / pairs:.2f} % of {pairs}); "
          f"recall {'identical to' if same else 'DIFFERENT from'} the full matrix's")
    print("  recall@k:", {k: round(v, 2) for k, v in full.items()})
    if not same:
        raise SystemExit(f"pruned recall {recall} differs from the full matrix's {full}")
    return times, 1.0 * aligned[-1] / pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=300, help="sentences of the first split (queries = candidates)")
    ap.add_argument("--large", type=int, default=2500, help="sentences of the large split (0: skip it)")
    ap.add_argument("--units", type=int, default=100, help="sign units (vocabulary)")
    ap.add_argument("--min-len", type=int, default=5)
    ap.add_argument("--max-len", type=int, default=15)
    ap.add_argument("--noise", type=float, default=0.5, help="chance that a query word's posterior ignores its sign unit")
    ap.add_argument("--device", default=str(default_device()))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--busy", type=int, default=0, help="busy-looping processes during the thread comparison (a shared machine)")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    split = lambda n: make_split(rng, n, args.units, args.min_len, args.max_len, args.noise)  # noqa: E731
    splits = [(args.size, *run_split("split", *split(args.size), args, 3))]
    _, small, _ = splits[0]
    if args.large:
        splits.append((args.large, *run_split("large split", *split(args.large), args, 1, small["dtw-python"] / args.size**2)))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    names = {
        "batched": f"batched torch DTW, full matrix (sweep on {SWEEP_THREADS} thread)",
        "dtw-python": "dtw-python, per pair (1 thread)",
        "dtaidistance": f"dtaidistance C, parallel ({OMP_THREADS} threads)",
        "pruned": f"pruned ranking, exact recall ({SWEEP_THREADS} thread)",
    }
    head = "| method | " + " | ".join(f"{n} x {n} | x dtaidistance" for n, _, _ in splits) + " |"
    print("\n" + head + "\n|" + " --- |" * (1 + 2 * len(splits)))
    for key, label in names.items():
        cells = []
        for n, times, _ in splits:
            t = times[key]
            approx = "~" if key == "dtw-python" and n != args.size else ""
            cells += [f"{approx}{t:.3f} s" if t < 10 else f"{approx}{t:.1f} s", f"{times['dtaidistance'] / t:.2f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("pruned ranking aligned " + ", ".join(f"{100 * frac:.2f} % of the pairs at {n} x {n}" for n, _, frac in splits)
          + "; its recall equals the full matrix's on every split")
    print(f"speedup {small['dtw-python'] / small['batched']:.1f}")


if __name__ == "__main__":
    main()
