#!/usr/bin/env python
"""Build a small word-sign corpus for USLNet experiments (fairseq_signlang.corpora.uslnet_corpus):
Markov sentences over a small English vocabulary (or --sentences), each clip one procedural sign
per word in word order; the training sentences split into a text half (text/train.txt) and a
disjoint video half (video/train.tsv) for unsupervised training, plus paired files of all of them
(text/train_paired.txt, video/train_paired.tsv) for the supervised comparison, and valid/test
manifests with their text. See the module's docstring for the layout.

--binarize then runs scripts/prepare_text.py on text/{train,valid,test}.txt into text/bin
(task.data of task uslnet) with a word-level sentencepiece model: every word is one piece.
Afterwards it prints how unpaired the text and video halves are and whether they hold valid or
test sentences (scripts/check_unpaired.py's report).
"""
import argparse
import os
import runpy
import sys
import time

from fairseq_signlang.io.readers import numbered_lines, require_file
from fairseq_signlang.corpora.uslnet_corpus import build_word_sign_corpus
from fairseq_signlang.tools.unpairedness import check_unpaired, print_summary


def binarize_text(corpus: dict, workers: int = 1) -> str:
    """prepare_text (sentencepiece model_type word, a piece per vocabulary word) of the corpus's
    text side into text/bin; returns that folder."""
    prepare = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "prepare_text.py"))["prepare"]
    paths = corpus["paths"]
    out = os.path.join(paths["out"], "text", "bin")
    # <unk> <s> </s> and one piece per word; an upper bound for model_type word
    prepare(paths["text_train"], paths["text_valid"], paths["text_test"], out, vocab_size=len(corpus["vocab"]) + 3,
            model_type="word", workers=workers)
    return out


def parse_size(text: str):
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 40x32, got {text!r}") from None
    return w, h


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="corpus folder to write (replaced if it holds an earlier corpus)")
    ap.add_argument("--vocab-size", type=int, default=20, help="words in the vocabulary (2..100)")
    ap.add_argument("--num-sentences", type=int, default=600, help="training sentences, split into the text and the video half")
    ap.add_argument("--num-valid", type=int, default=60, help="validation sentences")
    ap.add_argument("--num-test", type=int, default=60, help="test sentences")
    ap.add_argument("--min-words", type=int, default=3, help="shortest sentence, in words")
    ap.add_argument("--max-words", type=int, default=5, help="longest sentence, in words")
    ap.add_argument("--size", type=parse_size, default=(40, 32), help="frame size WIDTHxHEIGHT (even numbers)")
    ap.add_argument("--fps", type=float, default=10.0, help="frames per second of the clips")
    ap.add_argument("--signers", type=int, default=2, help="number of signers (each clip by one, drawn at random)")
    ap.add_argument("--transition", type=int, default=4, help="frames (at 25 fps) between two signs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sentences", help="use the sentences of this file (one per line, words separated by spaces) instead of Markov "
                    "sentences; --vocab-size, --min-words and --max-words are then not used")
    ap.add_argument("--binarize", action="store_true", help="also binarize the text side into text/bin (scripts/prepare_text.py)")
    ap.add_argument("--workers", type=int, default=1, help="threads / processes for --binarize")
    args = ap.parse_args(argv)
    try:
        sentences = None
        if args.sentences:
            require_file(args.sentences, "sentence file")
            sentences = [line.split() for _, line in numbered_lines(args.sentences) if line.strip()]  # errors name file:line
        start = time.time()
        corpus = build_word_sign_corpus(
            args.out, vocab_size=args.vocab_size, num_sentences=args.num_sentences, num_valid=args.num_valid,
            num_test=args.num_test, min_words=args.min_words, max_words=args.max_words, size=args.size, fps=args.fps,
            signers=args.signers, seed=args.seed, sentences=sentences, transition=args.transition,
        )
        counts = ", ".join(f"{k} {v}" for k, v in corpus["counts"].items())
        print(f"{corpus['paths']['out']}: {len(corpus['vocab'])} words; sentences: {counts}; "
              f"frames per clip {corpus['frames']['min']}..{corpus['frames']['max']}; {time.time() - start:.1f} s")
        if corpus["video_train_missing_words"]:
            print(f"warning: the video half has no sign of: {' '.join(corpus['video_train_missing_words'])}")
        if args.binarize:
            print(f"binarized text side: {binarize_text(corpus, max(1, args.workers))}")
        paths = corpus["paths"]
        print_summary(check_unpaired(paths["text_train"], paths["video_train"], [paths["text_valid"], paths["text_test"]],
                                     names=("text", "video")))
    except (ValueError, RuntimeError) as e:  # CorpusError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
