"""Word-level unit corpora with a known word -> unit mapping, for the demo and the tests.

Stands in for the feature pipeline (k-means over pooled speech and sign features) until it
exists: each word owns a few speech clusters, as k-means with about 4x the vocabulary gives,
and a share of its tokens lands in the clusters of an acoustically confusable word (imperfect
purity); each word has one sign unit, and a few pairs of visually similar words share one.
As the paper builds ASL LibriSpeech, each sentence gets a speech and a sign rendering, and
the sign side is shuffled: the model never sees which sign sentence belongs to which speech.
"""
import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

import numpy as np

from fairseq_signlang.io.writers import atomic_open, write_dictionary, write_features, write_unit_sentences


@dataclass
class UnitCorpusSpec:
    clusters_per_word: int = 4
    speech_purity: float = 0.9  # share of a word's tokens that fall in its own clusters
    similar_sign_pairs: int = 5  # pairs of words whose signs share a unit
    valid_sentences: int = 200
    test_sentences: int = 200
    # False: as ASL LibriSpeech, each training sentence is rendered in both modalities and the
    # sign side is shuffled, so the corpora share their statistics but no pairing. True: speech
    # and sign from disjoint sentences; the statistics then differ by sampling noise, which at
    # a few thousand sentences swamps the signal (the harder, fully unrelated-corpora setting).
    disjoint_halves: bool = False
    # > 0: also write pooled per-word speech features ({split}.npy + .lengths) of this size for
    # speech_input=features: the prototype of the word whose clusters the token fell in, plus noise
    feature_dim: int = 0
    feature_noise: float = 0.3
    # > 1: each sentence is spoken in one of this many voices, and each of a word's clusters
    # belongs to one voice (clusters_per_word / voices of them each): the speaker confound of
    # k-means over real speech (in the media demo, 87-93 % of a word's repeats within a sentence
    # share a cluster, against 2 % by chance)
    voices: int = 1
    seed: int = 0


def markov_sentences(vocab_size: int, num_sentences: int, seed: int = 0, min_len: int = 5, max_len: int = 15) -> List[List[str]]:
    """Sentences from a random bigram language model with a Zipfian unigram, for tests that
    need structure (unigram and skip-gram statistics) without a text corpus."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, vocab_size + 1)
    trans = rng.dirichlet(np.full(vocab_size, 0.1), size=vocab_size) * 0.7 + 0.3 * zipf / zipf.sum()
    trans /= trans.sum(1, keepdims=True)
    cum = trans.cumsum(1)
    words = [f"w{i}" for i in range(vocab_size)]
    out = []
    for _ in range(num_sentences):
        n = int(rng.integers(min_len, max_len + 1))
        w = int(rng.choice(vocab_size, p=zipf / zipf.sum()))
        s = [w]
        for u in rng.random(n - 1):
            w = min(int(np.searchsorted(cum[w], u)), vocab_size - 1)
            s.append(w)
        out.append([words[i] for i in s])
    return out


def build_unit_corpus(sentences: Sequence[Sequence[str]], vocab: Sequence[str], out_dir: str, spec: UnitCorpusSpec) -> Dict:
    """Write a speech2sign_u_word data folder and return its ground truth.

    Files: dict.src.txt, dict.sign.txt, {train,valid,test}.src, train.sign, {valid,test}.ref,
    ground_truth.json (the word -> cluster / sign unit maps, for analysis), and the words each
    line renders, for analysis only (scripts/check_unpaired.py): train.src.wrd, train.sign.wrd,
    {valid,test}.wrd (the words of both {split}.src and {split}.ref).
    """
    rng = np.random.default_rng(spec.seed)
    V = len(vocab)
    if V < 2 or spec.similar_sign_pairs * 2 > V:
        raise ValueError(f"a vocabulary of {V} words is too small (need 2 or more, and 2 per similar sign pair)")
    index = {w: i for i, w in enumerate(vocab)}
    n_eval = spec.valid_sentences + spec.test_sentences
    if len(sentences) < n_eval + 2:
        raise ValueError(f"{len(sentences)} sentences are too few for {n_eval} evaluation sentences and two training halves")

    # speech: word w owns clusters perm[w*c:(w+1)*c]; impure tokens use a confusable word's clusters
    c = spec.clusters_per_word
    cluster_perm = rng.permutation(V * c)
    own_clusters = cluster_perm.reshape(V, c)
    confusable = (np.arange(V) + rng.integers(1, V, size=V)) % V  # never the word itself
    # sign: one unit per word, shuffled; similar pairs share the first word's unit
    sign_of_word = rng.permutation(V)
    pairs = rng.choice(V, size=(spec.similar_sign_pairs, 2), replace=False) if spec.similar_sign_pairs else np.zeros((0, 2), int)
    for a, b in pairs:
        sign_of_word[b] = sign_of_word[a]

    if spec.voices < 1 or c % spec.voices:
        raise ValueError(f"voices must be >= 1 and divide clusters_per_word ({c}), got {spec.voices}")
    per_voice = c // spec.voices

    def speech_units(words):
        ids = np.array([index[w] for w in words])
        src = np.where(rng.random(len(ids)) < spec.speech_purity, ids, confusable[ids])
        if spec.voices == 1:
            return own_clusters[src, rng.integers(0, c, size=len(ids))].tolist()
        voice = int(rng.integers(spec.voices))
        return own_clusters[src, voice * per_voice + rng.integers(0, per_voice, size=len(ids))].tolist()

    def sign_units(words):
        return [int(sign_of_word[index[w]]) for w in words]

    order = rng.permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    valid = shuffled[: spec.valid_sentences]
    test = shuffled[spec.valid_sentences : n_eval]
    rest = shuffled[n_eval:]
    if spec.disjoint_halves:
        train_speech, train_sign = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    else:  # every sentence in both modalities, the sign side in its own order: pairing hidden
        train_speech, train_sign = rest, [rest[i] for i in rng.permutation(len(rest))]

    os.makedirs(out_dir, exist_ok=True)
    # evaluation splits carry references and match their loss against train.sign
    written = {"train.src": [speech_units(s) for s in train_speech], "train.sign": [sign_units(s) for s in train_sign]}
    for split, sents in (("valid", valid), ("test", test)):
        written[f"{split}.src"] = [speech_units(s) for s in sents]
        written[f"{split}.ref"] = [sign_units(s) for s in sents]
    for name, sents in written.items():
        write_unit_sentences(os.path.join(out_dir, name), sents)
    for name, sents in (("train.src", train_speech), ("train.sign", train_sign), ("valid", valid), ("test", test)):
        write_unit_sentences(os.path.join(out_dir, f"{name}.wrd"), sents)
    if spec.feature_dim > 0:
        prototypes = rng.normal(size=(V, spec.feature_dim)).astype(np.float32)
        word_of_cluster = np.empty(V * c, dtype=np.int64)
        word_of_cluster[own_clusters.reshape(-1)] = np.repeat(np.arange(V), c)
        for split in ("train", "valid", "test"):
            units = written[f"{split}.src"]
            flat = np.concatenate([np.asarray(u) for u in units])
            noise = spec.feature_noise * rng.normal(size=(len(flat), spec.feature_dim)).astype(np.float32)
            feats = prototypes[word_of_cluster[flat]] + noise
            write_features(os.path.join(out_dir, split), feats, [len(u) for u in units])
    write_dictionary(os.path.join(out_dir, "dict.src.txt"), written["train.src"], symbols=range(V * c))
    write_dictionary(os.path.join(out_dir, "dict.sign.txt"), written["train.sign"], symbols=sorted(set(sign_of_word.tolist())))
    truth = {
        "vocab": list(vocab),
        "sign_of_word": sign_of_word.tolist(),
        "clusters_of_word": own_clusters.tolist(),
        "confusable_word": confusable.tolist(),
        "similar_sign_pairs": [[vocab[a], vocab[b]] for a, b in pairs],
        "sentences": {"train_speech": len(train_speech), "train_sign": len(train_sign), "valid": len(valid), "test": len(test)},
        "spec": asdict(spec),
    }
    with atomic_open(os.path.join(out_dir, "ground_truth.json")) as f:
        json.dump(truth, f, indent=1)
    return truth


def segmented_sign_units(sentences: Sequence[Sequence[int]], units_per_word: int, purity: float, count_errors: float,
                         seed: int = 0):
    """Sign-unit sentences as segmentation and clustering of sign video would give them: word w
    is written as one of its `units_per_word` units (w * units_per_word + k, one k per sentence,
    as one signer signs it); a token's unit is replaced by a random one with probability
    1 - purity; and a sentence is, with probability `count_errors`, cut once too often (a sign
    split in two) or once too few (two signs merged into the first's unit). Returns the unit
    sentences and each unit's true word (for scoring)."""
    rng = np.random.default_rng(seed)
    num_units = units_per_word * (max(w for s in sentences for w in s) + 1)
    units, words = [], []
    for sentence in sentences:
        k = int(rng.integers(units_per_word))
        u = [w * units_per_word + k if rng.random() < purity else int(rng.integers(num_units)) for w in sentence]
        truth = list(sentence)
        if rng.random() < count_errors:
            i = int(rng.integers(len(u)))
            if rng.random() < 0.5 or len(u) == 1:
                u.insert(i, u[i])
                truth.insert(i, truth[i])
            else:  # the later of two neighbours goes, the earlier's unit stands for both
                later = min(i + 1, len(u) - 1)
                del u[later], truth[later]
        units.append(u)
        words.append(truth)
    return units, words, num_units
