"""Checkpoint files: what is wrong with one is said with its name, and fairseq checkpoints load
through torch's weights-only unpickler.

Since torch 2.6 `torch.load` defaults to weights_only=True, and fairseq checkpoints carry
their config as omegaconf containers (older ones as argparse.Namespace), which that
unpickler refuses. Rather than switching weights_only off, allow exactly the classes such
checkpoints are built from.
"""
import argparse
import collections
import os
import pickle
import re
import typing

import torch


class CheckpointError(ValueError):
    """A file given as a checkpoint is missing, is no checkpoint (text, truncated, empty), or is
    not the kind asked for; the message names the file."""


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """No file where a checkpoint was named (caught as either kind of error)."""


def fairseq_checkpoint_globals() -> list:
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    return [
        argparse.Namespace,
        DictConfig,
        ListConfig,
        ContainerMetadata,
        Metadata,
        AnyNode,
        typing.Any,
        collections.defaultdict,
        dict,
        list,
        int,
    ]


def allow_fairseq_checkpoints() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch < 2.4 has no weights-only default to satisfy
        add(fairseq_checkpoint_globals())


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:160]}" if text else type(e).__name__


def read_checkpoint(path: str, what: str = "checkpoint", mmap: bool = False) -> dict:
    """The dict a PyTorch checkpoint file holds, loaded weights-only on the CPU (`mmap`: tensors
    stay on disk until used, for reading a large checkpoint's config)."""
    allow_fairseq_checkpoints()
    if not os.path.isfile(path):
        raise CheckpointNotFound(f"{path}: checkpoint not found")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: empty file, not a {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as e:
        if mmap and "mmap" in str(e):  # a file in the legacy (non-zip) format
            return read_checkpoint(path, what, mmap=False)
        raise CheckpointError(f"{path}: not a readable {what}: truncated or not a PyTorch file ({_first_line(e)})") from None
    except pickle.UnpicklingError as e:
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))  # a real checkpoint, a class the allow-list lacks
        if refused:
            raise CheckpointError(f"{path}: holds {refused.group(1)}, which torch's weights-only loading refuses "
                                  "(only plain tensors and fairseq's config classes are allowed)") from None
        raise CheckpointError(f"{path}: not a readable {what}: truncated or not a PyTorch file ({_first_line(e)})") from None
    except Exception as e:  # UnpicklingError, EOFError, OSError ...: text files, truncated files
        raise CheckpointError(f"{path}: not a readable {what}: truncated or not a PyTorch file ({_first_line(e)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a {what}")
    return state


def check_fairseq_state(state: dict, path: str) -> dict:
    """A loaded dict that is a fairseq checkpoint (model weights with the config that built them)."""
    if not isinstance(state.get("model"), dict) or not (state.get("cfg") is not None or state.get("args") is not None):
        keys = ", ".join(sorted(map(str, state))[:5])
        raise CheckpointError(f"{path}: not a fairseq checkpoint: it has no 'model' weights with a 'cfg' (a bare state dict? "
                              f"its first keys: {keys})")
    return state


def read_fairseq_checkpoint(path: str, arg_overrides=None) -> dict:
    """A fairseq checkpoint as fairseq's own loader returns it (config as omegaconf, upgraded
    from older layouts), after checking that the file is one."""
    from fairseq import checkpoint_utils

    check_fairseq_state(read_checkpoint(path, "fairseq checkpoint", mmap=True), path)
    try:
        return checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)
    except Exception as e:
        raise CheckpointError(f"{path}: fairseq could not read this checkpoint ({_first_line(e)})") from None


def checkpoint_model_name(state: dict) -> typing.Optional[str]:
    """The registered model name a fairseq checkpoint was trained with."""
    cfg = state.get("cfg") or {}
    return (cfg.get("model") or {}).get("_name")
