#!/usr/bin/env python
"""What the paper's largest word-level setting costs here: ASL LibriSpeech 1000's size (1000 words,
2000 speech clusters, ~290k training sentences, 2.7k valid, 2.5k test, batch 12k), as a simulated
unit corpus (corpora/synthetic/simulated_units.py), trained through fairseq-hydra-train with
`word_vocab1000` (the paper's L1 terms) and `word_decipher_vocab1000` (decipherment, stepwise EM)
for a few updates each, on CPU and, where torch sees one, on a GPU.

For each run it prints seconds per update (the mean over the updates after the first, which also
builds what is built once), peak memory (the training process's max RSS; on a GPU also
torch.cuda.max_memory_allocated), the task's load_dataset time of the training split, and the
projected wall time of the paper's schedule: 3000 x floor(train sentences / batch) updates x
seconds per update (and of the config's own max_update; for decipherment its warm start's L1
updates at the L1 run's rate). Writes {out}/results.json and {out}/table.md. The corpus is built
once into {out}/data and reused while its settings match (--rebuild builds it again).

Decipherment runs with criterion.warm_start_updates=0, so every timed update is an EM update; its
warm start costs what the L1 run measures. Validation and checkpoints are off: they are not part of
the per-update cost (validation of 2.7k sentences also runs DTW retrieval, see bench_retrieval.py).
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch
import yaml

from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences
from fairseq_signlang.io.writers import atomic_open, write_json
from fairseq_signlang.tools.training import REPO_DIR, run_hydra_train

CONFIG_DIR = os.path.join(REPO_DIR, "examples", "speech2sign_u")
PAPER_EPOCHS = 3000  # the paper's schedule: 3000 x floor(size / batch) updates
COLUMNS = (
    ("config", "config"), ("device", "device"), ("load_average", "load avg"), ("train_sentences", "train sentences"), ("batch", "batch"),
    ("updates_timed", "updates timed"), ("s_per_update", "s / update"), ("first_update_s", "first update s"),
    ("max_rss_mib", "peak RSS MiB"), ("cuda_max_allocated_mib", "peak GPU MiB"), ("load_train_s", "load train s"),
    ("sign_chain_s", "sign chain s"), ("paper_updates", "paper updates"), ("paper_hours", "paper schedule h"),
    ("config_updates", "config updates"), ("config_hours", "config schedule h"),
)


def paper_updates(train_sentences: int, batch: int) -> int:
    return PAPER_EPOCHS * (train_sentences // batch)


def build_corpus(out: str, args) -> dict:
    """The unit corpus in {out}/data, reused when ground_truth.json says it was built with these settings."""
    data = os.path.join(out, "data")
    spec = UnitCorpusSpec(
        clusters_per_word=args.clusters // args.words, valid_sentences=args.valid, test_sentences=args.test, seed=args.seed
    )
    want = {"words": args.words, "clusters": args.clusters, "sentences": args.sentences, "seed": args.seed,
            "valid": args.valid, "test": args.test}
    truth_path, meta_path = os.path.join(data, "ground_truth.json"), os.path.join(data, "bench_scale.json")
    if not args.rebuild and os.path.isfile(truth_path) and os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("settings") == want:
            print(f"corpus: reusing {data} (built in {meta['build_s']:.1f} s)")
            return {**meta, "data": data, "reused": True}
    shutil.rmtree(data, ignore_errors=True)
    total = args.sentences + args.valid + args.test
    print(f"corpus: {total} sentences over {args.words} words, {args.clusters} speech clusters -> {data}")
    t0 = time.perf_counter()
    sentences = markov_sentences(args.words, total, seed=args.seed)
    t1 = time.perf_counter()
    truth = build_unit_corpus(sentences, [f"w{i}" for i in range(args.words)], data, spec)
    t2 = time.perf_counter()
    meta = {
        "settings": want, "sentences_s": t1 - t0, "write_s": t2 - t1, "build_s": t2 - t0,
        "split_sentences": truth["sentences"], "train_words": sum(len(s) for s in sentences[: args.sentences]),
    }
    with atomic_open(meta_path, encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    print(f"corpus: built in {meta['build_s']:.1f} s (sentences {meta['sentences_s']:.1f} s, files {meta['write_s']:.1f} s)")
    return {**meta, "data": data, "reused": False}


def config_max_update(name: str) -> int:
    with open(os.path.join(CONFIG_DIR, f"{name}.yaml"), encoding="utf-8") as f:
        return int(yaml.safe_load(f)["optimization"]["max_update"])


def config_warm_start(name: str) -> int:
    with open(os.path.join(CONFIG_DIR, f"{name}.yaml"), encoding="utf-8") as f:
        return int(yaml.safe_load(f).get("criterion", {}).get("warm_start_updates", 0))


def time_run(config: str, device: str, threads: int, data: str, out: str, args) -> dict:
    """Train `config` for args.updates updates on `device` with `threads` torch threads (0: torch's
    default) and measure it (tools/measured_training.py)."""
    run_dir = os.path.join(out, "runs", f"{config}_{device}" + (f"_{threads}t" if threads else ""))
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    result_path = os.path.join(run_dir, "measured.json")
    overrides = [
        f"task.data={data}", f"checkpoint.save_dir={os.path.join(run_dir, 'checkpoints')}",
        f"hydra.run.dir={os.path.join(run_dir, 'hydra')}", f"optimization.max_update={args.updates}",
        f"dataset.batch_size={args.batch}", "dataset.disable_validation=true", "checkpoint.no_save=true",
        "common.log_format=json", "common.log_interval=1", f"common.cpu={'true' if device == 'cpu' else 'false'}",
    ]
    if config_warm_start(config):
        overrides.append("criterion.warm_start_updates=0")  # time EM updates; the L1 run times the warm start's
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    launcher = [sys.executable, "-m", "fairseq_signlang.tools.measured_training", result_path]
    load_before = os.getloadavg()[0]  # other jobs on the machine slow every figure: say how busy it was
    run_hydra_train(CONFIG_DIR, config, overrides, os.path.join(run_dir, "train.log"), max_update=args.updates,
                    desc=f"{config} ({device})", env=env, launcher=launcher)
    with open(result_path, encoding="utf-8") as f:
        m = json.load(f)
    starts, ends = m["update_starts"], m["update_ends"]
    if len(starts) < 2:
        raise RuntimeError(f"{config} ({device}): {len(starts)} update(s) ran; --updates must be 2 or more")
    return {
        "config": config,
        "device": m.get("cuda_device", "cuda") if device != "cpu" else f"cpu ({m['torch_threads']} thread{'s' if m['torch_threads'] > 1 else ''})",
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),  # 1-minute load average, before and after
        "updates_timed": len(starts) - 1,
        "s_per_update": (ends[-1] - starts[1]) / (len(starts) - 1),  # after the first, gaps between updates included
        "first_update_s": ends[0] - starts[0],
        "max_rss_mib": m["max_rss_mib"], "cuda_max_allocated_mib": m.get("cuda_max_allocated_mib"),
        "load_train_s": m["load_dataset_s"].get("train"), "sign_chain_s": m["sign_chain_s"],
        "measured": m,
    }


def add_projections(rows, train_sentences: int, batch: int) -> None:
    """Paper schedule for every row; the config's own max_update, with decipherment's warm start
    at the rate of the L1 row on the same device when there is one."""
    for row in rows:
        row["paper_updates"] = paper_updates(train_sentences, batch)
        row["paper_hours"] = row["paper_updates"] * row["s_per_update"] / 3600.0
        total, warm = config_max_update(row["config"]), config_warm_start(row["config"])
        l1 = [r for r in rows if r["device"] == row["device"] and not config_warm_start(r["config"]) and r is not row
              and "decipher" not in r["config"]]
        warm_rate = l1[0]["s_per_update"] if (warm and l1) else row["s_per_update"]
        row["config_updates"] = total
        row["config_hours"] = (warm * warm_rate + (total - warm) * row["s_per_update"]) / 3600.0


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def format_table(rows) -> str:
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "| --- | --- |" + " ---: |" * (len(COLUMNS) - 2)  # config and device left, numbers right
    return "\n".join([head, rule, *("| " + " | ".join(_cell(r.get(k)) for k, _ in COLUMNS) + " |" for r in rows)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/bench_scale")
    ap.add_argument("--words", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=2000, help="speech clusters (a multiple of --words)")
    ap.add_argument("--sentences", type=int, default=290000, help="training sentences")
    ap.add_argument("--valid", type=int, default=2700)
    ap.add_argument("--test", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=12000, help="sentences per batch (the paper's 12k at vocabulary 1000)")
    ap.add_argument("--updates", type=int, default=4, help="updates per run (2 or more; the first is not timed)")
    ap.add_argument("--configs", nargs="+", default=["word_vocab1000", "word_decipher_vocab1000"])
    ap.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], help="default: cpu, and cuda when torch sees a GPU")
    ap.add_argument("--threads", type=int, nargs="+", default=[0],
                    help="torch threads of the CPU runs, one set of runs per value (0: torch's default); GPU runs take the first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rebuild", action="store_true", help="build the corpus again even if one with these settings is there")
    args = ap.parse_args()
    if args.clusters % args.words or args.updates < 2:
        sys.exit("error: --clusters must be a multiple of --words, and --updates 2 or more")
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        sys.exit("error: --devices cuda, but torch sees no GPU")
    out = os.path.abspath(args.out)
    corpus = build_corpus(out, args)
    train_sentences = corpus["split_sentences"]["train_speech"]
    rows = []
    for device in devices:
        for threads in args.threads if device == "cpu" else args.threads[:1]:
            for config in args.configs:
                row = time_run(config, device, threads, corpus["data"], out, args)
                rows.append({**row, "train_sentences": train_sentences, "batch": args.batch})
    add_projections(rows, train_sentences, args.batch)
    table = format_table(rows)
    print(table)
    with atomic_open(os.path.join(out, "table.md"), encoding="utf-8") as f:
        f.write(table + "\n")
    results = {"corpus": {k: v for k, v in corpus.items() if k != "data"}, "gpu_present": torch.cuda.is_available(),
               "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}
    write_json(os.path.join(out, "results.json"), results)
    print(f"wrote {out}/results.json and {out}/table.md")


if __name__ == "__main__":
    main()
