"""Train the CPC sign encoder on feature files ({prefix}.npy + {prefix}.lengths, the wav2vec-U
layout), encode splits with it, and cluster the encodings into sign units with faiss k-means:
the sign side of character-level speech2sign-U (sec. 3.1) and of its word level (appendix A.1).
"""
import dataclasses
import json
import logging
import os
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from fairseq_signlang.io.device import default_device
from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.io.writers import atomic_array_appender, atomic_open, save_array, write_cluster_ids
from fairseq_signlang.features.cpc.encoder import OUTPUTS, CPCConfig, CPCSignEncoder, load_checkpoint, pair_counts, save_checkpoint
from fairseq_signlang.features.clustering import assign_clusters, fit_kmeans, fit_standardizer

logger = logging.getLogger(__name__)


class FeatureSplit:
    """One split's features (memory-mapped, checked by read_features); sentence i is
    feats[offsets[i] : offsets[i] + lengths[i]]."""

    def __init__(self, prefix: str, input_dim: Optional[int] = None):
        self.prefix = prefix
        self.feats, self.offsets, self.lengths = read_features(prefix)
        if input_dim is not None and self.feats.shape[1] != input_dim:
            raise CorpusError(f"{prefix}.npy: features have dimension {self.feats.shape[1]}, the encoder takes {input_dim}")

    def __len__(self) -> int:
        return len(self.lengths)

    def require_pairs(self) -> None:
        """CPC predicts frame i+k from frame i: a split of single-frame sentences has nothing to learn from."""
        if not (self.lengths > 1).any():
            raise CorpusError(f"{self.prefix}.lengths: every sentence is a single frame, so CPC has no (i, i+k) pair to predict")

    def batches(self, batch_size: int, rng: Optional[np.random.Generator] = None) -> Iterator[np.ndarray]:
        """Sentence indices, `batch_size` at a time: in order, or shuffled with `rng`."""
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def padded(self, ids: np.ndarray, device: torch.device):
        """(feats (B, T, D) float32, zero-padded; lengths (B,) int64) on `device`."""
        lengths = self.lengths[ids]
        batch = np.zeros((len(ids), lengths.max(), self.feats.shape[1]), dtype=np.float32)
        for row, (o, n) in enumerate(zip(self.offsets[ids], lengths)):
            batch[row, :n] = self.feats[o : o + n]
        return torch.from_numpy(batch).to(device), torch.from_numpy(lengths).to(device)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)


def run_epoch(
    model: CPCSignEncoder,
    split: FeatureSplit,
    batch_size: int,
    device: torch.device,
    optimizer: Optional[torch.optim.Optimizer] = None,
    rng: Optional[np.random.Generator] = None,
    generator: Optional[torch.Generator] = None,
    desc: str = "",
    progress: bool = True,
) -> Dict:
    """One pass over a split: training when given an optimizer, else evaluation. Loss and
    per-step accuracy are averaged over all (i, k) pairs of the split, not over batches."""
    model.train(optimizer is not None)
    steps = model.cfg.steps
    loss_sum, pairs_total = 0.0, 0
    correct, pairs = np.zeros(steps), np.zeros(steps)
    bar = tqdm(split.batches(batch_size, rng), total=split.num_batches(batch_size), desc=desc, unit="batch", leave=False, disable=not progress)
    with torch.set_grad_enabled(optimizer is not None):
        for ids in bar:
            feats, lengths = split.padded(ids, device)
            counts = pair_counts(lengths, steps).cpu().numpy()  # (K,)
            if counts.sum() == 0:  # only single-frame sentences: nothing to predict
                continue
            loss, accuracy = model.cpc_loss(feats, lengths, generator)
            if optimizer is not None:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            loss_sum += loss.item() * counts.sum()
            pairs_total += counts.sum()
            correct += accuracy.detach().cpu().numpy() * counts
            pairs += counts
            bar.set_postfix(loss=f"{loss_sum / pairs_total:.3f}", acc=f"{correct.sum() / pairs.sum():.3f}")
    per_step = [float(c / p) if p else None for c, p in zip(correct, pairs)]  # None: no sentence longer than k
    seen = [a for a in per_step if a is not None]
    return {"loss": float(loss_sum / pairs_total), "accuracy": per_step, "accuracy_mean": sum(seen) / len(seen)}


def train_cpc(
    train_prefix: str,
    valid_prefix: str,
    out_dir: str,
    cfg: CPCConfig,
    epochs: int = 60,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 1,
    device: Optional[str] = None,
    progress: bool = True,
) -> Dict:
    """Adam on the CPC loss (defaults: the paper's appendix A.1). After every epoch the
    validation prediction accuracy (mean over steps, negatives drawn with a fixed seed so
    epochs compare) picks `checkpoint_best.pt`; `checkpoint_last.pt` and `train_log.json`
    (epoch 0: before training) are rewritten every epoch."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch size must be positive, got {epochs} and {batch_size}")
    train = FeatureSplit(train_prefix, cfg.input_dim)
    valid = FeatureSplit(valid_prefix, cfg.input_dim)
    train.require_pairs()
    valid.require_pairs()
    dev = default_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CPCSignEncoder(cfg)
    model.set_input_standardization(*fit_standardizer(train.feats))
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    os.makedirs(out_dir, exist_ok=True)
    best_path, last_path, log_path = (os.path.join(out_dir, n) for n in ("checkpoint_best.pt", "checkpoint_last.pt", "train_log.json"))
    chance = 1.0 / (cfg.negatives + 1)

    def validate() -> Dict:
        generator = torch.Generator(device=dev).manual_seed(seed)
        return run_epoch(model, valid, batch_size, dev, generator=generator, desc="valid", progress=progress)

    log = {"config": dataclasses.asdict(cfg), "train": train_prefix, "valid": valid_prefix, "batch_size": batch_size, "lr": lr,
           "seed": seed, "device": str(dev), "chance_accuracy": chance, "epochs": []}
    best_epoch, best_accuracy = 0, -1.0
    logger.info(f"CPC sign encoder: {len(train)} training sentences, {int(train.lengths.sum())} frames of dimension "
                f"{cfg.input_dim}, on {dev}; chance accuracy {chance:.4f}")
    with logging_redirect_tqdm():
        initial = validate()
        log["epochs"].append({"epoch": 0, "valid_loss": initial["loss"], "valid_accuracy": initial["accuracy"], "valid_accuracy_mean": initial["accuracy_mean"]})
        for epoch in tqdm(range(1, epochs + 1), desc="CPC epochs", unit="epoch", disable=not progress):
            tr = run_epoch(model, train, batch_size, dev, optimizer, rng=rng, desc=f"epoch {epoch}", progress=progress)
            va = validate()
            log["epochs"].append({
                "epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "train_accuracy_mean": tr["accuracy_mean"],
                "valid_loss": va["loss"], "valid_accuracy": va["accuracy"], "valid_accuracy_mean": va["accuracy_mean"],
            })
            if va["accuracy_mean"] > best_accuracy:
                best_epoch, best_accuracy = epoch, va["accuracy_mean"]
                save_checkpoint(best_path, model, epoch, best_accuracy)
            save_checkpoint(last_path, model, epoch, va["accuracy_mean"])
            log["best_epoch"], log["best_valid_accuracy_mean"] = best_epoch, best_accuracy
            with atomic_open(log_path, encoding="utf-8") as f:
                json.dump(log, f, indent=1)
            logger.info(f"epoch {epoch}: train loss {tr['loss']:.4f} accuracy {tr['accuracy_mean']:.4f} | valid loss {va['loss']:.4f} "
                        f"accuracy {va['accuracy_mean']:.4f} (per step {', '.join(f'{a:.3f}' for a in va['accuracy'] if a is not None)})"
                        f"{' best' if best_epoch == epoch else ''}")
    return {"best_epoch": best_epoch, "best_valid_accuracy": best_accuracy, "chance_accuracy": chance,
            "initial_valid_loss": initial["loss"], "final_valid_loss": log["epochs"][-1]["valid_loss"],
            "checkpoint_best": best_path, "checkpoint_last": last_path, "train_log": log_path, "device": str(dev)}


def encode_features(checkpoint: str, in_prefix: str, out_prefix: str, output: str = "context", device: Optional[str] = None,
                    batch_size: int = 16, progress: bool = True) -> None:
    """`{out_prefix}.npy` + `.lengths`: the encoder's context c (or, output="mlp", z) for every
    frame of `in_prefix`, streamed a batch of sentences at a time; both files appear only
    when complete."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    dev = default_device(device)
    model, _ = load_checkpoint(checkpoint, dev)
    split = FeatureSplit(in_prefix, model.cfg.input_dim)
    with atomic_array_appender(out_prefix + ".npy") as writer, atomic_open(out_prefix + ".lengths", encoding="utf-8") as lengths_file:
        for ids in tqdm(split.batches(batch_size), total=split.num_batches(batch_size), desc=f"encode {os.path.basename(in_prefix)}",
                        unit="batch", disable=not progress):
            feats, lengths = split.padded(ids, dev)
            encoded = model.encode(feats, lengths, output).cpu().numpy()  # (B, T, C or H)
            writer.append(np.ascontiguousarray(np.concatenate([e[:n] for e, n in zip(encoded, split.lengths[ids])]), dtype=np.float32))
        lengths_file.writelines(f"{n}\n" for n in split.lengths)


def unique_basenames(prefixes: Sequence[str]) -> List[str]:
    """Output names are the prefixes' basenames; two inputs may not write the same file."""
    names = [os.path.basename(p) for p in prefixes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"inputs {[p for p in prefixes if os.path.basename(p) in dup]} would write the same output name {dup[0]!r}")
    return names


def kmeans_units(fit_prefix: str, apply_prefixes: Sequence[str], k: int, out_dir: str, niter: int = 50, seed: int = 0,
                 max_rows: int = 1_000_000, progress: bool = True) -> None:
    """`out_dir/centroids.npy` fitted on `fit_prefix` and `out_dir/{name}.km` (one sentence of
    space-separated cluster ids per line) for each applied prefix, as `cluster_features.py
    kmeans` writes them. Every input is checked before anything is written."""
    names = unique_basenames(apply_prefixes)
    fit_feats, _, _ = read_features(fit_prefix)
    for prefix in apply_prefixes:
        feats, _, _ = read_features(prefix)
        if feats.shape[1] != fit_feats.shape[1]:
            raise CorpusError(f"{prefix}.npy: features have dimension {feats.shape[1]}, those of {fit_prefix}.npy {fit_feats.shape[1]}")
    centroids = fit_kmeans(fit_feats, k, niter, seed, max_rows)
    save_array(os.path.join(out_dir, "centroids.npy"), centroids)
    for prefix, name in tqdm(list(zip(apply_prefixes, names)), desc="assign", unit="split", disable=not progress):
        feats, offsets, lengths = read_features(prefix)
        ids = assign_clusters(feats, centroids)
        write_cluster_ids(os.path.join(out_dir, name + ".km"), ids, offsets, lengths)
