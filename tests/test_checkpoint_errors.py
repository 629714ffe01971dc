"""A file given as a checkpoint that is not one (text, empty, truncated, a bare state dict,
missing) stops every loader with a CheckpointError that names the file and says what is wrong,
and weights that do not fit the model built for a run say why."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from fairseq_signlang.features.cpc.encoder import load_checkpoint as load_cpc
from fairseq_signlang.features.visual_models import load_state_dict as load_visual
from fairseq_signlang.features.wav2vec2 import load_wav2vec2
from fairseq_signlang.io.checkpoints import CheckpointError, read_fairseq_checkpoint
from fairseq_signlang.models.speech2sign_u.linear_generator import Speech2SignUWordModel, Speech2SignUWordModelConfig
from fairseq_signlang.models.uslnet.video import load_stage_state
from fairseq_signlang.tools.evaluation import load_checkpoint as load_speech2sign
from fairseq_signlang.tools.uslnet_hub import UslnetHub

from .conftest import REPO

BAD = {
    "text": (lambda p: open(p, "w").write("not a checkpoint\n"), "not a readable .*truncated or not a PyTorch file"),
    "empty": (lambda p: open(p, "w").close(), "empty file"),
    "truncated": (lambda p: _truncated(p), "not a readable .*truncated or not a PyTorch file"),
    "bare": (lambda p: torch.save({"proj.weight": torch.zeros(2, 2)}, p), "not a fairseq checkpoint.*bare state dict"),
    "missing": (lambda p: None, "checkpoint not found"),
}


def _truncated(path):
    torch.save({"model": {"w": torch.zeros(1000)}, "cfg": {}}, path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


@pytest.fixture(params=sorted(BAD))
def bad_checkpoint(request, tmp_path):
    path = str(tmp_path / f"{request.param}.pt")
    BAD[request.param][0](path)
    return path, BAD[request.param][1]


FAIRSEQ_LOADERS = {
    "read_fairseq_checkpoint": read_fairseq_checkpoint,
    "load_stage_state": lambda p: load_stage_state(p, "uslnet"),
    "UslnetHub.from_checkpoint": UslnetHub.from_checkpoint,
    "speech2sign evaluation": load_speech2sign,
    "wav2vec 2.0": load_wav2vec2,
}


@pytest.mark.parametrize("loader", sorted(FAIRSEQ_LOADERS))
def test_fairseq_checkpoint_loaders_name_the_file(loader, bad_checkpoint):
    path, reason = bad_checkpoint
    with pytest.raises(CheckpointError, match=rf"^{path}: .*{reason}|^{path}: {reason}"):
        FAIRSEQ_LOADERS[loader](path)


PLAIN_LOADERS = {"cpc": load_cpc, "visual state dict": load_visual}


# a bare state dict is what load_visual reads; the CPC loader refuses one for lacking its entries
@pytest.mark.parametrize("loader,kind", [(name, kind) for name in PLAIN_LOADERS for kind in sorted(BAD) if (name, kind) != ("visual state dict", "bare")])
def test_plain_checkpoint_loaders_name_the_file(loader, kind, tmp_path):
    path = str(tmp_path / f"{kind}.pt")
    make, reason = BAD[kind]
    make(path)
    if kind == "bare":
        reason = "not a CPC sign encoder checkpoint"
    with pytest.raises(CheckpointError, match=rf"^{path}: .*({reason})|^{path}: {reason}"):
        PLAIN_LOADERS[loader](path)


def test_retrieve_script_reports_a_bad_checkpoint_without_a_traceback(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are notes, not weights\n")
    run = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "retrieve.py"), "--checkpoint", str(path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert f"{path}: not a readable fairseq checkpoint" in run.stderr and "Traceback" not in run.stderr


def test_weights_of_other_data_say_so():
    def word_model(units: int):
        sign = Dictionary()
        for i in range(units):
            sign.add_symbol(f"s{i}")
        task = SimpleNamespace(target_dictionary=sign, speech_input_dim=7, discrete_speech=True)
        return Speech2SignUWordModel.build_model(Speech2SignUWordModelConfig(), task)

    trained = word_model(5).state_dict()
    word_model(5).load_state_dict(trained)  # the same data: loads
    with pytest.raises(CheckpointError, match=r"generator.proj.weight is torch.Size\(\[9, 7\]\) in the checkpoint but "
                                              r"torch.Size\(\[12, 7\]\) here .*other data or for another task"):
        word_model(8).load_state_dict(trained)


class Unlisted:
    """A class no allow-list names."""


def test_a_class_weights_only_loading_refuses_is_named(tmp_path):
    path = str(tmp_path / "pickled.pt")
    torch.save({"model": {"w": torch.zeros(1)}, "cfg": {}, "extra": Unlisted()}, path)
    with pytest.raises(CheckpointError, match=rf"^{path}: holds tests.test_checkpoint_errors.Unlisted, which torch's weights-only loading refuses"):
        read_fairseq_checkpoint(path)
