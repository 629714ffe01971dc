"""MASS text model (uslnet_text) and its data path: the noise, the dataset, fragment positions,
initialisation from a fairseq transformer checkpoint, learning on real English, prepare_text.py."""
import argparse
import copy
import os
import runpy
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from fairseq import checkpoint_utils
from fairseq.data import Dictionary, data_utils
from fairseq.models.transformer import TransformerModel
from omegaconf import OmegaConf

import fairseq_signlang  # noqa: F401  (registration, checkpoint allow-list)
from fairseq_signlang.data.mass_noise import MassDataset, mass_mask
from fairseq_signlang.corpora.text_sources import stdlib_docstring_sentences
from fairseq_signlang.models.uslnet.mass_transformer import UslnetTextConfig, UslnetTextModel

from .random_weights import TINY_SETTINGS
from fairseq_signlang.tools.training import log_records, run_hydra_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USLNET_CONFIGS = os.path.join(REPO, "examples", "uslnet")
prepare_text_main = runpy.run_path(os.path.join(REPO, "scripts", "prepare_text.py"))["main"]


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def word_dictionary(n_words=50, mask=True):
    d = Dictionary()
    for i in range(n_words):
        d.add_symbol(f"w{i}")
    if mask:
        d.add_symbol("<mask>")
    return d


def sentence(d, length, rng):
    return torch.tensor(list(rng.integers(d.nspecial, d.nspecial + 50, size=length)) + [d.eos()])


class FakeTask:
    def __init__(self, d):
        self.source_dictionary = self.target_dictionary = d


# ---------------------------------------------------------------- noise and dataset


def test_mass_mask_fragment():
    d, rng = word_dictionary(), np.random.default_rng(0)
    for length in (1, 2, 3, 7, 10, 31):
        tokens = sentence(d, length, rng)
        for _ in range(20):
            out = mass_mask(tokens, d, rng=rng)
            m = max(1, round(0.5 * length))
            pos = out["positions"]
            assert len(out["target"]) == len(out["prev_output_tokens"]) == len(pos) == m
            assert torch.equal(pos, torch.arange(int(pos[0]), int(pos[0]) + m))  # contiguous, original positions
            assert 0 <= pos[0] and pos[-1] < length  # never the eos
            assert torch.equal(out["target"], tokens[pos])
            assert out["prev_output_tokens"][0] == d.eos() and torch.equal(out["prev_output_tokens"][1:], out["target"][:-1])
            src = out["source"]
            assert len(src) == length + 1 and src[-1] == d.eos()
            outside = torch.ones(length + 1, dtype=torch.bool)
            outside[pos] = False
            assert torch.equal(src[outside], tokens[outside])


def test_mass_mask_noise_statistics():
    """80 % <mask>, 10 % random real token, 10 % kept, over 30000 masked positions; starts uniform."""
    d, rng = word_dictionary(), np.random.default_rng(1)
    mask = d.index("<mask>")
    orig, noisy, starts = [], [], Counter()
    for _ in range(3000):
        tokens = sentence(d, 20, rng)
        out = mass_mask(tokens, d, rng=rng)
        orig.append(out["target"])
        noisy.append(out["source"][out["positions"]])
        starts[int(out["positions"][0])] += 1
    orig, noisy = torch.cat(orig), torch.cat(noisy)
    is_mask = noisy.eq(mask)
    random = ~is_mask & noisy.ne(orig)
    assert abs(is_mask.float().mean() - 0.8) < 0.01
    assert abs(random.float().mean() - 0.1 * (1 - 1 / 50)) < 0.01  # a random draw may hit the original
    assert abs(noisy.eq(orig).float().mean() - (0.1 + 0.1 / 50)) < 0.01
    assert noisy[~is_mask].min() >= d.nspecial and noisy[~is_mask].max() < mask  # real tokens only
    assert sorted(starts) == list(range(11)) and max(starts.values()) - min(starts.values()) < 120


def test_mass_mask_errors_and_determinism():
    d, rng = word_dictionary(), np.random.default_rng(2)
    tokens = sentence(d, 9, rng)
    a = mass_mask(tokens, d, rng=np.random.default_rng(5))
    b = mass_mask(tokens, d, rng=np.random.default_rng(5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="<mask>"):
        mass_mask(tokens, word_dictionary(mask=False), rng=rng)
    with pytest.raises(ValueError, match="<mask>"):
        MassDataset([tokens], word_dictionary(mask=False))
    with pytest.raises(ValueError, match="eos"):
        mass_mask(tokens[:-1], d, rng=rng)


def test_mass_dataset_deterministic_and_collated():
    d, rng = word_dictionary(), np.random.default_rng(3)
    sents = [sentence(d, int(n), rng) for n in rng.integers(1, 15, size=20)]
    ds, again = MassDataset(sents, d, seed=4), MassDataset(sents, d, seed=4)
    first = [ds[i] for i in range(20)]
    assert all(torch.equal(x["source"], again[i]["source"]) and torch.equal(x["positions"], again[i]["positions"])
               for i, x in enumerate(first))
    ds.set_epoch(2)
    assert any(not torch.equal(x["positions"], ds[i]["positions"]) for i, x in enumerate(first))
    ds.set_epoch(1)
    assert all(torch.equal(x["source"], ds[i]["source"]) for i, x in enumerate(first))

    batch = ds.collater([ds[i] for i in (0, 5, 9)])
    net = batch["net_input"]
    lens = [len(sents[i]) for i in (0, 5, 9)]
    m = [max(1, round(0.5 * (n - 1))) for n in lens]
    assert net["src_tokens"].shape == (3, max(lens)) and net["src_lengths"].tolist() == lens
    assert batch["target"].shape == net["prev_output_tokens"].shape == net["fragment_positions"].shape == (3, max(m))
    assert batch["ntokens"] == sum(m) and batch["nsentences"] == 3 and batch["id"].tolist() == [0, 5, 9]
    for row, i in enumerate((0, 5, 9)):
        assert torch.equal(net["src_tokens"][row, : lens[row]], ds[i]["source"])
        assert (net["src_tokens"][row, lens[row]:] == d.pad()).all()
        assert (net["fragment_positions"][row, m[row]:] == -1).all() and (batch["target"][row, m[row]:] == d.pad()).all()
        assert ds.size(i) == (lens[row], m[row])
    assert ds.collater([]) == {}


# ---------------------------------------------------------------- model


def transformer_args(**over):
    """The legacy fairseq `transformer` arguments of the tiny uslnet_text size."""
    args = argparse.Namespace(
        arch="transformer", encoder_learned_pos=True, decoder_learned_pos=True, max_source_positions=512,
        max_target_positions=512, share_all_embeddings=True, dropout=0.1, attention_dropout=0.1, **TINY_SETTINGS)
    for k, v in over.items():
        setattr(args, k, v)
    return args


def batch_for(d, rng, fragment_len=5):
    src = torch.stack([sentence(d, 9, rng) for _ in range(3)])  # (3, 10)
    src[2, 6:] = d.pad()
    src[2, 5] = d.eos()
    prev = torch.randint(d.nspecial, d.nspecial + 50, (3, fragment_len))
    prev[:, 0] = d.eos()
    prev[1, 3:] = d.pad()
    positions = torch.arange(fragment_len).repeat(3, 1)  # (3, M)
    positions[1, 3:] = -1
    return src, torch.tensor([10, 10, 6]), prev, positions


def test_fragment_positions(one_thread):
    torch.manual_seed(0)
    d, rng = word_dictionary(), np.random.default_rng(4)
    model = UslnetTextModel.build_model(UslnetTextConfig(**TINY_SETTINGS), FakeTask(d)).eval()
    src, lengths, prev, pos = batch_for(d, rng)
    with torch.no_grad():
        plain, _ = model(src, lengths, prev)
        same, _ = model(src, lengths, prev, fragment_positions=pos)
        k = 7
        shifted, _ = model(src, lengths, prev, fragment_positions=torch.where(pos >= 0, pos + k, pos))
        # the same run on a copy whose learned table is shifted by k rows, with default positions
        moved = copy.deepcopy(model)
        table, pad = moved.decoder.embed_positions.weight, d.pad()
        table[pad + 1 : -k] = model.decoder.embed_positions.weight[pad + 1 + k :]
        moved_out, _ = moved(src, lengths, prev)
    assert plain.shape == (3, 5, len(d))
    assert torch.allclose(plain, same, atol=1e-5)  # positions 0..M-1 are the default ones
    assert torch.allclose(shifted, moved_out, atol=1e-5)
    assert not torch.allclose(shifted, plain, atol=1e-3)
    assert model.decoder.embed_positions.weight.grad is None and model.fragment_positions.positions is None

    # gradients reach the learned rows of the fragment positions only, never the padding row
    model.train()
    out, _ = model(src, lengths, prev, fragment_positions=torch.where(pos >= 0, pos + k, pos))
    out.sum().backward()
    grad = model.decoder.embed_positions.weight.grad.abs().sum(-1)
    assert set(grad.nonzero().flatten().tolist()) == {pad + 1 + k + j for j in range(5)}

    # sinusoidal positions take them too, also beyond the table's initial size
    sin = UslnetTextModel.build_model(
        UslnetTextConfig(**TINY_SETTINGS, decoder_learned_pos=False, max_target_positions=8), FakeTask(d)).eval()
    with torch.no_grad():
        assert torch.allclose(sin(src, lengths, prev)[0], sin(src, lengths, prev, fragment_positions=pos)[0], atol=1e-5)
        far = sin(src, lengths, prev, fragment_positions=torch.where(pos >= 0, pos + 40, pos))[0]
    assert not torch.allclose(far, sin(src, lengths, prev)[0], atol=1e-3)
    with pytest.raises(ValueError, match="max_target_positions"):
        model(src, lengths, prev, fragment_positions=pos + 600)


def test_equals_fairseq_transformer_and_generates(one_thread):
    """Without fragment positions the model is fairseq's transformer: same weights, same output,
    and SequenceGenerator drives it. A hydra-style flat DictConfig builds it too."""
    from fairseq import models
    from fairseq.sequence_generator import SequenceGenerator

    torch.manual_seed(1)
    d, rng = word_dictionary(), np.random.default_rng(5)
    ours = models.build_model(OmegaConf.create({"_name": "uslnet_text", **TINY_SETTINGS}), FakeTask(d)).eval()
    assert isinstance(ours, UslnetTextModel) and len(ours.encoder.layers) == 2
    theirs = TransformerModel.build_model(transformer_args(), FakeTask(d)).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    src, lengths, prev, _ = batch_for(d, rng)
    with torch.no_grad():
        assert torch.allclose(ours(src, lengths, prev)[0], theirs(src, lengths, prev)[0], atol=1e-6)
        sample = {"net_input": {"src_tokens": src, "src_lengths": lengths}}
        hyps = [SequenceGenerator([m], d, beam_size=2, max_len_b=6).generate([m], sample) for m in (ours, theirs)]
    assert [h[0]["tokens"].tolist() for h in hyps[0]] == [h[0]["tokens"].tolist() for h in hyps[1]]


def save_transformer_checkpoint(path, d, **over):
    """A checkpoint in the layout fairseq-train writes for the legacy `transformer` model."""
    args = transformer_args(**over)
    model = TransformerModel.build_model(args, FakeTask(d))
    state = {
        "args": None,
        "cfg": {"common": {"seed": 1}, "model": args, "task": {"_name": "translation"}},
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": 3.0}, "num_updates": 10}],
        "task_state": {},
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
    }
    checkpoint_utils.torch_persistent_save(state, str(path))
    return model


def test_init_from_transformer_checkpoint(tmp_path):
    torch.manual_seed(2)
    d = word_dictionary()
    source = save_transformer_checkpoint(tmp_path / "transformer.pt", d)
    model = UslnetTextModel.build_model(
        UslnetTextConfig(**TINY_SETTINGS, init_checkpoint=str(tmp_path / "transformer.pt")), FakeTask(d))
    theirs = source.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.state_dict().items())

    save_transformer_checkpoint(tmp_path / "wide.pt", d, encoder_ffn_embed_dim=256)
    with pytest.raises(ValueError, match=r"wide\.pt.*encoder\.layers\.0\.fc1\.weight"):
        UslnetTextModel.build_model(UslnetTextConfig(**TINY_SETTINGS, init_checkpoint=str(tmp_path / "wide.pt")), FakeTask(d))
    save_transformer_checkpoint(tmp_path / "sinusoidal.pt", d, encoder_learned_pos=False, decoder_learned_pos=False)
    with pytest.raises(ValueError, match=r"sinusoidal\.pt.*missing keys: decoder\.embed_positions\.weight"):
        UslnetTextModel.build_model(
            UslnetTextConfig(**TINY_SETTINGS, init_checkpoint=str(tmp_path / "sinusoidal.pt")), FakeTask(d))
    save_transformer_checkpoint(tmp_path / "unshared.pt", d, share_all_embeddings=False)
    with pytest.raises(ValueError, match=r"unshared\.pt.*share_all_embeddings"):
        UslnetTextModel.build_model(
            UslnetTextConfig(**TINY_SETTINGS, init_checkpoint=str(tmp_path / "unshared.pt")), FakeTask(d))
    with pytest.raises(FileNotFoundError, match="none.pt"):
        UslnetTextModel.build_model(UslnetTextConfig(**TINY_SETTINGS, init_checkpoint=str(tmp_path / "none.pt")), FakeTask(d))


# ---------------------------------------------------------------- real text


@pytest.fixture(scope="module")
def stdlib_text_data(tmp_path_factory):
    sentences = [" ".join(s) for s in stdlib_docstring_sentences()]
    tmp = tmp_path_factory.mktemp("mass_text")
    (tmp / "train.txt").write_text("\n".join(sentences[:3000]) + "\n", encoding="utf-8")
    (tmp / "valid.txt").write_text("\n".join(sentences[3000:3100]) + "\n", encoding="utf-8")
    prepare_text_main(["--train", str(tmp / "train.txt"), "--valid", str(tmp / "valid.txt"),
                       "--vocab-size", "400", "--out", str(tmp / "bin")])
    return str(tmp / "bin")


def test_prepare_text_layout(stdlib_text_data):
    names = set(os.listdir(stdlib_text_data))
    assert {"dict.txt", "train.bin", "train.idx", "valid.bin", "valid.idx", "spm.model", "spm.vocab"} <= names
    assert not any(n.startswith(".prepare_text") for n in os.listdir(os.path.dirname(stdlib_text_data)))
    d = Dictionary.load(os.path.join(stdlib_text_data, "dict.txt"))
    valid = data_utils.load_indexed_dataset(os.path.join(stdlib_text_data, "valid"), d)
    assert len(valid) == 100 and all(valid[i][-1] == d.eos() for i in range(100))
    # the pieces decode back to the sentences
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(stdlib_text_data, "spm.model"))
    text = open(os.path.join(os.path.dirname(stdlib_text_data), "valid.txt"), encoding="utf-8").read().splitlines()
    decoded = [sp.decode_pieces([d[t] for t in valid[i][:-1].tolist()]) for i in range(100)]
    assert sum(a == b for a, b in zip(decoded, text)) >= 95


@pytest.fixture(scope="module")
def mass_run(stdlib_text_data, tmp_path_factory):
    run = str(tmp_path_factory.mktemp("mass_run"))
    overrides = [f"task.data={stdlib_text_data}", f"checkpoint.save_dir={run}/ckpt", f"hydra.run.dir={run}/hydra", "common.log_format=json"]
    log = run_hydra_train(USLNET_CONFIGS, "text_mass_tiny", overrides, f"{run}/train.log", 250)
    return run, log


def test_mass_learns_english_through_fairseq(stdlib_text_data, mass_run):
    """Stage text_mass of task uslnet: masked-fragment accuracy (teacher forced) on held-out
    sentences against always predicting the most frequent fragment token of the training data.
    Measured: valid accuracy 17-18 % against 6 % chance after 250 updates (about 30 s)."""
    d = Dictionary.load(os.path.join(stdlib_text_data, "dict.txt"))
    d.add_symbol("<mask>")
    load = lambda split: MassDataset(data_utils.load_indexed_dataset(os.path.join(stdlib_text_data, split), d), d, seed=1)  # noqa: E731
    train, valid = load("train"), load("valid")
    most_frequent = Counter(t for i in range(len(train)) for t in train[i]["target"].tolist()).most_common(1)[0][0]
    valid_targets = Counter(t for i in range(len(valid)) for t in valid[i]["target"].tolist())
    chance = 100 * valid_targets[most_frequent] / sum(valid_targets.values())
    records = log_records(mass_run[1], "valid")
    assert records and "valid_accuracy" in records[-1]
    accuracy = max(float(r["valid_accuracy"]) for r in records)
    print(f"MASS fragment accuracy {accuracy:.1f} %, chance {chance:.1f} % ({d[most_frequent]!r})")
    assert accuracy > 2 * chance and accuracy > chance + 6


def test_continued_pretraining_from_a_text_checkpoint(stdlib_text_data, mass_run, tmp_path):
    """model.init_checkpoint starts a new run from the weights of an earlier one (as the paper
    continues MASS pre-training), and the new run's checkpoint reloads without that file."""
    first = f"{mass_run[0]}/ckpt/checkpoint_last.pt"
    run = str(tmp_path)
    overrides = [f"task.data={stdlib_text_data}", f"checkpoint.save_dir={run}/ckpt", f"hydra.run.dir={run}/hydra",
                 "common.log_format=json", f"model.init_checkpoint={first}", "optimization.max_update=5", "lr_scheduler.warmup_updates=1",
                 "optimization.lr=[1e-9]"]
    log = run_hydra_train(USLNET_CONFIGS, "text_mass_tiny", overrides, f"{run}/train.log", 5)
    assert "init_checkpoint" in log or first in log
    before = torch.load(first, weights_only=True)["model"]
    after = torch.load(f"{run}/ckpt/checkpoint_last.pt", weights_only=True)["model"]
    key = "encoder.layers.0.self_attn.k_proj.weight"
    assert torch.allclose(before[key], after[key], atol=1e-5)  # started from it (lr ~ 0: barely moved)
    shutil.copy(f"{run}/ckpt/checkpoint_last.pt", f"{run}/moved.pt")
    os.rename(first, first + ".away")
    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([f"{run}/moved.pt"])
        assert torch.equal(models[0].state_dict()[key], after[key])
    finally:
        os.rename(first + ".away", first)


# ---------------------------------------------------------------- prepare_text.py errors


def test_prepare_text_bad_input(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("a sentence of words\nanother one here\n", encoding="utf-8")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"hello world\nsecond line\ncaf\xe9 au lait\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    cases = [
        (["--train", str(bad)], f"{bad}:3: not UTF-8"),
        (["--train", str(good), "--valid", str(empty)], f"{empty}: empty"),
        (["--train", str(tmp_path / "none.txt")], f"{tmp_path / 'none.txt'}: text file not found"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            prepare_text_main(argv + ["--out", str(tmp_path / "out")])
        assert message in str(e.value.code)
    assert not os.path.exists(tmp_path / "out")
    assert not any(n.startswith(".prepare_text") for n in os.listdir(tmp_path))
