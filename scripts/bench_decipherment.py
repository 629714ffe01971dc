#!/usr/bin/env python
"""Compare the word-level objectives (the paper's L1 terms; decipherment from a random start; and
decipherment warm-started by 200 updates of the L1 terms, the configs' default) on corpora with a known
mapping, built from text that no test uses (Debian's fortunes by default, or --text), at several
vocabulary sizes, with the pairing hidden (both sides render the same sentences, the sign side
shuffled, as ASL LibriSpeech) and with disjoint sentences (separately collected corpora). Every
run goes through fairseq-hydra-train with the objective's config; the checkpoint is the one the
label-free speech_nll chose. Prints one table (and writes it to {out}/table.md, rows to rows.json):
test UER, A->V and V->A R@1, the corpus's oracle and majority-unit UER, the validation UER of the
chosen checkpoint against the best validation UER of the run, and wall time."""
import argparse
import os
import sys

from fairseq_signlang.corpora.text_sources import fortune_sentences, text_file_sentences
from fairseq_signlang.tools.objective_bench import COLUMNS, OBJECTIVES, PAIRINGS, check_configs, run_bench
from fairseq_signlang.tools.tables import write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/bench_decipherment")
    ap.add_argument("--vocab", type=int, nargs="+", default=[100, 200, 500])
    ap.add_argument("--pairing", nargs="+", choices=PAIRINGS, default=list(PAIRINGS))
    ap.add_argument("--objective", nargs="+", choices=sorted(OBJECTIVES), default=sorted(OBJECTIVES))
    ap.add_argument("--text", help="plain text, one sentence per line (default: Debian's fortunes)")
    ap.add_argument("--sentences", type=int, default=14000, help="sentences per corpus (train + valid + test)")
    ap.add_argument("--max-update", type=int, default=0, help="updates of the decipherment runs (0: the config's, or 150 EM iterations without warm start)")
    ap.add_argument(
        "--l1-max-update", type=int, default=1000,
        help="updates of the L1 runs (0: the config's, the paper's 3000, about 25 min a run on 2 CPU cores)",
    )
    ap.add_argument("--seed", type=int, default=11, help="corpus and training seed")
    args = ap.parse_args()
    try:
        check_configs(args.objective, args.vocab)
        sentences = text_file_sentences(args.text) if args.text else fortune_sentences()
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    out = os.path.abspath(args.out)
    rows = run_bench(sentences, args.vocab, args.pairing, args.objective, out, args.seed, args.sentences, {"l1": args.l1_max_update, "decipher": args.max_update, "l1+decipher": args.max_update})
    write_results(out, rows, COLUMNS, text_columns=3)


if __name__ == "__main__":
    main()
