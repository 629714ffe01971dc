#!/usr/bin/env python
"""The offline demo on real media: word-level speech2sign-U from spoken audio and sign video.

1. Real English sentences (the King James Bible from Debian's bible-kjv, or --text) over the
   100 most frequent words, sentences of at least 5 of them (as ASL LibriSpeech 100).
2. Sign clips: a procedural signer renders every word as video for several signers (body size
   and position, speed, movement size vary; a few word pairs get visually similar signs).
   scripts/build_word_corpus.py's library call builds the corpora: for training, the sign side
   is the same sentences shuffled (the pairing hidden); valid and test are paired for scoring.
   The unpairedness report (scripts/check_unpaired.py) of the training sides against valid and
   test is printed and written to unpairedness.json (and disjoint/unpairedness.json).
3. Speech: flite and espeak-ng voices at two speaking rates speak every sentence word by word,
   so word boundaries are exact; a random voice per sentence.
4. The scripts a user runs on their own data: speech manifests, log-mel features (the offline
   stand-in for wav2vec 2.0), word pooling, sign clip features (glove tracking, the stand-in for
   I3D), clip pooling, k-means for both (the speech cluster count chosen by purity, about 90 %
   as in the paper), and the task's data folder.
5. fairseq-hydra-train (examples/speech2sign_u/word_decipher_tiny.yaml: 200 updates of the
   paper's L1 terms, then decipherment by EM; the checkpoint chosen by the label-free speech_nll)
   and DTW retrieval on the test split. Writes metrics.json, rankings.json, alignments.png,
   training_curves.png, purity.json, sample sign videos and spoken sentences under --out.
6. The disjoint build (--builds): speech from one half of the training sentences, signs from the
   other half, as separately collected corpora; its sign clusters fitted on its own half, its
   speech units those of step 4. Trained and scored the same way under --out/disjoint.
   summary.json and the printed table put both builds beside their oracle (each speech cluster
   read as the sign cluster it most often stands for) and trivial baselines.
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import soundfile as sf
from tqdm import tqdm

from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.corpora.sign_corpus import ClipPool, build_word_corpus, read_sign_corpus
from fairseq_signlang.corpora.text_sources import kjv_sentences, restrict_vocabulary, text_file_sentences
from fairseq_signlang.corpora.synthetic.tts import WordSpeaker
from fairseq_signlang.io.readers import read_cluster_ids
from fairseq_signlang.io.writers import atomic_open, write_json, write_lines, write_unit_sentences
from fairseq_signlang.io.video import read_video, write_video
from fairseq_signlang.tools.reports import build_summary, builds_table, training_curves
from fairseq_signlang.tools.training import add_demo_training_args, run_script, train_demo_model
from fairseq_signlang.tools.unpairedness import check_unpaired, print_summary

SPLITS = ("train", "valid", "test")
FPS, SIZE = 25, 96


def render_clip_pool(vocab, out_dir, signers: int, similar: int, variation: float, seed: int):
    """clips/<word>/signer<k>.mp4 for every word and signer; returns the similar pairs."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vocab), size=2 * similar, replace=False)
    pairs = [(vocab[picks[2 * i]], vocab[picks[2 * i + 1]]) for i in range(similar)]
    signer = ProceduralSigner(vocab, similar_pairs=pairs, seed=seed, variation=variation)
    shutil.rmtree(out_dir, ignore_errors=True)
    for w in tqdm(vocab, desc="render signs", unit="word"):
        for k in range(signers):
            write_video(os.path.join(out_dir, w, f"signer{k}.mp4"), render(signer.word(w, k, rng), (SIZE, SIZE)), fps=FPS)
    return pairs


def speak_split(speaker: WordSpeaker, corpus_dir: str, audio_dir: str, alignment_path: str, rng) -> float:
    """One wav per sentence of speech.jsonl and its word alignment (one JSON line each)."""
    with open(os.path.join(corpus_dir, "speech.jsonl"), encoding="utf-8") as f:
        sentences = [json.loads(line)["words"] for line in f]
    lines, seconds = [], 0.0
    for i, words in enumerate(tqdm(sentences, desc=f"speak {os.path.basename(audio_dir)}", unit="sent")):
        voice = speaker.voices[rng.integers(len(speaker.voices))]
        wav, alignment = speaker.sentence(words, voice, rng)
        with atomic_open(os.path.join(audio_dir, f"{i:06d}.wav"), "wb") as f:
            sf.write(f, wav, speaker.sample_rate, format="WAV", subtype="PCM_16")
        lines.append(json.dumps([{"word": w, "start": round(a, 4), "end": round(b, 4)} for w, a, b in alignment]))
        seconds += len(wav) / speaker.sample_rate
    write_lines(alignment_path, lines)
    return seconds


def choose_speech_clusters(out: str, candidates) -> int:
    """k-means for each candidate count; the smallest reaching 90 % purity on train, else the purest."""
    reports = {}
    for k in candidates:
        km = os.path.join(out, "km", f"speech_{k}")
        run_script("cluster_features.py", "kmeans", "--fit", f"{out}/feats/speech_words/train", "-k", k, "--out", km,
                   "--apply", *[f"{out}/feats/speech_words/{s}" for s in SPLITS])
        run_script("cluster_purity.py", "--km", f"{km}/train.km", "--words", f"{out}/feats/speech_words/train.wrd", "--out", f"{km}/purity.json")
        with open(f"{km}/purity.json", encoding="utf-8") as f:
            reports[k] = json.load(f)["purity"]
        print(f"      {k} speech clusters: purity {100 * reports[k]:.1f} %")
    good = [k for k in candidates if reports[k] >= 0.9]
    return (min(good) if good else max(reports, key=reports.get)), reports


def sentence_video(corpus_dir: str, index: int, out_path: str) -> list:
    """The sign video of one sentence: its clips joined in order."""
    entry = read_sign_corpus(os.path.join(corpus_dir, "sign.jsonl"))[index]
    frames = [read_video(path, FPS)[0] for path, _, _ in entry["clips"]]
    write_video(out_path, np.concatenate(frames), fps=FPS)
    return entry["words"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/demo", help="output folder")
    ap.add_argument("--text", help="plain text file, one sentence per line (default: the KJV Bible)")
    ap.add_argument("--vocab", type=int, default=100, help="vocabulary size")
    ap.add_argument("--sentences", type=int, default=6000, help="training sentences (200 more each for valid and test)")
    ap.add_argument("--signers", type=int, default=16, help="signers in the sign clip pool (one clip of each word each)")
    ap.add_argument("--signer-variation", type=float, default=0.5, help="how much signers differ (procedural signer's scale; 0: all alike)")
    ap.add_argument("--similar-pairs", type=int, default=5, help="word pairs with visually similar signs")
    ap.add_argument("--speech-clusters", type=int, nargs="+", help="candidate speech cluster counts (default: 4x and 8x the vocabulary)")
    add_demo_training_args(ap)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    started = time.time()
    rng = np.random.default_rng(args.seed)

    print("[1/6] sentences")
    try:
        sentences = text_file_sentences(args.text) if args.text else kjv_sentences()
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    vocab, kept = restrict_vocabulary(sentences, args.vocab, min_words=5)
    kept = [kept[i] for i in rng.permutation(len(kept))]
    n_eval = min(200, len(kept) // 10)
    split_sentences = {"valid": kept[:n_eval], "test": kept[n_eval : 2 * n_eval], "train": kept[2 * n_eval : 2 * n_eval + args.sentences]}
    print(f"      {len(split_sentences['train'])} training sentences, {n_eval} each for valid and test, {len(vocab)} words")

    print("[2/6] sign clips from the procedural signer, and the corpora")
    pairs = render_clip_pool(vocab, os.path.join(out, "clips"), args.signers, args.similar_pairs, args.signer_variation, args.seed)
    print(f"      {len(vocab)} words x {args.signers} signers; similar signs: {pairs}")
    pool = ClipPool.from_folders(os.path.join(out, "clips"))
    for split in SPLITS:
        build_word_corpus(split_sentences[split], pool, args.vocab, f"{out}/corpus/{split}", pairing="hidden" if split == "train" else "paired",
                          seed=args.seed, vocab=vocab)
    report_unpairedness(f"{out}/corpus/train", out, out)

    print("[3/6] speech from flite and espeak-ng, word by word")
    try:
        speaker = WordSpeaker(vocab)
    except CorpusError as e:
        sys.exit(f"error: {e}\n(make demo installs them; or: apt-get install flite espeak-ng)")
    for split in SPLITS:
        shutil.rmtree(f"{out}/audio/{split}", ignore_errors=True)
        hours = speak_split(speaker, f"{out}/corpus/{split}", f"{out}/audio/{split}", f"{out}/alignments/{split}.jsonl", rng) / 3600
        print(f"      {split}: {hours:.2f} h of speech, {len(speaker.voices)} voices")

    print("[4/6] features, pooling and clustering, with the user-facing scripts")
    for split in SPLITS:
        run_script("speech_manifest.py", f"{out}/audio/{split}", "--out", f"{out}/manifests/{split}.tsv")
        for suffix in (".npy", ".lengths", ".ids", ".bad"):  # a rerun extracts afresh
            if os.path.exists(f"{out}/feats/speech/{split}{suffix}"):
                os.remove(f"{out}/feats/speech/{split}{suffix}")
        run_script("extract_speech_features.py", f"{out}/manifests/{split}.tsv", "--out", f"{out}/feats/speech/{split}", "--cmvn")
        run_script("pool_features.py", "words", "--feats", f"{out}/feats/speech/{split}", "--alignment", f"{out}/alignments/{split}.jsonl",
                   "--frame-rate", 100, "--pieces", 3, "--out", f"{out}/feats/speech_words/{split}")
    k_speech, purity = choose_speech_clusters(out, args.speech_clusters or [4 * len(vocab), 8 * len(vocab)])
    shutil.rmtree(f"{out}/feats/sign_clips", ignore_errors=True)
    run_script("extract_sign_features.py", f"{out}/corpus/train/clips.tsv", "--features", "gloves", "--fps", FPS,
               "--out", f"{out}/feats/sign_clips/all", "--clip-dir", f"{out}/feats/sign_clips/npy")
    for split in SPLITS:
        run_script("pool_features.py", "clips", "--clip-dir", f"{out}/feats/sign_clips/npy", "--corpus", f"{out}/corpus/{split}/sign.jsonl",
                   "--pieces", 3, "--out", f"{out}/feats/sign_words/{split}")
    run_script("cluster_features.py", "kmeans", "--fit", f"{out}/feats/sign_words/train", "-k", len(vocab), "--out", f"{out}/km/sign",
               "--standardize", "--apply", *[f"{out}/feats/sign_words/{s}" for s in SPLITS])
    run_script("cluster_purity.py", "--km", f"{out}/km/sign/train.km", "--words", f"{out}/feats/sign_words/train.wrd", "--out", f"{out}/km/sign/purity.json")
    with open(f"{out}/km/sign/purity.json", encoding="utf-8") as f:
        sign_report = json.load(f)
    purity = {"speech": {str(k): round(v, 4) for k, v in purity.items()}, "speech_clusters": k_speech, "sign": round(sign_report["purity"], 4), "sign_clusters": len(vocab)}
    write_json(f"{out}/purity.json", purity)
    print(f"      chose {k_speech} speech clusters; sign cluster purity {100 * sign_report['purity']:.1f} %")
    data = f"{out}/data"
    run_script("prepare_word_task.py", "--speech-km", f"{out}/km/speech_{k_speech}", "--sign-km", f"{out}/km/sign", "--out", data,
               "--speech-clusters", k_speech, "--sign-clusters", len(vocab))

    summary = {}
    if "disjoint" in args.builds:
        disjoint_data = build_disjoint(out, split_sentences["train"], pool, vocab, k_speech, args.seed)
    for build in args.builds:
        run_out, run_data, sign_km = (out, data, f"{out}/km/sign") if build == "hidden" else (
            os.path.join(out, "disjoint"), disjoint_data, f"{out}/km/sign_disjoint")
        print(f"[5/6] {build} build: fairseq-hydra-train (examples/speech2sign_u/{args.config}.yaml)")
        ckpt_dir, log_text = train_demo_model(run_data, run_out, args.max_update, args.seed, args.config,
                                              [f"criterion.warm_start_updates={args.warm_start_updates}"])
        training_curves(log_text, os.path.join(run_out, "training_curves.png"))
        print(f"[6/6] {build} build: retrieval on the test split")
        summary[build] = evaluate_build(run_out, run_data, ckpt_dir, sign_km)
    samples = os.path.join(out, "samples")
    for i in range(3):
        words = sentence_video(f"{out}/corpus/test", i, os.path.join(samples, f"test{i}_sign.mp4"))
        shutil.copyfile(f"{out}/audio/test/{i:06d}.wav", os.path.join(samples, f"test{i}_speech.wav"))
        write_lines(os.path.join(samples, f"test{i}.txt"), [" ".join(words)])
    write_json(os.path.join(out, "summary.json"), summary)
    print(builds_table(summary))
    print(f"wrote {out}/summary.json, unpairedness.json, metrics.json, rankings.json, alignments.png, training_curves.png, purity.json, samples/"
          + (" and disjoint/" if "disjoint" in summary else "") + f" in {(time.time() - started) / 60:.1f} min")


def report_unpairedness(corpus: str, out: str, run_out: str) -> None:
    """Print how unpaired a training corpus's speech and sign sides are and whether they hold
    valid or test sentences (scripts/check_unpaired.py's report); write it to run_out."""
    refs = [f"{out}/corpus/{split}/speech.jsonl" for split in ("valid", "test")]
    report = check_unpaired(f"{corpus}/speech.jsonl", f"{corpus}/sign.jsonl", refs, names=("speech", "sign"))
    print_summary(report, os.path.join(run_out, "unpairedness.json"))


def build_disjoint(out: str, train_sentences, pool: ClipPool, vocab, k_speech: int, seed: int) -> str:
    """The data folder of the disjoint build: the speech of one half of the training sentences
    (their units from the speech k-means of step 4) and the signs of the other half, clustered
    with k-means fitted on that half alone."""
    print("      disjoint build: speech and sign from different halves of the training sentences")
    corpus = f"{out}/corpus/train_disjoint"
    build_word_corpus(train_sentences, pool, len(vocab), corpus, pairing="disjoint", seed=seed, vocab=vocab)
    report_unpairedness(corpus, out, os.path.join(out, "disjoint"))
    with open(f"{out}/corpus/train/speech.jsonl", encoding="utf-8") as f:
        line_of_utt = {json.loads(line)["utt"]: i for i, line in enumerate(f)}
    with open(f"{corpus}/speech.jsonl", encoding="utf-8") as f:
        utts = [json.loads(line)["utt"] for line in f]
    speech_km = f"{out}/km/speech_{k_speech}"
    units = read_cluster_ids(f"{speech_km}/train.km")
    write_unit_sentences(f"{speech_km}/train_disjoint.km", [units[line_of_utt[u]].tolist() for u in utts])
    run_script("pool_features.py", "clips", "--clip-dir", f"{out}/feats/sign_clips/npy", "--corpus", f"{corpus}/sign.jsonl",
               "--pieces", 3, "--out", f"{out}/feats/sign_words/train_disjoint")
    sign_km = f"{out}/km/sign_disjoint"
    run_script("cluster_features.py", "kmeans", "--fit", f"{out}/feats/sign_words/train_disjoint", "-k", len(vocab), "--out", sign_km,
               "--standardize", "--apply", *[f"{out}/feats/sign_words/{s}" for s in ("train_disjoint", "valid", "test")])
    run_script("cluster_purity.py", "--km", f"{sign_km}/train_disjoint.km", "--words", f"{out}/feats/sign_words/train_disjoint.wrd",
               "--out", f"{sign_km}/purity.json")
    data = f"{out}/data_disjoint"
    run_script("prepare_word_task.py", "--speech-km", speech_km, "--sign-km", sign_km, "--train-split", "train_disjoint", "--out", data,
               "--speech-clusters", k_speech, "--sign-clusters", len(vocab))
    return data


def evaluate_build(run_out: str, data: str, ckpt_dir: str, sign_km: str) -> dict:
    """Test-split scores of checkpoint_best.pt (metrics.json, rankings.json, alignments.png under
    run_out) beside the split's oracle, majority-unit baseline and chance recall."""
    from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint
    from fairseq_signlang.tools.reports import write_evaluation

    model, task = load_checkpoint(os.path.join(ckpt_dir, "checkpoint_best.pt"), data, "cpu")
    result = evaluate_split(model, task, "test")
    with open(os.path.join(sign_km, "purity.json"), encoding="utf-8") as f:
        majority = json.load(f)["majority"]  # each sign unit is named by the word most of its clips show
    sign_dict = task.target_dictionary
    metrics = write_evaluation(result, run_out, task, word_labels=[majority.get(sign_dict[i], sign_dict[i]) for i in range(len(sign_dict))])
    return build_summary(metrics, data, len(task.datasets["test"]))


if __name__ == "__main__":
    main()
