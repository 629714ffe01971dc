#!/usr/bin/env python
"""Assemble the data folder of task speech2sign_u_char from speech segment features and sign units.

  --speech DIR      {split}.npy + .lengths: segment features of each speech sentence (the
                    corpus builder's speech/ with --simulate-speech, or wav2vec-U segment features)
  --sign-km DIR     {split}.km: sign unit ids, one per letter, of each sign sentence (k-means of
                    the encoded sign/ features); train.km is the sign corpus
  --ref-km DIR      {split}.km of the evaluation splits' sign renderings, paired line by line
                    with the speech (default: --sign-km, whose valid.km / test.km are exactly that)
  --letter-units DIR  instead of --sign-km / --ref-km, for corpora with a known mapping: the units
                    are the letters themselves, a=0 .. z=25, read from DIR/{split}.ltr (a corpus sign/)
  --speech-km DIR   also the speech segments' k-means ids, {split}.km (cluster_features.py kmeans
                    over the --speech features): written as {split}.src + dict.src.txt, for
                    task.speech_input=units (closed-form decipherment, char_decipher_* configs)

Writes train.npy/.lengths and {split}.npy/.lengths (the speech, checked and copied), train.sign
(the unpaired sign corpus), {split}.ref for the evaluation splits (the true sign units of each
speech sentence, for scoring only, never a training signal) and dict.sign.txt (every unit id).

  python scripts/prepare_char_task.py --speech fs_corpus/speech --sign-km km_sign --sign-clusters 64 --out data_char
  python scripts/prepare_char_task.py --speech fs_corpus/speech --letter-units fs_corpus/sign --out data_char
  python scripts/prepare_char_task.py --speech fs_corpus/speech --speech-km km_speech --letter-units fs_corpus/sign --out data_char
"""
import argparse
import os
import shutil
import sys
from typing import List

import numpy as np

from fairseq_signlang.corpora.fingerspelling import ALPHABET, read_letter_units
from fairseq_signlang.io.readers import CorpusError, read_cluster_ids, read_features
from fairseq_signlang.io.writers import atomic_open, write_dictionary, write_unit_sentences


def check_units_below(units: List[np.ndarray], clusters: int, path: str) -> None:
    for i, u in enumerate(units):
        if u.max() >= clusters:
            raise CorpusError(f"{path}:{i + 1}: unit {int(u.max())} is not below the {clusters} sign clusters")


def check_pairing(ref: List[np.ndarray], ref_path: str, speech_prefix: str) -> None:
    """One reference line per speech sentence; one unit per letter where the speech has a .ltr."""
    _, _, lengths = read_features(speech_prefix)
    if len(ref) != len(lengths):
        more, fewer = (ref_path, f"{speech_prefix}.lengths") if len(ref) > len(lengths) else (f"{speech_prefix}.lengths", ref_path)
        raise CorpusError(f"{more}:{min(len(ref), len(lengths)) + 1}: no matching line in {fewer} ({len(ref)} references for {len(lengths)} speech sentences)")
    ltr_path = speech_prefix + ".ltr"
    if os.path.isfile(ltr_path):
        speech_letters = read_letter_units(ltr_path)
        if len(speech_letters) != len(ref):
            raise CorpusError(f"{ltr_path}: {len(speech_letters)} sentences but {speech_prefix}.lengths has {len(ref)}")
        for i, (letters, units) in enumerate(zip(speech_letters, ref)):
            if len(letters) != len(units):
                raise CorpusError(f"{ref_path}:{i + 1}: {len(units)} sign units for the {len(letters)} letters of {ltr_path}:{i + 1}")


def copy_features(src_prefix: str, dst_prefix: str) -> None:
    """Copy {prefix}.npy + .lengths; both are complete before either is renamed into place."""
    with atomic_open(dst_prefix + ".npy", "wb") as npy, atomic_open(dst_prefix + ".lengths", "wb") as lengths:
        for src, dst in ((src_prefix + ".npy", npy), (src_prefix + ".lengths", lengths)):
            with open(src, "rb") as f:
                shutil.copyfileobj(f, dst, 1 << 24)


def write_speech_units(km_dir: str, speech_dir: str, splits: List[str], out: str) -> None:
    """{split}.src from the speech segments' {split}.km, checked against the segment counts of
    the features (one id per segment), and dict.src.txt over every id up to the largest."""
    units = {}
    for split in splits:
        path = os.path.join(km_dir, f"{split}.km")
        units[split] = read_cluster_ids(path)
        _, _, lengths = read_features(os.path.join(speech_dir, split))
        if len(units[split]) != len(lengths):
            raise CorpusError(f"{path}: {len(units[split])} sentences but {os.path.join(speech_dir, split)}.lengths has {len(lengths)}")
        for i, (ids, n) in enumerate(zip(units[split], lengths.tolist())):
            if len(ids) != n:
                raise CorpusError(f"{path}:{i + 1}: {len(ids)} unit ids for the {n} segments of {os.path.join(speech_dir, split)}.npy")
    n_units = 1 + max(int(u.max()) for rows in units.values() for u in rows)
    for split, rows in units.items():
        write_unit_sentences(os.path.join(out, f"{split}.src"), rows)
    write_dictionary(os.path.join(out, "dict.src.txt"), units[splits[0]], symbols=range(n_units))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", required=True, help="folder with the speech {split}.npy + .lengths")
    units = ap.add_mutually_exclusive_group(required=True)
    units.add_argument("--sign-km", help="folder with the sign {split}.km files")
    units.add_argument("--letter-units", metavar="DIR", help="folder with the sign {split}.ltr files; units are the letters a=0 .. z=25")
    ap.add_argument("--ref-km", help="folder with the {split}.km of the evaluation splits' sign renderings (default: --sign-km)")
    ap.add_argument("--speech-km", help="folder with the speech segments' {split}.km k-means ids (for task.speech_input=units)")
    ap.add_argument("--sign-clusters", type=int, help="sign unit count (default: 26 with --letter-units, else the largest id in train + 1)")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--eval-splits", nargs="*", default=["valid", "test"])
    ap.add_argument("--out", required=True, help="task data folder")
    args = ap.parse_args()
    try:
        if args.letter_units and args.ref_km:
            raise CorpusError("--ref-km goes with --sign-km; with --letter-units the references are the eval splits' .ltr files")
        if args.letter_units:
            unit_path = lambda split: os.path.join(args.letter_units, f"{split}.ltr")  # noqa: E731
            ref_path = unit_path
            read = read_letter_units
        else:
            unit_path = lambda split: os.path.join(args.sign_km, f"{split}.km")  # noqa: E731
            ref_path = lambda split: os.path.join(args.ref_km or args.sign_km, f"{split}.km")  # noqa: E731
            read = read_cluster_ids
        sign = read(unit_path(args.train_split))
        n_sign = args.sign_clusters or (len(ALPHABET) if args.letter_units else 1 + int(max(s.max() for s in sign)))
        check_units_below(sign, n_sign, unit_path(args.train_split))
        speech_prefix = lambda split: os.path.join(args.speech, split)  # noqa: E731
        read_features(speech_prefix(args.train_split))
        refs = {}
        for split in args.eval_splits:
            refs[split] = read(ref_path(split))
            check_units_below(refs[split], n_sign, ref_path(split))
            check_pairing(refs[split], ref_path(split), speech_prefix(split))
        os.makedirs(args.out, exist_ok=True)
        copy_features(speech_prefix(args.train_split), os.path.join(args.out, "train"))
        write_unit_sentences(os.path.join(args.out, "train.sign"), sign)
        for split, ref in refs.items():
            copy_features(speech_prefix(split), os.path.join(args.out, split))
            write_unit_sentences(os.path.join(args.out, f"{split}.ref"), ref)
        write_dictionary(os.path.join(args.out, "dict.sign.txt"), sign, symbols=range(n_sign))
        if args.speech_km:
            write_speech_units(args.speech_km, args.speech, [args.train_split, *refs], args.out)
    except CorpusError as e:
        sys.exit(f"error: {e}")
    print(
        f"{args.out}: {len(sign)} sign training sentences ({sum(map(len, sign))} units), {n_sign} sign units"
        f"{' (letters)' if args.letter_units else ''}, eval splits {', '.join(f'{s} {len(r)}' for s, r in refs.items()) or 'none'}"
    )


if __name__ == "__main__":
    main()
