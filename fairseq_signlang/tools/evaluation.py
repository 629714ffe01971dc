"""Evaluate a trained speech2sign-U checkpoint (word or character level) on a whole split."""
from typing import Dict, Optional

import torch

from fairseq_signlang.io.checkpoints import read_fairseq_checkpoint
from fairseq_signlang.io.device import default_device
from fairseq_signlang.metrics.retrieval import RECALL_KS, recall_from_ranks
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
    every query, for a split whose speech has reference sign units ({split}.ref). With the task's
    retrieval_prune the rankings hold no top candidates and count the ones above the true item
    up to the largest recall k (`capped_at`)."""
    if split not in task.datasets:
        task.load_dataset(split)
    dataset = task.datasets[split]
    if dataset.refs is None:
        raise ValueError(f"split {split!r} has no {split}.ref, so there is nothing to evaluate against")
    net_output = task.split_net_output(model, dataset)
    probs, lengths = task.posteriors(model, net_output)
    hyps = task.recognised_units(model, net_output)
    refs = [dataset.refs[i].tolist() for i in range(len(dataset.refs))]
    ranks = task.split_ranks(model, split)
    out = {"split": split, "num_sentences": len(refs), "decoding": str(task.cfg.decoding), "uer": unit_error_rate(zip(hyps, refs))}
    out.update(recall_from_ranks(ranks))
    scores = None if task.cfg.retrieval_prune else task.split_similarity(model, split).cpu()
    out["rankings"] = {}
    for direction, (better, ties) in ranks.items():
        ranking = {
            "better_than_true": better.tolist(),  # candidates scored above the true one
            "tied_with_true": ties.tolist(),  # other candidates scored equal to it
        }
        if scores is None:
            ranking["capped_at"] = max(RECALL_KS)  # pruned: better_than_true stops there (ties then 0)
        else:
            mat = scores if direction == "a2v" else scores.t()
            ranking = {"top": mat.topk(min(top, len(mat)), dim=1).indices.tolist(), **ranking}  # candidate indices, best first
        out["rankings"][direction] = ranking
    out["_scores"], out["_probs"], out["_lengths"] = scores, probs.cpu(), lengths.cpu()
    return out
