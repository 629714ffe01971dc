#!/usr/bin/env python
"""An unsupervised word-to-sign lexicon and pseudo-parallel data for USLNet
(fairseq_signlang/tools/sign_lexicon.py).

The video corpus's sign units (scripts/sign_units.py) and the text corpus's words, unpaired,
are deciphered without labels:
  --search temper  each unit is one word's (a homophonic substitution cipher); parallel
                   tempering over those assignments (--chains at temperatures from
                   --min-temperature to --max-temperature, --sweeps), scored by the likelihood of
                   the unit sentences under the text's bigram model (fast: counts, no corpus pass)
  --search em      speech2sign-U's decipherment criterion through fairseq-hydra-train
                   (examples/speech2sign_u/word_decipher_tiny.yaml, EM from --restarts random
                   starts, the lowest final training loss kept), the words in the role of sign
                   units; translations by Viterbi
Every training clip is then translated word by word into {out}/train_pseudo.tsv, a clip
manifest whose text column is the pseudo translation. Where the manifests have text, {out}/lexicon.json reports the accuracy per
segment against the words by position, beside the oracle (the units' purity: the best any
unit-to-word mapping could do) and the most frequent word.

  python scripts/induce_lexicon.py --units units --text corpus/text/train.txt --video-data corpus/video --out lexicon
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.models.speech2sign_u.cipher_search import Tempering
from fairseq_signlang.tools.sign_lexicon import SEARCHES, induce_lexicon


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", required=True, help="scripts/sign_units.py's output folder")
    ap.add_argument("--text", required=True, help="the text corpus, one sentence per line")
    ap.add_argument("--video-data", required=True, help="the clip manifests the units were made from")
    ap.add_argument("--out", required=True)
    ap.add_argument("--eval-splits", nargs="*", default=["valid", "test"])
    ap.add_argument("--search", choices=SEARCHES, default="temper")
    tempering = Tempering()
    ap.add_argument("--chains", type=int, default=tempering.chains, help="temper: chains, one per temperature")
    ap.add_argument("--sweeps", type=int, default=tempering.sweeps, help="temper: sweeps over the units per chain")
    ap.add_argument("--min-temperature", type=float, default=tempering.min_temperature,
                    help="temper: the coldest chain's, in units of a unit's mean count")
    ap.add_argument("--max-temperature", type=float, default=tempering.max_temperature, help="temper: the hottest chain's (geometric in between)")
    ap.add_argument("--self-loop", type=float, default=0.0, help="temper: probability that a word repeats (a sign cut in two)")
    ap.add_argument("--skip", type=float, default=0.0, help="temper: probability that a word is skipped (merged into its neighbour)")
    ap.add_argument("--restarts", type=int, default=4, help="em: random starts")
    ap.add_argument("--max-update", type=int, default=80, help="em: EM iterations per start")
    ap.add_argument("--seed", type=int, default=1, help="seeds the starts")
    ap.add_argument("--config", default="word_decipher_tiny", help="em: a config of examples/speech2sign_u")
    args = ap.parse_args(argv)
    try:
        report = induce_lexicon(args.units, args.text, args.video_data, args.out, args.eval_splits, search=args.search,
                                tempering=Tempering(args.chains, args.sweeps, args.min_temperature, args.max_temperature),
                                self_loop=args.self_loop, skip=args.skip, restarts=args.restarts, max_update=args.max_update,
                                seed=args.seed, config=args.config)
    except (CorpusError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    if report["search"] == "em":
        for r in report["runs"]:
            print(f"start {r['restart']}: final training loss {r['train_loss']:.4f}" + ("  (kept)" if r["restart"] == report["chosen"] else ""))
    else:
        print(f"log likelihood of the lexicon: {report['score']:.1f}")
    print("| split | segments | accuracy (translation) | lexicon alone | oracle (purity) | most frequent word |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for split, s in report["splits"].items():
        print(f"| {split} | {s['segments']} | {s['accuracy']} | {s['lexicon_accuracy']} | {s['oracle']} | {s['majority']} |")
    if "units_right" in report:
        print(f"units whose word is their most frequent word: {report['units_right']} %")


if __name__ == "__main__":
    main()
