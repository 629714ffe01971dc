"""USLNet's missing signal, built from unpaired corpora: sign units from video, a word-to-unit
lexicon by decipherment, and word-by-word pseudo-parallel data.

  sign_units      clip manifests -> one k-means unit per sign-sized segment ({split}.km), with a
                  purity report where a manifest has text (features/sign_segments.py)
  induce_lexicon  the units of the video corpus and the words of the text corpus, unpaired ->
                  a unit-to-word lexicon, the most likely found (no labels), and every
                  training clip translated word by word into a pseudo-parallel manifest. Two
                  searches:
                    temper  each unit is one word's (a homophonic substitution cipher, as
                            classical decipherment treats many symbols per letter); parallel
                            tempering over those assignments, scored by the likelihood of the
                            video corpus under the text's bigram model (`temper_lexicon`)
                    em      speech2sign-U's decipherment criterion through fairseq-hydra-train,
                            the text words in the role of sign units, translations by Viterbi
  retranslate_clips  a later round's pairs: a joint checkpoint's own translations of the clips
"""
import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from fairseq_signlang.features.clustering import assign_clusters, fit_kmeans
from fairseq_signlang.features.glove_tracker import PER_HAND, GloveTracker
from fairseq_signlang.features.purity import cluster_purity
from fairseq_signlang.features.sign_segments import (LengthMatchedCounts, hand_speed, pool_segments, position_labels,
                                                     speed_peak_bounds, uniform_bounds)
from fairseq_signlang.io.readers import CorpusError, numbered_lines, read_cluster_ids, require_file
from fairseq_signlang.io.video import ClipRow, read_clip_manifest, read_video, write_clip_manifest
from fairseq_signlang.io.writers import write_dictionary, write_json, write_lines, write_unit_sentences
from fairseq_signlang.models.speech2sign_u.sign_ngram import SignNgramModel
from fairseq_signlang.tools.evaluation import load_checkpoint
from fairseq_signlang.tools.training import REPO_DIR, log_records, run_hydra_train

SEGMENTATIONS = ("uniform", "speed")
SEARCHES = ("temper", "em")
# the hands' x and y in GloveTracker's features (right hand, then left)
GLOVE_POSITIONS = (PER_HAND.index("x"), PER_HAND.index("y"), len(PER_HAND) + PER_HAND.index("x"), len(PER_HAND) + PER_HAND.index("y"))


def read_text_sentences(path: str) -> List[List[str]]:
    sentences = []
    for lineno, line in numbered_lines(require_file(path, "text corpus")):
        if not line.split():
            raise CorpusError(f"{path}:{lineno}: empty sentence")
        sentences.append(line.split())
    if not sentences:
        raise CorpusError(f"{path}: no sentences")
    return sentences


def glove_features(rows: Sequence[ClipRow], fps: float, desc: str) -> List[np.ndarray]:
    """Per clip (T, 16) coloured-glove hand features (features/glove_tracker.py) at `fps`
    (0: the file's own rate)."""
    tracker = GloveTracker()
    return [tracker(read_video(r.path, fps=fps or None, start=r.start, end=r.end)[0]) for r in tqdm(rows, desc=desc, unit="clip")]


def sign_units(video_data: str, text: str, out: str, splits: Sequence[str] = ("train", "valid", "test"), clusters: int = 40,
               segmentation: str = "uniform", fps: float = 0.0, seed: int = 0) -> Dict:
    """Unit sequences of every clip of {video_data}/{split}.tsv; k-means and the length
    distribution come from the first split, the sentence lengths from the text corpus."""
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, got {segmentation!r}")
    sentences = read_text_sentences(text)
    manifests = {s: read_clip_manifest(os.path.join(video_data, f"{s}.tsv")) for s in splits}
    feats = {s: glove_features(rows, fps, f"hand features, {s}") for s, rows in manifests.items()}
    train = splits[0]
    frames = np.concatenate(feats[train])
    mean, std = frames.mean(0), frames.std(0) + 1e-6
    counts = LengthMatchedCounts([len(f) for f in feats[train]], [len(s) for s in sentences])
    frames_per_word = float(np.mean([len(f) for f in feats[train]]) / np.mean([len(s) for s in sentences]))
    min_gap = max(1, int(frames_per_word / 3))
    bounds, pooled = {}, {}
    for split in splits:
        bounds[split], pooled[split] = [], []
        for f in feats[split]:
            n = counts(len(f))
            b = speed_peak_bounds(hand_speed(f, GLOVE_POSITIONS), n, min_gap) if segmentation == "speed" else uniform_bounds(len(f), n)
            bounds[split].append(b)
            pooled[split].append(pool_segments((f - mean) / std, b))
    centroids = fit_kmeans(np.concatenate(pooled[train]), clusters, seed=seed)
    os.makedirs(out, exist_ok=True)
    report = {"segmentation": segmentation, "clusters": clusters, "fps": fps, "frames_per_word": round(frames_per_word, 3),
              "min_gap": min_gap, "text": os.path.abspath(text), "video_data": os.path.abspath(video_data), "splits": {}}
    for split in splits:
        units = [assign_clusters(p, centroids).tolist() for p in pooled[split]]
        write_unit_sentences(os.path.join(out, f"{split}.km"), units)
        write_lines(os.path.join(out, f"{split}.segments.jsonl"),
                    (json.dumps({"id": r.id, "frames": len(f), "bounds": [list(map(int, x)) for x in b]})
                     for r, f, b in zip(manifests[split], feats[split], bounds[split])))
        entry = {"clips": len(units), "segments_per_clip": round(float(np.mean([len(u) for u in units])), 3)}
        if all(r.text for r in manifests[split]):
            words = [r.text.split() for r in manifests[split]]
            labels = [w for b, f, ws in zip(bounds[split], feats[split], words) for w in position_labels(b, len(f), ws)]
            purity = cluster_purity(zip(labels, [u for us in units for u in us]))
            entry.update(words_per_clip=round(float(np.mean([len(w) for w in words])), 3),
                         count_accuracy=round(100 * float(np.mean([len(u) == len(w) for u, w in zip(units, words)])), 2),
                         purity=round(100 * purity["purity"], 2),
                         majority_word_share=round(100 * Counter(labels).most_common(1)[0][1] / len(labels), 2))
        report["splits"][split] = entry
    np.savez(os.path.join(out, "kmeans.npz"), centroids=centroids, mean=mean, std=std)
    write_json(os.path.join(out, "units.json"), report)
    return report


def _segment_labels(units_dir: str, video_data: str, split: str) -> Optional[List[List[str]]]:
    """Per clip of a split, each segment's word by position, where the manifest has text."""
    rows = read_clip_manifest(os.path.join(video_data, f"{split}.tsv"))
    if not all(r.text for r in rows):
        return None
    path = os.path.join(units_dir, f"{split}.segments.jsonl")
    with open(path, encoding="utf-8") as f:
        segments = [json.loads(line) for line in f]
    if [s["id"] for s in segments] != [r.id for r in rows]:
        raise CorpusError(f"{path}: its clips are not those of {video_data}/{split}.tsv (run sign_units again)")
    return [position_labels([tuple(b) for b in s["bounds"]], s["frames"], r.text.split()) for s, r in zip(segments, rows)]


def retranslate_clips(checkpoint: str, manifest: str, out: str, data: Optional[str] = None, previous: Optional[str] = None,
                      batch_size: int = 16) -> Dict:
    """A new round of pseudo pairs, as iterative back-translation makes them: every clip of
    `manifest` translated by a joint checkpoint (greedy), written as a clip manifest with the
    translations as text. A clip the model translates to nothing keeps its text in `previous`
    (the last round's manifest), so no clip drops out of the pairs."""
    from fairseq_signlang.tools.uslnet_hub import UslnetHub  # loads fairseq's generator: only when a round is made

    rows = read_clip_manifest(manifest)
    earlier = {r.id: r.text for r in read_clip_manifest(previous)} if previous else {}
    hub = UslnetHub.from_checkpoint(checkpoint, data=data)
    texts: List[str] = []
    for i in tqdm(range(0, len(rows), batch_size), desc="translating the clips", unit="batch"):
        batch = rows[i:i + batch_size]
        texts += hub.translate_batch([hub.read_clip(r.path, r.start, r.end) for r in batch])
    kept = [t if t.strip() else earlier.get(r.id, "") for r, t in zip(rows, texts)]
    missing = [r.id for r, t in zip(rows, kept) if not t.strip()]
    if missing:
        raise RuntimeError(f"{checkpoint} translates {len(missing)} clips of {manifest} to nothing (first: {missing[0]}) and no earlier "
                           "round gives them a text")
    write_clip_manifest(out, [ClipRow(r.id, r.path, r.start, r.end, t) for r, t in zip(rows, kept)])
    return {"clips": len(rows), "empty": sum(not t.strip() for t in texts), "distinct": len(set(kept))}


def final_train_loss(log_text: str) -> float:
    """The last end-of-epoch training loss in a json-format fairseq log (the decipherment
    criterion's: the speech corpus's negative log likelihood per word, label-free)."""
    records = log_records(log_text, "train")
    if not records:
        raise RuntimeError("no end-of-epoch training record in the log")
    return float(records[-1]["train_loss"])


class HardLexiconScore:
    """The log likelihood of unit sentences when unit u is always word a[u]: the word sentences
    they decode to under the word bigram model, times each unit's share of its word's units,
    prod_u (n_u / N_a[u])^n_u. Computed from the units' bigram counts, so a candidate
    lexicon costs O(K^2), not a pass over the corpus. For segmentation errors the bigram model
    can allow a word to repeat as if its sign were cut in two (`self_loop`) and to be skipped
    as if merged into its neighbour (`skip`)."""

    def __init__(self, unit_sentences: Sequence[Sequence[int]], num_units: int, word_sentences: Sequence[Sequence[int]], num_words: int,
                 self_loop: float = 0.0, skip: float = 0.0):
        log_start, log_trans, log_end, _ = SignNgramModel(word_sentences, num_words, order=2).chain()
        V = num_words
        probs = np.zeros((V + 1, V + 1))  # index V: the sentence boundary (start as a row, end as a column)
        probs[V, :V], probs[:V, :V], probs[:V, V] = log_start.exp().numpy(), log_trans.exp().numpy(), log_end.exp().numpy()
        probs = (1 - skip) * probs + skip * (probs @ probs)  # a word the segmentation merged into its neighbour
        probs[:V, :V] = (1 - self_loop) * probs[:V, :V] + self_loop * np.eye(V)  # a sign cut in two
        probs[:V, V] *= 1 - self_loop
        self.log_probs, self.num_words, self.num_units = np.log(np.maximum(probs, 1e-300)), V, num_units
        self.bigrams = np.zeros((num_units + 1, num_units + 1))  # index num_units: the boundary
        for sentence in unit_sentences:
            ids = [num_units, *sentence, num_units]
            np.add.at(self.bigrams, (ids[:-1], ids[1:]), 1)
        self.counts = np.bincount(np.concatenate([np.asarray(x) for x in unit_sentences]), minlength=num_units).astype(np.float64)
        seen = self.counts > 0
        self._unit_entropy = float((self.counts[seen] * np.log(self.counts[seen])).sum())

    def __call__(self, assignment: np.ndarray) -> float:
        return float(self.batch(np.asarray(assignment)[None])[0])

    def batch(self, assignments: np.ndarray) -> np.ndarray:
        """(C, K) assignments -> (C,) scores."""
        C = len(assignments)
        words = np.concatenate([assignments, np.full((C, 1), self.num_words)], axis=1)  # (C, K + 1)
        language = (self.bigrams * self.log_probs[words[:, :, None], words[:, None, :]]).sum((1, 2))
        return language + self._unit_entropy - _xlogx(self._word_totals(assignments)).sum(1)

    def unit_scores(self, assignments: np.ndarray, u: int) -> np.ndarray:
        """(C, K) assignments -> (C, V): the score of each assignment with unit u read as each
        word, up to a constant per row. Only the bigrams through u and the totals of two words
        change with u's word, so this costs O(K V), not V full scores."""
        V, B, L = self.num_words, self.bigrams, self.log_probs
        C = len(assignments)
        old = assignments[:, u]
        words = np.concatenate([assignments, np.full((C, 1), V)], axis=1)  # (C, K + 1)
        out_of_u = np.einsum("vck,k->cv", L[:V][:, words], B[u])  # bigrams u -> j, u read as v
        into_u = np.einsum("ckv,k->cv", L[words][:, :, :V], B[:, u])  # bigrams i -> u
        loop = B[u, u] * (np.diag(L)[None, :V] - L[:V, old].T - L[old, :V])  # u -> u was counted in both, at u's old word
        totals = self._word_totals(assignments)
        totals[np.arange(C), old] -= self.counts[u]
        return out_of_u + into_u + loop - (_xlogx(totals + self.counts[u]) - _xlogx(totals))

    def _word_totals(self, assignments: np.ndarray) -> np.ndarray:
        """(C, K) -> (C, V): each word's unit count under each assignment."""
        totals = np.zeros((len(assignments), self.num_words))
        np.add.at(totals, (np.arange(len(assignments))[:, None], assignments), self.counts[None, :])
        return totals


def _xlogx(x: np.ndarray) -> np.ndarray:
    return x * np.log(np.maximum(x, 1e-300))


@dataclass(frozen=True)
class Tempering:
    """temper_lexicon's settings; the defaults are those measured in examples/uslnet/README.md."""
    chains: int = 32  # one per temperature
    sweeps: int = 2000  # over all units, per chain
    min_temperature: float = 0.05  # the coldest chain's, in units of a unit's mean count
    max_temperature: float = 10.0  # the hottest chain's (geometric in between)


def temper_lexicon(score: HardLexiconScore, tempering: Tempering = Tempering(), seed: int = 0, desc: str = "tempering") -> Dict:
    """Parallel tempering over unit-to-word assignments. Each chain sweeps the units in random
    order, drawing each unit's word from its conditional at the chain's temperature (a
    heat-bath move); after every sweep neighbouring temperatures swap states by the Metropolis
    rule. Hot chains roam, cold ones refine, and swaps carry good states down: one cooling
    schedule (simulated annealing) falls into a trap where the second unit of many words is read
    as the most frequent word, which no single-unit move leaves. Temperatures (geometric from
    `min_temperature` to `max_temperature`) are in units of the mean count of a unit, so the
    ladder fits any corpus size. The most likely state seen, made greedy (each unit its best word
    until none changes), wins."""
    rng = np.random.default_rng(seed)
    K, V = score.num_units, score.num_words
    scale = score.counts.sum() / max(1, int((score.counts > 0).sum()))
    chains = tempering.chains
    temperatures = scale * np.geomspace(tempering.min_temperature, tempering.max_temperature, chains)  # (C,), coldest first
    states = rng.integers(V, size=(chains, K))
    values = score.batch(states)
    best_value, best_state = float(values.max()), states[values.argmax()].copy()
    for _ in tqdm(range(tempering.sweeps), desc=desc, unit="sweep"):
        for u in rng.permutation(K):
            logits = score.unit_scores(states, u) / temperatures[:, None]  # (C, V)
            probs = np.exp(logits - logits.max(1, keepdims=True)).cumsum(1)
            states[:, u] = np.minimum((probs < rng.random(chains)[:, None] * probs[:, -1:]).sum(1), V - 1)
        values = score.batch(states)
        if values.max() > best_value:
            best_value, best_state = float(values.max()), states[values.argmax()].copy()
        for c in range(chains - 1):  # replica exchange between neighbouring temperatures
            log_ratio = (values[c + 1] - values[c]) * (1 / temperatures[c] - 1 / temperatures[c + 1])
            if log_ratio >= 0 or rng.random() < np.exp(log_ratio):
                states[[c, c + 1]], values[[c, c + 1]] = states[[c + 1, c]], values[[c + 1, c]]
    changed = True
    while changed:
        changed = False
        for u in range(K):
            word = int(score.unit_scores(best_state[None], u)[0].argmax())
            changed |= word != best_state[u]
            best_state[u] = word
    return {"assignment": best_state, "score": round(score(best_state), 3),
            "chains": [{"temperature": round(float(t), 3), "final_score": round(float(v), 3)} for t, v in zip(temperatures, values)]}


def _em_search(data: str, out: str, evals: Sequence[str], restarts: int, max_update: int, seed: int, config: str):
    """The decipherment criterion through fairseq, one run per start: (runs, chosen, lexicon,
    translations per split)."""
    runs = []
    for r in range(restarts):
        run_dir = os.path.join(out, f"restart{r}")
        overrides = [f"task.data={os.path.abspath(data)}", f"checkpoint.save_dir={run_dir}/ckpt", f"hydra.run.dir={run_dir}/hydra",
                     "common.log_format=json", f"common.seed={seed + r}", "criterion.warm_start_updates=0",
                     f"optimization.max_update={max_update}"]
        if not evals:
            overrides.append("dataset.valid_subset=train")
        log = run_hydra_train(os.path.join(REPO_DIR, "examples", "speech2sign_u"), config, overrides, f"{run_dir}/train.log",
                              max_update, desc=f"decipherment, start {r + 1} of {restarts}")
        runs.append({"restart": r, "seed": seed + r, "train_loss": final_train_loss(log), "checkpoint": f"{run_dir}/ckpt/checkpoint_last.pt"})
    chosen = min(runs, key=lambda x: x["train_loss"])
    model, task = load_checkpoint(chosen["checkpoint"], data=os.path.abspath(data))
    words, translations = task.sign_dict, {}
    for split in ["train", *evals]:
        task.load_dataset(split)
        net_output = task.split_net_output(model, task.datasets[split])
        translations[split] = [[words[i] for i in h] for h in task.recognised_units(model, net_output)]
    best = net_output["unit_posteriors"].argmax(-1).tolist()  # G (|X|, |Y|) over the dictionaries' indices: each unit's word
    lexicon = {int(task.src_dict[x]): words[y] for x, y in enumerate(best) if x >= task.src_dict.nspecial}
    return runs, chosen["restart"], lexicon, translations


def induce_lexicon(units_dir: str, text: str, video_data: str, out: str, eval_splits: Sequence[str] = ("valid", "test"), *,
                   search: str = "temper", tempering: Tempering = Tempering(), self_loop: float = 0.0, skip: float = 0.0, restarts: int = 4, max_update: int = 80, seed: int = 1,
                   config: str = "word_decipher_tiny") -> Dict:
    """Decipher the video units against the text words (`search`: temper, or em from `restarts`
    starts, the most likely kept). Writes {out}/lexicon.json and {out}/train_pseudo.tsv (the
    training clips with their word-by-word translations as text)."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    sentences = read_text_sentences(text)
    units = {"train": read_cluster_ids(os.path.join(units_dir, "train.km"))}
    data = os.path.join(out, "task")  # speech2sign_u_word's data folder: the units as speech, the words as signs
    os.makedirs(data, exist_ok=True)
    write_unit_sentences(os.path.join(data, "train.src"), units["train"])
    write_unit_sentences(os.path.join(data, "train.sign"), sentences)
    labels = {"train": _segment_labels(units_dir, video_data, "train")}
    evals = []
    for split in eval_splits:
        labels[split] = _segment_labels(units_dir, video_data, split)
        if labels[split] is not None:
            units[split] = read_cluster_ids(os.path.join(units_dir, f"{split}.km"))
            write_unit_sentences(os.path.join(data, f"{split}.src"), units[split])
            write_unit_sentences(os.path.join(data, f"{split}.ref"), labels[split])
            evals.append(split)
    clusters = int(np.load(os.path.join(units_dir, "kmeans.npz"))["centroids"].shape[0])
    write_dictionary(os.path.join(data, "dict.src.txt"), units["train"], range(clusters))
    extra = sorted({w for split in evals for s in labels[split] for w in s})  # reference words the text lacks: count 0
    write_dictionary(os.path.join(data, "dict.sign.txt"), sentences, extra)
    if search == "em":
        runs, chosen, lexicon, translations = _em_search(data, out, evals, restarts, max_update, seed, config)
        search_report = {"runs": runs, "chosen": chosen}
    else:
        vocabulary = [w for w, _ in Counter(w for s in sentences for w in s).most_common()]
        index = {w: i for i, w in enumerate(vocabulary)}
        score = HardLexiconScore([u.tolist() for u in units["train"]], clusters, [[index[w] for w in s] for s in sentences], len(vocabulary),
                                 self_loop, skip)
        result = temper_lexicon(score, tempering, seed)
        search_report = {"chains": result["chains"], "score": result["score"]}
        lexicon = {u: vocabulary[w] for u, w in enumerate(result["assignment"].tolist())}
        translations = {split: [[lexicon[int(u)] for u in s] for s in units[split]] for split in ["train", *evals]}
    seen = {int(u) for s in units["train"] for u in s}
    lexicon = {u: w for u, w in lexicon.items() if u in seen}  # a unit training never saw has no reading
    report = {"units": os.path.abspath(units_dir), "text": os.path.abspath(text), "search": search, **search_report, "splits": {}}
    for split in ["train", *evals]:
        if labels[split] is None:
            continue
        flat_units = [int(u) for s in units[split] for u in s]
        flat_labels = [w for s in labels[split] for w in s]
        flat_hyps = [w for s in translations[split] for w in s]
        purity = cluster_purity(zip(flat_labels, flat_units))
        report["splits"][split] = {
            "segments": len(flat_labels),
            "accuracy": round(100 * float(np.mean([h == t for h, t in zip(flat_hyps, flat_labels)])), 2),
            "lexicon_accuracy": round(100 * float(np.mean([lexicon.get(u) == t for u, t in zip(flat_units, flat_labels)])), 2),
            "oracle": round(100 * purity["purity"], 2),
            "majority": round(100 * Counter(flat_labels).most_common(1)[0][1] / len(flat_labels), 2),
        }
        if split == "train":  # each unit's induced word against its most frequent word by position
            report["units_right"] = round(100 * float(np.mean([lexicon.get(u) == w for u, w in purity["majority"].items()])), 2)
    report["lexicon"] = {str(u): w for u, w in sorted(lexicon.items())}
    rows = read_clip_manifest(os.path.join(video_data, "train.tsv"))
    write_clip_manifest(os.path.join(out, "train_pseudo.tsv"), [ClipRow(r.id, r.path, r.start, r.end, " ".join(h)) for r, h in zip(rows, translations["train"])])
    write_json(os.path.join(out, "lexicon.json"), report)
    return report
