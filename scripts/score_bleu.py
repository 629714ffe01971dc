#!/usr/bin/env python
"""BLEU-1 and BLEU-4 (sacrebleu corpus BLEU) of a fairseq-generate output or of a hypothesis
file against a reference file: sign-to-text translation, or text-to-sign back-translation BLEU
(the back-translated text of generated videos against the text they were generated from).

Run fairseq-generate with `--post-process sentencepiece` (and without --quiet) so its D- lines
are detokenized; otherwise pass --sentencepiece here to join the pieces.

--shuffled also scores the hypotheses against the references shuffled across sentences and counts
the distinct hypotheses: a model whose output does not depend on its input scores as well against
shuffled references, and is flagged, whatever its BLEU.
"""
import argparse
import json
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import atomic_open
from fairseq_signlang.metrics.bleu import (
    bleu_scores,
    dependence_verdict,
    input_dependence,
    read_fairseq_generate,
    read_sentence_files,
    strip_sentencepiece,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generate-output", metavar="GEN_OUT", help="fairseq-generate output (T-, H-, D- lines)")
    ap.add_argument("--hyp", help="hypotheses, one sentence per line")
    ap.add_argument("--ref", help="references, one sentence per line, in the order of --hyp")
    ap.add_argument("--sentencepiece", action="store_true", help="join sentencepiece pieces (lines with \u2581 word marks) before scoring")
    ap.add_argument("--tokenize", default="13a", help="sacrebleu tokenizer (default 13a; 'none' for text tokenized already)")
    ap.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU")
    ap.add_argument("--smooth-method", default="exp", choices=("exp", "floor", "add-k", "none"), help="sacrebleu smoothing (default exp, sacrebleu's)")
    ap.add_argument("--shuffled", action="store_true", help="also BLEU against references shuffled across sentences, and the distinct outputs")
    ap.add_argument("--json", metavar="OUT_JSON", help="also write the scores here")
    args = ap.parse_args(argv)
    if bool(args.generate_output) == bool(args.hyp or args.ref) or (args.hyp is None) != (args.ref is None):
        ap.error("give either --generate-output, or both --hyp and --ref")
    try:
        hyps, refs = read_fairseq_generate(args.generate_output) if args.generate_output else read_sentence_files(args.hyp, args.ref)
        if args.sentencepiece:
            hyps, refs = [strip_sentencepiece(s) for s in hyps], [strip_sentencepiece(s) for s in refs]
        score = input_dependence if args.shuffled else bleu_scores
        scores = score(hyps, refs, tokenize=args.tokenize, lowercase=args.lowercase, smooth_method=args.smooth_method)
    except (CorpusError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"BLEU-1 {scores['bleu1']:.2f}  BLEU-4 {scores['bleu4']:.2f}  ({scores['n']} sentences)")
    if args.shuffled:
        print(dependence_verdict(scores))
    if args.json:
        source = {"generate_output": args.generate_output} if args.generate_output else {"hyp": args.hyp, "ref": args.ref}
        with atomic_open(args.json, encoding="utf-8") as f:
            json.dump({**scores, **source, "sentencepiece": args.sentencepiece}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
