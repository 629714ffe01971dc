"""Spoken sentences from offline speech synthesizers (Debian's flite and espeak-ng), word by
word, so every word's start and end is known exactly.

Each (word, voice) is synthesized once, trimmed of silence, and cached; a sentence joins its
words' recordings with random pauses and takes a random gain and a little noise, so no two
tokens of a word are the same waveform. Voices differ in engine, speaker and speaking rate.
"""
import functools
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from fairseq_signlang.io.audio import read_audio
from fairseq_signlang.features.vad import trim_silence
from fairseq_signlang.io.readers import CorpusError


@dataclass(frozen=True)
class Voice:
    engine: str  # "flite" or "espeak-ng"
    name: str  # flite: slt, rms, awb, kal16; espeak-ng: a voice such as en-us+f3
    rate: float  # 1.0 = the voice's normal speed; 1.2 = 20 % faster

    def command(self, text: str, out_wav: str) -> List[str]:
        if self.engine == "flite":
            return ["flite", "-voice", self.name, "--setf", f"duration_stretch={1.0 / self.rate:.3f}", "-t", text, "-o", out_wav]
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.name, "-s", str(int(round(160 * self.rate))), "-w", out_wav, text]
        raise ValueError(f"unknown speech engine {self.engine!r} (flite or espeak-ng)")

    def __str__(self):
        return f"{self.engine}:{self.name}@{self.rate:g}"


DEFAULT_VOICES = tuple(
    [Voice("flite", name, rate) for name in ("slt", "rms", "awb", "kal16") for rate in (0.9, 1.15)]
    + [Voice("espeak-ng", name, rate) for name in ("en-us+f3", "en+m3", "en-us+m7", "en+f4") for rate in (0.9, 1.15)]
)


def missing_engines(voices: Sequence[Voice]) -> List[str]:
    return sorted({v.engine for v in voices if shutil.which(v.engine) is None})


@functools.lru_cache(maxsize=None)
def flite_voices() -> Tuple[str, ...]:
    """The voices built into flite (it falls back to its default silently on an unknown name)."""
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    return tuple(listing.split(":", 1)[-1].split())


def synthesize(text: str, voice: Voice, sample_rate: int = 16000) -> np.ndarray:
    """`text` spoken by `voice`, mono float32 at `sample_rate`, leading and trailing silence removed."""
    if voice.engine == "flite" and voice.name not in flite_voices():
        raise CorpusError(f"{voice}: flite has no voice {voice.name!r} (it has {', '.join(flite_voices())})")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.wav")
        run = subprocess.run(voice.command(text, out), capture_output=True, text=True)
        if run.returncode != 0 or not os.path.isfile(out):
            raise CorpusError(f"{voice}: could not speak {text!r} ({run.stderr.strip() or 'no output'})")
        wav = trim_silence(read_audio(out, sample_rate), sample_rate)
    if len(wav) == 0:
        raise CorpusError(f"{voice}: speaking {text!r} gave only silence")
    return wav


class WordSpeaker:
    """Sentences spoken word by word, from a cache of every (word, voice) recording."""

    def __init__(self, vocab: Sequence[str], voices: Sequence[Voice] = DEFAULT_VOICES, sample_rate: int = 16000, workers: int = 4):
        missing = missing_engines(voices)
        if missing:
            raise CorpusError(f"speech synthesizers not installed: {', '.join(missing)} (Debian packages flite, espeak-ng)")
        self.voices, self.sample_rate = list(voices), sample_rate
        jobs = [(w, v) for v in self.voices for w in vocab]
        with ThreadPoolExecutor(workers) as pool:  # the engines run as subprocesses
            recordings = list(pool.map(lambda job: synthesize(job[0], job[1], sample_rate), jobs))
        self.words: Dict[Tuple[str, Voice], np.ndarray] = dict(zip(jobs, recordings))

    def sentence(self, words: Sequence[str], voice: Voice, rng: np.random.Generator) -> Tuple[np.ndarray, List[Tuple[str, float, float]]]:
        """(samples, [(word, start s, end s)]): pauses of 40-250 ms between words, 100-300 ms of
        silence at both ends, gain of -6..+3 dB, noise 35-45 dB below the speech."""
        sr = self.sample_rate
        parts, alignment = [np.zeros(int(rng.uniform(0.1, 0.3) * sr), np.float32)], []
        t = len(parts[0])
        for i, w in enumerate(words):
            if i:
                pause = np.zeros(int(rng.uniform(0.04, 0.25) * sr), np.float32)
                parts.append(pause)
                t += len(pause)
            rec = self.words[(w, voice)]
            parts.append(rec)
            alignment.append((w, t / sr, (t + len(rec)) / sr))
            t += len(rec)
        parts.append(np.zeros(int(rng.uniform(0.1, 0.3) * sr), np.float32))
        wav = np.concatenate(parts) * 10 ** (rng.uniform(-6, 3) / 20)
        level = np.sqrt(np.mean(wav**2)) * 10 ** (-rng.uniform(35, 45) / 20)
        wav = wav + rng.normal(scale=level, size=len(wav))
        return np.clip(wav, -1, 1).astype(np.float32), alignment
