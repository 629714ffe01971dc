#!/usr/bin/env python
"""Pool frame features ({prefix}.npy + .lengths) into segments or words.

  merge  --feats F --km F.km --out OUT      mean-pool runs of consecutive frames with the same
                                            cluster (wav2vec-U); OUT.km holds the merged ids
  words  --feats F --alignment A --out OUT  mean-pool the frames of each word (speech2sign-U 3.2);
         --frame-rate 50 (wav2vec 2.0) or 100 (log-mel); OUT.wrd holds the words
  clips  --clip-dir D --corpus sign.jsonl --out OUT
                                            sign sentences of isolated clips (build_word_corpus.py):
                                            each word is the mean of its clip's features, read
                                            from D/{clip id}.npy (extract_sign_features.py)
--pieces N (words, clips) joins the means of N equal parts of each word instead of one mean.

The alignment is one JSON line per utterance ([{"word", "start", "end"}] in seconds), or with
--librispeech a LibriSpeech forced-alignment text file plus --ids naming each utterance.
"""
import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError, numbered_lines, read_cluster_ids, read_features
from fairseq_signlang.io.writers import atomic_array_appender, write_lines
from fairseq_signlang.corpora.sign_corpus import read_sign_corpus
from fairseq_signlang.features.pooling import mean_of_pieces, merge_equal_clusters, pool_words, read_alignment_jsonl, read_librispeech_alignments


def read_km(path, lengths):
    rows = read_cluster_ids(path)
    if len(rows) != len(lengths):
        raise CorpusError(f"{path}: {len(rows)} lines for {len(lengths)} utterances")
    for i, (r, n) in enumerate(zip(rows, lengths)):
        if len(r) != n:
            raise CorpusError(f"{path}:{i + 1}: {len(r)} cluster ids for {n} frames")
    return rows


def pool_clips(args):
    if not (args.clip_dir and args.corpus):
        sys.exit("error: clips needs --clip-dir and --corpus")
    sentences = read_sign_corpus(args.corpus)
    cache = {}

    def clip_feature(cid, where):
        if cid not in cache:
            path = os.path.join(args.clip_dir, f"{cid}.npy")
            if not os.path.isfile(path):
                raise CorpusError(f"{where}: no features for clip {cid!r} ({path} not found; was the clip skipped as bad?)")
            frames = np.load(path)
            cache[cid] = mean_of_pieces(frames.reshape(len(frames), -1).astype(np.float32), args.pieces)
        return cache[cid]

    lengths, labels = [], []
    with atomic_array_appender(args.out + ".npy") as writer:
        for i, s in enumerate(tqdm(sentences, desc="clips", unit="sentence")):
            writer.append(np.stack([clip_feature(c, f"{args.corpus}:{i + 1}") for c in s["clip_ids"]]))
            lengths.append(str(len(s["clip_ids"])))
            labels.append(" ".join(s["words"]))
        write_lines(args.out + ".lengths", lengths)
        write_lines(args.out + ".wrd", labels)
    print(f"{args.out}: {len(lengths)} sentences, {sum(map(int, lengths))} words from {len(cache)} clips")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["merge", "words", "clips"])
    ap.add_argument("--feats", help="frame feature prefix (merge, words)")
    ap.add_argument("--out", required=True, help="output prefix")
    ap.add_argument("--km", help="merge: cluster ids per frame ({name}.km from cluster_features.py kmeans)")
    ap.add_argument("--alignment", help="words: word alignment file")
    ap.add_argument("--librispeech", action="store_true", help="words: the alignment is LibriSpeech forced-alignment text")
    ap.add_argument("--ids", help="words with --librispeech: one utterance id per line, in feature order")
    ap.add_argument("--frame-rate", type=float, default=50.0, help="words: feature frames per second")
    ap.add_argument("--clip-dir", help="clips: per-clip feature files {id}.npy")
    ap.add_argument("--corpus", help="clips: sign.jsonl from build_word_corpus.py")
    ap.add_argument("--pieces", type=int, default=1, help="words, clips: means of this many equal parts per word, joined")
    args = ap.parse_args()
    try:
        if args.mode == "clips":
            return pool_clips(args)
        if not args.feats:
            sys.exit(f"error: {args.mode} needs --feats")
        feats, offsets, lengths = read_features(args.feats)
        if args.mode == "merge":
            if not args.km:
                sys.exit("error: merge needs --km")
            groups = read_km(args.km, lengths)
        else:
            if not args.alignment:
                sys.exit("error: words needs --alignment")
            if args.librispeech:
                table = read_librispeech_alignments(args.alignment)
                utt_ids = [line.strip() for _, line in numbered_lines(args.ids)] if args.ids else sys.exit("error: --librispeech needs --ids")
                missing = [u for u in utt_ids if u not in table]
                if missing:
                    raise CorpusError(f"{args.alignment}: no alignment for utterance {missing[0]!r} (of {args.ids})")
                groups = [table[u] for u in utt_ids]
                where = [f"{args.alignment} ({u})" for u in utt_ids]
            else:
                groups = read_alignment_jsonl(args.alignment)
                where = [f"{args.alignment}:{i + 1}" for i in range(len(groups))]
            if len(groups) != len(lengths):
                raise CorpusError(f"{args.alignment}: {len(groups)} utterances but {args.feats}.lengths has {len(lengths)}")
        out_lengths, labels = [], []
        with atomic_array_appender(args.out + ".npy") as writer:
            for i, (o, n) in enumerate(tqdm(list(zip(offsets, lengths)), desc=args.mode, unit="utt")):
                frames = np.asarray(feats[o : o + n], dtype=np.float32)
                if args.mode == "merge":
                    pooled, ids = merge_equal_clusters(frames, groups[i])
                    labels.append(" ".join(map(str, ids)))
                else:
                    pooled = pool_words(frames, groups[i], args.frame_rate, where[i], args.pieces)
                    labels.append(" ".join(w for w, _, _ in groups[i]))
                writer.append(pooled)
                out_lengths.append(str(len(pooled)))
            write_lines(args.out + ".lengths", out_lengths)
            write_lines(args.out + (".km" if args.mode == "merge" else ".wrd"), labels)
    except CorpusError as e:
        sys.exit(f"error: {e}")
    print(f"{args.out}: {len(out_lengths)} utterances, {sum(map(int, out_lengths))} {'segments' if args.mode == 'merge' else 'words'}")


if __name__ == "__main__":
    main()
