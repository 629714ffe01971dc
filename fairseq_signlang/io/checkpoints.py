"""Let torch's weights-only unpickler read fairseq checkpoints.

Since torch 2.6 `torch.load` defaults to weights_only=True, and fairseq checkpoints carry
their config as omegaconf containers (older ones as argparse.Namespace), which that
unpickler refuses. Rather than switching weights_only off, allow exactly the classes such
checkpoints are built from.
"""
import argparse
import collections
import typing

import torch


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
