"""Word-level speech/sign corpora built the way the paper builds ASL LibriSpeech: sentences with
word alignments on the speech side, a pool of isolated sign clips per gloss on the sign side;
keep sentences of at least 5 in-vocabulary words over the top-N vocabulary, and give each
sentence a sign sequence of one random clip per word."""
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_signlang.io.video import VIDEO_EXTENSIONS, ClipRow, write_clip_manifest
from fairseq_signlang.io.readers import CorpusError, numbered_lines
from fairseq_signlang.io.writers import atomic_open

Clip = Tuple[str, Optional[float], Optional[float]]  # video path, start, end (seconds)


@dataclass
class ClipPool:
    clips: Dict[str, List[Clip]]  # gloss -> clips

    @classmethod
    def from_folders(cls, root: str, extensions=VIDEO_EXTENSIONS) -> "ClipPool":
        """root/<gloss>/*.mp4: one folder per gloss."""
        if not os.path.isdir(root):
            raise CorpusError(f"{root}: clip folder not found")
        clips = {}
        for gloss in sorted(os.listdir(root)):
            folder = os.path.join(root, gloss)
            if os.path.isdir(folder):
                files = sorted(f for f in os.listdir(folder) if f.lower().endswith(extensions))
                if files:
                    clips[gloss.lower()] = [(os.path.join(folder, f), None, None) for f in files]
        if not clips:
            raise CorpusError(f"{root}: no gloss folders with video clips")
        return cls(clips)

    @classmethod
    def from_json(cls, path: str, video_dir: str) -> "ClipPool":
        """MS-ASL style (a list of {"clean_text" or "text", "file" or "url", "start_time", "end_time"})
        or WLASL style (a list of {"gloss", "instances": [{"video_id", ...}]}), videos under video_dir."""
        try:
            with open(path, encoding="utf-8") as f:
                entries = json.load(f)
        except (OSError, ValueError) as e:
            raise CorpusError(f"{path}: not a readable JSON list ({e})") from None
        clips: Dict[str, List[Clip]] = {}
        for i, e in enumerate(entries):
            try:
                if "instances" in e:  # WLASL
                    for inst in e["instances"]:
                        clips.setdefault(e["gloss"].lower(), []).append((os.path.join(video_dir, f"{inst['video_id']}.mp4"), None, None))
                else:  # MS-ASL
                    name = e.get("file") or os.path.basename(e["url"])
                    gloss = (e.get("clean_text") or e["text"]).lower()
                    clips.setdefault(gloss, []).append((os.path.join(video_dir, name), e.get("start_time"), e.get("end_time")))
            except (KeyError, TypeError, AttributeError) as err:
                raise CorpusError(f"{path}: entry {i} lacks field {err}") from None
        for gloss in list(clips):
            clips[gloss] = [c for c in clips[gloss] if os.path.isfile(c[0])]
            if not clips[gloss]:
                del clips[gloss]
        if not clips:
            raise CorpusError(f"{path}: none of its videos are in {video_dir}")
        return cls(clips)


PAIRINGS = ("hidden", "disjoint", "paired")


def build_word_corpus(
    sentences: Sequence[Sequence[str]],
    pool: ClipPool,
    vocab_size: int,
    out_dir: str,
    min_words: int = 5,
    pairing: str = "hidden",
    seed: int = 0,
    vocab: Optional[Sequence[str]] = None,
) -> Dict:
    """Write `speech.jsonl`, `sign.jsonl`, `clips.tsv` and `vocab.txt` to out_dir.

    speech.jsonl: {"utt": index into `sentences`, "words": [...]}, the words kept in vocabulary.
    sign.jsonl: {"words": [...], "clip_ids": [...], "clips": [[path, start, end], ...]}, one
    random clip per word. pairing: "hidden" gives the sign side the same sentences in its own
    shuffled order (ASL LibriSpeech), "disjoint" the other half of the distinct sentences (all
    copies of a repeated one on the same side), "paired" the same sentences in the same order
    (evaluation splits).
    clips.tsv: a clip manifest of every clip of the vocabulary (id `{gloss}_{n}`), the input of
    scripts/extract_sign_features.py. `vocab` fixes the vocabulary (another split's vocab.txt)."""
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    rng = np.random.default_rng(seed)
    counts = Counter(w for s in sentences for w in s if w in pool.clips)
    if vocab is None:
        vocab = [w for w, _ in counts.most_common(vocab_size)]
    else:
        missing = [w for w in vocab if w not in pool.clips]
        if missing:
            raise CorpusError(f"vocabulary words without sign clips: {missing[:5]}")
    keep = set(vocab)
    kept = []
    for i, s in enumerate(sentences):
        words = [w for w in s if w in keep]
        if len(words) >= min_words:
            kept.append((i, words))
    if len(kept) < 2:
        raise CorpusError(f"only {len(kept)} sentences have {min_words} or more of the {len(vocab)} words with sign clips")
    if pairing == "disjoint":  # halves of the distinct sentences: a repeat's copies go to one side
        copies = defaultdict(list)
        for item in kept:
            copies[tuple(item[1])].append(item)
        distinct = list(copies.values())
        order, half = rng.permutation(len(distinct)), len(distinct) // 2
        speech_side, sign_side = ([item for i in part for item in distinct[i]] for part in (order[:half], order[half:]))
    elif pairing == "hidden":
        speech_side, sign_side = kept, [kept[i] for i in rng.permutation(len(kept))]
    else:
        speech_side, sign_side = kept, kept
    os.makedirs(out_dir, exist_ok=True)
    with atomic_open(os.path.join(out_dir, "speech.jsonl"), encoding="utf-8") as f:
        for utt, words in speech_side:
            f.write(json.dumps({"utt": utt, "words": words}) + "\n")
    with atomic_open(os.path.join(out_dir, "sign.jsonl"), encoding="utf-8") as f:
        for _, words in sign_side:
            picks = [int(rng.integers(len(pool.clips[w]))) for w in words]
            clips = [list(pool.clips[w][n]) for w, n in zip(words, picks)]
            f.write(json.dumps({"words": words, "clip_ids": [f"{w}_{n}" for w, n in zip(words, picks)], "clips": clips}) + "\n")
    rows = [ClipRow(f"{w}_{n}", path, start, end, w) for w in vocab for n, (path, start, end) in enumerate(pool.clips[w])]
    write_clip_manifest(os.path.join(out_dir, "clips.tsv"), rows)
    with atomic_open(os.path.join(out_dir, "vocab.txt"), encoding="utf-8") as f:
        f.writelines(f"{w} {counts[w]} {len(pool.clips[w])}\n" for w in vocab)
    return {"vocab": len(vocab), "speech_sentences": len(speech_side), "sign_sentences": len(sign_side), "clips": len(rows)}


def read_sign_corpus(path: str) -> List[Dict]:
    """The lines of a sign.jsonl written by `build_word_corpus`, checked."""
    out = []
    for lineno, line in numbered_lines(path):
        try:
            entry = json.loads(line)
            ok = isinstance(entry["clip_ids"], list) and len(entry["clip_ids"]) == len(entry["words"]) > 0
        except (ValueError, KeyError, TypeError) as e:
            raise CorpusError(f"{path}:{lineno}: not a sign corpus line ({e})") from None
        if not ok:
            raise CorpusError(f"{path}:{lineno}: needs one clip id per word")
        out.append(entry)
    if not out:
        raise CorpusError(f"{path}: no sentences")
    return out
