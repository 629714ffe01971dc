#!/usr/bin/env python
"""How the lexicon step falls with the quality of the sign units (not a test).

Text and sign-unit sentences come from disjoint halves of one bigram source
(corpora/synthetic/simulated_units.py: markov_sentences, text no test uses by default); each
word is written as one of --units-per-word units (signers), a share of the tokens gets a random
unit (purity), and a share of the sentences is cut once too often or too few (count errors),
as segmentation and k-means of sign video give them. The lexicon is deciphered by simulated
parallel tempering (tools/sign_lexicon.py: --chains chains, --sweeps sweeps), with and without
letting the bigram model repeat and skip words. Each row: the accuracy of the deciphered words
per token, beside the oracle (every unit read as its most frequent word) and the most frequent
word.

  python scripts/bench_lexicon.py --out outputs/bench_lexicon
"""
import argparse
import itertools
import json
import os
import time
from collections import Counter

import numpy as np

from fairseq_signlang.corpora.synthetic.simulated_units import markov_sentences, segmented_sign_units
from fairseq_signlang.features.purity import cluster_purity
from fairseq_signlang.io.writers import atomic_open
from fairseq_signlang.models.speech2sign_u.cipher_search import HardLexiconScore, Tempering, temper_lexicon


def measure(text, signed, units_per_word, purity, count_errors, robust, args) -> dict:
    units, truth, num_units = segmented_sign_units(signed, units_per_word, purity, count_errors, seed=args.seed + 1)
    vocab = [w for w, _ in Counter(w for s in text for w in s).most_common()]  # frequency order, as induce_lexicon
    index = {w: i for i, w in enumerate(vocab)}
    rate = count_errors / 2 if robust else 0.0
    score = HardLexiconScore(units, num_units, [[index[w] for w in s] for s in text], len(vocab), self_loop=rate, skip=rate)
    start = time.time()
    found = temper_lexicon(score, Tempering(args.chains, args.sweeps, args.min_temperature, args.max_temperature), seed=args.seed,
                           desc=f"purity {purity}, count errors {count_errors}")
    pairs = [(w, u) for s, t in zip(units, truth) for u, w in zip(s, t)]
    oracle = cluster_purity(pairs)
    oracle_assignment = np.array([index.get(oracle["majority"].get(u, vocab[0]), 0) for u in range(num_units)])
    return {
        "purity": purity, "count_errors": count_errors, "robust_bigram": robust,
        "accuracy": round(100 * float(np.mean([vocab[found["assignment"][u]] == w for w, u in pairs])), 2),
        "oracle": round(100 * oracle["purity"], 2),
        "majority": round(100 * Counter(w for w, _ in pairs).most_common(1)[0][1] / len(pairs), 2),
        "score_found": round(found["score"], 1), "score_oracle_lexicon": round(score(oracle_assignment), 1),
        "seconds": round(time.time() - start, 1),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--words", type=int, default=20)
    ap.add_argument("--sentences", type=int, default=1000, help="per side")
    ap.add_argument("--units-per-word", type=int, default=2)
    ap.add_argument("--purities", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7])
    ap.add_argument("--count-errors", type=float, nargs="+", default=[0.0, 0.1, 0.25])
    tempering = Tempering()
    ap.add_argument("--chains", type=int, default=tempering.chains)
    ap.add_argument("--sweeps", type=int, default=tempering.sweeps)
    ap.add_argument("--min-temperature", type=float, default=tempering.min_temperature)
    ap.add_argument("--max-temperature", type=float, default=tempering.max_temperature)
    ap.add_argument("--seed", type=int, default=21, help="text source seed (the tests use 13)")
    args = ap.parse_args(argv)
    sentences = markov_sentences(args.words, 2 * args.sentences, seed=args.seed, min_len=3, max_len=5)
    sentences = [[int(w[1:]) for w in s] for s in sentences]
    text, signed = sentences[: args.sentences], sentences[args.sentences :]
    rows = []
    for purity, errors in itertools.product(args.purities, args.count_errors):
        for robust in ([False, True] if errors > 0 else [False]):
            rows.append(measure(text, signed, args.units_per_word, purity, errors, robust, args))
            print(json.dumps(rows[-1]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with atomic_open(os.path.join(args.out, "results.json"), encoding="utf-8") as f:
        json.dump({"settings": vars(args), "rows": rows}, f, indent=2)
        f.write("\n")
    print("| purity | count errors | repeat/skip in the bigram | accuracy | oracle | most frequent word | log lik., found / oracle lexicon |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['purity']:.2f} | {r['count_errors']:.2f} | {'yes' if r['robust_bigram'] else 'no'} | {r['accuracy']} | {r['oracle']} | "
              f"{r['majority']} | {r['score_found']} / {r['score_oracle_lexicon']} |")


if __name__ == "__main__":
    main()
