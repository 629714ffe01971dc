"""Evaluate a trained speech2sign-U checkpoint (word or character level) on a whole split."""
from typing import Dict, Optional

import torch

from fairseq_signlang.io.checkpoints import read_fairseq_checkpoint
from fairseq_signlang.io.device import default_device
from fairseq_signlang.metrics.retrieval import recall_at_k, target_rank
from fairseq_signlang.metrics.uer import unit_error_rate


def load_checkpoint(path: str, data: Optional[str] = None, device: Optional[str] = None):
    """(model, task) from a checkpoint written by fairseq-hydra-train; `data` overrides the
    data folder stored in the checkpoint. Loads through torch's weights-only unpickler."""
    from fairseq import checkpoint_utils

    overrides = {"data": data} if data is not None else None
    state = read_fairseq_checkpoint(path, overrides)  # fairseq ignores arg_overrides for a state passed in
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides, state=state)
    model = models[0].eval()
    return model.to(default_device(device)), task


@torch.no_grad()
def evaluate_split(model, task, split: str, top: int = 10) -> Dict:
    """UER (decoded as task.decoding says), recall@1/5/10 both ways, and the top candidates of
    every query, for a split whose speech has reference sign units ({split}.ref)."""
    if split not in task.datasets:
        task.load_dataset(split)
    dataset = task.datasets[split]
    if dataset.refs is None:
        raise ValueError(f"split {split!r} has no {split}.ref, so there is nothing to evaluate against")
    net_output = task.split_net_output(model, dataset)
    probs, lengths = task.posteriors(model, net_output)
    hyps = task.recognised_units(model, net_output)
    refs = [dataset.refs[i].tolist() for i in range(len(dataset.refs))]
    scores = task.split_similarity(model, split).cpu()
    out = {"split": split, "num_sentences": len(refs), "decoding": str(task.cfg.decoding), "uer": unit_error_rate(zip(hyps, refs))}
    out.update(recall_at_k(scores))
    k = min(top, scores.shape[0])
    targets = torch.arange(scores.shape[0])
    out["rankings"] = {}
    for direction, mat in (("a2v", scores), ("v2a", scores.t())):
        better, ties = target_rank(mat, targets)
        out["rankings"][direction] = {
            "top": mat.topk(k, dim=1).indices.tolist(),  # candidate indices, best first
            "better_than_true": better.tolist(),  # candidates scored above the true one
            "tied_with_true": ties.tolist(),  # other candidates scored equal to it
        }
    out["_scores"], out["_probs"], out["_lengths"] = scores, probs.cpu(), lengths.cpu()
    return out
