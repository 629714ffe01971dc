"""Speech feature pipeline: manifests, wav2vec 2.0 layer features from a small random
checkpoint, log-mel stand-in, resumable sharded streaming, and errors that name the file."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.io.audio import read_audio, read_manifest
from fairseq_signlang.features.logmel import LogMelExtractor
from fairseq_signlang.features.pipeline import extract_manifest, merge_shards

from .conftest import REPO, run_script

SCRIPTS = os.path.join(REPO, "scripts")


def write_tone(path, seconds, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 900) * t) + 0.01 * rng.normal(size=len(t))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, wav.astype(np.float32), rate, subtype="PCM_16")


def make_corpus(root, n, seconds=(0.3, 0.8)):
    rng = np.random.default_rng(n)
    for i in range(n):
        write_tone(os.path.join(root, f"spk{i % 3}", f"utt{i:04d}.wav"), rng.uniform(*seconds), seed=i)


@pytest.fixture(scope="module")
def w2v_checkpoint(tmp_path_factory):
    from .random_weights import save_random_wav2vec2

    path = str(tmp_path_factory.mktemp("w2v") / "wav2vec2_small_random.pt")
    save_random_wav2vec2(path, encoder_layers=3, dim=32)
    return path


@pytest.fixture
def corpus(tmp_path):
    root = str(tmp_path / "audio")
    make_corpus(root, 12)
    proc = run_script("speech_manifest.py", root, "--out", tmp_path / "train.tsv")
    assert proc.returncode == 0, proc.stderr
    return root, str(tmp_path / "train.tsv")


def test_manifest_lists_every_file_with_its_length(corpus):
    root, tsv = corpus
    got_root, rows = read_manifest(tsv)
    assert got_root == root and len(rows) == 12
    assert rows[0][0] == os.path.join("spk0", "utt0000.wav")
    assert all(n == sf.info(os.path.join(root, rel)).frames for rel, n in rows)


def test_manifest_reports_bad_files_or_skips_them(tmp_path):
    root = tmp_path / "audio"
    make_corpus(str(root), 3)
    sf.write(str(root / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    (root / "broken.wav").write_bytes(b"RIFF not really a wave file")
    proc = run_script("speech_manifest.py", root, "--out", tmp_path / "a.tsv")
    assert proc.returncode != 0 and "broken.wav: unreadable audio" in proc.stderr
    assert not (tmp_path / "a.tsv").exists()
    proc = run_script("speech_manifest.py", root, "--out", tmp_path / "b.tsv", "--skip-bad")
    assert proc.returncode == 0
    assert "broken.wav: unreadable audio" in proc.stderr and "empty.wav: audio has no samples" in proc.stderr
    assert len(read_manifest(str(tmp_path / "b.tsv"))[1]) == 3


def test_manifest_row_with_missing_file_names_the_line(corpus, tmp_path):
    root, tsv = corpus
    lines = open(tsv).read().splitlines()
    lines[4] = "spk9/gone.wav\t1000"
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=rf"{bad}:5: .*spk9/gone.wav does not exist"):
        read_manifest(str(bad))


def test_log_mel_features_one_frame_per_10ms(corpus, tmp_path):
    root, tsv = corpus
    extract_manifest(tsv, str(tmp_path / "fb"), LogMelExtractor(num_mels=40))
    feats, _, lengths = read_features(str(tmp_path / "fb"))
    _, rows = read_manifest(tsv)
    assert feats.shape[1] == 40
    for (_, samples), n in zip(rows, lengths):
        assert abs(n - (samples - 400) / 160) <= 3


def test_wav2vec2_layer_features(corpus, tmp_path, w2v_checkpoint):
    root, tsv = corpus
    out = tmp_path / "w2v"
    proc = run_script("extract_speech_features.py", tsv, "--out", out, "--checkpoint", w2v_checkpoint, "--layer", "1", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    feats, _, lengths = read_features(str(out))
    _, rows = read_manifest(tsv)
    assert feats.shape[1] == 32 and len(lengths) == 12
    for (_, samples), n in zip(rows, lengths):
        assert abs(n - samples / 320) <= 2  # one frame per 20 ms
    # the same features as the model gives directly
    from fairseq_signlang.features.wav2vec2 import Wav2Vec2LayerExtractor

    direct = Wav2Vec2LayerExtractor(w2v_checkpoint, 1, "cpu")(read_audio(os.path.join(root, rows[0][0])))
    np.testing.assert_allclose(feats[: lengths[0]], direct, atol=1e-5)


def test_checkpoint_that_is_not_wav2vec2_is_refused(corpus, tmp_path, w2v_checkpoint):
    import torch
    from fairseq.models.wav2vec.wav2vec import Wav2VecConfig, Wav2VecModel
    from omegaconf import OmegaConf

    v1 = str(tmp_path / "wav2vec_v1.pt")
    structured = OmegaConf.structured(Wav2VecConfig())
    structured.infonce = True  # otherwise an interpolation into the criterion's config
    cfg = OmegaConf.to_container(structured, resolve=True, enum_to_str=True)
    cfg["_name"] = "wav2vec"
    state = torch.load(w2v_checkpoint, map_location="cpu", weights_only=True)
    state["cfg"]["model"], state["model"] = cfg, Wav2VecModel(Wav2VecConfig()).state_dict()
    torch.save(state, v1)
    _, tsv = corpus
    proc = run_script("extract_speech_features.py", tsv, "--out", tmp_path / "x", "--checkpoint", v1, "--layer", "1")
    assert proc.returncode != 0 and f"{v1}: not a wav2vec 2.0 checkpoint (its model is Wav2VecModel)" in proc.stderr
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    proc = run_script("extract_speech_features.py", tsv, "--out", tmp_path / "x", "--checkpoint", junk)
    assert proc.returncode != 0 and f"{junk}: not a readable fairseq checkpoint" in proc.stderr
    proc = run_script("extract_speech_features.py", tsv, "--out", tmp_path / "x", "--checkpoint", w2v_checkpoint, "--layer", "14")
    assert proc.returncode != 0 and "layer 14 asked for, but the model has layers 0..2" in proc.stderr


def test_bad_audio_stops_with_its_name_or_is_skipped(corpus, tmp_path):
    root, tsv = corpus
    _, rows = read_manifest(tsv)
    open(os.path.join(root, rows[5][0]), "wb").write(b"RIFF broken")
    with pytest.raises(CorpusError, match=rf"{rows[5][0]}: unreadable audio"):
        extract_manifest(tsv, str(tmp_path / "a"), LogMelExtractor())
    summary = extract_manifest(tsv, str(tmp_path / "b"), LogMelExtractor(), skip_bad=True)
    assert summary["rows"] == 11 and len(summary["bad"]) == 1 and rows[5][0] in summary["bad"][0]
    ids = open(tmp_path / "b.ids").read().split()
    assert "5" not in ids and len(ids) == 11
    # a rerun does not try the bad file again, and adds nothing
    again = extract_manifest(tsv, str(tmp_path / "b"), LogMelExtractor(), skip_bad=True)
    assert again["rows"] == 11 and len(again["bad"]) == 1


def test_shards_merge_to_the_single_process_result(corpus, tmp_path):
    _, tsv = corpus
    single = str(tmp_path / "single")
    extract_manifest(tsv, single, LogMelExtractor())
    sharded = str(tmp_path / "sharded")
    for rank in range(3):
        extract_manifest(tsv, sharded, LogMelExtractor(), rank=rank, nshard=3)
    assert merge_shards(sharded, 3) == 12
    for ext in (".lengths", ".ids"):
        assert open(single + ext).read() == open(sharded + ext).read()
    np.testing.assert_array_equal(np.load(single + ".npy"), np.load(sharded + ".npy"))


def test_resampling_to_16k(tmp_path):
    write_tone(str(tmp_path / "a.wav"), 1.0, rate=8000)
    wav = read_audio(str(tmp_path / "a.wav"))
    assert len(wav) == 16000


def test_killed_extraction_resumes_to_identical_files(tmp_path, w2v_checkpoint):
    root = str(tmp_path / "audio")
    make_corpus(root, 160, seconds=(0.5, 1.0))
    tsv = tmp_path / "train.tsv"
    assert run_script("speech_manifest.py", root, "--out", tsv).returncode == 0
    common = ["--checkpoint", w2v_checkpoint, "--layer", "2", "--device", "cpu"]
    assert run_script("extract_speech_features.py", tsv, "--out", tmp_path / "full", *common).returncode == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, os.path.join(SCRIPTS, "extract_speech_features.py"), str(tsv), "--out", str(killed), *common]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(f"{killed}.lengths") and len(open(f"{killed}.lengths").read().split()) >= 40:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "extraction finished before it could be killed"
    done = len(open(f"{killed}.lengths").read().split())
    assert 40 <= done < 160
    with pytest.raises(CorpusError, match=rf"{killed}.npy: incomplete: .*Rerun the same extraction command"):
        read_features(str(killed))  # consistent files, but only part of the manifest
    assert run_script("extract_speech_features.py", tsv, "--out", killed, *common).returncode == 0
    for ext in (".npy", ".lengths", ".ids"):
        assert open(f"{tmp_path / 'full'}{ext}", "rb").read() == open(f"{killed}{ext}", "rb").read(), ext
    assert len(read_features(str(killed))[2]) == 160 and not os.path.exists(f"{killed}.partial")
