"""Speech preparation around the feature extractors: silence removal, word pooling in pieces,
spoken sentences from offline synthesizers, and the word task's data folder."""
import os

import numpy as np
import pytest
import soundfile as sf

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.corpora.synthetic.tts import DEFAULT_VOICES, Voice, WordSpeaker, synthesize
from fairseq_signlang.io.audio import read_audio
from fairseq_signlang.features.pooling import pool_words
from fairseq_signlang.features.vad import remove_silence, speech_spans

from .test_speech_features import run_script

RATE = 16000


def tones_with_pauses(rng):
    """0.5 s silence, 0.3 s tone, 0.6 s silence, 0.4 s tone, 0.5 s silence, with a little noise."""
    parts, truth, t = [], [], 0
    for seconds, tone in ((0.5, False), (0.3, True), (0.6, False), (0.4, True), (0.5, False)):
        n = int(seconds * RATE)
        x = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE) if tone else np.zeros(n)
        if tone:
            truth.append((t, t + n))
        parts.append(x)
        t += n
    wav = np.concatenate(parts)
    return (wav + 1e-4 * rng.normal(size=len(wav))).astype(np.float32), truth


def test_vad_finds_the_speech_and_removes_the_silence():
    wav, truth = tones_with_pauses(np.random.default_rng(0))
    spans = speech_spans(wav, RATE, pad=0.05)
    assert len(spans) == 2
    for (a, b), (ta, tb) in zip(spans, truth):
        assert ta - 0.08 * RATE <= a <= ta and tb <= b <= tb + 0.1 * RATE  # covers the tone, plus padding
    out = remove_silence(wav, spans)
    assert 0.7 * RATE <= len(out) <= 1.0 * RATE  # 0.7 s of tone and the padding, of 2.3 s
    assert speech_spans(np.full(RATE, 1e-4, np.float32), RATE) == []  # steady hum: no speech
    assert len(remove_silence(wav, [])) == 0
    # a pause shorter than min_silence stays inside one span
    assert len(speech_spans(wav, RATE, min_silence=0.7)) == 1


def test_remove_silence_script(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "audio").mkdir()
    wav, _ = tones_with_pauses(rng)
    sf.write(tmp_path / "audio" / "a.flac", wav, RATE)
    sf.write(tmp_path / "audio" / "quiet.wav", np.zeros(RATE, np.float32), RATE)
    out = run_script("speech_manifest.py", tmp_path / "audio", "--out", tmp_path / "train.tsv")
    assert out.returncode == 0, out.stderr
    out = run_script("remove_silence.py", tmp_path / "train.tsv", "--out", tmp_path / "nosil")
    assert out.returncode != 0 and f"{tmp_path / 'audio' / 'quiet.wav'}: no speech found" in out.stderr
    assert not (tmp_path / "nosil" / "train.tsv").exists()
    out = run_script("remove_silence.py", tmp_path / "train.tsv", "--out", tmp_path / "nosil", "--skip-bad")
    assert out.returncode == 0 and "left out 1 bad files" in out.stderr
    lines = (tmp_path / "nosil" / "train.tsv").read_text().splitlines()
    assert lines[0] == str(tmp_path / "nosil") and lines[1].startswith("a.wav\t")
    kept = read_audio(str(tmp_path / "nosil" / "a.wav"))
    spans = [tuple(map(int, s.split(":"))) for s in (tmp_path / "nosil" / "train.vads").read_text().split()]
    assert len(spans) == 2 and len(kept) == sum(b - a for a, b in spans) == int(lines[1].split("\t")[1])


def test_word_pooling_in_pieces_keeps_the_order_within_a_word():
    feats = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # 20 frames at 10 fps
    whole = pool_words(feats, [("a", 0.0, 0.6), ("b", 1.0, 1.9)], 10.0, "x:1")
    np.testing.assert_allclose(whole[:, 0], [2.5, 14.0])
    thirds = pool_words(feats, [("a", 0.0, 0.6), ("b", 1.0, 1.9)], 10.0, "x:1", pieces=3)
    assert thirds.shape == (2, 6)
    np.testing.assert_allclose(thirds[0, ::2], [0.5, 2.5, 4.5])  # frames 0-1, 2-3, 4-5
    np.testing.assert_allclose(thirds[1, ::2], [11.0, 14.0, 17.0])  # frames 10-12, 13-15, 16-18
    short = pool_words(feats, [("c", 0.0, 0.1)], 10.0, "x:1", pieces=3)  # one frame fills every piece
    np.testing.assert_allclose(short[0], [0, 0, 0, 0, 0, 0])


def test_sentences_join_word_recordings_with_exact_boundaries():
    speaker = WordSpeaker.__new__(WordSpeaker)  # recordings given directly instead of synthesized
    voice = Voice("flite", "slt", 1.0)
    speaker.voices, speaker.sample_rate = [voice], RATE
    rng = np.random.default_rng(0)
    speaker.words = {(w, voice): 0.5 * np.sin(np.linspace(0, f, n)).astype(np.float32) for w, f, n in (("in", 300, 3000), ("the", 900, 5000))}
    wav, alignment = speaker.sentence(["in", "the", "in"], voice, rng)
    assert [w for w, _, _ in alignment] == ["in", "the", "in"]
    for (w, start, end) in alignment:
        a, b = round(start * RATE), round(end * RATE)
        assert b - a == len(speaker.words[(w, voice)])
        ref = speaker.words[(w, voice)]
        gain = np.dot(wav[a:b], ref) / np.dot(ref, ref)
        assert np.abs(wav[a:b] - gain * ref).max() < 0.05  # the word's recording sits exactly there
    assert alignment[0][1] >= 0.1 and len(wav) / RATE - alignment[-1][2] >= 0.1
    assert 0.04 <= alignment[1][1] - alignment[0][2] <= 0.25


@pytest.mark.usefixtures("speech_synthesizers")
def test_offline_voices_speak_words():
    for v in [v for v in DEFAULT_VOICES if v.rate > 1][::2]:  # every speaker of both engines
        wav = synthesize("morning", v)
        assert 0.2 < len(wav) / RATE < 1.5 and np.abs(wav).max() > 0.05
    slow = synthesize("morning", Voice("flite", "slt", 0.7))
    fast = synthesize("morning", Voice("flite", "slt", 1.4))
    assert len(slow) > 1.5 * len(fast)
    with pytest.raises(CorpusError, match="flite:nobody@1: flite has no voice 'nobody' \\(it has .*slt"):
        synthesize("x", Voice("flite", "nobody", 1.0))
    with pytest.raises(CorpusError, match="espeak-ng:nobody@1: could not speak 'x'.*does not exist"):
        synthesize("x", Voice("espeak-ng", "nobody", 1.0))


def write_km(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(" ".join(map(str, r)) + "\n" for r in rows)


def test_prepare_word_task_folder(tmp_path):
    for split, rows in (("train", [[0, 5, 2], [3, 3]]), ("valid", [[1, 2]]), ("test", [[4, 4, 4]])):
        write_km(str(tmp_path / "speech" / f"{split}.km"), rows)
        write_km(str(tmp_path / "sign" / f"{split}.km"), [[r % 3 for r in row] for row in rows])
    out = run_script("prepare_word_task.py", "--speech-km", tmp_path / "speech", "--sign-km", tmp_path / "sign", "--out", tmp_path / "data",
                     "--speech-clusters", 8)
    assert out.returncode == 0, out.stderr
    data = tmp_path / "data"
    assert (data / "train.src").read_text() == "0 5 2\n3 3\n" and (data / "test.ref").read_text() == "1 1 1\n"
    assert sorted(line.split()[0] for line in open(data / "dict.src.txt")) == [str(i) for i in range(8)]
    assert sorted(line.split()[0] for line in open(data / "dict.sign.txt")) == ["0", "1", "2"]
    assert not (data / "valid.sign").exists()
    write_km(str(tmp_path / "sign" / "valid.km"), [[1, 2, 0]])
    out = run_script("prepare_word_task.py", "--speech-km", tmp_path / "speech", "--sign-km", tmp_path / "sign", "--out", tmp_path / "data2")
    assert out.returncode != 0 and f"{tmp_path / 'sign' / 'valid.km'}:1: 3 sign words for 2 spoken words" in out.stderr
    assert not (tmp_path / "data2" / "train.src").exists()
    write_km(str(tmp_path / "sign" / "valid.km"), [["1", "x"]])
    out = run_script("prepare_word_task.py", "--speech-km", tmp_path / "speech", "--sign-km", tmp_path / "sign", "--out", tmp_path / "data2")
    assert out.returncode != 0 and f"{tmp_path / 'sign' / 'valid.km'}:1: expected cluster ids" in out.stderr
