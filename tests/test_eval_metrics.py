"""BLEU and FVD evaluation: the Frechet distance against closed forms, I3D features and FVD on a
small random I3D, BLEU against hand-worked values, the fairseq-generate reader and both CLIs."""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.video import ClipRow, write_clip_manifest, write_video
from fairseq_signlang.features.visual_models import build_from_checkpoint

from .random_weights import save_random_visual_model
from fairseq_signlang.metrics import fvd as fvd_module
from fairseq_signlang.metrics.bleu import bleu_scores, read_fairseq_generate, read_sentence_files, strip_sentencepiece
from fairseq_signlang.metrics.fvd import fvd, fvd_from_features, frechet_distance, gaussian_stats, i3d_features

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def psd_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def closed_form(mu1, s1, mu2, s2):
    """Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2): symmetric, so eigh gives it exactly."""
    r = psd_sqrt(s1)
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(psd_sqrt(r @ s2 @ r)))


# --- Frechet distance -------------------------------------------------------------------------

def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=5), spd(rng, 5)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-8)
    shift = rng.normal(size=5)
    assert frechet_distance(mu, s, mu + shift, s) == pytest.approx(shift @ shift, rel=1e-8)
    d1, d2 = rng.uniform(0.1, 3, 4), rng.uniform(0.1, 3, 4)
    expected = np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2)) + 1.0
    assert frechet_distance(np.zeros(4), np.diag(d1), np.eye(4)[0], np.diag(d2)) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(0.5, 4.0, -1.0, 9.0) == pytest.approx(1.5 ** 2 + (2 - 3) ** 2)  # 1-d: (m1-m2)^2 + (s1-s2)^2
    mu2, s2 = rng.normal(size=5), spd(rng, 5)  # covariances that do not commute
    assert frechet_distance(mu, s, mu2, s2) == pytest.approx(closed_form(mu, s, mu2, s2), rel=1e-8)


def test_frechet_rotation_invariant():
    rng = np.random.default_rng(1)
    mu1, mu2, s1, s2 = rng.normal(size=6), rng.normal(size=6), spd(rng, 6), spd(rng, 6)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert rotated == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-8)


def test_frechet_sample_estimate_converges():
    rng = np.random.default_rng(2)
    mu1, mu2, s1, s2 = rng.normal(size=3), rng.normal(size=3), spd(rng, 3), spd(rng, 3)
    x = rng.multivariate_normal(mu1, s1, size=40000)
    y = rng.multivariate_normal(mu2, s2, size=40000)
    assert fvd_from_features(x, y) == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=0.03)


def test_frechet_singular_covariances(monkeypatch):
    assert frechet_distance(np.zeros(3), np.diag([1.0, 0, 4]), np.zeros(3), np.diag([0.0, 0, 1])) == pytest.approx(2.0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 12))  # rank-3 sample covariances in 12 dimensions
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(x)) == pytest.approx(0, abs=1e-6)
    d = fvd_from_features(x, rng.normal(size=(5, 12)) + 1)
    assert np.isfinite(d) and d > 12
    calls = []  # a product whose root is not finite is retried with eps on the diagonals

    def sqrtm(m):
        calls.append(m)
        return np.full_like(m, np.inf) if len(calls) == 1 else psd_sqrt(m)

    monkeypatch.setattr(fvd_module, "_sqrtm", sqrtm)
    s = np.diag([1.0, 2.0])
    assert frechet_distance(np.zeros(2), s, np.zeros(2), s) == pytest.approx(0, abs=1e-5)
    assert np.allclose(calls[1], (s + 1e-6 * np.eye(2)) @ (s + 1e-6 * np.eye(2)))


def test_gaussian_stats_and_errors():
    x = np.random.default_rng(4).normal(size=(10, 3))
    mu, s = gaussian_stats(x)
    assert mu.shape == (3,) and s.shape == (3, 3) and s.dtype == np.float64
    assert np.allclose(s, np.cov(x.T, ddof=1))
    assert gaussian_stats(x[:, :1])[1].shape == (1, 1)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(x[:1])
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


# --- I3D features and FVD ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def i3d(tmp_path_factory):
    """A width-1/16 random I3D (conv weights scaled to He init so activations do not vanish),
    without and with a 10-class logits layer."""
    root = tmp_path_factory.mktemp("i3d")
    plain, logits = str(root / "i3d.pt"), str(root / "i3d_logits.pt")
    save_random_visual_model(plain, "i3d", width=1 / 16, seed=0)
    state = torch.load(plain)
    state = {k: v * 6 ** 0.5 if k.endswith("conv3d.weight") else v for k, v in state.items()}
    torch.save(state, plain)
    C = build_from_checkpoint(plain, "i3d").out_channels
    g = torch.Generator().manual_seed(1)
    torch.save({**state, "logits.conv3d.weight": torch.randn(10, C, 1, 1, 1, generator=g), "logits.conv3d.bias": torch.randn(10, generator=g)}, logits)
    return plain, logits, C


def videos(seed, n=6, T=8, noise=True):
    rng = np.random.default_rng(seed)
    if noise:
        return [rng.integers(0, 256, (T, 40, 48, 3), dtype=np.uint8) for _ in range(n)]
    ramp = np.linspace(0, 255, 48)[None, None, :, None]
    return [np.broadcast_to(ramp * (i + 1) / n, (T, 40, 48, 3)).astype(np.uint8) for i in range(n)]


def test_i3d_features_shapes_batching_and_logits(i3d):
    plain, logits, C = i3d
    vids = videos(0, n=5) + videos(1, n=2, T=6)  # two lengths: batches split where T changes
    f = i3d_features(vids, plain, batch_size=3, device="cpu", size=32)
    assert f.shape == (7, C) and f.dtype == np.float64 and np.isfinite(f).all()
    assert np.allclose(i3d_features(vids, plain, batch_size=1, device="cpu", size=32), f, atol=1e-6)
    lg = i3d_features(vids, logits, batch_size=3, device="cpu", size=32)
    assert lg.shape == (7, 10)
    state = torch.load(logits)  # 8 frames -> one Mixed_5c step: logits = W @ pooled + b exactly
    w, b = state["logits.conv3d.weight"].flatten(1).double().numpy(), state["logits.conv3d.bias"].double().numpy()
    assert np.allclose(lg[:5], f[:5] @ w.T + b, atol=1e-4)
    with pytest.raises(ValueError, match="video 1: expected"):
        i3d_features([vids[0], vids[0].astype(np.float32)], plain, device="cpu", size=32)


def test_fvd_identical_and_different(i3d):
    plain, logits, _ = i3d
    real, other = videos(2), videos(3, noise=False)
    for ck in (plain, logits):
        different = fvd(real, other, ck, device="cpu", size=32)
        assert different > 0
        assert abs(fvd(real, real, ck, device="cpu", size=32)) < 1e-3 * different


# --- BLEU -------------------------------------------------------------------------------------

def test_bleu_hand_worked():
    s = bleu_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert s["bleu1"] == pytest.approx(100) and s["bleu4"] == pytest.approx(100) and s["bleu"] == s["bleu4"] and s["n"] == 1
    hyp, ref = ["f e d c b a"], ["a b c d e f"]  # every unigram, no bigram
    assert bleu_scores(hyp, ref, smooth_method="none")["bleu4"] == 0
    s = bleu_scores(hyp, ref)  # sacrebleu's exp smoothing: p_n = 100 / (2^(n-1) * count_n)
    assert s["bleu1"] == pytest.approx(100)
    assert s["bleu4"] == pytest.approx((100 * 100 / 10 * 100 / 16 * 100 / 24) ** 0.25, abs=1e-6)
    # 3 of 3 unigrams match ("the" twice in the reference); BP = exp(1 - 6 / 3)
    assert bleu_scores(["the cat the"], ["the cat sat on the mat"])["bleu1"] == pytest.approx(100 * np.exp(-1))
    assert bleu_scores(["the the the the"], ["the cat"])["bleu1"] == pytest.approx(25)  # clipped, no BP
    assert bleu_scores(["a b", "c d e"], ["a x", "c d e"])["bleu1"] == pytest.approx(80)  # corpus counts
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bleu_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no sentences"):
        bleu_scores([], [])


GENERATE = """2024-05-01 12:00:00 | INFO | fairseq_cli.generate | loading model
S-2\t\u2581sign s\tgloss
T-2\tthe third sentence
H-2\t-0.52\t\u2581the \u2581third \u2581sent ence
D-2\t-0.52\tthe third sentence
P-2\t-0.1 -0.2 -0.3 -0.4
H-2\t-0.90\t\u2581a \u2581worse \u2581one
D-2\t-0.90\ta worse one
S-10\tx
T-10\tthe last one
H-10\t-0.3\tthe last one
D-10\t-0.3\tthe last one
T-0\tthe first sentence
H-0\t-0.4\tthe first sentence
T-1\tan empty hypothesis
H-1\t-1.5\t\u2581an
D-1\t-1.5\t
Generate test with beam=5: BLEU4 = 50.00
"""


def test_read_fairseq_generate(tmp_path):
    path = tmp_path / "gen.out"
    path.write_text(GENERATE, encoding="utf-8")
    hyps, refs = read_fairseq_generate(str(path))
    assert refs == ["the first sentence", "an empty hypothesis", "the third sentence", "the last one"]
    assert hyps == ["the first sentence", "", "the third sentence", "the last one"]  # D- first, H- alone, best of nbest
    path.write_text(GENERATE + "H-7\t-1.0\torphan\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"gen.out:19: sentence 7 has a hypothesis but no reference \(T-7"):
        read_fairseq_generate(str(path))
    path.write_text(GENERATE + "T-7\torphan\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"gen.out:19: sentence 7 has a reference but no hypothesis"):
        read_fairseq_generate(str(path))
    path.write_text(GENERATE + GENERATE, encoding="utf-8")
    with pytest.raises(CorpusError, match="a second T-2"):
        read_fairseq_generate(str(path))
    path.write_text("2024 | INFO | nothing here\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="gen.out: no T-, H- or D- lines"):
        read_fairseq_generate(str(path))


def test_read_sentence_files_and_sentencepiece(tmp_path):
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("a b\nc\n", encoding="utf-8")
    ref.write_text("a b\nc\nd\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"r.txt:3: 3 lines, but .*h.txt has 2"):
        read_sentence_files(str(hyp), str(ref))
    ref.write_text("a x\nc\n", encoding="utf-8")
    assert read_sentence_files(str(hyp), str(ref)) == (["a b", "c"], ["a x", "c"])
    assert strip_sentencepiece("\u2581the \u2581ca t \u2581sat") == "the cat sat"
    assert strip_sentencepiece("already plain text") == "already plain text"


# --- the scripts ------------------------------------------------------------------------------

def test_score_bleu_script(tmp_path, capsys):
    main = script("score_bleu")
    gen = tmp_path / "gen.out"
    gen.write_text(GENERATE, encoding="utf-8")
    main(["--generate-output", str(gen), "--json", str(tmp_path / "bleu.json")])
    out = capsys.readouterr().out.strip()
    result = json.loads((tmp_path / "bleu.json").read_text())
    expected = bleu_scores(*read_fairseq_generate(str(gen)))
    assert out == f"BLEU-1 {expected['bleu1']:.2f}  BLEU-4 {expected['bleu4']:.2f}  (4 sentences)"
    assert result["bleu4"] == pytest.approx(expected["bleu4"]) and result["n"] == 4
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("\u2581the \u2581ca t \u2581sat \u2581down\n", encoding="utf-8")
    ref.write_text("the cat sat down\n", encoding="utf-8")
    main(["--hyp", str(hyp), "--ref", str(ref), "--sentencepiece"])
    assert capsys.readouterr().out.strip() == "BLEU-1 100.00  BLEU-4 100.00  (1 sentences)"
    ref.write_text("the cat sat\nextra\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="r.txt:2"):
        main(["--hyp", str(hyp), "--ref", str(ref)])


def test_input_dependence_flags_output_that_ignores_the_input(tmp_path, capsys):
    from fairseq_signlang.metrics.bleu import derangement, input_dependence

    perm = derangement(7, __import__("numpy").random.default_rng(3))
    assert sorted(perm.tolist()) == list(range(7)) and all(perm[i] != i for i in range(7))
    refs = ["the cat sat on the mat", "a dog ran in the park", "we like green tea", "she reads old books",
            "birds fly south in winter", "he plays the piano", "rain fell all night"]
    reading = input_dependence(refs, refs)
    assert reading["reads_input"] and reading["bleu1"] == pytest.approx(100.0) and reading["shuffled_bleu1"] < 30
    assert reading["distinct_outputs"] == 7
    constant = input_dependence(["the cat sat in the park"] * 7, refs)
    assert not constant["reads_input"] and constant["distinct_outputs"] == 1
    assert constant["bleu1"] == pytest.approx(constant["shuffled_bleu1"])  # same hypotheses, same multiset of references
    with pytest.raises(ValueError, match="2 or more"):
        input_dependence(refs[:1], refs[:1])
    # the script's flag prints the verdict and writes the figures
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("\n".join(["the cat sat in the park"] * 7) + "\n", encoding="utf-8")
    ref.write_text("\n".join(refs) + "\n", encoding="utf-8")
    script("score_bleu")(["--hyp", str(hyp), "--ref", str(ref), "--shuffled", "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert "1 distinct outputs of 7" in out and "output does not depend on the input" in out
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["reads_input"] is False and written["shuffled_bleu1"] == pytest.approx(constant["shuffled_bleu1"])


def test_compute_fvd_script(tmp_path, capsys, i3d):
    plain, _, C = i3d
    real_dir, gen_dir = tmp_path / "real", tmp_path / "gen"
    for i, v in enumerate(videos(4, n=3, T=8)):
        write_video(str(real_dir / f"r{i}.mp4"), v[:, :32, :32], fps=10)
    for i, v in enumerate(videos(5, n=3, T=8, noise=False)):
        write_video(str(gen_dir / f"g{i}.mp4"), v[:, :32, :32], fps=10)
    manifest = tmp_path / "gen.tsv"
    write_clip_manifest(str(manifest), [ClipRow(f"g{i}", str(gen_dir / f"g{i}.mp4")) for i in range(3)])
    main = script("compute_fvd")
    common = ["--i3d-checkpoint", plain, "--size", "32", "--device", "cpu"]
    main(["--real", str(real_dir), "--generated", str(manifest), "--frames", "6", "--json", str(tmp_path / "fvd.json"), *common])
    out = capsys.readouterr().out.strip()
    result = json.loads((tmp_path / "fvd.json").read_text())
    assert out == f"FVD {result['fvd']:.2f}" and result["fvd"] > 0
    assert (result["n_real"], result["n_generated"], result["features"], result["dim"], result["frames"]) == (3, 3, "mixed_5c_pool", C, 6)
    with pytest.raises(SystemExit, match=r"r0.mp4: clip 'r0' has 8 frames at 10 fps, fewer than the 20"):
        main(["--real", str(real_dir), "--generated", str(gen_dir), "--frames", "20", *common])
    with pytest.raises(SystemExit, match="no video files"):
        main(["--real", str(tmp_path), "--generated", str(gen_dir), *common])
