#!/usr/bin/env python
"""Which sign units the lexicon step reads (not a test): word-sign corpora built at several
seeds, the video half's hand tracks read once, then for each unit description (--settings
FEATURES:PIECES, e.g. positions:3, the default of sign_units.py, and glove:2, the former one) and
each k-means seed: sign units (tools/sign_lexicon.py: units_from_tracks) and the lexicon
deciphered by tempering against the text half (induce_lexicon), as uslnet_word_sign.py runs them.
Each row: the lexicon's accuracy per segment on the training and test clips, beside the oracle
(each unit read as its most frequent word: the units' purity) and the most frequent word. The
table is printed and written to {out}/table.md, the rows to {out}/rows.json.

  python scripts/bench_units.py --out outputs/bench_units --seeds 0 7 5 9 21 13 47
"""
import argparse
import json
import os
import time

from tqdm import tqdm

from fairseq_signlang.corpora.uslnet_corpus import build_word_sign_corpus
from fairseq_signlang.tools.sign_lexicon import SEGMENT_FEATURES, hand_tracks, induce_lexicon, units_from_tracks
from fairseq_signlang.tools.tables import write_results

COLUMNS = (("corpus_seed", "corpus seed", "{}"), ("units", "units", "{}"), ("kmeans_seed", "k-means seed", "{}"),
           ("lexicon_accuracy_train", "lexicon, train", "{:.1f}"), ("oracle_train", "oracle, train", "{:.1f}"),
           ("lexicon_accuracy_test", "lexicon, test", "{:.1f}"), ("oracle_test", "oracle, test", "{:.1f}"),
           ("majority_train", "most frequent word, train", "{:.1f}"), ("majority_test", "most frequent word, test", "{:.1f}"),
           ("seconds", "seconds", "{:.0f}"))


def setting(text: str):
    features, _, pieces = text.partition(":")
    if features not in SEGMENT_FEATURES or not pieces.isdigit() or int(pieces) < 1:
        raise argparse.ArgumentTypeError(f"expected FEATURES:PIECES with FEATURES one of {', '.join(SEGMENT_FEATURES)}, got {text!r}")
    return features, int(pieces)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[5, 9, 21, 13], help="corpus seeds (tests/test_uslnet_joint.py runs seed 0's corpus)")
    ap.add_argument("--settings", type=setting, nargs="+", default=[("positions", 3), ("glove", 2)], help="FEATURES:PIECES")
    ap.add_argument("--kmeans-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--clusters", type=int, default=40)
    ap.add_argument("--sentences", type=int, default=2000, help="training sentences, halved into text and video (uslnet_word_sign.py's)")
    ap.add_argument("--valid", type=int, default=20, help="validation sentences (they change the corpus drawn; not read)")
    ap.add_argument("--test", type=int, default=40, help="test sentences (20 and 40: uslnet_word_sign.py --scale test's corpus)")
    ap.add_argument("--vocab-size", type=int, default=20)
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        corpus = os.path.join(args.out, f"corpus{seed}")
        build_word_sign_corpus(corpus, vocab_size=args.vocab_size, num_sentences=args.sentences, num_valid=args.valid, num_test=args.test, fps=5.0,
                               seed=seed)
        text = f"{corpus}/text/train.txt"
        tracks = hand_tracks(f"{corpus}/video", ("train", "test"))
        for (features, pieces), kmeans_seed in tqdm([(s, k) for s in args.settings for k in args.kmeans_seeds], desc=f"corpus seed {seed}"):
            run = os.path.join(args.out, f"seed{seed}", f"{features}{pieces}_kmeans{kmeans_seed}")
            start = time.time()
            units_from_tracks(tracks, text, f"{run}/units", args.clusters, seed=kmeans_seed, features=features, pieces=pieces)
            report = induce_lexicon(f"{run}/units", text, f"{corpus}/video", f"{run}/lexicon", eval_splits=("test",))
            train, test = report["splits"]["train"], report["splits"]["test"]
            rows.append({"corpus_seed": seed, "units": f"{features}:{pieces}", "features": features, "pieces": pieces, "kmeans_seed": kmeans_seed,
                         **{f"{k}_{split}": s[k] for split, s in (("train", train), ("test", test))
                            for k in ("lexicon_accuracy", "oracle", "majority")},
                         "score": round(report["score"], 1), "seconds": round(time.time() - start, 1)})
            print(json.dumps(rows[-1]), flush=True)
    write_results(args.out, rows, COLUMNS, text_columns=2)


if __name__ == "__main__":
    main()
