"""Word-level speech/sign corpora built the way the paper builds ASL LibriSpeech: sentences with
word alignments on the speech side, a pool of isolated sign clips per gloss on the sign side;
keep sentences of at least 5 in-vocabulary words over the top-N vocabulary, and give each
sentence a sign sequence of one random clip per word."""
import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .readers import CorpusError
from .writers import atomic_open

Clip = Tuple[str, Optional[float], Optional[float]]  # video path, start, end (seconds)


@dataclass
class ClipPool:
    clips: Dict[str, List[Clip]]  # gloss -> clips

    @classmethod
    def from_folders(cls, root: str, extensions=(".mp4", ".avi", ".webm", ".mkv", ".mov")) -> "ClipPool":
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


def build_word_corpus(
    sentences: Sequence[Sequence[str]],
    pool: ClipPool,
    vocab_size: int,
    out_dir: str,
    min_words: int = 5,
    disjoint_halves: bool = False,
    seed: int = 0,
) -> Dict:
    """Write `speech.jsonl` and `sign.jsonl` (one sentence per line) and `vocab.txt` to out_dir.

    speech.jsonl: {"utt": index into `sentences`, "words": [...]}, the words kept in vocabulary.
    sign.jsonl: {"words": [...], "clips": [[path, start, end], ...]}, one random clip per word,
    in its own shuffled order (or, with disjoint_halves, from the other half of the sentences)."""
    rng = np.random.default_rng(seed)
    counts = Counter(w for s in sentences for w in s if w in pool.clips)
    vocab = [w for w, _ in counts.most_common(vocab_size)]
    keep = set(vocab)
    kept = []
    for i, s in enumerate(sentences):
        words = [w for w in s if w in keep]
        if len(words) >= min_words:
            kept.append((i, words))
    if len(kept) < 2:
        raise CorpusError(f"only {len(kept)} sentences have {min_words} or more of the {len(vocab)} words with sign clips")
    order = rng.permutation(len(kept))
    if disjoint_halves:
        half = len(kept) // 2
        speech_side, sign_side = [kept[i] for i in order[:half]], [kept[i] for i in order[half:]]
    else:
        speech_side, sign_side = kept, [kept[i] for i in order]
    os.makedirs(out_dir, exist_ok=True)
    with atomic_open(os.path.join(out_dir, "speech.jsonl"), encoding="utf-8") as f:
        for utt, words in speech_side:
            f.write(json.dumps({"utt": utt, "words": words}) + "\n")
    with atomic_open(os.path.join(out_dir, "sign.jsonl"), encoding="utf-8") as f:
        for _, words in sign_side:
            clips = [pool.clips[w][rng.integers(len(pool.clips[w]))] for w in words]
            f.write(json.dumps({"words": words, "clips": [list(c) for c in clips]}) + "\n")
    with atomic_open(os.path.join(out_dir, "vocab.txt"), encoding="utf-8") as f:
        f.writelines(f"{w} {counts[w]} {len(pool.clips[w])}\n" for w in vocab)
    return {"vocab": len(vocab), "speech_sentences": len(speech_side), "sign_sentences": len(sign_side)}
