#!/usr/bin/env python
"""Remove the silences of every file in an audio manifest (energy-based VAD), as wav2vec-U
prepares speech before feature extraction: writes the speech-only audio as 16 kHz wav files
under --out (same relative paths, .wav), a new manifest {out}/{name}.tsv, and {out}/{name}.vads
with the kept spans of each file (`start:end` in samples at 16 kHz, space separated).
Word alignments no longer fit the shortened audio, so this step is for the character level.
"""
import argparse
import os
import sys

import soundfile as sf
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import atomic_open, write_lines
from fairseq_signlang.io.audio import read_audio, read_manifest
from fairseq_signlang.features.vad import remove_silence, speech_spans


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", help="{split}.tsv from scripts/speech_manifest.py")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--range-db", type=float, default=40.0, help="speech is within this many dB of the loudest frame")
    ap.add_argument("--min-silence", type=float, default=0.2, help="pauses shorter than this (seconds) are kept")
    ap.add_argument("--skip-bad", action="store_true", help="list unreadable, empty or all-silent files and go on")
    args = ap.parse_args()
    name = os.path.splitext(os.path.basename(args.manifest))[0]
    try:
        root, rows = read_manifest(args.manifest)
        kept, vads, bad = [], [], []
        for rel, _ in tqdm(rows, desc="silence removal", unit="file"):
            try:
                wav = read_audio(os.path.join(root, rel))
                spans = speech_spans(wav, 16000, range_db=args.range_db, min_silence=args.min_silence)
                if not spans:
                    raise CorpusError(f"{os.path.join(root, rel)}: no speech found")
            except CorpusError as e:
                if not args.skip_bad:
                    raise
                bad.append(str(e))
                continue
            speech = remove_silence(wav, spans)
            out_rel = os.path.splitext(rel)[0] + ".wav"
            with atomic_open(os.path.join(args.out, out_rel), "wb") as f:
                sf.write(f, speech, 16000, format="WAV")
            kept.append(f"{out_rel}\t{len(speech)}")
            vads.append(" ".join(f"{a}:{b}" for a, b in spans))
    except CorpusError as e:
        sys.exit(f"error: {e}")
    write_lines(os.path.join(args.out, f"{name}.vads"), vads)
    write_lines(os.path.join(args.out, f"{name}.tsv"), [os.path.abspath(args.out)] + kept)
    print(f"{args.out}/{name}.tsv: {len(kept)} files")
    if bad:
        print(f"left out {len(bad)} bad files:\n  " + "\n  ".join(bad), file=sys.stderr)


if __name__ == "__main__":
    main()
