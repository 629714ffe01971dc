#!/usr/bin/env python
"""Build a character-level speech/sign corpus like the paper's Fingerspelling LibriSpeech: every
letter (a-z) of a transcript becomes one exemplar of that letter's ASL alphabet sign, drawn at
random from the first --pool-size exemplars of its letter; speech and sign training sentences are
disjoint halves of the text, and the --valid / --test sentences are speech sentences whose sign
rendering is written too, line by line, for evaluation only.

Text (one of):  --text FILE (one sentence per line), --kjv (Debian's bible-kjv),
                --stdlib-text (docstrings of Python's standard library; offline everywhere)
Pool (one of):  --pool DIR (a.npy ... z.npy, each (exemplars, dim) features of one letter's
                sign images), --synthesize-pool DIM (a stand-in pool written to OUT/pool)

  python scripts/build_fingerspelling_corpus.py --stdlib-text --synthesize-pool 64 \\
      --pool-size 100 --valid 300 --test 300 --simulate-speech 32 --out fs_corpus
  python scripts/build_fingerspelling_corpus.py --text librispeech.txt --pool asl_alphabet_feats \\
      --pool-size 300 --valid 5500 --test 5600 --out fs_librispeech

Writes OUT/sign/{split}.npy/.lengths/.ltr/.exemplars, OUT/speech/{split}.ltr/.wrd (and, with
--simulate-speech DIM, simulated segment features OUT/speech/{split}.npy/.lengths) and
OUT/summary.json, whose sentence_ids name the sentences of each side (0-based; for --text,
the line number - 1) so real speech features can be put in the same order; then prints how
unpaired the speech and sign letters are (scripts/check_unpaired.py's report).
"""
import argparse
import os
import sys

from fairseq_signlang.corpora.fingerspelling import (
    SIGN_CONFUSABLE_LETTERS, SPEECH_CONFUSABLE_LETTERS, LetterPool, SpeechSimulation, build_fingerspelling_corpus,
    synthesize_letter_pool,
)
from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file
from fairseq_signlang.corpora.text_sources import kjv_sentences, stdlib_docstring_sentences, words_of
from fairseq_signlang.tools.unpairedness import check_unpaired, print_summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    text = ap.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="text file, one sentence per line")
    text.add_argument("--kjv", action="store_true", help="the King James Bible (Debian package bible-kjv)")
    text.add_argument("--stdlib-text", action="store_true", help="sentences of the docstrings of Python's standard library")
    pool = ap.add_mutually_exclusive_group(required=True)
    pool.add_argument("--pool", help="folder with {letter}.npy, (exemplars, dim) features per letter")
    pool.add_argument("--synthesize-pool", type=int, metavar="DIM", help="write a synthetic pool of this dimension to OUT/pool and use it")
    ap.add_argument("--exemplars-per-letter", type=int, default=1000, help="synthetic pool: exemplars written per letter")
    ap.add_argument(
        "--confusable-pairs", type=int, default=5,
        help=f"synthetic pool: look-alike letter pairs with close prototypes, the first N of {SIGN_CONFUSABLE_LETTERS}",
    )
    ap.add_argument("--variation", type=float, default=0.5, help="synthetic pool: per-dimension exemplar variation around the prototype")
    ap.add_argument("--pool-size", type=int, default=100, help="exemplars drawn from per letter, the first N of its pool (paper: 100, 300, 500, 1000)")
    ap.add_argument("--valid", type=int, default=200, help="validation sentences")
    ap.add_argument("--test", type=int, default=200, help="test sentences")
    ap.add_argument("--max-sentences", type=int, help="use this many sentences, drawn at random")
    ap.add_argument("--simulate-speech", type=int, metavar="DIM", help="also write simulated speech segment features of this dimension")
    ap.add_argument("--speech-noise", type=float, default=0.5, help="simulated speech: per-dimension noise")
    ap.add_argument("--max-segments-per-letter", type=int, default=2, help="simulated speech: each letter is 1..N segments")
    ap.add_argument(
        "--speech-confusable-pairs", type=int, default=3,
        help=f"simulated speech: letter pairs with close prototypes, the first N of {SPEECH_CONFUSABLE_LETTERS}",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        if args.text:
            # every line, empty ones too, so a sentence's index is its line number - 1
            sentences = [words_of(line) for _, line in numbered_lines(require_file(args.text, "text file"))]
            source = args.text
        elif args.kjv:
            sentences, source = kjv_sentences(), "KJV"
        else:
            sentences, source = stdlib_docstring_sentences(), "stdlib docstrings"
        if args.synthesize_pool is not None:
            pool_dir = os.path.join(args.out, "pool")
            synthesize_letter_pool(pool_dir, args.synthesize_pool, args.exemplars_per_letter, args.confusable_pairs, args.variation, args.seed)
        else:
            pool_dir = args.pool
        speech = None
        if args.simulate_speech is not None:
            speech = SpeechSimulation(args.simulate_speech, args.speech_noise, args.max_segments_per_letter, args.speech_confusable_pairs)
        summary = build_fingerspelling_corpus(
            sentences, LetterPool.from_folder(pool_dir), args.pool_size, args.out, {"valid": args.valid, "test": args.test},
            args.seed, args.max_sentences, speech,
        )
    except (CorpusError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    splits = summary["splits"]
    evals = ", ".join(f"{s} {c['speech_sentences']}" for s, c in splits.items() if s != "train")
    print(
        f"{args.out}: {summary['sentences_used']} of {summary['sentences']} sentences of {source} "
        f"({summary['repeated_sentences']} repeats of another's letters left out); train {splits['train']['speech_sentences']} "
        f"speech + {splits['train']['sign_sentences']} sign sentences ({splits['train']['sign_letters']} sign letters); paired eval {evals or 'none'}; "
        f"pool {pool_dir}, {args.pool_size} exemplars per letter, dim {summary['sign_dim']}"
        + (f"; simulated speech dim {args.simulate_speech}" if speech else "")
    )
    refs = [os.path.join(args.out, "speech", f"{split}.ltr") for split in splits if split != "train"]
    try:
        print_summary(check_unpaired(os.path.join(args.out, "speech", "train.ltr"), os.path.join(args.out, "sign", "train.ltr"), refs,
                                     names=("speech", "sign")))
    except CorpusError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
