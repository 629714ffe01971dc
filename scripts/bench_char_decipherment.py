#!/usr/bin/env python
"""Character-level decipherment on a fingerspelling corpus built from text, seed and noise that
the configs were not tuned on (by default the King James Bible, seed 7, speech noise 0.5 with two
look-alike letter pairs; the tests use Python's docstrings, seed 3, noise 0.3), one speech
segment per letter so the oracle can pair them by position. Speech and sign come from disjoint
sentences. The corpus is built and clustered by the scripts a user runs
(build_fingerspelling_corpus.py, cluster_features.py, prepare_char_task.py --speech-km), with
the sign side as the letters themselves or as k-means clusters of the sign exemplars, and
char_decipher_tiny is trained through fairseq-hydra-train from each start (criterion.init). Prints
one table (also {out}/table.md, rows.json): test UER beside the corpus's oracle (each speech unit
read as the sign unit it most often is) and the most-frequent-unit baseline, the validation UER
of the checkpoint the label-free speech_nll chose against the run's best, and wall time."""
import argparse
import os

from fairseq_signlang.tools.objective_bench import reference_baselines, train_chosen_by_speech_nll
from fairseq_signlang.tools.tables import format_table, write_results
from fairseq_signlang.tools.training import run_script

COLUMNS = (("sign_units", "sign units", "{}"), ("init", "EM start", "{}"), ("uer", "UER", "{:.1f}"), ("oracle_uer", "oracle UER", "{:.1f}"),
           ("majority_uer", "most frequent unit UER", "{:.1f}"), ("a2v_r1", "A->V R@1", "{:.1f}"),
           ("valid_uer_chosen", "valid UER, chosen by speech_nll", "{:.1f}"), ("valid_uer_best", "best valid UER", "{:.1f}"),
           ("wall_s", "wall s", "{:.0f}"))


def build(args, out: str) -> dict:
    """The corpus, its k-means units and one task folder per kind of sign unit."""
    fs = os.path.join(out, "corpus")
    text = ["--text", args.text] if args.text else ["--kjv"]
    run_script("build_fingerspelling_corpus.py", *text, "--synthesize-pool", 64, "--pool-size", 100, "--confusable-pairs", 2,
               "--valid", 200, "--test", 300, "--max-sentences", args.sentences, "--simulate-speech", 32,
               "--speech-noise", args.speech_noise, "--max-segments-per-letter", 1,
               "--speech-confusable-pairs", 2, "--seed", args.seed, "--out", fs)
    splits = [f"{fs}/{{}}/{s}" for s in ("train", "valid", "test")]
    run_script("cluster_features.py", "kmeans", "--fit", f"{fs}/speech/train", "-k", 52, "--seed", args.seed, "--out", f"{out}/speech_km",
               "--apply", *[s.format("speech") for s in splits])
    folders = {}
    for kind in args.sign_units:
        data = os.path.join(out, f"data_{kind}")
        if kind == "letters":
            sign = ["--letter-units", f"{fs}/sign"]
        else:  # the paper's: sign exemplars clustered into as many units as letters
            run_script("cluster_features.py", "kmeans", "--fit", f"{fs}/sign/train", "-k", 26, "--standardize", "--seed", args.seed,
                       "--out", f"{out}/sign_km", "--apply", *[s.format("sign") for s in splits])
            sign = ["--sign-km", f"{out}/sign_km", "--sign-clusters", 26]
        run_script("prepare_char_task.py", "--speech", f"{fs}/speech", *sign, "--speech-km", f"{out}/speech_km",
                   "--eval-splits", "valid", "test", "--out", data)
        folders[kind] = data
    return folders


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/bench_char_decipherment")
    ap.add_argument("--text", help="plain text, one sentence per line (default: Debian's bible-kjv)")
    ap.add_argument("--sentences", type=int, default=3500, help="sentences drawn (both training halves + 200 valid + 300 test)")
    ap.add_argument("--speech-noise", type=float, default=0.5)
    ap.add_argument("--sign-units", nargs="+", choices=("letters", "kmeans"), default=["letters", "kmeans"])
    ap.add_argument("--init", nargs="+", choices=("model", "tempering"), default=["model", "tempering"],
                    help="criterion.init: a random G, or the tempering search's hard reading")
    ap.add_argument("--seed", type=int, default=7, help="corpus, clustering and training seed")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    rows = []
    for kind, data in build(args, out).items():
        for init in args.init:
            overrides = [f"common.seed={args.seed}", f"criterion.init={init}"]
            run = train_chosen_by_speech_nll(data, os.path.join(out, f"{kind}_{init}"), "char_decipher_tiny", overrides)
            rows.append({"sign_units": kind, "init": init, **run, **reference_baselines(data, "test", merge_repeats=True)})
            print(format_table(rows[-1:], COLUMNS, text_columns=2), flush=True)
    write_results(out, rows, COLUMNS, text_columns=2)


if __name__ == "__main__":
    main()
