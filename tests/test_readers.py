"""Bad input stops with an error naming the file and line; good input reads back."""
import os

import numpy as np
import pytest
import torch

from fairseq_signlang.io.readers import CorpusError, load_dictionary, read_features, read_units
from fairseq_signlang.io.writers import write_dictionary, write_lines


@pytest.fixture
def unit_dict(tmp_path):
    path = str(tmp_path / "dict.src.txt")
    write_dictionary(path, [], symbols=range(10))
    return load_dictionary(path), path


def test_units_read_back(tmp_path, unit_dict):
    d, dpath = unit_dict
    path = str(tmp_path / "train.src")
    write_lines(path, ["3 4 5", "9"])
    units = read_units(path, d, dpath)
    assert [d.string(u).split() for u in units] == [["3", "4", "5"], ["9"]]


def test_unit_outside_dictionary_names_file_and_line(tmp_path, unit_dict):
    d, dpath = unit_dict
    path = str(tmp_path / "train.src")
    write_lines(path, ["1 2 3", "4 17 5"])
    with pytest.raises(CorpusError, match=rf"{path}:2: unit '17' is not in {dpath}"):
        read_units(path, d, dpath)


def test_empty_sentence_names_file_and_line(tmp_path, unit_dict):
    d, dpath = unit_dict
    path = str(tmp_path / "train.src")
    write_lines(path, ["1 2 3", "4 5", "   ", "6"])
    with pytest.raises(CorpusError, match=rf"{path}:3: empty sentence"):
        read_units(path, d, dpath)


def test_special_symbol_is_not_a_unit(tmp_path, unit_dict):
    d, dpath = unit_dict
    path = str(tmp_path / "train.src")
    write_lines(path, ["1 <pad> 3"])
    with pytest.raises(CorpusError, match=rf"{path}:1: '<pad>' is a special symbol"):
        read_units(path, d, dpath)


def test_missing_file_is_named(tmp_path, unit_dict):
    d, dpath = unit_dict
    missing = str(tmp_path / "nope.src")
    with pytest.raises(CorpusError, match=rf"{missing}: unit file not found"):
        read_units(missing, d, dpath)
    with pytest.raises(CorpusError, match="dictionary not found"):
        load_dictionary(str(tmp_path / "dict.none.txt"))


def write_features(prefix, lengths, rows=None, dim=3):
    rows = sum(lengths) if rows is None else rows
    np.save(prefix + ".npy", np.arange(rows * dim, dtype=np.float32).reshape(rows, dim))
    write_lines(prefix + ".lengths", [str(n) for n in lengths])


def test_features_read_back(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 3, 1])
    feats, offsets, lengths = read_features(prefix)
    assert feats.shape == (6, 3) and offsets.tolist() == [0, 2, 5] and lengths.tolist() == [2, 3, 1]


def test_lengths_longer_than_npy_names_line(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 3, 4], rows=6)
    with pytest.raises(CorpusError, match=rf"{prefix}.lengths:3: lengths sum to 9 but {prefix}.npy has 6 rows"):
        read_features(prefix)


def test_lengths_shorter_than_npy_is_reported(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 3], rows=8)
    with pytest.raises(CorpusError, match=rf"{prefix}.lengths:2: lengths sum to 5 but .*has 8 rows"):
        read_features(prefix)


def test_lengths_mismatch_names_the_first_line_that_runs_past(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 9, 1, 1], rows=6)  # line 2 already needs 11 of the 6 rows
    with pytest.raises(CorpusError, match=rf"{prefix}.lengths:2: lengths sum to 13 but {prefix}.npy has 6 rows \(line 2 runs past the end"):
        read_features(prefix)


def test_integer_features_are_refused(tmp_path):
    prefix = str(tmp_path / "train")
    np.save(prefix + ".npy", np.arange(12, dtype=np.int64).reshape(6, 2))
    write_lines(prefix + ".lengths", ["2", "4"])
    with pytest.raises(CorpusError, match=rf"{prefix}.npy: feature values are int64, expected floating point"):
        read_features(prefix)
    from fairseq_signlang.io.readers import open_feature_array

    with pytest.raises(CorpusError, match=rf"{prefix}.npy: feature values are int64"):
        open_feature_array(prefix + ".npy")
    np.save(prefix + ".npy", np.zeros((6, 2), np.float16))  # any floating type is features
    assert read_features(prefix)[0].dtype == np.float16


def test_dictionary_with_a_negative_count_names_its_line(tmp_path):
    path = tmp_path / "dict.src.txt"
    path.write_text("5 10\n6 3\n7 -2\n8 0\n")
    with pytest.raises(CorpusError, match=rf"{path}:3: count of '7' is negative \(-2\)"):
        load_dictionary(str(path))
    path.write_text("5 10\n6 three\n")
    with pytest.raises(CorpusError, match=rf"{path}:2: count of '6' is not an integer: 'three'"):
        load_dictionary(str(path))
    path.write_text("5 10\n6\n")
    with pytest.raises(CorpusError, match=rf"{path}:2: expected `symbol count`"):
        load_dictionary(str(path))
    path.write_text("5 10\n6 1\n5 2\n")
    with pytest.raises(CorpusError, match=rf"{path}:3: symbol '5' is listed twice"):
        load_dictionary(str(path))
    # what fairseq writes loads: zero counts, the overwrite flag, symbols with spaces
    path.write_text("5 10\n6 0\n5 2 #fairseq:overwrite\na b 1\n")
    d = load_dictionary(str(path))
    assert d.index("6") == d.nspecial + 1 and d.index("a b") == d.nspecial + 3


def test_bad_length_line(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 3])
    write_lines(prefix + ".lengths", ["2", "x3"])
    with pytest.raises(CorpusError, match=rf"{prefix}.lengths:2: expected a positive integer"):
        read_features(prefix)


def test_nan_feature_names_utterance(tmp_path):
    prefix = str(tmp_path / "train")
    write_features(prefix, [2, 3, 1])
    a = np.load(prefix + ".npy")
    a[3, 1] = np.nan
    np.save(prefix + ".npy", a)
    with pytest.raises(CorpusError, match=r"row 3 \(utterance 2, line 2 of .*train.lengths\) is not finite"):
        read_features(prefix)


def test_writer_leaves_no_partial_file(tmp_path):
    path = str(tmp_path / "out.txt")
    write_lines(path, ["old"])

    def lines():
        yield "new"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_lines(path, lines())
    assert open(path).read() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_unpaired_pairing_is_seeded_and_changes_per_epoch():
    from fairseq_signlang.data.packed import PackedSequences
    from fairseq_signlang.data.unpaired_dataset import UnpairedSpeechSignDataset

    speech = PackedSequences.from_list([torch.tensor([4, 5]) for _ in range(10)])
    signs = PackedSequences.from_list([torch.tensor([4 + i]) for i in range(7)])
    make = lambda seed: UnpairedSpeechSignDataset("train", speech, True, signs, 1, 1, seed=seed)  # noqa: E731
    a, b = make(3), make(3)
    a.set_epoch(2), b.set_epoch(2)
    assert a.sign_of.tolist() == b.sign_of.tolist()
    first = a.sign_of.tolist()
    a.set_epoch(3)
    assert a.sign_of.tolist() != first
    assert sorted(first[:7]) == list(range(7))  # each sign sentence once before any repeats


def test_packed_padding_matches_items():
    from fairseq_signlang.data.packed import PackedSequences

    seqs = [torch.tensor([5, 6, 7]), torch.tensor([8]), torch.tensor([9, 10])]
    packed = PackedSequences.from_list(seqs)
    padded, lengths = packed.pad([2, 0, 1], pad_value=1)
    assert padded.tolist() == [[9, 10, 1], [5, 6, 7], [8, 1, 1]] and lengths.tolist() == [2, 3, 1]
    assert packed[2].tolist() == [9, 10]
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    fpacked = PackedSequences(feats, [0, 3, 4], [3, 1, 2])
    fpad, _ = fpacked.pad([1, 2])
    assert fpad.shape == (2, 2, 2) and fpad[0, 1].tolist() == [0.0, 0.0] and fpad[1, 1].tolist() == [10.0, 11.0]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_sign_draws_change_every_epoch_through_fairseq_iterators(num_workers):
    """fairseq hands the dataset to DataLoader workers; the per-epoch draw must reach them."""
    from argparse import Namespace

    from fairseq.tasks import FairseqTask

    from fairseq_signlang.data.packed import PackedSequences
    from fairseq_signlang.data.unpaired_dataset import UnpairedSpeechSignDataset

    speech = PackedSequences.from_list([torch.tensor([5, 6, 7])] * 8)
    signs = PackedSequences.from_list([torch.tensor([4 + i] * 3) for i in range(8)])
    dataset = UnpairedSpeechSignDataset("train", speech, True, signs, 1, 1, seed=1)
    task = FairseqTask(Namespace())
    draws = []
    for epoch in (1, 2, 3):
        itr = task.get_batch_iterator(dataset, max_sentences=8, num_workers=num_workers, epoch=epoch)
        batch = next(itr.next_epoch_itr(shuffle=False))
        draws.append(sorted(zip(batch["id"].tolist(), batch["sign_tokens"][:, 0].tolist())))
    assert draws[0] != draws[1] and draws[1] != draws[2]


def test_non_utf8_line_is_named(tmp_path, unit_dict):
    d, dpath = unit_dict
    path = tmp_path / "train.src"
    path.write_bytes(b"1 2 3\n4 \xff 5\n")
    with pytest.raises(CorpusError, match=rf"{path}:2: not UTF-8"):
        read_units(str(path), d, dpath)
