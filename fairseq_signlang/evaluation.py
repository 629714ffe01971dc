"""Evaluate a trained word-level speech2sign-U checkpoint on a whole split."""
from typing import Dict, Optional

import torch

from .metrics.retrieval import dtw_similarity, ranks_of_targets, recall_at_k
from .metrics.uer import unit_error_rate


def load_checkpoint(path: str, data: Optional[str] = None, device: Optional[str] = None):
    """(model, task) from a checkpoint written by fairseq-hydra-train; `data` overrides the
    data folder stored in the checkpoint. Loads through torch's weights-only unpickler."""
    from fairseq import checkpoint_utils

    overrides = {"data": data} if data is not None else None
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)
    model = models[0].eval()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), task


@torch.no_grad()
def evaluate_split(model, task, split: str, top: int = 10) -> Dict:
    """UER, recall@1/5/10 both ways, and the top candidates of every query, for a split
    whose speech has reference sign units ({split}.ref)."""
    if split not in task.datasets:
        task.load_dataset(split)
    dataset = task.datasets[split]
    if dataset.refs is None:
        raise ValueError(f"split {split!r} has no {split}.ref, so there is nothing to evaluate against")
    probs, lengths = task.split_posteriors(model, dataset)
    hyps = [p[:n].argmax(-1).tolist() for p, n in zip(probs, lengths)]
    ref_pad, ref_lengths = dataset.refs.pad(torch.arange(len(dataset.refs)), task.target_dictionary.pad())
    refs = [r[:n].tolist() for r, n in zip(ref_pad, ref_lengths)]
    scores = dtw_similarity(probs, lengths, ref_pad.to(probs.device), ref_lengths, task.cfg.retrieval_max_cells).cpu()
    out = {"split": split, "num_sentences": len(refs), "uer": unit_error_rate(zip(hyps, refs))}
    out.update(recall_at_k(scores))
    k = min(top, scores.shape[0])
    targets = torch.arange(scores.shape[0])
    out["rankings"] = {
        "a2v": {"top": scores.topk(k, dim=1).indices.tolist(), "rank_of_true": ranks_of_targets(scores, targets).tolist()},
        "v2a": {"top": scores.t().topk(k, dim=1).indices.tolist(), "rank_of_true": ranks_of_targets(scores.t(), targets).tolist()},
    }
    out["_scores"], out["_probs"], out["_lengths"] = scores, probs.cpu(), lengths.cpu()
    return out
