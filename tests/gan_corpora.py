"""Fingerspelling task folders with a known letter-to-unit mapping, for the GAN tests: the sign
units are the letters themselves (a=0 .. z=25), the speech is simulated segment features."""
import os
from collections import Counter

from fairseq_signlang.corpora.fingerspelling import letter_ids, letters_of, simulate_speech_segments
from fairseq_signlang.corpora.text_sources import stdlib_docstring_sentences
from fairseq_signlang.io.writers import write_dictionary, write_features, write_unit_sentences


def char_task_folder(out: str, num_train: int, num_valid: int, max_segments_per_letter: int = 1, noise: float = 0.3, dim: int = 16, max_letters: int = 60) -> dict:
    """Disjoint halves of the stdlib English sentences: speech of one, sign units of the other;
    the valid split pairs speech with its true units. Returns the unigram-baseline UER of valid
    (every letter recognised as the most frequent training sign unit)."""
    letters = [s for s in (letters_of(w) for w in stdlib_docstring_sentences()) if 10 <= len(s) <= max_letters]
    speech, sign, valid = letters[:num_train], letters[num_train : 2 * num_train], letters[2 * num_train : 2 * num_train + num_valid]
    os.makedirs(out, exist_ok=True)
    for split, sents, stream in (("train", speech, 0), ("valid", valid, 1)):
        feats, lengths = simulate_speech_segments(sents, dim, noise, max_segments_per_letter, confusable_pairs=0, seed=3, stream=stream)
        write_features(os.path.join(out, split), feats, lengths)
    sign_units = [letter_ids(s) for s in sign]
    write_unit_sentences(os.path.join(out, "train.sign"), sign_units)
    write_unit_sentences(os.path.join(out, "valid.ref"), [letter_ids(s) for s in valid])
    write_dictionary(os.path.join(out, "dict.sign.txt"), sign_units, symbols=range(26))
    most_frequent = Counter(c for s in sign for c in s).most_common(1)[0][0]
    total = sum(len(s) for s in valid)
    return {"data": out, "unigram_baseline_uer": 100.0 * (total - sum(s.count(most_frequent) for s in valid)) / total}


def tiny_char_task_folder(root: str) -> str:
    return char_task_folder(os.path.join(root, "char_data"), num_train=40, num_valid=10)["data"]
