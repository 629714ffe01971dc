#!/usr/bin/env python
"""Build a word-level speech/sign corpus like the paper's ASL LibriSpeech: sentences (from a word
alignment file, one JSON line per utterance) restricted to the top-N words that have sign clips,
kept when at least --min-words remain; each sentence's sign side is one random clip per word,
drawn from a clip pool (--clips DIR with a folder per gloss, or --clips-json for MS-ASL / WLASL
lists with --video-dir). Writes speech.jsonl, sign.jsonl, vocab.txt and clips.tsv (the clip
manifest for scripts/extract_sign_features.py) under --out, and prints how unpaired the two sides
are (scripts/check_unpaired.py's report: shared sentences, divergences, and with --check-refs the
evaluation sentences either side holds)."""
import argparse
import os
import sys

from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file
from fairseq_signlang.corpora.sign_corpus import PAIRINGS, ClipPool, build_word_corpus
from fairseq_signlang.features.pooling import read_alignment_jsonl
from fairseq_signlang.tools.unpairedness import check_unpaired, print_summary


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alignment", required=True, help="word alignments of the speech, one JSON line per utterance")
    ap.add_argument("--clips", help="folder with one sub-folder of video clips per gloss")
    ap.add_argument("--clips-json", help="MS-ASL or WLASL style JSON list of clips")
    ap.add_argument("--video-dir", help="where the --clips-json videos are")
    ap.add_argument("--vocab", type=int, default=100, help="vocabulary size (paper: 100, 200, 500, 1000)")
    ap.add_argument("--min-words", type=int, default=5)
    ap.add_argument(
        "--pairing", choices=PAIRINGS, default="hidden",
        help="hidden: the sign side is the same sentences shuffled (ASL LibriSpeech); disjoint: the other half of the "
        "sentences; paired: same order (evaluation splits)",
    )
    ap.add_argument("--vocab-file", help="use this vocabulary (the vocab.txt of another split) instead of the top --vocab words")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check-refs", nargs="*", default=[], metavar="PATH",
                    help="evaluation sentences (e.g. the test split's speech.jsonl) the unpairedness report checks the new sides against")
    args = ap.parse_args()
    try:
        for ref in args.check_refs:
            require_file(ref, "reference file")
        if bool(args.clips) == bool(args.clips_json):
            raise CorpusError("give exactly one of --clips and --clips-json")
        pool = ClipPool.from_folders(args.clips) if args.clips else ClipPool.from_json(args.clips_json, args.video_dir or ".")
        sentences = [[w for w, _, _ in words] for words in read_alignment_jsonl(args.alignment)]
        vocab = [line.split()[0] for _, line in numbered_lines(args.vocab_file) if line.strip()] if args.vocab_file else None
        summary = build_word_corpus(sentences, pool, args.vocab, args.out, args.min_words, args.pairing, args.seed, vocab)
        print(f"{args.out}: {summary}")
        speech, sign = (os.path.join(args.out, f"{side}.jsonl") for side in ("speech", "sign"))
        print_summary(check_unpaired(speech, sign, args.check_refs, names=("speech", "sign")))
    except CorpusError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
