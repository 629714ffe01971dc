#!/usr/bin/env python
"""Draw the sliding-window aligner's length-mapping weights from m source to n target positions
(USLNet figure 3): one heat map per connection with the current windows outlined, and the
eq. 10 logit curve.

  python scripts/plot_aligner_weights.py --m 6 --n 4 --connection soft hard --out aligner.png
"""
import argparse

from fairseq_signlang.models.uslnet.sliding_window_aligner import DEFAULT_SHARPNESS
from fairseq_signlang.viz.aligner_weights import plot_length_weights


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=6, help="source length (default: the paper's 6 words)")
    ap.add_argument("--n", type=int, default=4, help="target length (default: the paper's 4 frames)")
    ap.add_argument("--connection", nargs="+", choices=("soft", "hard"), default=["soft", "hard"])
    ap.add_argument("--sharpness", type=float, default=DEFAULT_SHARPNESS, help="scale of the Gaussian logits")
    ap.add_argument("--out", required=True, help="output PNG")
    args = ap.parse_args(argv)
    plot_length_weights(args.m, args.n, args.out, args.connection, args.sharpness)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
