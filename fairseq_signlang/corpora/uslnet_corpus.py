"""A small word-sign corpus for USLNet experiments: sentences over a small English vocabulary,
each signed as one procedural sign per word, in the sentence's word order.

USLNet (unsupervised sign language translation) learns from a text corpus and a sign video
corpus that are not paired. To compare that with supervised training on the same material,
the training sentences are split into two disjoint halves: the text side is the text of the
text half, the video side the clips of the video half; the paired files have all training
sentences with both. The sign order is the word order (the paper's order analysis assumes an
English-like sign order), so every sign can in principle be aligned with its word.

Sentences come from a random bigram Markov chain (simulated_units.markov_sentences) over the
first `vocab_size` words of WORDS, or are given; they are deduplicated, so no sentence is in
two splits or in both halves. Each word has its own sign (procedural_signer.ProceduralSigner);
a clip is the signs of its words joined by short transitions, by one of `signers` signers, the
signer's 25 fps trajectories resampled to `fps` and rendered at `size`.

Layout under `out`:
  corpus.json              vocabulary, sentence counts, split files, parameters, frame counts
  text/train.txt           text side of unpaired training: the text half, one sentence per line
  text/train_paired.txt    all training sentences (text half, then video half), line i = row i
                           of video/train_paired.tsv
  text/valid.txt, test.txt the evaluation sentences, line i = row i of video/{valid,test}.tsv
  video/train.tsv          video side of unpaired training: clips of the video half (id, path,
                           text; the text column is for analysis, the unsupervised task ignores it)
  video/train_paired.tsv   all training clips with their text, for the supervised comparison
  video/valid.tsv, test.tsv evaluation clips with their text
  video/clips/{id}.mp4     the clips (ids train00000.., valid00000.., test00000..)
  video/signs.jsonl        per clip: id, split, half (training clips), signer, frames and each
                           sign's [word, first frame, end frame] in the clip
Every vocabulary word occurs in the text half (so a word-level dictionary of text/train.txt has
them all); the video half is made to have every word too where swapping sentences between the
halves can do it (corpus.json lists any word it lacks). The corpus is built in a temporary
folder beside `out` and moved into place when complete.
"""
import json
import os
import shutil
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from fairseq_signlang.io.video import ClipRow, write_clip_manifest, write_video
from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.corpora.synthetic.simulated_units import markov_sentences
from fairseq_signlang.io.writers import atomic_open, write_lines

# Short, common English words; the Markov chain's Zipfian unigram makes the first the most frequent.
WORDS = (
    "i you we they he she it man woman child friend mother father teacher doctor dog cat bird fish horse "
    "house school book car tree water food bread apple milk tea sun rain snow day night time year go come "
    "see look eat drink sleep walk run sit stand read write play work help want like love know think give "
    "take make find buy open close big small good bad happy sad hot cold new old red blue green white black "
    "fast slow many here there now today home city park shop train bus phone door table chair window name"
).split()
SIGNER_FPS = 25.0  # the procedural signer's sign lengths are frames at 25 fps
MIN_FPS = 5.0  # below this the shortest sign (6 frames at 25 fps) could get no frame
SPLITS = ("train", "train_paired", "valid", "test")


def word_vocabulary(vocab_size: int) -> List[str]:
    """The first `vocab_size` words of WORDS."""
    if not 2 <= vocab_size <= len(WORDS):
        raise ValueError(f"vocab_size must be between 2 and {len(WORDS)} (the built-in words; pass sentences= for more), got {vocab_size}")
    return list(WORDS[:vocab_size])


def distinct_markov_sentences(vocab: Sequence[str], n: int, min_words: int, max_words: int, seed: int = 0) -> List[List[str]]:
    """`n` distinct sentences of `min_words`..`max_words` words of `vocab` from a random bigram
    Markov chain (markov_sentences), in the order drawn."""
    V, needed = len(vocab), n
    possible = sum(V ** k for k in range(min_words, max_words + 1))
    if needed > possible:
        raise ValueError(f"num_sentences + num_valid + num_test = {needed} distinct sentences, but only {possible} sentences of "
                         f"{min_words}..{max_words} words over {V} words exist: lower them, or raise vocab_size or max_words")
    draws = 2 * needed
    while True:
        # a longer draw extends a shorter one (same chain, same rng stream), so doubling is deterministic
        seen, out = set(), []
        for s in markov_sentences(V, draws, seed=seed, min_len=min_words, max_len=max_words):
            key = tuple(s)
            if key not in seen:
                seen.add(key)
                out.append([vocab[int(w[1:])] for w in s])
                if len(out) == needed:
                    return out
        if draws >= 64 * needed:
            raise ValueError(f"num_sentences + num_valid + num_test = {needed}: the Markov chain gave only {len(out)} distinct sentences "
                             f"in {draws} draws: lower them, or raise vocab_size or max_words")
        draws *= 2


def _holders(half: Sequence[Sequence[str]]) -> Counter:
    """word -> number of sentences of `half` that contain it."""
    return Counter(w for s in half for w in set(s))


def balance_coverage(a: List[List[str]], b: List[List[str]], vocab: Sequence[str]) -> None:
    """Swap sentences between halves `a` and `b` (in place) until neither lacks a word the other
    has, as far as a swap can do that without taking a word away from either half."""
    while True:
        swapped = False
        for target, other in ((a, b), (b, a)):
            ct, co = _holders(target), _holders(other)
            for w in vocab:
                if ct[w] or not co[w]:
                    continue
                for j, s_o in enumerate(other):
                    if w not in s_o:
                        continue
                    so = set(s_o)
                    for i, s_t in enumerate(target):
                        st = set(s_t)
                        if all(ct[x] >= 2 or x in so for x in st) and all(co[x] >= 2 or x in st for x in so):
                            target[i], other[j] = s_o, s_t
                            swapped = True
                            break
                    if swapped:
                        break
                if swapped:
                    break
            if swapped:
                break
        if not swapped:
            return


def resample(landmarks: np.ndarray, bounds: Sequence[Tuple[str, int, int]], fps: float) -> Tuple[np.ndarray, List[Tuple[str, int, int]]]:
    """Landmarks at SIGNER_FPS -> at `fps` (linear interpolation; sample k at k / fps seconds) and
    each sign's (word, first, end) frame in the result (the samples whose time falls in it)."""
    r = fps / SIGNER_FPS
    T = len(landmarks)
    to_new = lambda x: int(np.ceil(x * r - 1e-6))  # noqa: E731  first new frame at or after nominal frame x
    t = np.arange(to_new(T)) / r
    i0 = np.minimum(np.floor(t + 1e-6).astype(int), T - 1)
    i1 = np.minimum(i0 + 1, T - 1)
    f = np.clip(t - i0, 0.0, 1.0)[:, None, None]
    out = (landmarks[i0] * (1 - f) + landmarks[i1] * f).astype(np.float32)
    new_bounds = [(w, to_new(s), to_new(e)) for w, s, e in bounds]
    for w, s, e in new_bounds:
        if e <= s:
            raise ValueError(f"fps={fps} is too low: the sign for {w!r} gets no frame")
    return out, new_bounds


def _check_args(vocab_size, num_sentences, num_valid, num_test, min_words, max_words, size, fps, signers, transition, given):
    if not given:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        if vocab_size > len(WORDS):
            raise ValueError(f"vocab_size must be at most {len(WORDS)} (the built-in words; pass sentences= for more), got {vocab_size}")
        if min_words < 1:
            raise ValueError(f"min_words must be at least 1, got {min_words}")
        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) must not exceed max_words ({max_words})")
    if num_sentences < 2:
        raise ValueError(f"num_sentences must be at least 2 (one per half), got {num_sentences}")
    for name, value in (("num_valid", num_valid), ("num_test", num_test), ("signers", signers)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if transition < 0:
        raise ValueError(f"transition must be 0 or more frames, got {transition}")
    if not fps >= MIN_FPS:
        raise ValueError(f"fps must be at least {MIN_FPS:g} (the shortest sign lasts 0.24 s), got {fps}")
    if len(size) != 2 or any(int(x) != x or x < 4 or x % 2 for x in size):
        raise ValueError(f"size must be (width, height), even numbers of 4 or more pixels (H.264), got {tuple(size)}")


def _given_sentences(sentences) -> List[List[str]]:
    """Sentences as lists of words (a string is split at whitespace), deduplicated in order."""
    seen, out = set(), []
    for i, s in enumerate(sentences):
        words = s.split() if isinstance(s, str) else [str(w) for w in s]
        if not words or any(not w or len(w.split()) != 1 for w in words):
            raise ValueError(f"sentences[{i}] must be non-empty words without whitespace, got {s!r}")
        if tuple(words) not in seen:
            seen.add(tuple(words))
            out.append(words)
    return out


def _prepare_out(out: str) -> None:
    """`out` may be missing, empty or an earlier corpus (it is replaced); anything else is kept."""
    if os.path.lexists(out) and (not os.path.isdir(out) or (os.listdir(out) and not os.path.isfile(os.path.join(out, "corpus.json")))):
        raise CorpusError(f"{out}: exists and is not a corpus built by build_word_sign_corpus (no corpus.json); "
                          "choose another folder or remove it")


def _move_into_place(tmp: str, out: str) -> None:
    _prepare_out(out)
    old = f"{out}.old.{os.getpid()}"
    if os.path.lexists(out):
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def build_word_sign_corpus(
    out: str,
    vocab_size: int = 20,
    num_sentences: int = 600,
    num_valid: int = 60,
    num_test: int = 60,
    min_words: int = 3,
    max_words: int = 5,
    size: Tuple[int, int] = (40, 32),
    fps: float = 10.0,
    signers: int = 2,
    seed: int = 0,
    sentences: Optional[Sequence] = None,
    transition: int = 4,
) -> Dict:
    """Write the corpus described in the module docstring under `out` and return its corpus.json
    content plus "paths" (absolute paths of out, corpus_json, text_{split}, video_{split}, clips,
    signs; split in train, train_paired, valid, test). Deterministic per seed.

    num_sentences training sentences (the text half gets num_sentences // 2, the video half the
    rest), num_valid and num_test evaluation sentences, all distinct. size is (width, height);
    transition is in frames at 25 fps. sentences: use these (word lists or whitespace-separated
    strings; deduplicated, shuffled, the first num_valid + num_test + num_sentences used) instead
    of Markov sentences; the vocabulary is then their words, and vocab_size, min_words and
    max_words are not used."""
    _check_args(vocab_size, num_sentences, num_valid, num_test, min_words, max_words, size, fps, signers, transition, sentences is not None)
    out = os.path.abspath(out)
    _prepare_out(out)
    rng = np.random.default_rng(seed)
    needed = num_valid + num_test + num_sentences
    if sentences is None:
        vocab = word_vocabulary(vocab_size)
        pool = distinct_markov_sentences(vocab, needed, min_words, max_words, seed)
    else:
        pool = _given_sentences(sentences)
        if len(pool) < needed:
            raise ValueError(f"sentences: {len(pool)} distinct sentences, fewer than num_valid + num_test + num_sentences = {needed}")
    pool = [pool[i] for i in rng.permutation(len(pool))][:needed]
    valid, test, train = pool[:num_valid], pool[num_valid : num_valid + num_test], pool[num_valid + num_test :]
    if sentences is not None:
        counts, first = Counter(w for s in pool for w in s), {}
        for s in pool:
            for w in s:
                first.setdefault(w, len(first))
        vocab = sorted(counts, key=lambda w: (-counts[w], first[w]))
    in_train = _holders(train)
    unseen = [w for w in vocab if not in_train[w]]
    if unseen:
        raise ValueError(f"num_sentences={num_sentences}: no training sentence has the word(s) {' '.join(unseen)}; raise num_sentences"
                         + ("" if sentences is not None else " or lower vocab_size"))
    text_half, video_half = train[: num_sentences // 2], train[num_sentences // 2 :]
    balance_coverage(text_half, video_half, vocab)
    in_text, in_video = _holders(text_half), _holders(video_half)
    missing_text = [w for w in vocab if not in_text[w]]
    if missing_text:
        raise ValueError(f"num_sentences={num_sentences}: the text half (text/train.txt) cannot have every word (missing: "
                         f"{' '.join(missing_text)}), which its word dictionary needs; raise num_sentences")
    missing_video = [w for w in vocab if not in_video[w]]

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(out)}.tmp.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        signer = ProceduralSigner(vocab, seed=seed)
        jobs = [("train", "text", s) for s in text_half] + [("train", "video", s) for s in video_half]
        jobs += [("valid", None, s) for s in valid] + [("test", None, s) for s in test]
        rows: Dict[str, List[ClipRow]] = {"train": [], "valid": [], "test": []}
        halves: Dict[str, List[ClipRow]] = {"text": [], "video": []}
        records, frame_counts = [], []
        for index, (split, half, words) in enumerate(tqdm(jobs, desc="signing clips", unit="clip", disable=None)):
            clip_id = f"{split}{len(rows[split]):05d}"
            who = int(rng.integers(signers))
            landmarks, bounds = signer.sentence(words, signer=who, seed=index, transition=transition)
            landmarks, bounds = resample(landmarks, bounds, fps)
            path = os.path.join(tmp, "video", "clips", f"{clip_id}.mp4")
            write_video(path, render(landmarks, size=tuple(size)), fps=fps)
            row = ClipRow(clip_id, path, text=" ".join(words))
            rows[split].append(row)
            if half:
                halves[half].append(row)
            record = {"id": clip_id, "split": split, "half": half, "signer": who, "frames": len(landmarks), "signs": [list(b) for b in bounds]}
            records.append({k: v for k, v in record.items() if v is not None})
            frame_counts.append(len(landmarks))

        files = {f"text_{s}": f"text/{s}.txt" for s in SPLITS}
        files.update({f"video_{s}": f"video/{s}.tsv" for s in SPLITS})
        files.update({"clips": "video/clips", "signs": "video/signs.jsonl"})
        put = lambda key: os.path.join(tmp, files[key])  # noqa: E731
        manifests = {"train": halves["video"], "train_paired": rows["train"], "valid": rows["valid"], "test": rows["test"]}
        texts = {"train": halves["text"], "train_paired": rows["train"], "valid": rows["valid"], "test": rows["test"]}
        for split in SPLITS:
            write_clip_manifest(put(f"video_{split}"), manifests[split])
            write_lines(put(f"text_{split}"), (r.text for r in texts[split]))
        write_lines(put("signs"), (json.dumps(r) for r in records))
        info = {
            "vocab": vocab,
            "counts": {"text_train": len(text_half), "video_train": len(video_half), "train_paired": len(train), "valid": len(valid), "test": len(test)},
            "splits": list(SPLITS),
            "files": files,
            "video_train_missing_words": missing_video,
            "frames": {"min": int(min(frame_counts)), "max": int(max(frame_counts)), "mean": round(float(np.mean(frame_counts)), 2)},
            "source": "markov" if sentences is None else "given",
            "params": {"vocab_size": len(vocab), "num_sentences": num_sentences, "num_valid": num_valid, "num_test": num_test,
                       "min_words": min_words, "max_words": max_words, "size": list(size), "fps": fps, "signers": signers,
                       "seed": seed, "transition": transition, "signer_fps": SIGNER_FPS},
        }
        with atomic_open(os.path.join(tmp, "corpus.json"), encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    paths = {"out": out, "corpus_json": os.path.join(out, "corpus.json")}
    paths.update({key: os.path.join(out, rel) for key, rel in files.items()})
    return {**info, "paths": paths}
