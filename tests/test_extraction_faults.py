"""Feature extraction given bad input as a user would give it: a manifest row whose file is
missing (skipped and listed with --skip-bad, named by manifest:line without it), and an
extraction that stops on an error, whose output must not pass for a whole corpus until the same
command is rerun and resumes it."""
import os
import runpy

import numpy as np
import pytest

from fairseq_signlang.io.readers import CorpusError, open_feature_array, read_features, read_lengths
from fairseq_signlang.io.writers import write_features
from fairseq_signlang.features.logmel import LogMelExtractor
from fairseq_signlang.features.pipeline import extract_manifest, merge_shards

from .conftest import REPO
from .test_speech_features import make_corpus, run_script, write_tone


class Counting(LogMelExtractor):
    """Log-mels that count the utterances they are asked for."""

    calls = 0

    def __call__(self, wav):
        self.calls += 1
        return super().__call__(wav)


@pytest.fixture
def speech(tmp_path):
    """Six short audio files and their manifest (no subprocess: written here)."""
    root = tmp_path / "audio"
    make_corpus(str(root), 6, seconds=(0.2, 0.4))
    rels = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"{root}\n" + "".join(f"{rel}\t1000\n" for rel in rels))
    return root, tsv, rels


def with_missing_row(tsv, row, name="spk9/gone.wav"):
    """The manifest with data row `row` (0-based) pointing at a file that does not exist; the row
    is line row + 2 of the file."""
    lines = tsv.read_text().splitlines()
    lines[row + 1] = f"{name}\t1000"
    bad = tsv.parent / "missing.tsv"
    bad.write_text("\n".join(lines) + "\n")
    return bad


# --- 1. --skip-bad skips a row whose file is missing -------------------------------------------

def test_speech_script_skips_a_missing_file_with_skip_bad(speech, tmp_path):
    root, tsv, _ = speech
    bad = with_missing_row(tsv, 2)
    out = tmp_path / "feats" / "train"
    proc = run_script("extract_speech_features.py", bad, "--out", out, "--skip-bad")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "left out 1 bad files" in proc.stderr and f"{bad}:4: {root}/spk9/gone.wav does not exist" in proc.stderr
    assert [line.split("\t")[0] for line in open(f"{out}.bad")] == ["2"]
    assert f"{bad}:4:" in open(f"{out}.bad").read()
    assert [line.strip() for line in open(f"{out}.ids")] == ["0", "1", "3", "4", "5"]
    assert len(read_features(str(out))[2]) == 5  # complete: loads
    # without --skip-bad: stops before extracting anything, naming the manifest line
    proc = run_script("extract_speech_features.py", bad, "--out", tmp_path / "strict")
    assert proc.returncode == 1 and f"{bad}:4: {root}/spk9/gone.wav does not exist" in proc.stderr
    assert not any(p.name.startswith("strict") for p in tmp_path.iterdir())


def test_extract_manifest_skips_a_missing_file_and_resumes(speech, tmp_path):
    _, tsv, _ = speech
    bad = with_missing_row(tsv, 0)
    summary = extract_manifest(str(bad), str(tmp_path / "a"), LogMelExtractor(num_mels=8), skip_bad=True)
    assert summary["rows"] == 5 and len(summary["bad"]) == 1 and summary["bad"][0].startswith(f"{bad}:2: ")
    again = extract_manifest(str(bad), str(tmp_path / "a"), LogMelExtractor(num_mels=8), skip_bad=True)
    assert again["rows"] == 5 and len(again["bad"]) == 1  # not tried again, nothing added


@pytest.fixture(scope="module")
def sign_videos(tmp_path_factory):
    from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
    from fairseq_signlang.io.video import write_video

    root = tmp_path_factory.mktemp("fault_videos")
    signer = ProceduralSigner(["house"], seed=3)
    rng = np.random.default_rng(0)
    for k in range(2):
        write_video(str(root / f"house{k}.mp4"), render(signer.word("house", k, rng), (48, 48)), fps=25)
    return root


def test_sign_script_skips_a_missing_video_with_skip_bad(sign_videos, tmp_path):
    manifest = tmp_path / "clips.tsv"
    gone = tmp_path / "gone.mp4"
    manifest.write_text(f"id\tpath\na\t{sign_videos / 'house0.mp4'}\nb\t{gone}\nc\t{sign_videos / 'house1.mp4'}\n")
    proc = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "g", "--skip-bad")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "left out 1 bad clips" in proc.stderr and f"{manifest}:3: {gone} does not exist" in proc.stderr
    assert [line.strip() for line in open(tmp_path / "g.ids")] == ["0", "2"]
    assert open(tmp_path / "g.bad").read().startswith(f"1\t{manifest}:3: ")
    assert len(read_features(str(tmp_path / "g"))[2]) == 2
    proc = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "h")
    assert proc.returncode == 1 and f"{manifest}:3: {gone} does not exist" in proc.stderr


def test_clip_cache_skips_a_missing_video_with_skip_bad(sign_videos, tmp_path, capsys):
    main = runpy.run_path(os.path.join(REPO, "scripts", "video_clip_cache.py"))["main"]
    manifest = tmp_path / "m.tsv"
    gone = tmp_path / "gone.mp4"
    manifest.write_text(f"id\tpath\na\t{sign_videos / 'house0.mp4'}\nb\t{gone}\n")
    args = ["--manifest", str(manifest), "--cache-dir", str(tmp_path / "cache"), "--fps", "10", "--resolution", "16"]
    with pytest.raises(SystemExit, match=rf"error: {manifest}:3: {gone} does not exist"):
        main(args)
    main(args + ["--skip-bad", str(tmp_path / "skipped.tsv"), "--kept-manifest", str(tmp_path / "kept.tsv")])
    skipped = [line.split("\t") for line in (tmp_path / "skipped.tsv").read_text().splitlines()]
    assert [s[:2] for s in skipped] == [["id", "where"], ["b", f"{manifest}:3"]]
    assert f"{gone}: video file not found" in skipped[1][2]
    assert "1 clips" in capsys.readouterr().out
    assert [line.split("\t")[0] for line in (tmp_path / "kept.tsv").read_text().splitlines()] == ["id", "a"]


# --- 2. a stopped extraction is marked incomplete until it is resumed ---------------------------

def test_stopped_extraction_is_refused_until_rerun_resumes_it(speech, tmp_path):
    root, tsv, rels = speech
    full = str(tmp_path / "full")
    extract_manifest(str(tsv), full, LogMelExtractor(num_mels=8))
    good = open(root / rels[3], "rb").read()
    (root / rels[3]).write_bytes(b"RIFF broken")
    prefix = str(tmp_path / "part")
    with pytest.raises(CorpusError, match=rf"{tsv}:5: .*unreadable audio(.|\n)*3 utterances written so far.*rerun the same command"):
        extract_manifest(str(tsv), prefix, LogMelExtractor(num_mels=8))
    assert len(np.load(prefix + ".npy")) > 0 and len(open(prefix + ".lengths").read().split()) == 3  # rows 0..2 kept
    incomplete = rf"incomplete: .*stopped before the end of its manifest \({tsv} rows 1..6 of 6\).*Rerun the same extraction command"
    with pytest.raises(CorpusError, match=rf"{prefix}.npy: {incomplete}"):
        read_features(prefix)
    with pytest.raises(CorpusError, match=rf"{prefix}.npy: {incomplete}"):
        open_feature_array(prefix + ".npy")
    with pytest.raises(CorpusError, match=rf"{prefix}.lengths: {incomplete}"):
        read_lengths(prefix + ".lengths")
    # a script reading features refuses it too (PCA, through read_features)
    proc = run_script("cluster_features.py", "pca", "--fit", prefix, "--dim", 2, "--out", tmp_path / "pca")
    assert proc.returncode != 0 and f"{prefix}.npy: incomplete" in proc.stderr
    # rerunning the same extraction resumes after the 3 rows written and finishes the corpus
    (root / rels[3]).write_bytes(good)
    resumed = Counting(num_mels=8)
    summary = extract_manifest(str(tsv), prefix, resumed)
    assert summary["rows"] == 6 and resumed.calls == 3 and not os.path.exists(prefix + ".partial")
    feats, _, lengths = read_features(prefix)
    assert len(lengths) == 6
    for ext in (".npy", ".lengths", ".ids"):
        assert open(full + ext, "rb").read() == open(prefix + ext, "rb").read(), ext


def test_merge_refuses_an_unfinished_shard(speech, tmp_path):
    root, tsv, rels = speech
    prefix = str(tmp_path / "sharded")
    extract_manifest(str(tsv), prefix, LogMelExtractor(num_mels=8), rank=0, nshard=2)
    (root / rels[4]).write_bytes(b"RIFF broken")  # row 4 is in shard 1 (rows 3..5)
    with pytest.raises(CorpusError, match="unreadable audio"):
        extract_manifest(str(tsv), prefix, LogMelExtractor(num_mels=8), rank=1, nshard=2)
    with pytest.raises(CorpusError, match=rf"{prefix}_1_2.lengths: incomplete: .*rank 1 of 2.*\(shard 1 of 2: rerun rank 1\)"):
        merge_shards(prefix, 2)
    assert not os.path.exists(prefix + ".npy")
    proc = run_script("merge_feature_shards.py", "--out", prefix, "--nshard", 2)
    assert proc.returncode == 1 and "incomplete" in proc.stderr


def test_merged_and_written_corpora_load_and_a_stale_marker_goes(speech, tmp_path):
    _, tsv, _ = speech
    prefix = str(tmp_path / "train")
    with open(prefix + ".partial", "w") as f:  # left by an unsharded run into this prefix that never finished
        f.write("old run\n")
    for rank in range(2):
        extract_manifest(str(tsv), prefix, LogMelExtractor(num_mels=8), rank=rank, nshard=2)
    assert merge_shards(prefix, 2) == 6
    assert not os.path.exists(prefix + ".partial") and len(read_features(prefix)[2]) == 6
    write_features(str(tmp_path / "w"), np.zeros((5, 2), np.float32), [2, 3])  # whole files, no marker needed
    assert len(read_features(str(tmp_path / "w"))[2]) == 2


def test_shard_merge_names_the_first_bad_line_of_a_shard(speech, tmp_path):
    _, tsv, _ = speech
    prefix = str(tmp_path / "s")
    for rank in range(2):
        extract_manifest(str(tsv), prefix, LogMelExtractor(num_mels=8), rank=rank, nshard=2)
    lens = open(f"{prefix}_0_2.lengths").read().split()
    rows = sum(map(int, lens))
    lens[0] = str(rows)  # line 1 alone takes every row, so line 2 runs past the end
    open(f"{prefix}_0_2.lengths", "w").write("\n".join(lens) + "\n")
    with pytest.raises(CorpusError, match=rf"{prefix}_0_2.lengths:2: lengths sum to .* but {prefix}_0_2.npy has {rows} rows"):
        merge_shards(prefix, 2)


def test_stop_at_the_last_row_is_marked_and_the_rerun_does_only_that_row(tmp_path):
    """A manifest whose last row is bad: the stop leaves every earlier row, the resume only the last."""
    root = tmp_path / "audio"
    for i in range(3):
        write_tone(str(root / f"u{i}.wav"), 0.3, seed=i)
    tsv = tmp_path / "m.tsv"
    tsv.write_text(f"{root}\n" + "".join(f"u{i}.wav\t4800\n" for i in range(3)))
    good = (root / "u2.wav").read_bytes()
    (root / "u2.wav").write_bytes(b"")
    with pytest.raises(CorpusError):
        extract_manifest(str(tsv), str(tmp_path / "f"), LogMelExtractor(num_mels=8))
    assert os.path.exists(tmp_path / "f.partial")
    (root / "u2.wav").write_bytes(good)
    resumed = Counting(num_mels=8)
    assert extract_manifest(str(tsv), str(tmp_path / "f"), resumed)["rows"] == 3 and resumed.calls == 1
    assert len(read_features(str(tmp_path / "f"))[2]) == 3
