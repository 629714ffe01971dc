"""The character level's GAN against fairseq's own wav2vec-U code (examples/wav2vec/unsupervised,
installed with fairseq) on shared weights: the discriminator's scores and the gradient penalty
are wav2vec-U's by default; this project's earlier variants stay as options."""
import importlib.util
import os
import types

import fairseq
import pytest
import torch

from fairseq_signlang.criterions.adversarial import gradient_penalty
from fairseq_signlang.models.speech2sign_u.unit_discriminator import UnitSequenceDiscriminator

WAV2VEC_U = os.path.join(os.path.dirname(fairseq.__file__), "examples", "wav2vec", "unsupervised", "models", "wav2vec_u.py")


@pytest.fixture(scope="module")
def wav2vec_u():
    """fairseq's wav2vec_u.py as published, with the two edits that let it load on Python 3.11
    without registering a second model: a dataclass default through default_factory, and no
    @register_model."""
    with open(WAV2VEC_U, encoding="utf-8") as f:
        source = f.read()
    fixes = {
        "segmentation: SegmentationConfig = SegmentationConfig()": "segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)",
        "from dataclasses import dataclass\n": "from dataclasses import dataclass, field\n",
        '@register_model("wav2vec_u", dataclass=Wav2vec_UConfig)\n': "",
    }
    for old, new in fixes.items():
        assert source.count(old) == 1, f"{WAV2VEC_U} changed: {old!r}"
        source = source.replace(old, new)
    module = types.ModuleType("fairseq_wav2vec_u_reference")
    exec(compile(source, WAV2VEC_U, "exec"), module.__dict__)
    return module


def shared_pair(wav2vec_u, V, act_after_first, depth=2, dim=16, kernel=3):
    cfg = wav2vec_u.Wav2vec_UConfig(
        discriminator_dim=dim, discriminator_depth=depth, discriminator_kernel=kernel, discriminator_causal=True,
        discriminator_act_after_linear=act_after_first, discriminator_dropout=0.0,
    )
    theirs = wav2vec_u.Discriminator(V, cfg).eval()
    ours = UnitSequenceDiscriminator(V, dim, depth, kernel, act_after_first=act_after_first).eval()
    their_convs = [m for m in theirs.modules() if isinstance(m, torch.nn.Conv1d)]
    our_convs = [m for m in ours.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(their_convs) == len(our_convs) == depth + 1
    with torch.no_grad():
        for a, b in zip(their_convs, our_convs):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    return theirs, ours


@pytest.mark.parametrize("act_after_first", [False, True])
def test_discriminator_scores_match_wav2vec_u(wav2vec_u, act_after_first):
    torch.manual_seed(0)
    theirs, ours = shared_pair(wav2vec_u, 7, act_after_first)
    x = torch.rand(4, 9, 7).softmax(-1)
    padding = torch.arange(9)[None] >= torch.tensor([9, 5, 1, 7])[:, None]
    torch.testing.assert_close(ours(x, padding), theirs(x.clone(), padding))
    torch.testing.assert_close(ours(x, None), theirs(x.clone(), None))


def test_default_discriminator_has_no_activation_after_the_first_convolution(wav2vec_u):
    """Defaults: the criterion's discriminator is wav2vec-U's (act_after_linear off), and the one
    with the GELU (this project's before) gives other scores on the same weights."""
    from fairseq_signlang.criterions.wav2vec_u_gan import Wav2vecUGANConfig

    cfg = Wav2vecUGANConfig()
    assert not cfg.discriminator_act_after_first and cfg.gradient_penalty_norm == "per_unit"
    torch.manual_seed(1)
    theirs, _ = shared_pair(wav2vec_u, 5, act_after_first=False)
    _, with_gelu = shared_pair(wav2vec_u, 5, act_after_first=True)
    with torch.no_grad():
        for a, b in zip([m for m in theirs.modules() if isinstance(m, torch.nn.Conv1d)], [m for m in with_gelu.modules() if isinstance(m, torch.nn.Conv1d)]):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    x = torch.rand(3, 6, 5).softmax(-1)
    assert not torch.allclose(with_gelu(x, None), theirs(x, None))


def test_gradient_penalty_matches_wav2vec_u(wav2vec_u):
    """Same discriminator, same real and fake batches, same random interpolation: wav2vec-U's
    calc_gradient_penalty summed (as its loss does) equals ours, and the sentence-norm variant
    is far smaller."""
    torch.manual_seed(2)
    theirs, ours = shared_pair(wav2vec_u, 26, act_after_first=False, dim=32, kernel=6)
    real = torch.nn.functional.one_hot(torch.randint(0, 26, (8, 12)), 26).float()
    fake = torch.rand(10, 15, 26).requires_grad_(True).softmax(-1)  # as a generator output is
    host = types.SimpleNamespace(cfg=types.SimpleNamespace(probabilistic_grad_penalty_slicing=False), discriminator=theirs)
    torch.manual_seed(3)
    reference = wav2vec_u.Wav2vec_U.calc_gradient_penalty(host, real, fake).sum()
    torch.manual_seed(3)
    penalty = gradient_penalty(ours, real, fake)
    torch.testing.assert_close(penalty, reference)
    torch.manual_seed(3)
    sentence = gradient_penalty(ours, real, fake, norm="sentence")
    assert sentence < penalty / 5, (sentence.item(), penalty.item())
