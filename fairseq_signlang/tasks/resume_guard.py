"""What a task checks about the checkpoint fairseq is about to resume, and about a checkpoint
it is asked to load.

fairseq-train builds the model (task.build_model, from_checkpoint False) before it loads
checkpoint.save_dir/checkpoint_last.pt (or checkpoint.restore_file), and its loop trains an
update before it tests max_update: started again, a finished run would train one update more
and overwrite checkpoint_last.pt and checkpoint_best.pt; started with another task.data in the
same save_dir, it would continue the other corpus's checkpoint. So the tasks look at that
checkpoint first: a finished run ends (status 0) having written nothing, and a checkpoint of
other data is refused unless task.resume_other_data is set.

The task configs see the checkpoint and optimization settings through fields bound to them by
interpolation (as task.seed is to common.seed); a task config built by hand, outside
fairseq-(hydra-)train, leaves them unresolved and the check is skipped.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from fairseq.dataclass import FairseqDataclass
from omegaconf import II

from fairseq_signlang.io.checkpoints import CheckpointError, read_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class ResumeGuardConfig(FairseqDataclass):
    """The task fields the resume check reads; all but resume_other_data mirror other groups."""

    resume_other_data: bool = field(
        default=False,
        metadata={"help": "continue the checkpoint in checkpoint.save_dir (or checkpoint.restore_file) although it was "
                          "trained on other data (another task.data or task.video_data); by default that is refused"},
    )
    # Bound to the checkpoint and optimization groups (set those). No help text, on purpose: fairseq's
    # argparse front ends (fairseq-train, -generate, -validate) then leave them out of their options
    # and keep the interpolation, where with help they would add --max-epoch etc. to a parser that
    # lacks them (fairseq-generate's) and pass None on to the optimization group.
    save_dir: Optional[str] = II("checkpoint.save_dir")
    restore_file: Optional[str] = II("checkpoint.restore_file")
    checkpoint_suffix: Optional[str] = II("checkpoint.checkpoint_suffix")
    reset_optimizer: Optional[bool] = II("checkpoint.reset_optimizer")
    reset_dataloader: Optional[bool] = II("checkpoint.reset_dataloader")
    max_update: Optional[int] = II("optimization.max_update")
    max_epoch: Optional[int] = II("optimization.max_epoch")


class ResumeRefused(ValueError):
    """The checkpoint a training run would resume is not this run's: the message names it and
    the way out."""


class ModelOfOtherTask(CheckpointError):
    """A model config (a checkpoint's) that another task builds; the message names that task."""


_UNRESOLVED = object()


def _get(node, key: str, default=None):
    """node[key] of a dict, DictConfig, dataclass or Namespace; `default` where it is missing."""
    if node is None:
        return default
    try:
        value = node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)
    except Exception:  # an interpolation that does not resolve, a missing key in struct mode
        return _UNRESOLVED
    if isinstance(value, str) and value.startswith("${"):  # a dataclass instance: never resolved
        return _UNRESOLVED
    return value


def registered_name(task) -> str:
    """The name the task's class is registered under (its first, for a class with several)."""
    from fairseq.tasks import TASK_REGISTRY

    return next((name for name, cls in TASK_REGISTRY.items() if cls is type(task)), type(task).__name__)


def model_owner(model_name: str) -> Optional[Tuple[str, str]]:
    """(task name, what selects the model there) of the registered task whose class declares
    `TRAINED_MODELS` with this model."""
    from fairseq.tasks import TASK_REGISTRY

    for name, cls in TASK_REGISTRY.items():
        models: Dict[str, str] = cls.__dict__.get("TRAINED_MODELS") or {}
        if model_name in models:
            return name, models[model_name]
    return None


def check_model_of_task(task, model_cfg) -> None:
    """A checkpoint's model config is one this task builds: otherwise the model would be built
    on this task's dictionaries and fail on a size mismatch that does not say why."""
    model_name = _get(model_cfg, "_name") or _get(model_cfg, "arch")
    if not isinstance(model_name, str) or model_name in type(task).TRAINED_MODELS:
        return
    task_name = registered_name(task)
    owner = model_owner(model_name)
    builds = ", ".join(type(task).TRAINED_MODELS)
    if owner is None:
        raise ModelOfOtherTask(f"the checkpoint's model {model_name} is not one task {task_name} builds ({builds})")
    owner_task, selector = owner
    raise ModelOfOtherTask(
        f"the checkpoint's model {model_name} belongs to task {owner_task}{f' ({selector})' if selector else ''}, not to "
        f"task {task_name} (which builds {builds}): load it with --task {owner_task} (task._name={owner_task})"
    )


def _same_folder(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.realpath(a) == os.path.realpath(b)
    return os.path.normpath(a) == os.path.normpath(b)


def _checkpoint_to_resume(cfg) -> Tuple[Optional[str], bool]:
    """(path of the checkpoint fairseq's checkpoint_utils.load_checkpoint will load, or None where
    none will be or the fields are not resolved; whether it is restore_file's rather than
    save_dir's checkpoint_last)."""
    save_dir, restore_file = _get(cfg, "save_dir"), _get(cfg, "restore_file")
    suffix = _get(cfg, "checkpoint_suffix")
    if not isinstance(save_dir, str) or not isinstance(restore_file, str):
        return None, False
    suffix = suffix if isinstance(suffix, str) else ""
    if restore_file == "checkpoint_last.pt":
        path, explicit = os.path.join(save_dir, f"checkpoint_last{suffix}.pt"), False
    else:
        path, explicit = restore_file.replace(".pt", suffix + ".pt"), True
    return (path if os.path.isfile(path) else None), explicit


def _number(value) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _verdict(task, path: str, explicit: bool, model_name: Optional[str]) -> Tuple[str, str]:
    """("train" | "complete" | "refuse" | "unreadable", message) for the checkpoint this run
    would resume."""
    cfg = task.cfg
    try:
        state = read_checkpoint(path, "fairseq checkpoint", mmap=True)
    except CheckpointError as e:
        return "unreadable", f"{e} (training would resume it: move it away, or set another checkpoint.save_dir)"
    saved = state.get("cfg")
    if saved is None and state.get("args") is not None:
        saved = vars(state["args"])  # a checkpoint of argparse-era fairseq
    saved_task, saved_model = _get(saved, "task"), _get(saved, "model")
    source = "checkpoint.restore_file" if explicit else f"checkpoint_last.pt of checkpoint.save_dir={cfg.save_dir}"

    their_model = _get(saved_model, "_name") or _get(saved, "arch")
    if isinstance(their_model, str) and isinstance(model_name, str) and their_model != model_name:
        return "refuse", (
            f"{path}: fairseq would resume this checkpoint ({source}), a checkpoint of model {their_model}, but this run "
            f"trains model {model_name}: train in another checkpoint.save_dir"
        )

    conflicts = task.resume_conflicts(saved_task, saved_model) if hasattr(task, "resume_conflicts") else []
    if conflicts:
        return "refuse", (
            f"{path}: fairseq would resume this checkpoint ({source}), but {'; '.join(conflicts)}: keep those settings, "
            f"or train in another checkpoint.save_dir"
        )

    if not _get(cfg, "resume_other_data", False):
        differ = []
        for key in type(task).RESUME_DATA_FIELDS:
            ours, theirs = _get(cfg, key), _get(saved_task, key)
            if isinstance(ours, str) and isinstance(theirs, str) and ours and theirs and not _same_folder(ours, theirs):
                differ.append(f"it was trained with task.{key}={theirs}, this run has task.{key}={ours}")
        if differ:
            return "refuse", (
                f"{path}: fairseq would resume this checkpoint ({source}), but it is of other data: {'; '.join(differ)}. "
                f"Train on this data in another checkpoint.save_dir, or set task.resume_other_data=true to continue "
                f"that checkpoint on it"
            )

    where = path if explicit else cfg.save_dir
    history = state.get("optimizer_history") or [{}]
    num_updates = _number(history[-1].get("num_updates"))
    max_update = _number(_get(cfg, "max_update"))
    # fairseq restores the update count with the optimizer state, unless told to reset it
    updates_restored = state.get("last_optimizer_state") is not None and not _get(cfg, "reset_optimizer", False)
    if updates_restored and 0 < max_update <= num_updates:
        return "complete", f"training is complete: {num_updates} updates of max_update {max_update} in {where}; nothing to do"
    train_iterator = (state.get("extra_state") or {}).get("train_iterator") or {}
    next_epoch = _number(train_iterator.get("epoch"))  # the epoch a resumed run starts (or finishes)
    max_epoch = _number(_get(cfg, "max_epoch"))
    if not _get(cfg, "reset_dataloader", False) and 0 < max_epoch < next_epoch:
        return "complete", f"training is complete: {next_epoch - 1} epochs of max_epoch {max_epoch} in {where}; nothing to do"
    return "train", ""


def _agreed(compute):
    """compute() on rank 0, sent to every rank: fairseq reads a checkpoint on rank 0 only, and all
    ranks must stop, or go on, together."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [compute() if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return compute()


def check_resume(task, model_cfg) -> None:
    """Before fairseq-train builds the model and resumes its checkpoint: end a finished run
    (SystemExit(0), nothing written) and refuse a checkpoint of another model or other data."""
    cfg = task.cfg
    if _get(cfg, "save_dir") is _UNRESOLVED or _get(cfg, "restore_file") is _UNRESOLVED:
        return  # a task config built outside fairseq-train: there is no run to resume
    model_name = _get(model_cfg, "_name")

    def verdict():
        path, explicit = _checkpoint_to_resume(cfg)
        if path is None:
            return "train", ""
        try:
            return _verdict(task, path, explicit, model_name if isinstance(model_name, str) else None)
        except Exception as e:  # a checkpoint laid out unlike fairseq's: say so on every rank
            return "unreadable", f"{path}: this run would resume it, but it reads unlike a fairseq checkpoint ({type(e).__name__}: {e})"

    kind, message = _agreed(verdict)
    if kind == "complete":
        logger.info(message)
        raise SystemExit(0)
    if kind == "refuse":
        raise ResumeRefused(message)
    if kind == "unreadable":
        raise CheckpointError(message)
