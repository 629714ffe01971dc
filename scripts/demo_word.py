#!/usr/bin/env python
"""The offline demo: word-level speech2sign-U end to end, on CPU, in minutes.

1. Real English sentences (the King James Bible from Debian's bible-kjv, or --text), restricted
   to the 100 most frequent words, sentences of at least 5 such words (as ASL LibriSpeech 100).
2. A word-level unit corpus with a known mapping: about 4 speech clusters per word with
   imperfect purity, one sign unit per word with a few visually similar pairs sharing one;
   every sentence rendered in both modalities and the sign side shuffled, so the pairing is
   hidden (as ASL LibriSpeech); and the disjoint build, speech and sign from different halves of
   the sentences (separately collected corpora), under --out/disjoint. Each build's unpairedness
   report (scripts/check_unpaired.py, over the words the units render) is printed and written
   to unpairedness.json.
3. Training through fairseq-hydra-train (examples/speech2sign_u/word_decipher_tiny.yaml: 200
   updates of the paper's L1 terms, then decipherment by EM; checkpoints chosen by speech_nll).
4. DTW retrieval on the test split: metrics.json, rankings.json, alignments.png,
   training_curves.png, mapping.png per build; summary.json and a table of both builds beside
   their oracle and trivial baselines.
"""
import argparse
import os
import sys

import numpy as np

from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus
from fairseq_signlang.corpora.text_sources import kjv_sentences, restrict_vocabulary, text_file_sentences
from fairseq_signlang.io.writers import write_json
from fairseq_signlang.tools.reports import build_summary, builds_table, training_curves
from fairseq_signlang.tools.training import add_demo_training_args, train_demo_model
from fairseq_signlang.tools.unpairedness import check_unpaired, print_summary



def mapping_picture(model, task, truth, out_png: str) -> None:
    """Learned G(sign | speech cluster), rows grouped by each cluster's word, columns by that
    word's true sign unit: a recovered mapping is a block diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fairseq_signlang.io.writers import atomic_open

    G = model.generator.unit_posteriors().detach().cpu().numpy()
    src, sign = task.source_dictionary, task.target_dictionary
    rows = [src.index(str(c)) for cl in truth["clusters_of_word"] for c in cl]
    cols = [sign.index(str(u)) for u in dict.fromkeys(truth["sign_of_word"])]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(G[np.ix_(rows, cols)], aspect="auto", cmap="magma", vmin=0, vmax=1)
    ax.set_xlabel("sign unit (ordered by word)")
    ax.set_ylabel("speech cluster (grouped by word)")
    ax.set_title("learned G(sign | speech)")
    fig.tight_layout()
    with atomic_open(out_png, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/demo", help="output folder")
    ap.add_argument("--text", help="plain text file, one sentence per line (default: the KJV Bible)")
    ap.add_argument("--vocab", type=int, default=100, help="vocabulary size")
    ap.add_argument("--sentences", type=int, default=14000, help="sentences used (train halves + valid + test)")
    add_demo_training_args(ap)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = os.path.abspath(args.out)

    print("[1/4] sentences")
    try:
        sentences = text_file_sentences(args.text) if args.text else kjv_sentences()
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    vocab, kept = restrict_vocabulary(sentences, args.vocab, min_words=5)
    rng = np.random.default_rng(args.seed)
    kept = [kept[i] for i in rng.permutation(len(kept))[: args.sentences]]
    print(f"      {len(kept)} sentences of >= 5 words from a {len(vocab)}-word vocabulary")

    from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint
    from fairseq_signlang.tools.reports import write_evaluation

    summary = {}
    for build in args.builds:
        run_out = out if build == "hidden" else os.path.join(out, "disjoint")
        data = os.path.join(run_out, "data")
        print(f"[2/4] {build} build: unit corpus with a known mapping")
        truth = build_unit_corpus(kept, vocab, data, UnitCorpusSpec(disjoint_halves=build == "disjoint", seed=args.seed))
        print(f"      {truth['sentences']}, similar sign pairs: {truth['similar_sign_pairs']}")
        print_summary(check_unpaired(f"{data}/train.src.wrd", f"{data}/train.sign.wrd", [f"{data}/valid.wrd", f"{data}/test.wrd"],
                                     names=("speech", "sign")), os.path.join(run_out, "unpairedness.json"))

        print(f"[3/4] {build} build: fairseq-hydra-train (examples/speech2sign_u/{args.config}.yaml)")
        ckpt_dir, log_text = train_demo_model(data, run_out, args.max_update, args.seed, args.config,
                                              [f"criterion.warm_start_updates={args.warm_start_updates}"])
        training_curves(log_text, os.path.join(run_out, "training_curves.png"))

        print(f"[4/4] {build} build: retrieval on the test split")
        model, task = load_checkpoint(os.path.join(ckpt_dir, "checkpoint_best.pt"), data, "cpu")
        result = evaluate_split(model, task, "test")
        sign_dict = task.target_dictionary
        words_of_unit = {}
        for w, u in zip(truth["vocab"], truth["sign_of_word"]):
            words_of_unit.setdefault(str(u), []).append(w)
        labels = ["/".join(words_of_unit.get(sign_dict[i], [sign_dict[i]])) for i in range(len(sign_dict))]
        metrics = write_evaluation(result, run_out, task, word_labels=labels)
        mapping_picture(model, task, truth, os.path.join(run_out, "mapping.png"))
        summary[build] = build_summary(metrics, data, len(task.datasets["test"]))
    write_json(os.path.join(out, "summary.json"), summary)
    print(builds_table(summary))
    print(f"wrote {out}/summary.json, unpairedness.json, metrics.json, rankings.json, alignments.png, training_curves.png, mapping.png"
          + (" (and the same under disjoint/)" if "disjoint" in summary else ""))


if __name__ == "__main__":
    main()
