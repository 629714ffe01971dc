"""The GAN objectives' parts on small tensors: penalties against values worked out by hand, JOIN
segmentation, the MMD estimate, and generator/discriminator alternation through fairseq's
composite optimizer (the one not being trained stays unchanged in a step)."""
import math

import pytest
import torch
from fairseq.optim import build_optimizer
from omegaconf import OmegaConf

from fairseq_signlang.criterions.adversarial import (
    DISCRIMINATOR,
    GENERATOR,
    code_diversity_penalty,
    gradient_penalty,
    one_hot_units,
    smoothness_penalty,
)
from fairseq_signlang.criterions.word_gan import squared_mmd
from fairseq_signlang.models.speech2sign_u.conv_generator import join_segments
from fairseq_signlang.models.speech2sign_u.unit_discriminator import UnitSequenceDiscriminator


def linear_discriminator(weights, bias=0.0):
    """D(x) = mean over positions of w . x_t + b: a single convolution of width 1."""
    d = UnitSequenceDiscriminator(len(weights), depth=0, kernel=1)
    with torch.no_grad():
        d.net[0].weight.copy_(torch.tensor(weights).view(1, -1, 1))
        d.net[0].bias.fill_(bias)
    return d


def test_gradient_penalty_by_hand():
    # dD/dx_t = w / T at every position, so |grad| over the (T, V) sentence = |w| / sqrt(T):
    # w = (3, 4), T = 4 -> 5 / 2 = 2.5, penalty (2.5 - 1)^2 = 2.25 per sentence, 3 sentences -> 6.75,
    # whatever the interpolation point
    d = linear_discriminator([3.0, 4.0])
    real, fake = torch.rand(3, 4, 2), torch.rand(5, 6, 2)  # cut to the common 3 sentences x 4 positions
    assert gradient_penalty(d, real, fake, norm="sentence").item() == pytest.approx(6.75, rel=1e-5)
    assert gradient_penalty(d, real, fake, alpha=torch.tensor([0.0, 0.5, 1.0]), norm="sentence").item() == pytest.approx(6.75, rel=1e-5)
    # |w| / sqrt(T) = 1: no penalty
    two = torch.rand(2, 4, 2), torch.rand(2, 4, 2)
    assert gradient_penalty(linear_discriminator([1.2, 1.6]), *two, norm="sentence").item() == pytest.approx(0.0, abs=1e-6)
    # wav2vec-U's default: a norm over time per unit, |w_v| / sqrt(T) = 1.5 and 2 -> 0.25 + 1 per sentence
    assert gradient_penalty(d, real, fake).item() == pytest.approx(3 * 1.25, rel=1e-5)
    with pytest.raises(ValueError, match="per_unit"):
        gradient_penalty(d, real, fake, norm="frobenius")


def test_gradient_penalty_interpolates_between_real_and_fake():
    # D(x) = mean_t (x_t . x_t): grad = 2 x / T, so the penalty depends on where x lies
    class Square(torch.nn.Module):
        def forward(self, x, padding_mask):
            return x.pow(2).sum(-1).mean(1)

    real, fake = torch.ones(1, 1, 1), torch.zeros(1, 1, 1)
    # x = 0.25 * 1 + 0.75 * 0 = 0.25, grad = 0.5, (0.5 - 1)^2 = 0.25
    assert gradient_penalty(Square(), real, fake, alpha=torch.tensor([0.25])).item() == pytest.approx(0.25)
    # the penalty reaches the discriminator's parameters (it is a training signal for D)
    d = linear_discriminator([3.0, 4.0])
    gradient_penalty(d, torch.rand(2, 3, 2), torch.rand(2, 3, 2)).backward()
    assert d.net[0].weight.grad.abs().sum() > 0


def test_smoothness_penalty_by_hand():
    logits = torch.tensor([[[0.0, 0.0], [1.0, 3.0], [1.0, 3.0], [9.0, 9.0]], [[2.0, 0.0], [0.0, 0.0], [5.0, 5.0], [7.0, 7.0]]])
    padding = torch.tensor([[False, False, False, True], [False, False, True, True]])
    # valid neighbour pairs: (0,1) of row 0: ((1 + 9) / 2 = 5), (1,2) of row 0: 0, (0,1) of row 1: (4 + 0) / 2 = 2
    assert smoothness_penalty(logits, padding).item() == pytest.approx((5 + 0 + 2) / 3)
    assert smoothness_penalty(logits[:, :1], padding[:, :1]).item() == 0.0


def test_code_diversity_penalty_by_hand():
    probs = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]]])
    # padding ignored: mean posterior (0.5, 0.5, 0, 0), perplexity 2, (4 - 2) / 4
    assert code_diversity_penalty(probs, torch.tensor([[False, False, True]])).item() == pytest.approx(0.5)
    assert code_diversity_penalty(torch.full((2, 3, 4), 0.25), torch.zeros(2, 3, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[[1.0, 0, 0, 0]] * 3])
    assert code_diversity_penalty(collapsed, torch.zeros(1, 3, dtype=torch.bool)).item() == pytest.approx(0.75)


def test_one_hot_units_skips_specials_and_padding():
    tokens = torch.tensor([[4, 6, 1]])  # dictionary ids; units start at 4 (after the specials), 1 is padding
    out = one_hot_units(tokens, tokens == 1, first_unit=4, num_units=3)
    assert out.tolist() == [[[1, 0, 0], [0, 0, 1], [0, 0, 0]]]


def test_join_segments_merges_runs():
    # best units per position: 0 0 1 1 1 0 | padding
    logits = torch.tensor([[[2.0, 0], [4.0, 0], [0, 1.0], [0, 3.0], [0, 5.0], [1.0, 0], [9.0, 9.0]]])
    padding = torch.tensor([[False] * 6 + [True]])
    joined, new_padding = join_segments(logits, padding, pick_random=False)
    assert joined.tolist() == [[[3.0, 0], [0, 3.0], [1.0, 0]]] and new_padding.tolist() == [[False] * 3]
    torch.manual_seed(0)
    for _ in range(5):  # training: one member of each run, picked at random
        picked, _ = join_segments(logits, padding, pick_random=True)
        assert picked[0, 0].tolist() in ([2.0, 0], [4.0, 0]) and picked[0, 1].tolist() in ([0, 1.0], [0, 3.0], [0, 5.0])
        assert picked[0, 2].tolist() == [1.0, 0]
    # a batch: the shorter row is padded
    two = torch.cat([logits, torch.tensor([[[1.0, 0]] * 7])])
    joined, new_padding = join_segments(two, torch.cat([padding, torch.zeros(1, 7, dtype=torch.bool)]), pick_random=False)
    assert joined.shape == (2, 3, 2) and new_padding.tolist() == [[False] * 3, [False, True, True]]
    assert joined[1, 1:].abs().sum() == 0


def test_squared_mmd_is_zero_for_equal_samples_and_grows_apart():
    x = torch.randn(20, 3)
    assert squared_mmd(x, x.clone(), [1.0]).item() == pytest.approx(0.0, abs=1e-6)
    # one point each: 2 - 2 exp(-d^2 / 2s^2)
    a, b = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]])
    assert squared_mmd(a, b, [5.0]).item() == pytest.approx(2 - 2 * math.exp(-25 / 50), rel=1e-5)
    assert squared_mmd(x, x + 3, [1.0]) > squared_mmd(x, x + 0.5, [1.0]) > 0


def test_discriminator_is_causal():
    d = UnitSequenceDiscriminator(3, dim=8, depth=2, kernel=3)
    net = d.net  # per-position scores before pooling
    x = torch.rand(1, 6, 3)
    y = x.clone()
    y[0, 4:] = torch.rand(2, 3)  # change the future of position 3
    before = net(x.transpose(1, 2))[0, 0, :4]
    after = net(y.transpose(1, 2))[0, 0, :4]
    torch.testing.assert_close(before, after)


def composite_optimizer(generator, discriminator):
    groups = {
        name: {"optimizer": {"_name": "adam", "lr": [0.1], "adam_betas": "(0.9, 0.999)", "tpu": False}, "lr_scheduler": {"_name": "fixed"}}
        for name in (GENERATOR, DISCRIMINATOR)
    }
    cfg = OmegaConf.create({"_name": "composite", "groups": groups})
    params = list(generator.parameters()) + list(discriminator.parameters())
    return build_optimizer(cfg, params)


def test_updates_alternate_through_the_composite_optimizer(tmp_path):
    """Task hooks as fairseq's trainer calls them: train_step (forward, backward), then
    optimizer_step. Odd updates change the discriminator only, even ones the generator only."""
    from fairseq_signlang.criterions.wav2vec_u_gan import Wav2vecUGANCriterion
    from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask

    from .gan_corpora import tiny_char_task_folder

    data = tiny_char_task_folder(str(tmp_path))
    task = Speech2SignUCharTask.setup_task(Speech2SignUCharConfig(data=data, seed=1))
    task.load_dataset("train")
    model = task.build_model(OmegaConf.create({"_name": "speech2sign_u_char", "generator_dropout": 0.0}))
    criterion = task.build_criterion(OmegaConf.create({"_name": "wav2vec_u_gan", "discriminator_dim": 8, "discriminator_depth": 1}))
    assert isinstance(criterion, Wav2vecUGANCriterion)
    optimizer = composite_optimizer(model, criterion)
    sample = task.datasets["train"].collater([{"id": i} for i in range(8)])

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    for update in range(4):
        g, d = snapshot(model), snapshot(criterion)
        optimizer.zero_grad()
        task.train_step(sample, model, criterion, optimizer, update)
        task.optimizer_step(optimizer, model, update)
        g_changed = any(not torch.equal(a, b) for a, b in zip(g, model.parameters()))
        d_changed = any(not torch.equal(a, b) for a, b in zip(d, criterion.parameters()))
        if update % 2 == 1:
            assert d_changed and not g_changed, f"update {update} should train the discriminator only"
        else:
            assert g_changed and not d_changed, f"update {update} should train the generator only"


def test_gan_criterion_refuses_a_plain_optimizer(tmp_path):
    from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask

    from .gan_corpora import tiny_char_task_folder

    task = Speech2SignUCharTask.setup_task(Speech2SignUCharConfig(data=tiny_char_task_folder(str(tmp_path)), seed=1))
    task.load_dataset("train")
    model = task.build_model(OmegaConf.create({"_name": "speech2sign_u_char"}))
    criterion = task.build_criterion(OmegaConf.create({"_name": "wav2vec_u_gan", "discriminator_dim": 8}))
    adam = build_optimizer(OmegaConf.create({"_name": "adam", "lr": [0.1], "tpu": False}), list(model.parameters()) + list(criterion.parameters()))
    sample = task.datasets["train"].collater([{"id": i} for i in range(4)])
    with pytest.raises(ValueError, match="optimizer._name=composite"):
        task.train_step(sample, model, criterion, adam, 0)


def test_non_finite_loss_stops_training_with_a_clear_message(tmp_path):
    from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask
    from fairseq_signlang.tasks.speech2sign_u_word import TrainingDiverged

    from .gan_corpora import tiny_char_task_folder

    task = Speech2SignUCharTask.setup_task(Speech2SignUCharConfig(data=tiny_char_task_folder(str(tmp_path)), seed=1))
    task.load_dataset("train")
    model = task.build_model(OmegaConf.create({"_name": "speech2sign_u_char"}))
    criterion = task.build_criterion(OmegaConf.create({"_name": "wav2vec_u_gan", "discriminator_dim": 8}))
    optimizer = composite_optimizer(model, criterion)
    sample = task.datasets["train"].collater([{"id": i} for i in range(4)])
    with torch.no_grad():
        model.generator.conv.weight[0, 0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"training diverged: the loss is nan at update 3 .*checkpoint_last.pt"):
        task.train_step(sample, model, criterion, optimizer, 2)


def test_retrieval_scores_follow_parameter_updates_made_through_data(tmp_path):
    """fairseq's optimizers update `p.data`, which does not bump version counters: the cached
    similarity matrix of a split must still be recomputed after such a step."""
    from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask

    from .gan_corpora import tiny_char_task_folder

    task = Speech2SignUCharTask.setup_task(Speech2SignUCharConfig(data=tiny_char_task_folder(str(tmp_path)), seed=1))
    task.load_dataset("valid")
    model = task.build_model(OmegaConf.create({"_name": "speech2sign_u_char"})).eval()
    before = task.split_similarity(model, "valid").clone()
    assert torch.equal(task.split_similarity(model, "valid"), before)  # cached while nothing changes
    with torch.no_grad():
        for p in model.parameters():
            p.data.add_(torch.randn_like(p))
    assert not torch.equal(task.split_similarity(model, "valid"), before)
