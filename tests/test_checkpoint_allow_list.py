"""Older fairseq checkpoints (argparse.Namespace args, omegaconf cfg) load under torch's
weights-only default once the plugin is imported, and only the listed classes are allowed."""
import argparse
import typing

import pytest
import torch
from omegaconf import OmegaConf
from torch.serialization import add_safe_globals, clear_safe_globals, get_safe_globals, get_unsafe_globals_in_checkpoint

from fairseq_signlang.io.checkpoints import allow_fairseq_checkpoints, fairseq_checkpoint_globals


@pytest.fixture
def old_style_checkpoint(tmp_path):
    path = str(tmp_path / "wav2vec_style.pt")
    torch.save(
        {
            "args": argparse.Namespace(arch="wav2vec2", encoder_layers=2, dropout=0.1, tags=["a"], none=None, flag=True),
            "cfg": OmegaConf.create({"model": {"_name": "wav2vec2", "encoder_layers": 2, "conv": [[512, 10, 5]], "x": None}}),
            "model": {"w": torch.arange(3.0)},
        },
        path,
    )
    return path


@pytest.fixture
def restore_safe_globals():
    saved = get_safe_globals()
    yield
    clear_safe_globals()
    add_safe_globals(saved)


def test_refused_without_the_allow_list_and_loaded_with_it(old_style_checkpoint, restore_safe_globals):
    clear_safe_globals()
    with pytest.raises(Exception, match="weights_only"):
        torch.load(old_style_checkpoint, map_location="cpu")
    allow_fairseq_checkpoints()
    state = torch.load(old_style_checkpoint, map_location="cpu")  # the default fairseq relies on
    assert state["args"].encoder_layers == 2 and state["cfg"].model.conv[0][1] == 10
    torch.testing.assert_close(state["model"]["w"], torch.arange(3.0))


def global_name(g) -> str:
    return "typing.Any" if g is typing.Any else f"{g.__module__}.{g.__qualname__}"


def test_allow_list_is_exactly_what_such_checkpoints_hold(old_style_checkpoint, restore_safe_globals):
    clear_safe_globals()
    assert set(get_unsafe_globals_in_checkpoint(old_style_checkpoint)) == {global_name(g) for g in fairseq_checkpoint_globals()}


def test_fairseq_loader_reads_namespace_checkpoint(tmp_path):
    """fairseq's own loader (what fairseq-generate / fairseq-validate call) on an args-style
    checkpoint: it loads and is upgraded to a config."""
    from fairseq import checkpoint_utils

    path = str(tmp_path / "old.pt")
    args = argparse.Namespace(arch="wav2vec2", task="audio_pretraining", criterion="wav2vec", optimizer="adam",
                              lr_scheduler="fixed", lr=[0.1], encoder_layers=2, data=str(tmp_path))
    history = [{"criterion_name": "x", "optimizer_name": "adam", "lr_scheduler_state": {}, "num_updates": 5}]
    torch.save({"args": args, "model": {"w": torch.zeros(1)}, "optimizer_history": history, "extra_state": {}}, path)
    state = checkpoint_utils.load_checkpoint_to_cpu(path)
    assert state["cfg"]["model"]["encoder_layers"] == 2
