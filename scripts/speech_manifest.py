#!/usr/bin/env python
"""Walk a folder of audio files (wav, flac, ogg) into a wav2vec-style manifest {split}.tsv:
the root folder on the first line, then `relative/path<TAB>num_samples` per file."""
import argparse
import os
import sys

from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import write_lines
from fairseq_signlang.io.audio import AUDIO_EXTENSIONS, audio_frames, find_audio


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", help="folder searched recursively for audio files")
    ap.add_argument("--out", required=True, help="manifest to write, e.g. data/train.tsv")
    ap.add_argument("--ext", nargs="+", default=list(AUDIO_EXTENSIONS), help="file endings to take")
    ap.add_argument("--skip-bad", action="store_true", help="leave out unreadable or empty files and list them, instead of stopping")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    files = find_audio(root, args.ext)
    if not files:
        sys.exit(f"error: {root}: no audio files ending in {' '.join(args.ext)}")
    rows, bad = [root], []
    for rel in tqdm(files, desc="audio files", unit="file"):
        try:
            rows.append(f"{rel}\t{audio_frames(os.path.join(root, rel))}")
        except CorpusError as e:
            if not args.skip_bad:
                sys.exit(f"error: {e}")
            bad.append(str(e))
    write_lines(args.out, rows)
    print(f"wrote {args.out}: {len(rows) - 1} files")
    if bad:
        print(f"skipped {len(bad)} bad files:\n  " + "\n  ".join(bad), file=sys.stderr)


if __name__ == "__main__":
    main()
