"""Real English sentences that can be had offline, and the paper's vocabulary restriction."""
import re
import shutil
import subprocess
from collections import Counter
from typing import List, Sequence, Tuple

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.;:?!])\s+")


def words_of(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def kjv_sentences() -> List[List[str]]:
    """The King James Bible (Debian package bible-kjv), split into sentences of lowercase words."""
    if shutil.which("bible") is None:
        raise RuntimeError("the `bible` command is missing: install the Debian package bible-kjv (apt-get install bible-kjv)")
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    sentences = []
    for verse in text.splitlines():
        verse = verse.split(" ", 1)[1] if " " in verse else ""  # drop the "Ge1:1" reference
        for piece in _SENTENCE_END.split(verse):
            words = words_of(piece)
            if words:
                sentences.append(words)
    return sentences


def text_file_sentences(path: str) -> List[List[str]]:
    """One sentence per line of a plain text file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = words_of(line)
            if words:
                out.append(words)
    if not out:
        raise ValueError(f"{path}: no sentences with words")
    return out


def restrict_vocabulary(sentences: Sequence[Sequence[str]], vocab_size: int, min_words: int = 5) -> Tuple[List[str], List[List[str]]]:
    """Keep the `vocab_size` most frequent words, drop the others from every sentence, and keep
    the sentences left with at least `min_words` words (as the paper builds ASL LibriSpeech)."""
    counts = Counter(w for s in sentences for w in s)
    vocab = [w for w, _ in counts.most_common(vocab_size)]
    keep = set(vocab)
    kept = [[w for w in s if w in keep] for s in sentences]
    return vocab, [s for s in kept if len(s) >= min_words]
