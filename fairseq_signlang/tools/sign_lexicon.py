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
from fairseq_signlang.models.speech2sign_u.cipher_search import HardLexiconScore, Tempering, temper_lexicon
from fairseq_signlang.tools.evaluation import load_checkpoint
from fairseq_signlang.tools.training import REPO_DIR, log_records, run_hydra_train

SEGMENTATIONS = ("uniform", "speed")
SEARCHES = ("temper", "em")
# the hands' x and y in GloveTracker's features (right hand, then left)
GLOVE_POSITIONS = (PER_HAND.index("x"), PER_HAND.index("y"), len(PER_HAND) + PER_HAND.index("x"), len(PER_HAND) + PER_HAND.index("y"))
# which GloveTracker columns a segment is described by: the hands' path, or every column (with the
# glove blobs' area, spread and tilt, which at a few pixels a hand mostly add noise: README)
SEGMENT_FEATURES = {"positions": GLOVE_POSITIONS, "glove": tuple(range(2 * len(PER_HAND)))}


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


@dataclass
class HandTracks:
    """The clips of some splits of a video corpus and their per-frame hand features, read once
    for any number of unit sets (scripts/bench_units.py)."""
    video_data: str
    fps: float
    manifests: Dict[str, List[ClipRow]]
    features: Dict[str, List[np.ndarray]]  # per split, per clip (T, 16)


def hand_tracks(video_data: str, splits: Sequence[str] = ("train", "valid", "test"), fps: float = 0.0) -> HandTracks:
    manifests = {s: read_clip_manifest(os.path.join(video_data, f"{s}.tsv")) for s in splits}
    return HandTracks(video_data, fps, manifests, {s: glove_features(rows, fps, f"hand features, {s}") for s, rows in manifests.items()})


def _check_unit_options(segmentation: str, features: str, pieces: int) -> None:
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, got {segmentation!r}")
    if features not in SEGMENT_FEATURES:
        raise ValueError(f"features must be one of {', '.join(SEGMENT_FEATURES)}, got {features!r}")
    if pieces < 1:
        raise ValueError(f"pieces must be 1 or more, got {pieces}")


def sign_units(video_data: str, text: str, out: str, splits: Sequence[str] = ("train", "valid", "test"), clusters: int = 40,
               segmentation: str = "uniform", fps: float = 0.0, seed: int = 0, features: str = "positions", pieces: int = 3) -> Dict:
    """Unit sequences of every clip of {video_data}/{split}.tsv; k-means and the length
    distribution come from the first split, the sentence lengths from the text corpus. A segment
    is described by the means of `pieces` equal parts of its `features` columns."""
    _check_unit_options(segmentation, features, pieces)
    sentences = read_text_sentences(text)  # a bad text corpus is named before the video is read
    return _units(hand_tracks(video_data, splits, fps), sentences, text, out, clusters, segmentation, seed, features, pieces)


def units_from_tracks(tracks: HandTracks, text: str, out: str, clusters: int = 40, segmentation: str = "uniform", seed: int = 0,
                      features: str = "positions", pieces: int = 3) -> Dict:
    """sign_units on hand tracks already read; k-means is fitted on their first split."""
    _check_unit_options(segmentation, features, pieces)
    return _units(tracks, read_text_sentences(text), text, out, clusters, segmentation, seed, features, pieces)


def _units(tracks: HandTracks, sentences: List[List[str]], text: str, out: str, clusters: int, segmentation: str, seed: int,
           features: str, pieces: int) -> Dict:
    columns = list(SEGMENT_FEATURES[features])
    manifests, feats = tracks.manifests, tracks.features
    splits = list(manifests)
    train = splits[0]
    frames = np.concatenate(feats[train])[:, columns]
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
            pooled[split].append(pool_segments((f[:, columns] - mean) / std, b, pieces))
    centroids = fit_kmeans(np.concatenate(pooled[train]), clusters, seed=seed)
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "units.json")):  # written last: units of an interrupted run never pass for complete
        os.remove(os.path.join(out, "units.json"))
    report = {"segmentation": segmentation, "clusters": clusters, "features": features, "pieces": pieces, "fps": tracks.fps, "frames_per_word": round(frames_per_word, 3),
              "min_gap": min_gap, "text": os.path.abspath(text), "video_data": os.path.abspath(tracks.video_data), "splits": {}}
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
    np.savez(os.path.join(out, "kmeans.npz"), centroids=centroids, mean=mean, std=std, columns=np.asarray(columns), pieces=pieces)
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
    require_file(os.path.join(units_dir, "units.json"), "units.json (sign_units writes it last: run it again if it was interrupted)")
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
