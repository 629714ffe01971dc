#!/usr/bin/env python
"""A new round of USLNet pseudo-parallel pairs: every clip of a manifest translated by a joint
checkpoint (tools/sign_lexicon.py: retranslate_clips), written as a clip manifest whose text
column is the translation, for the next run's task.pseudo_parallel_manifest. The first round's
pairs come from scripts/induce_lexicon.py (word by word through the lexicon); later rounds from
the model trained on them, as iterative back-translation regenerates its synthetic data.

  python scripts/retranslate_clips.py --checkpoint checkpoints/joint_bt/checkpoint_last.pt \\
      --manifest corpus/video/train.tsv --previous lexicon/train_pseudo.tsv --out round1.tsv
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.tools.sign_lexicon import retranslate_clips


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a joint (uslnet) checkpoint")
    ap.add_argument("--manifest", required=True, help="the clips to translate (the video corpus's train.tsv)")
    ap.add_argument("--out", required=True, help="the new pseudo-parallel manifest")
    ap.add_argument("--previous", default=None, help="the last round's manifest: its text is kept for clips translated to nothing")
    ap.add_argument("--data", default=None, help="the text folder (dict.txt, spm.model) when it moved since training")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)
    try:
        stats = retranslate_clips(args.checkpoint, args.manifest, args.out, args.data, args.previous, args.batch_size)
    except (CorpusError, RuntimeError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"{args.out}: {stats['clips']} clips, {stats['distinct']} distinct texts, {stats['empty']} translated to nothing")


if __name__ == "__main__":
    main()
