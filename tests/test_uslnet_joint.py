"""USLNet's joint stage through fairseq's tools, on a word-sign corpus (one rendered sign per word,
in word order): the paper's table 1 rows (w/o joint training, unsupervised joint training,
supervised) scored by fairseq-generate with the issue's plain command; the hub interface; sign
video generation with back-translation BLEU and FVD; resuming after SIGKILL; 2-process CPU
training."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.video import read_clip_manifest, read_video, write_video
from .random_weights import save_random_visual_model
from fairseq_signlang.metrics.bleu import read_fairseq_generate, strip_sentencepiece
from fairseq_signlang.tools.training import hydra_train_command, log_records, run_hydra_train
from fairseq_signlang.tools.uslnet_hub import UslnetHub

from .conftest import REPO, free_port, gloo_overrides
from .uslnet_corpora import USLNET_CONFIGS

PY = sys.executable
word_sign = __import__("runpy").run_path(os.path.join(REPO, "scripts", "uslnet_word_sign.py"))


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """scripts/uslnet_word_sign.py --scale test: corpus, the three stages, the assembled model
    without joint training, unsupervised and supervised joint runs, fairseq-generate on each."""
    return word_sign["compare"](str(tmp_path_factory.mktemp("uslnet_word_sign")), "test")


def joint_overrides(results, *extra):
    corpus = results["corpus"]
    runs = os.path.dirname(results["checkpoints"]["without_joint"])
    return [f"task.data={corpus}/text/bin", f"task.video_data={corpus}/video", f"task.video_cache={corpus}/video/cache", *word_sign["VIDEO"],
            f"model.text_checkpoint={runs}/text_mass/ckpt/checkpoint_best.pt",
            f"model.video_checkpoint={runs}/video_gpt/ckpt/checkpoint_last.pt", "common.log_format=json", "common.log_interval=1", *extra]


def test_joint_training_beats_without_and_supervised_beats_both(comparison):
    """Table 1 on the word-sign corpus, 40 test sentences, BLEU-1 of fairseq-generate (beam 5).
    Measured at this scale (2000 sentences, one thread), seed 0: w/o joint training 0.34,
    unsupervised (U, 24 updates) 19.06, supervised (S, 300 updates) 41.18 (44.20 on an earlier
    machine: S moves by a few points with the machine's arithmetic). Without joint training
    the decoder has never read the aligner; joint training teaches it to read video-shaped
    memory and to stop (U's sentences are in-domain and the right length, and share its frequent
    words with the references); of these three only S, which sees the clips' text, reads the
    signs (U (lexicon + BT): the next test)."""
    bleu = {name: row["bleu1"] for name, row in comparison["bleu"].items()}
    assert comparison["test_sentences"] == 40
    assert bleu["unsupervised"] > bleu["without_joint"] + 10, bleu
    assert bleu["supervised"] > bleu["unsupervised"] + 5, bleu
    # BLEU alone does not say a row reads the clips; the gap to shuffled references does. Measured
    # (BLEU-1 true / shuffled, distinct outputs of 40), seed 0: S 41.18 / 22.46, 33 distinct; U
    # 19.06 / 19.06, 1 distinct; w/o joint 0.34 / 0.34. U and w/o joint are flagged.
    rows = comparison["bleu"]
    assert rows["supervised"]["reads_input"] and rows["supervised"]["bleu1_gap"] >= 8 and rows["supervised"]["distinct_outputs"] >= 10, rows
    assert not rows["unsupervised"]["reads_input"] and not rows["without_joint"]["reads_input"], rows
    table = open(os.path.join(os.path.dirname(comparison["corpus"]), "results.md")).read()
    assert "w/o joint training" in table and f"{comparison['bleu']['supervised']['bleu1']:.2f}" in table
    assert table.count("output does not depend on the clip") == 2


def test_lexicon_and_back_translation_read_the_signs(comparison):
    """U (lexicon + BT), from the unpaired halves only: sign units of the 1000 video-half clips,
    a lexicon deciphered against the 1000 text-half sentences, pseudo pairs, then pairs and eq.
    13. Measured on one thread with the hand-path units, seed 0: the lexicon reads 75.5 % of
    training segments right (oracle 79.1, most frequent word 15.7); translation 56.71 BLEU-1
    against 23.05 for shuffled references, 39 distinct outputs of 40 (S 41.18); generation
    back-translated 37.15 against 19.12. At seeds nothing was chosen on: 5, 43.89 / 23.10 (S
    41.36), generation 35.24 / 20.80; 47, 52.32 / 23.77 (S 51.35), generation 40.68 / 22.71."""
    lexicon = comparison["lexicon"]["splits"]["train"]
    assert lexicon["accuracy"] > lexicon["majority"] + 30 and lexicon["accuracy"] <= lexicon["oracle"], lexicon
    rows = comparison["bleu"]
    row = rows["lexicon_bt"]
    assert row["reads_input"] and row["bleu1_gap"] >= 15 and row["distinct_outputs"] >= 20, row
    assert row["bleu1"] >= rows["supervised"]["bleu1"] / 2, rows
    assert rows["unsupervised"]["bleu1_gap"] < 3, rows["unsupervised"]  # the paper's U: about 0
    generation = comparison["generation_lexicon_bt"]
    assert generation["n"] == 40 and generation["back_translation_bleu1_gap"] >= 10, generation
    assert os.path.getsize(generation["sheet"]) > 20_000
    table = open(os.path.join(os.path.dirname(comparison["corpus"]), "results.md")).read()
    assert "| U (lexicon + BT) |" in table and "generated beside real clips" in table


def test_retranslation_makes_the_next_rounds_pairs(comparison, tmp_path):
    """scripts/retranslate_clips.py: a joint checkpoint's translations of the clips, as a
    pseudo-parallel manifest in the clips' order; nothing is written for a missing checkpoint."""
    rows = read_clip_manifest(f"{comparison['corpus']}/video/train.tsv")[:6]
    from fairseq_signlang.io.video import write_clip_manifest

    manifest, out = str(tmp_path / "clips.tsv"), str(tmp_path / "round1.tsv")
    write_clip_manifest(manifest, rows)
    proc = subprocess.run([PY, "scripts/retranslate_clips.py", "--checkpoint", comparison["checkpoints"]["lexicon_bt"], "--manifest", manifest,
                           "--out", out, "--batch-size", "4"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pairs = read_clip_manifest(out)
    assert [r.id for r in pairs] == [r.id for r in rows] and all(r.text.strip() for r in pairs)
    hub = UslnetHub.from_checkpoint(comparison["checkpoints"]["lexicon_bt"], device="cpu")
    assert [r.text for r in pairs[:2]] == hub.translate_batch([r.path for r in rows[:2]])
    bad = subprocess.run([PY, "scripts/retranslate_clips.py", "--checkpoint", str(tmp_path / "none.pt"), "--manifest", manifest,
                          "--out", str(tmp_path / "x.tsv")], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and "none.pt" in bad.stderr and not os.path.exists(tmp_path / "x.tsv")


def test_unsupervised_run_trains_every_term_of_eq13(comparison):
    run = os.path.dirname(os.path.dirname(comparison["checkpoints"]["unsupervised"]))
    log = open(f"{run}/train.log").read()
    train = log_records(log, "train")
    assert train
    for term in ("loss_text", "loss_codebook", "loss_video", "loss_t2v2t", "loss_v2t2v"):
        assert all(np.isfinite(float(r[f"train_{term}"])) for r in train), term
    valid = log_records(log, "valid")
    assert valid and "valid_translation_nll" in valid[-1] and "valid_translation_accuracy" in valid[-1]
    assert np.isfinite(float(valid[-1]["valid_round_trip_nll"]))  # what the config chooses checkpoint_best by
    state = torch.load(comparison["checkpoints"]["unsupervised"], weights_only=True)
    model_cfg = state["cfg"]["model"]
    assert model_cfg["text_args"]["encoder_layers"] == 2 and model_cfg["video_args"]["vqvae_args"]["downsample"] == [4, 4, 4]
    assert model_cfg["tokens_per_second"] > 0  # measured on the unpaired corpora
    # freeze_video_encoder (the tiny config's, table 5): the VQ-VAE encoder did not move
    start = torch.load(model_cfg["video_checkpoint"], weights_only=True)["model"]
    key = next(k for k in start if k.startswith("vqvae.encoder.") and k.endswith("weight"))
    assert torch.equal(state["model"]["video." + key], start[key])


def test_round_trip_chooses_checkpoints_without_reading_the_clips(comparison):
    """round_trip_nll, the joint configs' best_checkpoint_metric: each valid sentence through
    sampled sign video and back. It reads no clip (valid clips reversed in the batch: the same
    value, where translation_nll, which reads the clips' text, changes), draws the same codes on
    every call, and is lower for a model trained on the way through video (U (lexicon + BT))
    than for the stages put together without joint training. Measured at --scale full, seed 9
    (bits per token): U (lexicon + BT) 1.83, S 2.19, the paper's U 2.89, pairs alone 2.60."""
    from fairseq_signlang.criterions.uslnet_joint import UslnetJointCriterion, UslnetJointCriterionConfig

    def valid_nll(name, flip=False):
        hub = UslnetHub.from_checkpoint(comparison["checkpoints"][name], device="cpu")
        model = hub.model.eval()
        options = {k: v for k, v in vars(UslnetJointCriterionConfig()).items() if k != "_name"}
        criterion = UslnetJointCriterion(hub.task, **options)
        hub.task.load_dataset("valid")
        dataset = hub.task.datasets["valid"]
        batch = dataset.collater([dataset[i] for i in range(min(16, len(dataset)))])
        if flip:
            batch["net_input"]["source"] = batch["net_input"]["source"].flip(0)
        with torch.no_grad():
            _, _, log = criterion(model, batch)
        return {k: log[f"{k}_nll_sum"] / log[f"{k}_count"] for k in ("round_trip", "translation")}

    read = valid_nll("lexicon_bt")
    flipped = valid_nll("lexicon_bt", flip=True)
    assert flipped["round_trip"] == read["round_trip"] == valid_nll("lexicon_bt")["round_trip"]
    assert flipped["translation"] > read["translation"] + 0.5, (read, flipped)
    assert read["round_trip"] < valid_nll("without_joint")["round_trip"] - 0.5, read


def test_fairseq_generate_output_and_hub_agree(comparison, tmp_path):
    """The plain fairseq-generate command printed BLEU and every test sentence; the hub, loading
    the checkpoint once, translates the same clips to the same sentences (beam 5 both)."""
    out = comparison["bleu"]["supervised"]["generate_output"]
    text = open(out).read()
    assert "BLEU" in text
    hyps, refs = read_fairseq_generate(out)
    assert len(hyps) == 40
    hub = UslnetHub.from_checkpoint(comparison["checkpoints"]["supervised"], device="cpu")
    rows = read_clip_manifest(f"{comparison['corpus']}/video/test.tsv")
    mine = hub.translate_batch([r.path for r in rows[:8]], beam=5)
    assert mine == [strip_sentencepiece(h) for h in hyps[:8]]
    assert hub.translate(rows[0].path, beam=5) == mine[0]
    vocab = set(open(f"{comparison['corpus']}/text/train.txt").read().split())
    assert all(set(s.split()) <= vocab for s in mine)
    # text -> sign video: one window of the VQ-VAE, the same for the same seed
    frames = hub.generate(rows[0].text, seed=3)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, hub.generate(rows[0].text, seed=3))
    # written at playback_fps, the clip reads back as long as its sentence: as many memory positions as tokens
    path = str(tmp_path / "generated.mp4")
    write_video(path, frames, fps=hub.playback_fps(rows[0].text))
    _, duration = hub._clip_input(path)
    assert int(hub.model.encoder.memory_lengths(torch.tensor([duration]))[0]) == len(hub.encode(rows[0].text))
    with pytest.raises(CorpusError, match=r"expected uint8 frames \(T, 32, 32, 3\)"):
        hub.translate(np.zeros((5, 40, 40, 3), dtype=np.uint8))


def test_generation_script_scores_back_translation_and_fvd(comparison, tmp_path):
    i3d = str(tmp_path / "i3d.pt")
    save_random_visual_model(i3d, "i3d", width=1 / 16, seed=0)
    out = tmp_path / "generated"
    proc = subprocess.run([PY, "scripts/generate_sign_video.py", "--path", comparison["checkpoints"]["supervised"],
                           "--input", f"{comparison['corpus']}/text/test.txt", "--limit", "6", "--out", str(out),
                           "--i3d-checkpoint", i3d, "--reference", f"{comparison['corpus']}/video/test.tsv", "--fvd-size", "32"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["n"] == 6 and 0 <= results["back_translation_bleu4"] <= results["back_translation_bleu1"] <= 100
    # input dependence: back-translation against the sentences shuffled across clips, distinct outputs
    assert 0 <= results["back_translation_shuffled_bleu1"] <= 100 and 1 <= results["back_translation_distinct_outputs"] <= 6
    assert 1 <= results["distinct_videos"] <= 6 and isinstance(results["back_translation_reads_input"], bool)
    assert results["back_translation_bleu1_gap"] == pytest.approx(results["back_translation_bleu1"] - results["back_translation_shuffled_bleu1"], abs=0.01)
    assert f"{results['distinct_videos']} distinct" in proc.stdout and "against shuffled references" in proc.stdout
    assert np.isfinite(results["fvd"]) and results["fvd"] >= 0 and results["n_reference"] == 40
    rows = read_clip_manifest(str(out / "generated.tsv"))
    sentences = open(f"{comparison['corpus']}/text/test.txt").read().splitlines()[:6]
    assert [r.text for r in rows] == sentences
    frames, rate = read_video(rows[0].path)
    assert frames.shape[1:] == (32, 32, 3) and len(frames) == 16
    assert len((out / "back_translation.txt").read_text().splitlines()) == 6
    assert os.path.getsize(out / "sheet.png") > 5_000
    # FVD needs both its inputs
    bad = subprocess.run([PY, "scripts/generate_sign_video.py", "--path", comparison["checkpoints"]["supervised"], "--input",
                          f"{comparison['corpus']}/text/test.txt", "--out", str(tmp_path / "x"), "--i3d-checkpoint", i3d],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and "--reference" in bad.stderr


def test_assemble_script_refuses_a_checkpoint_of_the_wrong_stage(comparison, tmp_path):
    runs = os.path.dirname(comparison["checkpoints"]["without_joint"])
    text_ckpt = f"{runs}/text_mass/ckpt/checkpoint_best.pt"
    proc = subprocess.run([PY, "scripts/assemble_uslnet.py", "--text-checkpoint", text_ckpt, "--video-checkpoint", text_ckpt,
                           "--data", f"{comparison['corpus']}/text/bin", "--video-data", f"{comparison['corpus']}/video",
                           "--out", str(tmp_path / "x.pt")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and text_ckpt in proc.stderr and "uslnet_video_gpt" in proc.stderr
    assert not os.path.exists(tmp_path / "x.pt")
    # fairseq-generate translates video with a joint checkpoint only; a text stage's is named
    generate = os.path.join(os.path.dirname(PY), "fairseq-generate")
    proc = subprocess.run([generate, f"{comparison['corpus']}/text/bin", "--user-dir", "fairseq_signlang", "--task", "uslnet",
                           "--path", text_ckpt, "--gen-subset", "test"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0 and "joint stage" in proc.stderr and "UslnetTextModel (stage text_mass)" in proc.stderr, proc.stderr[-2000:]


def test_joint_stage_resumes_after_sigkill(comparison, tmp_path):
    """The same command, started again in the same folder after SIGKILL, resumes from
    checkpoints/joint_tiny/checkpoint_last.pt (the config keeps hydra in the launch folder)."""
    run = str(tmp_path)
    overrides = joint_overrides(comparison, "dataset.batch_size=4", "checkpoint.save_interval_updates=3",
                                "dataset.validate_interval_updates=3", "optimization.max_update=9")
    cmd = hydra_train_command(USLNET_CONFIGS, "joint_tiny", overrides)
    last = f"{run}/checkpoints/joint_tiny/checkpoint_last.pt"
    with open(f"{run}/first.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=run, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(last) and "num_updates\": \"4" in open(f"{run}/first.log").read():
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    saved = torch.load(last, map_location="cpu", weights_only=True)["optimizer_history"][-1]["num_updates"]
    assert saved >= 3
    second = run_hydra_train(USLNET_CONFIGS, "joint_tiny", overrides, f"{run}/second.log", 9, cwd=run)
    assert f"@ {saved} updates" in second  # "Loaded checkpoint ... (epoch E @ N updates)"
    updates = [int(r["num_updates"]) for r in log_records(second, "train_inner")]
    assert updates[0] == saved + 1 and updates[-1] == 9


def test_two_process_cpu_joint_training(comparison, tmp_path):
    """fairseq's distributed trainer, 2 CPU processes over gloo, the joint config unchanged."""
    port = free_port()
    procs = []
    for rank in range(2):
        dist = gloo_overrides(rank, port)
        overrides = joint_overrides(comparison, "common.cpu=true", "dataset.batch_size=4", "optimization.max_update=3",
                                    "dataset.validate_interval_updates=3", "checkpoint.save_interval_updates=3",
                                    f"checkpoint.save_dir={tmp_path}/ckpt", f"hydra.run.dir={tmp_path}/hydra{rank}", *dist)
        cmd = hydra_train_command(USLNET_CONFIGS, "joint_tiny", overrides)
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-3000:] + outs[1][-3000:]
    bsz = [float(r["bsz"]) for r in log_records(outs[0], "train_inner")]
    assert bsz and bsz[0] == 8  # two replicas of 4 sentences
    assert "distributed init (rank 1)" in outs[1] or "distributed init (rank 1)" in outs[0]
    assert os.path.exists(f"{tmp_path}/ckpt/checkpoint_last.pt")


def test_paper_size_joint_config_has_the_papers_shapes():
    """examples/uslnet/joint.yaml, for shapes only (a GPU job): the tiny config's keys, the paper's
    settings, and the aligner it builds between a 1024-wide text model and the paper-size video
    stage (4 x 16 x 16 codes of 256 dims, GPT width 576)."""
    import yaml

    from fairseq_signlang.models.uslnet.sliding_window_aligner import SlidingWindowAligner

    paper, tiny, gpt = (yaml.safe_load(open(os.path.join(USLNET_CONFIGS, f"{n}.yaml"))) for n in ("joint", "joint_tiny", "video_gpt"))
    for group in ("task", "model", "criterion", "dataset", "checkpoint"):
        assert set(paper[group]) == set(tiny[group]), group
    assert paper["optimization"]["lr"] == [0.001] and paper["model"]["freeze_video_encoder"] is True
    assert {k: paper["task"][k] for k in ("fps", "resolution", "window_frames")} == {k: gpt["task"][k] for k in ("fps", "resolution", "window_frames")}
    aligner = SlidingWindowAligner(1024, 256, 576, frame_positions=16 * 16, position_dim=paper["model"]["position_dim"])
    lengths = torch.tensor([20, 7])
    with torch.no_grad():
        assert aligner.text_to_video(torch.randn(2, 20, 1024), lengths, 4).shape == (2, 4 * 16 * 16, 576)
        assert aligner.video_to_text(torch.randn(2, 4, 16 * 16, 256), lengths).shape == (2, 20, 1024)
    assert sum(p.numel() for p in aligner.parameters()) < 10_000_000  # factored through 16 values per code position


def test_supervised_fine_tuning_starts_from_the_unsupervised_run(comparison, tmp_path):
    """U+S (table 1): a supervised run with model.init_checkpoint set to the unsupervised one
    starts from its weights and settings, without the stage checkpoints."""
    unsupervised = comparison["checkpoints"]["unsupervised"]
    overrides = joint_overrides(comparison, "task.joint_mode=supervised", "dataset.train_subset=train_paired", "dataset.batch_size=8",
                                "optimization.max_update=3", "dataset.validate_interval_updates=3", "checkpoint.save_interval_updates=3",
                                f"checkpoint.save_dir={tmp_path}/ckpt", f"hydra.run.dir={tmp_path}/hydra",
                                "model.text_checkpoint=''", "model.video_checkpoint=''", f"model.init_checkpoint={unsupervised}",
                                "model.sharpness=5")  # the checkpoint's aligner setting wins, and the log says so
    log = run_hydra_train(USLNET_CONFIGS, "joint_tiny", overrides, f"{tmp_path}/train.log", 3)
    assert f"joint model loaded from {unsupervised}" in log
    assert "model.sharpness=5.0 is replaced by 10.0, the value model.init_checkpoint was trained with" in log
    start = torch.load(unsupervised, weights_only=True)
    state = torch.load(f"{tmp_path}/ckpt/checkpoint_last.pt", weights_only=True)
    assert state["cfg"]["model"]["tokens_per_second"] == start["cfg"]["model"]["tokens_per_second"]
    moved = [k for k in start["model"] if not torch.equal(start["model"][k], state["model"][k])]
    assert moved and not any(k.startswith("video.vqvae.encoder.") for k in moved)  # trained on, encoder still frozen
    assert all(torch.allclose(start["model"][k], state["model"][k], atol=0.01) for k in moved)  # 3 updates from U, not from scratch


def test_pseudo_parallel_mode_adds_the_pseudo_pairs_to_eq13(comparison, tmp_path):
    """task.joint_mode=pseudo_parallel, as the U (lexicon + BT) row ran it: pairs alone (eq. 13's
    weights 0), then eq. 13 on the unpaired halves plus each clip trained towards the text of
    task.pseudo_parallel_manifest; the pseudo loss falls. A manifest without text is refused by
    name."""
    from fairseq_signlang.io.video import ClipRow, write_clip_manifest

    runs = os.path.dirname(comparison["checkpoints"]["without_joint"])
    for run, terms in (("lexicon_pairs", ("loss_pseudo_v2t", "loss_pseudo_t2v")),
                       ("lexicon_bt", ("loss_text", "loss_t2v2t", "loss_v2t2v", "loss_pseudo_v2t", "loss_pseudo_t2v"))):
        train = log_records(open(f"{runs}/{run}/train.log").read(), "train_inner")
        for term in terms:
            assert all(np.isfinite(float(r[term])) for r in train), (run, term)
        assert all(0 <= float(r["pseudo_accuracy"]) <= 100 for r in train)
    pseudo_nll = [float(r["loss_pseudo_v2t"]) for r in log_records(open(f"{runs}/lexicon_pairs/train.log").read(), "train_inner")]
    assert np.mean(pseudo_nll[-3:]) < np.mean(pseudo_nll[:3]) - 0.3, pseudo_nll
    rows = read_clip_manifest(f"{comparison['corpus']}/video/train.tsv")
    common = ["dataset.batch_size=8", "task.joint_mode=pseudo_parallel", f"hydra.run.dir={tmp_path}/hydra"]
    bare = str(tmp_path / "no_text.tsv")
    write_clip_manifest(bare, [ClipRow(r.id, r.path) for r in rows])
    with pytest.raises(RuntimeError, match=r"no_text.tsv:2: clip .* has no text"):
        run_hydra_train(USLNET_CONFIGS, "joint_tiny", joint_overrides(comparison, *common, f"task.pseudo_parallel_manifest={bare}",
                                                                      f"checkpoint.save_dir={tmp_path}/ckpt2", "optimization.max_update=1"),
                        f"{tmp_path}/bare.log", 1)
