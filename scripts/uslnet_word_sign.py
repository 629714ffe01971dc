#!/usr/bin/env python
"""USLNet's table 1 on a word-sign corpus, end to end with the tools a researcher would use:

  1. scripts/build_uslnet_corpus.py --binarize: sentences whose videos sign their words in word
     order (fairseq_signlang/corpora/uslnet_corpus.py), split into a text half and a video half
  2. fairseq-hydra-train, the stages: text_mass on the text half, video_vqvae and video_gpt on
     the video half
  3. scripts/assemble_uslnet.py: the stages put together, no joint training ("w/o joint")
  4. fairseq-hydra-train, stage joint: unsupervised (eq. 13) on the unpaired halves ("U"), and
     supervised on the paired version of all training sentences ("S")
  4b. "U (lexicon + BT)", unpaired too: scripts/sign_units.py cuts the video half into sign units,
     scripts/induce_lexicon.py deciphers them against the text half's words and translates
     every clip word by word; the joint stage trains first on those pseudo pairs alone
     (task.joint_mode=pseudo_parallel, eq. 13's weights 0), then on the pairs and eq. 13 together
  5. fairseq-generate --gen-subset test --scoring sacrebleu on each checkpoint (the issue's plain
     command: fairseq-generate's default beam of 5), scored by BLEU-1 / BLEU-4 on words
     (fairseq_signlang/metrics/bleu.py), and against the test references shuffled across clips,
     with the number of distinct outputs: a row whose output does not depend on the clip is
     flagged in the table, whatever its BLEU
  6. scripts/generate_sign_video.py with U (lexicon + BT): sign video for the test sentences,
     back-translated and scored against the sentences and against them shuffled, with a
     contact sheet of generated clips above the real clips of the same sentences

Results go to OUT/results.json and OUT/results.md; every command is printed as it runs.
--scale test is the size the test suite runs (about 7 minutes on 2 CPU cores), --scale full a
longer one (twice the joint updates, 60 test sentences; 15-30 minutes), which harder corpora
need (seed 9: U (lexicon + BT) 11.0 BLEU-1 above shuffled references at test scale, where S does
not read the clips either; 43.8 at full scale).

  python scripts/uslnet_word_sign.py --out outputs/uslnet_word_sign --scale full
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from fairseq_signlang.io.writers import atomic_open
from fairseq_signlang.metrics.bleu import input_dependence, read_fairseq_generate, strip_sentencepiece
from fairseq_signlang.tools.training import PACKAGE_DIR, REPO_DIR, run_hydra_train

CONFIGS = os.path.join(REPO_DIR, "examples", "uslnet")
SCRIPTS = os.path.join(REPO_DIR, "scripts")
BIN = os.path.dirname(sys.executable)
# the corpus is rendered at 5 fps, so a 3-5 word clip is 8-27 frames: one 16-frame window of the
# VQ-VAE, down-sampled 4x in time and space to a 4 x 8 x 8 code grid (4 frames for the aligner)
VIDEO = ["task.fps=5", "task.window_frames=16"]
VQVAE = ["model.downsample=[4,4,4]", "task.skip_short_clips=true"]


@dataclass
class Scale:
    sentences: int
    valid: int
    test: int
    text_updates: int
    vqvae_updates: int
    gpt_updates: int
    unsupervised_updates: int
    supervised_updates: int
    unsupervised_batch: int
    pairs_updates: int  # U (lexicon + BT): the pseudo pairs alone
    pairs_bt_updates: int  # then the pairs and eq. 13


SCALES = {
    # 2000 sentences: the lexicon step needs a video half of about 1000 clips (at 200 it reads no
    # better than the most frequent word; examples/uslnet/README.md, "Lexicon step")
    "test": Scale(sentences=2000, valid=20, test=40, text_updates=100, vqvae_updates=500, gpt_updates=150,
                  unsupervised_updates=24, supervised_updates=300, unsupervised_batch=8, pairs_updates=300, pairs_bt_updates=300),
    "full": Scale(sentences=2000, valid=60, test=60, text_updates=150, vqvae_updates=600, gpt_updates=300,
                  unsupervised_updates=300, supervised_updates=600, unsupervised_batch=16, pairs_updates=600, pairs_bt_updates=600),
}


def show(cmd) -> None:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)


def run(cmd) -> str:
    show(cmd)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_DIR)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def train(config: str, run_dir: str, overrides, updates: int) -> str:
    overrides = [*overrides, f"checkpoint.save_dir={run_dir}/ckpt", f"hydra.run.dir={run_dir}/hydra", "common.log_format=json",
                 f"optimization.max_update={updates}"]
    show(["fairseq-hydra-train", "--config-dir", "examples/uslnet", "--config-name", config, *overrides])
    return run_hydra_train(CONFIGS, config, overrides, f"{run_dir}/train.log", updates, desc=config)


def translation_bleu(checkpoint: str, text_bin: str, out_path: str) -> dict:
    """The issue's command, nothing added; BLEU on words (the output is sentencepiece)."""
    stdout = run([f"{BIN}/fairseq-generate", text_bin, "--user-dir", PACKAGE_DIR, "--task", "uslnet", "--path", checkpoint,
                  "--gen-subset", "test", "--scoring", "sacrebleu"])
    with atomic_open(out_path, encoding="utf-8") as f:
        f.write(stdout)
    hyps, refs = read_fairseq_generate(out_path)
    scores = input_dependence([strip_sentencepiece(h) for h in hyps], [strip_sentencepiece(r) for r in refs])
    return {**{k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}, "generate_output": out_path}


def at_the_end(updates: int):
    """A joint run validates and saves once, after its last update."""
    return [f"dataset.validate_interval_updates={updates}", f"checkpoint.save_interval_updates={updates}"]


def lexicon_bootstrap(corpus: str, runs: str, joint, without_joint: str, s: Scale) -> dict:
    """U (lexicon + BT): sign units, a deciphered lexicon and word-by-word pseudo pairs from the
    unpaired halves; the pairs alone, then the pairs and eq. 13. Returns the lexicon's accuracy
    per segment (reported, not used) and the final checkpoint."""
    units, lexicon, video = f"{runs}/sign_units", f"{runs}/lexicon", f"{corpus}/video"
    run([sys.executable, f"{SCRIPTS}/sign_units.py", "--video-data", video, "--text", f"{corpus}/text/train.txt", "--out", units])
    run([sys.executable, f"{SCRIPTS}/induce_lexicon.py", "--units", units, "--text", f"{corpus}/text/train.txt", "--video-data", video,
         "--out", lexicon])
    pairs = [*joint, "task.joint_mode=pseudo_parallel", f"task.pseudo_parallel_manifest={lexicon}/train_pseudo.tsv"]
    no_bt = [f"criterion.alpha_{term}=0" for term in ("text", "codebook", "video", "t2v2t", "v2t2v")]
    train("joint_tiny", f"{runs}/lexicon_pairs", [*pairs, *no_bt, f"model.init_checkpoint={without_joint}", *at_the_end(s.pairs_updates)],
          s.pairs_updates)
    train("joint_tiny", f"{runs}/lexicon_bt", [*pairs, f"model.init_checkpoint={runs}/lexicon_pairs/ckpt/checkpoint_last.pt",
                                               *at_the_end(s.pairs_bt_updates)], s.pairs_bt_updates)
    with open(f"{lexicon}/lexicon.json", encoding="utf-8") as f:
        report = json.load(f)
    return {"splits": report["splits"], "checkpoint": f"{runs}/lexicon_bt/ckpt/checkpoint_last.pt"}


def sign_generation(checkpoint: str, corpus: str, out: str) -> dict:
    """scripts/generate_sign_video.py on the test sentences: back-translation BLEU against the
    sentences and against them shuffled, and the contact sheet beside the real clips."""
    run([sys.executable, f"{SCRIPTS}/generate_sign_video.py", "--path", checkpoint, "--input", f"{corpus}/text/test.txt",
         "--real-clips", f"{corpus}/video/test.tsv", "--out", out])
    with open(f"{out}/results.json", encoding="utf-8") as f:
        return {**json.load(f), "sheet": f"{out}/sheet_vs_real.png"}


def compare(out: str, scale: str = "test", seed: int = 0) -> dict:
    s = SCALES[scale]
    out = os.path.abspath(out)
    start = time.time()
    corpus = f"{out}/corpus"
    run([sys.executable, f"{SCRIPTS}/build_uslnet_corpus.py", "--out", corpus, "--binarize", "--fps", "5", "--num-sentences", str(s.sentences),
         "--num-valid", str(s.valid), "--num-test", str(s.test), "--seed", str(seed)])
    text_bin, video = f"{corpus}/text/bin", f"{corpus}/video"
    video_data = [f"task.video_data={video}", f"task.video_cache={video}/cache", *VIDEO]
    runs = f"{out}/runs"
    train("text_mass_tiny", f"{runs}/text_mass", [f"task.data={text_bin}"], s.text_updates)
    train("video_vqvae_tiny", f"{runs}/video_vqvae", [*video_data, *VQVAE], s.vqvae_updates)
    train("video_gpt_tiny", f"{runs}/video_gpt", [*video_data, "task.skip_short_clips=true",
                                                 f"model.vqvae_checkpoint={runs}/video_vqvae/ckpt/checkpoint_last.pt"], s.gpt_updates)
    text_ckpt, video_ckpt = f"{runs}/text_mass/ckpt/checkpoint_best.pt", f"{runs}/video_gpt/ckpt/checkpoint_last.pt"
    stages = [f"model.text_checkpoint={text_ckpt}", f"model.video_checkpoint={video_ckpt}"]
    without = f"{runs}/without_joint.pt"
    run([sys.executable, f"{SCRIPTS}/assemble_uslnet.py", "--text-checkpoint", text_ckpt,
         "--video-checkpoint", video_ckpt, "--data", text_bin, "--video-data", video,
         "--video-cache", f"{video}/cache", "--out", without])
    joint = [f"task.data={text_bin}", *video_data, *stages]
    train("joint_tiny", f"{runs}/unsupervised", [*joint, f"dataset.batch_size={s.unsupervised_batch}", *at_the_end(s.unsupervised_updates)],
          s.unsupervised_updates)
    train("joint_tiny", f"{runs}/supervised", [*joint, "task.joint_mode=supervised", "dataset.train_subset=train_paired",
                                               *at_the_end(s.supervised_updates)], s.supervised_updates)
    data = [f"task.data={text_bin}", *video_data, f"dataset.batch_size={s.unsupervised_batch}"]  # the stages come with model.init_checkpoint
    lexicon = lexicon_bootstrap(corpus, runs, data, without, s)
    checkpoints = {"without_joint": without, "unsupervised": f"{runs}/unsupervised/ckpt/checkpoint_last.pt",
                   "lexicon_bt": lexicon.pop("checkpoint"), "supervised": f"{runs}/supervised/ckpt/checkpoint_last.pt"}
    rows = {name: translation_bleu(path, text_bin, f"{out}/generate_{name}.txt") for name, path in checkpoints.items()}
    generation = sign_generation(checkpoints["lexicon_bt"], corpus, f"{out}/generation_lexicon_bt")
    results = {"scale": scale, "settings": asdict(s), "seed": seed, "test_sentences": rows["supervised"]["n"], "bleu": rows,
               "checkpoints": checkpoints, "lexicon": lexicon, "generation_lexicon_bt": generation, "corpus": corpus, "minutes": round((time.time() - start) / 60, 1)}
    with atomic_open(f"{out}/results.json", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    table = ["| USLNet | BLEU-1 | BLEU-4 | BLEU-1 / BLEU-4, shuffled references | distinct outputs | reads the clip |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    names = {"without_joint": "w/o joint training", "unsupervised": "w. joint training (U)", "lexicon_bt": "U (lexicon + BT)",
             "supervised": "supervised (S)"}
    table += [f"| {names[k]} | {v['bleu1']:.2f} | {v['bleu4']:.2f} | {v['shuffled_bleu1']:.2f} / {v['shuffled_bleu4']:.2f} | "
              f"{v['distinct_outputs']} of {v['n']} | {'yes' if v['reads_input'] else '**no: output does not depend on the clip**'} |"
              for k, v in rows.items()]
    table += ["", f"U (lexicon + BT), text -> sign video, back-translated: BLEU-1 {generation['back_translation_bleu1']:.2f} against "
              f"{generation['back_translation_shuffled_bleu1']:.2f} for shuffled sentences, {generation['back_translation_distinct_outputs']} "
              f"distinct of {generation['n']}; generated beside real clips: {generation['sheet']}"]
    with atomic_open(f"{out}/results.md", encoding="utf-8") as f:
        f.write("\n".join(table) + "\n")
    print("\n".join(table))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the corpus, the runs and the results")
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed")
    args = ap.parse_args(argv)
    try:
        compare(args.out, args.scale, args.seed)
    except (RuntimeError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
