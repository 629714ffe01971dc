#!/usr/bin/env python
"""Assemble the data folder of task speech2sign_u_word from word-level cluster ids.

  --speech-km DIR  {split}.km of the speech words (cluster_features.py kmeans over pooled words)
  --sign-km DIR    {split}.km of the sign words, same split names

The training split gives train.src (speech) and train.sign (the unpaired sign corpus). Every
other split in --eval-splits gives {split}.src and {split}.ref: the sign units of the video
paired with each speech sentence, for UER and retrieval only (never a training signal), so
their lines must match word for word. dict.src.txt and dict.sign.txt list every cluster id.
"""
import argparse
import os
import sys

from fairseq_signlang.io.readers import CorpusError, read_cluster_ids
from fairseq_signlang.io.writers import write_dictionary, write_unit_sentences


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech-km", required=True, help="folder with the speech {split}.km files")
    ap.add_argument("--sign-km", required=True, help="folder with the sign {split}.km files")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--eval-splits", nargs="*", default=["valid", "test"])
    ap.add_argument("--speech-clusters", type=int, help="speech cluster count (default: the largest id in train + 1)")
    ap.add_argument("--sign-clusters", type=int, help="sign cluster count (default: the largest id in train + 1)")
    ap.add_argument("--out", required=True, help="task data folder")
    args = ap.parse_args()
    try:
        km = lambda side, split: read_cluster_ids(os.path.join(getattr(args, f"{side}_km"), f"{split}.km"))  # noqa: E731
        speech, sign = km("speech", args.train_split), km("sign", args.train_split)
        evals = {}
        for split in args.eval_splits:
            src, ref = km("speech", split), km("sign", split)
            if len(src) != len(ref):
                raise CorpusError(f"{args.sign_km}/{split}.km: {len(ref)} sentences but {args.speech_km}/{split}.km has {len(src)}")
            for i, (a, b) in enumerate(zip(src, ref)):
                if len(a) != len(b):
                    raise CorpusError(f"{args.sign_km}/{split}.km:{i + 1}: {len(b)} sign words for {len(a)} spoken words")
            evals[split] = (src, ref)
        n_speech = args.speech_clusters or 1 + int(max(s.max() for s in speech))
        n_sign = args.sign_clusters or 1 + int(max(s.max() for s in sign))
        os.makedirs(args.out, exist_ok=True)
        write_unit_sentences(os.path.join(args.out, "train.src"), speech)
        write_unit_sentences(os.path.join(args.out, "train.sign"), sign)
        for split, (src, ref) in evals.items():
            write_unit_sentences(os.path.join(args.out, f"{split}.src"), src)
            write_unit_sentences(os.path.join(args.out, f"{split}.ref"), ref)
        write_dictionary(os.path.join(args.out, "dict.src.txt"), speech, symbols=range(n_speech))
        write_dictionary(os.path.join(args.out, "dict.sign.txt"), sign, symbols=range(n_sign))
    except CorpusError as e:
        sys.exit(f"error: {e}")
    print(f"{args.out}: {len(speech)} speech and {len(sign)} sign training sentences, {n_speech} speech and {n_sign} sign units, eval splits {list(evals)}")


if __name__ == "__main__":
    main()
