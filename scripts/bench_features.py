#!/usr/bin/env python
"""Benchmark: feature extraction throughput and peak memory, streaming writer vs in memory.

Builds a synthetic audio corpus, then extracts log-mel features (or wav2vec 2.0 features with
--checkpoint) from growing prefixes of it (1x, 2x, 4x), once with the resumable streaming
writer and once holding every utterance's features in memory until a final np.save. Each run
is its own process, so its peak resident memory is its own. The streaming writer's peak must
stay flat as the corpus grows; the in-memory one grows with it.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from tqdm import tqdm


def make_corpus(root: str, minutes: float, seconds_per_file: float = 10.0) -> str:
    rng = np.random.default_rng(0)
    n = int(minutes * 60 / seconds_per_file)
    lines = [root]
    for i in tqdm(range(n), desc="synthetic audio", unit="file"):
        t = np.arange(int(seconds_per_file * 16000)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.02 * rng.normal(size=len(t))
        sf.write(os.path.join(root, f"{i:05d}.wav"), wav.astype(np.float32), 16000, subtype="PCM_16")
        lines.append(f"{i:05d}.wav\t{len(t)}")
    return lines


def worker(args) -> None:
    """One measured run: extract the first `files` rows of the manifest."""
    from fairseq_signlang.io.audio import read_audio, read_manifest
    from fairseq_signlang.features.logmel import LogMelExtractor
    from fairseq_signlang.features.streaming import ResumableFeatureWriter

    if args.checkpoint:
        from fairseq_signlang.features.wav2vec2 import Wav2Vec2LayerExtractor

        extract = Wav2Vec2LayerExtractor(args.checkpoint, args.layer, "cpu")
    else:
        extract = LogMelExtractor(num_mels=args.mels)
    root, rows = read_manifest(args.manifest)
    rows = rows[: args.files]
    t0 = time.perf_counter()
    if args.mode == "streaming":
        with ResumableFeatureWriter(args.out) as w:
            for i, (rel, _) in enumerate(rows):
                w.append(i, extract(read_audio(os.path.join(root, rel))))
            w.finish()  # as an extraction does: the output is whole (and fsynced, inside the timing)
    else:
        feats = [extract(read_audio(os.path.join(root, rel))) for rel, _ in rows]
        np.save(args.out + ".npy", np.concatenate(feats))
    elapsed = time.perf_counter() - t0
    audio = sum(n for _, n in rows) / 16000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{audio:.1f} {elapsed:.3f} {peak_mb:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="audio in the 1x corpus")
    ap.add_argument("--mels", type=int, default=80)
    ap.add_argument("--checkpoint", help="wav2vec 2.0 checkpoint instead of log-mels")
    ap.add_argument("--layer", type=int, default=14)
    ap.add_argument("--worker", nargs=4, metavar=("MODE", "MANIFEST", "FILES", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.mode, args.manifest, files, args.out = args.worker
        args.files = int(files)
        return worker(args)

    with tempfile.TemporaryDirectory() as tmp:
        audio_dir = os.path.join(tmp, "audio")
        os.makedirs(audio_dir)
        lines = make_corpus(audio_dir, 4 * args.minutes)
        manifest = os.path.join(tmp, "bench.tsv")
        with open(manifest, "w") as f:
            f.write("\n".join(lines) + "\n")
        per_x = (len(lines) - 1) // 4
        extra = (["--checkpoint", args.checkpoint, "--layer", str(args.layer)] if args.checkpoint else []) + ["--mels", str(args.mels)]
        results = {}
        for scale in (1, 2, 4):
            for mode in ("streaming", "in-memory"):
                out = os.path.join(tmp, f"{mode}_{scale}")
                cmd = [sys.executable, __file__, *extra, "--worker", mode, manifest, str(per_x * scale), out]
                audio, elapsed, peak = map(float, subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-3:])
                results[mode, scale] = peak
                print(f"{scale}x corpus ({audio / 60:5.1f} min audio)  {mode:9s}  {audio / elapsed:7.1f} audio s/s  peak memory {peak:7.1f} MB")
                for ext in (".npy", ".lengths", ".ids", ".bad"):
                    if os.path.exists(out + ext):
                        os.remove(out + ext)
        grow_stream = results["streaming", 4] - results["streaming", 1]
        grow_memory = results["in-memory", 4] - results["in-memory", 1]
        print(f"peak memory growth from 1x to 4x: streaming {grow_stream:+.1f} MB, in memory {grow_memory:+.1f} MB")


if __name__ == "__main__":
    main()
