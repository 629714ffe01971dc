"""Character-level speech/sign corpora built the way the paper builds Fingerspelling LibriSpeech
and LJSpeech: every letter of a transcript becomes the image (here: the feature vector) of that
letter's ASL alphabet sign, drawn at random from a pool of N exemplars per letter (the paper
subsets its pools to 100, 300, 500 or 1000), and speech and sign come from disjoint sentences.

Letters are a-z only: a transcript is lowercased and everything else (spaces, digits,
apostrophes, accented letters) is dropped, as a fingerspelled sentence has no word gaps.

Until features of real fingerspelling images exist, `synthesize_letter_pool` writes a stand-in
pool, and `simulate_speech_segments` stands in for wav2vec 2.0 segment features of the speech.
"""
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file
from fairseq_signlang.io.writers import atomic_array_appender, atomic_open, save_array, write_lines

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
LETTER_ID = {c: i for i, c in enumerate(ALPHABET)}
_LETTERS_ONLY = re.compile(r"[a-z]+")

# Letters whose ASL alphabet signs look alike in one still image, the most alike first: m/n (thumb
# under three vs two fingers), a/s (thumb beside vs across the fist), u/v (two fingers together vs
# spread), k/p (one handshape, p points down), g/q (one handshape, q points down), i/j and d/z (j
# and z are i and d moving; a still frame shows the same hand), e/o (curled fingers touching the
# thumb vs a rounded "o"). The pairs are disjoint so each letter has at most one look-alike.
SIGN_CONFUSABLE_LETTERS = (("m", "n"), ("a", "s"), ("u", "v"), ("k", "p"), ("g", "q"), ("i", "j"), ("d", "z"), ("e", "o"))
# Letters whose sounds are alike: voicing pairs, nasal place, vowels and a vowel-like y.
SPEECH_CONFUSABLE_LETTERS = (("m", "n"), ("b", "p"), ("d", "t"), ("f", "v"), ("s", "z"), ("g", "k"), ("i", "y"), ("o", "u"))

# Distance between the prototypes of a confusable pair. Other prototypes are about sqrt(2 * dim)
# apart, so what makes a pair confusable is this distance against the per-dimension noise sigma:
# the nearest prototype mistakes one letter of the pair for the other Phi(-1 / (2 sigma)) of the
# time (31 % at sigma 1, 16 % at 0.5, 2 % at 0.25).
CONFUSABLE_DISTANCE = 1.0


def letters_of(sentence: Union[str, Sequence[str]]) -> str:
    """The letters a-z of a sentence (a string or a list of words), lowercased; everything else
    (spaces, digits, punctuation, apostrophes, accented letters) is dropped."""
    text = sentence if isinstance(sentence, str) else "".join(sentence)
    return "".join(c for c in text.lower() if c in LETTER_ID)


def letter_ids(letters: str) -> np.ndarray:
    """Unit ids a=0 .. z=25 of a string of letters a-z (as `letters_of` returns)."""
    return np.frombuffer(letters.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("a")


def confusion_rate(noise: float) -> float:
    """How often the nearest prototype takes one letter of a confusable pair for the other."""
    return NormalDist().cdf(-CONFUSABLE_DISTANCE / (2 * noise)) if noise > 0 else 0.0


def letter_prototypes(dim: int, confusable: Sequence[Tuple[str, str]], rng: np.random.Generator) -> np.ndarray:
    """(26, dim) random prototypes; the second letter of each confusable pair sits
    CONFUSABLE_DISTANCE from the first, in a random direction."""
    if dim < 1:
        raise ValueError(f"the feature dimension must be positive, got {dim}")
    prototypes = rng.standard_normal((len(ALPHABET), dim))
    for a, b in confusable:
        direction = rng.standard_normal(dim)
        prototypes[LETTER_ID[b]] = prototypes[LETTER_ID[a]] + CONFUSABLE_DISTANCE * direction / np.linalg.norm(direction)
    return prototypes.astype(np.float32)


def _confusable_pairs(table: Sequence[Tuple[str, str]], count: int, what: str) -> List[Tuple[str, str]]:
    if not 0 <= count <= len(table):
        raise ValueError(f"{what}: between 0 and {len(table)} confusable pairs are defined, got {count}")
    return list(table[:count])


@dataclass
class LetterPool:
    """Exemplar features of each letter's sign (memory-mapped `{letter}.npy` files of one folder)."""

    root: str
    exemplars: Dict[str, np.ndarray]  # letter -> (n_exemplars, dim)

    def path(self, letter: str) -> str:
        return os.path.join(self.root, f"{letter}.npy")

    @property
    def dim(self) -> int:
        return next(iter(self.exemplars.values())).shape[1]

    @classmethod
    def from_folder(cls, root: str) -> "LetterPool":
        """Every `{letter}.npy` (a-z) in `root`, each an (n_exemplars, dim) array of one dim;
        other files are ignored, and a missing letter is an error only when a text needs it."""
        if not os.path.isdir(root):
            raise CorpusError(f"{root}: letter pool folder not found")
        exemplars: Dict[str, np.ndarray] = {}
        first = None  # the first letter found, whose dimension the others must have
        for letter in ALPHABET:
            path = os.path.join(root, f"{letter}.npy")
            if not os.path.isfile(path):
                continue
            try:
                arr = np.load(path, mmap_mode="r")
            except Exception as e:
                raise CorpusError(f"{path}: not a readable .npy file ({e})") from e
            if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
                raise CorpusError(f"{path}: expected a 2-D (exemplars, dim) array of letter {letter!r}, got shape {arr.shape}")
            if not np.issubdtype(arr.dtype, np.number):
                raise CorpusError(f"{path}: expected numeric features, got dtype {arr.dtype}")
            if first is None:
                first = letter
            elif arr.shape[1] != exemplars[first].shape[1]:
                other = os.path.join(root, f"{first}.npy")
                raise CorpusError(f"{path}: exemplars of dimension {arr.shape[1]}, but {other} has dimension {exemplars[first].shape[1]}")
            exemplars[letter] = arr
        if not exemplars:
            raise CorpusError(f"{root}: no letter files (a.npy ... z.npy)")
        return cls(root, exemplars)

    def first_exemplars(self, letters: Iterable[str], pool_size: int) -> np.ndarray:
        """(26, pool_size, dim) float32: the first `pool_size` exemplars of each letter in
        `letters` (zeros for the others). The first, not a random subset, so that the paper's
        pool sizes nest (the 100 exemplars are among the 300) and a larger pool only adds
        variability."""
        if pool_size < 1:
            raise ValueError(f"the pool size must be positive, got {pool_size}")
        table = np.zeros((len(ALPHABET), pool_size, self.dim), dtype=np.float32)
        for letter in sorted(set(letters)):
            path = self.path(letter)
            if letter not in self.exemplars:
                raise CorpusError(f"{path}: not found, but the text needs letter {letter!r}")
            arr = self.exemplars[letter]
            if arr.shape[0] < pool_size:
                raise CorpusError(f"{path}: {arr.shape[0]} exemplars of letter {letter!r}, fewer than the pool size {pool_size}")
            rows = np.asarray(arr[:pool_size], dtype=np.float32)
            bad = np.nonzero(~np.isfinite(rows).all(axis=1))[0]
            if len(bad):
                raise CorpusError(f"{path}: exemplar {int(bad[0])} of letter {letter!r} is not finite")
            table[LETTER_ID[letter]] = rows
        return table


def synthesize_letter_pool(
    out_dir: str, dim: int, exemplars_per_letter: int = 1000, confusable_pairs: int = 5, variation: float = 0.5, seed: int = 0
) -> Dict:
    """Write a stand-in pool to out_dir: `{letter}.npy` (exemplars_per_letter, dim) float32, each
    exemplar its letter's random prototype plus gaussian variation (per-dimension scale
    `variation`, the signer/background variability of real images), and the first
    `confusable_pairs` pairs of SIGN_CONFUSABLE_LETTERS given close prototypes. pool.json
    records the settings and pairs (the hidden truth, for analysis); returns the same."""
    if exemplars_per_letter < 1:
        raise ValueError(f"exemplars per letter must be positive, got {exemplars_per_letter}")
    if variation < 0:
        raise ValueError(f"the variation must be non-negative, got {variation}")
    pairs = _confusable_pairs(SIGN_CONFUSABLE_LETTERS, confusable_pairs, "sign pool")
    rng = np.random.default_rng(seed)
    prototypes = letter_prototypes(dim, pairs, rng)
    for letter in ALPHABET:
        noise = rng.standard_normal((exemplars_per_letter, dim), dtype=np.float32)
        save_array(os.path.join(out_dir, f"{letter}.npy"), prototypes[LETTER_ID[letter]] + variation * noise)
    info = {
        "dim": dim, "exemplars_per_letter": exemplars_per_letter, "variation": variation, "seed": seed,
        "confusable_pairs": [list(p) for p in pairs], "pair_confusion_rate": confusion_rate(variation),
    }
    with atomic_open(os.path.join(out_dir, "pool.json"), encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


def simulate_speech_segments(
    letter_sentences: Sequence[str],
    dim: int,
    noise: float = 0.5,
    max_segments_per_letter: int = 2,
    confusable_pairs: int = 3,
    seed: int = 0,
    stream: int = 0,
) -> Tuple[np.ndarray, List[int]]:
    """Stand-in for wav2vec 2.0 segment features (wav2vec-U merges runs of frames of one cluster
    into segments): each letter occurrence becomes 1..max_segments_per_letter rows of its
    letter's speech prototype plus gaussian noise. The prototypes depend only on `seed` and are
    independent of any sign pool, so every split (and every chunk of one) of a corpus shares
    them; `stream` picks an independent draw of segments and noise. The first
    `confusable_pairs` pairs of SPEECH_CONFUSABLE_LETTERS get close prototypes.
    Returns (features (N, dim) float32, rows per sentence)."""
    if max_segments_per_letter < 1:
        raise ValueError(f"max segments per letter must be positive, got {max_segments_per_letter}")
    if noise < 0:
        raise ValueError(f"the speech noise must be non-negative, got {noise}")
    pairs = _confusable_pairs(SPEECH_CONFUSABLE_LETTERS, confusable_pairs, "simulated speech")
    prototypes = letter_prototypes(dim, pairs, np.random.default_rng([seed, 1]))
    ids = []
    for i, letters in enumerate(letter_sentences):
        if not _LETTERS_ONLY.fullmatch(letters):
            raise ValueError(f"sentence {i}: expected letters a-z, got {letters!r}")
        ids.append(letter_ids(letters))
    if not ids:
        return np.zeros((0, dim), dtype=np.float32), []
    rng = np.random.default_rng([seed, 2, stream])
    flat = np.concatenate(ids)
    segments = rng.integers(1, max_segments_per_letter + 1, size=len(flat))
    row_letters = np.repeat(flat, segments)
    feats = prototypes[row_letters] + noise * rng.standard_normal((len(row_letters), dim), dtype=np.float32)
    starts = np.cumsum([0] + [len(x) for x in ids[:-1]])
    lengths = np.add.reduceat(segments, starts)
    return feats, [int(n) for n in lengths]


@dataclass
class SpeechSimulation:
    """Settings of `simulate_speech_segments` for the corpus builder."""

    dim: int
    noise: float = 0.5
    max_segments_per_letter: int = 2
    confusable_pairs: int = 3


def read_letter_units(path: str) -> List[np.ndarray]:
    """A `.ltr` file (space-separated letters, one sentence per line) as unit ids a=0 .. z=25,
    for corpora whose sign units are known to be the letters."""
    require_file(path, "letter file")
    rows = []
    for lineno, line in numbered_lines(path):
        letters = line.split()
        bad = [c for c in letters if c not in LETTER_ID]
        if not letters or bad:
            raise CorpusError(f"{path}:{lineno}: expected space-separated letters a-z, got {(bad[0] if bad else line.strip())!r}")
        rows.append(letter_ids("".join(letters)))
    if not rows:
        raise CorpusError(f"{path}: no sentences")
    return rows


_CHUNK_SENTENCES = 4096


def _words(sentence: Union[str, Sequence[str]]) -> List[str]:
    return sentence.split() if isinstance(sentence, str) else list(sentence)


def _write_sign_split(prefix: str, letter_sentences: Sequence[str], table: np.ndarray, rng: np.random.Generator) -> int:
    """Render each sentence as one exemplar row per letter, drawn uniformly from the letter's
    pool; stream `{prefix}.npy/.lengths/.ltr/.exemplars`, all renamed into place together."""
    pool_size = table.shape[1]
    rows = 0
    with atomic_array_appender(prefix + ".npy") as npy, \
            atomic_open(prefix + ".lengths", encoding="utf-8") as lengths_file, \
            atomic_open(prefix + ".ltr", encoding="utf-8") as ltr_file, \
            atomic_open(prefix + ".exemplars", encoding="utf-8") as exemplar_file:
        for start in tqdm(range(0, len(letter_sentences), _CHUNK_SENTENCES), desc=f"sign {os.path.basename(prefix)}", unit="chunk"):
            chunk = letter_sentences[start : start + _CHUNK_SENTENCES]
            ids = [letter_ids(s) for s in chunk]
            flat = np.concatenate(ids)
            picks = rng.integers(pool_size, size=len(flat))
            npy.append(np.ascontiguousarray(table[flat, picks]))
            rows += len(flat)
            offset = 0
            for letters, sentence_ids in zip(chunk, ids):
                n = len(sentence_ids)
                lengths_file.write(f"{n}\n")
                ltr_file.write(" ".join(letters) + "\n")
                exemplar_file.write(" ".join(f"{c}:{int(p)}" for c, p in zip(letters, picks[offset : offset + n])) + "\n")
                offset += n
    return rows


def _write_simulated_speech(
    prefix: str, letter_sentences: Sequence[str], sim: SpeechSimulation, seed: int, streams: Iterator[int]
) -> int:
    """Simulated segment features of a split, generated and streamed in chunks of sentences,
    each chunk with the next of `streams` (shared by the splits, so no two draw alike)."""
    rows = 0
    with atomic_array_appender(prefix + ".npy") as npy, atomic_open(prefix + ".lengths", encoding="utf-8") as lengths_file:
        for start in tqdm(range(0, len(letter_sentences), _CHUNK_SENTENCES), desc=f"speech {os.path.basename(prefix)}", unit="chunk"):
            feats, lengths = simulate_speech_segments(
                letter_sentences[start : start + _CHUNK_SENTENCES], sim.dim, sim.noise, sim.max_segments_per_letter,
                sim.confusable_pairs, seed, stream=next(streams),
            )
            npy.append(feats)
            lengths_file.writelines(f"{k}\n" for k in lengths)
            rows += len(feats)
    return rows


def build_fingerspelling_corpus(
    sentences: Sequence[Union[str, Sequence[str]]],
    pool: LetterPool,
    pool_size: int,
    out_dir: str,
    eval_splits: Mapping[str, int],
    seed: int = 0,
    max_sentences: Optional[int] = None,
    simulate_speech: Optional[SpeechSimulation] = None,
) -> Dict:
    """Write a fingerspelling corpus of `sentences` (word lists or strings) to out_dir.

    The distinct sentences with letters (a repeat counted once) are shuffled with `seed` (then
    cut to `max_sentences`); the first eval_splits[name] go to each evaluation split, in order;
    of the rest, half are the speech side of `train` and half its sign side: disjoint sentences,
    as unpaired corpora are.
    Evaluation sentences are speech sentences whose sign rendering is written too, line by line,
    only to score against. Each sign letter is one exemplar drawn uniformly from the first
    `pool_size` of its letter's pool.

      sign/{split}.npy + .lengths   one exemplar row per letter
      sign/{split}.ltr              the letters, space-separated (hidden truth, for analysis)
      sign/{split}.exemplars        letter:index of each exemplar drawn
      speech/{split}.ltr, .wrd      letters and words of each speech sentence
      speech/{split}.npy + .lengths with `simulate_speech`: simulated segment features
      summary.json                  counts, settings, and which sentences (indices into
                                    `sentences`) went where; written last
    """
    split_sizes = dict(eval_splits)
    if "train" in split_sizes:
        raise ValueError("'train' is the training split; evaluation splits need other names")
    if any(n < 0 for n in split_sizes.values()):
        raise ValueError(f"evaluation split sizes must be non-negative, got {split_sizes}")
    letters = [letters_of(s) for s in sentences]
    first_of = {}  # each distinct letter sequence once, so none is on both sides or in training and evaluation
    for i, s in enumerate(letters):
        if s:
            first_of.setdefault(s, i)
    usable = np.array(sorted(first_of.values()), dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = usable[rng.permutation(len(usable))]
    if max_sentences is not None:
        if max_sentences < 1:
            raise ValueError(f"max sentences must be positive, got {max_sentences}")
        order = order[:max_sentences]
    n_eval = sum(split_sizes.values())
    if len(order) < n_eval + 2:
        raise ValueError(
            f"{len(order)} distinct sentences with letters (of {len(sentences)}) are too few for {n_eval} evaluation sentences and two training halves"
        )
    assigned: Dict[str, np.ndarray] = {}
    start = 0
    for split, n in split_sizes.items():
        assigned[split] = order[start : start + n]
        start += n
    rest = order[start:]
    half = len(rest) // 2
    train_speech, train_sign = rest[:half], rest[half:]
    sign_sides = {"train": train_sign, **{s: ids for s, ids in assigned.items() if len(ids)}}
    speech_sides = {"train": train_speech, **{s: ids for s, ids in assigned.items() if len(ids)}}

    table = pool.first_exemplars({c for ids in sign_sides.values() for i in ids for c in letters[i]}, pool_size)
    counts: Dict[str, Dict[str, int]] = {}
    for split, ids in sign_sides.items():
        rows = _write_sign_split(os.path.join(out_dir, "sign", split), [letters[i] for i in ids], table, rng)
        counts.setdefault(split, {}).update(sign_sentences=len(ids), sign_letters=rows)
    streams = itertools.count()
    for split, ids in speech_sides.items():
        prefix = os.path.join(out_dir, "speech", split)
        write_lines(prefix + ".ltr", (" ".join(letters[i]) for i in ids))
        write_lines(prefix + ".wrd", (" ".join(_words(sentences[i])) for i in ids))
        counts.setdefault(split, {}).update(speech_sentences=len(ids), speech_letters=sum(len(letters[i]) for i in ids))
        if simulate_speech is not None:
            counts[split]["speech_segments"] = _write_simulated_speech(prefix, [letters[i] for i in ids], simulate_speech, seed, streams)
    summary = {
        "sentences": len(sentences),
        "sentences_without_letters": sum(1 for s in letters if not s),
        "repeated_sentences": sum(1 for s in letters if s) - len(usable),
        "sentences_used": len(order),
        "splits": counts,
        "pool": os.path.abspath(pool.root),
        "pool_size": pool_size,
        "sign_dim": pool.dim,
        "seed": seed,
        "simulated_speech": asdict(simulate_speech) if simulate_speech else None,
        "sentence_ids": {
            "train_speech": train_speech.tolist(), "train_sign": train_sign.tolist(),
            **{s: ids.tolist() for s, ids in assigned.items()},
        },
    }
    with atomic_open(os.path.join(out_dir, "summary.json"), encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary
