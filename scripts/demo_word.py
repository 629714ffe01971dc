#!/usr/bin/env python
"""The offline demo: word-level speech2sign-U end to end, on CPU, in minutes.

1. Real English sentences (the King James Bible from Debian's bible-kjv, or --text), restricted
   to the 100 most frequent words, sentences of at least 5 such words (as ASL LibriSpeech 100).
2. A word-level unit corpus with a known mapping: about 4 speech clusters per word with
   imperfect purity, one sign unit per word with a few visually similar pairs sharing one;
   every sentence rendered in both modalities and the sign side shuffled, so the pairing is
   hidden (as ASL LibriSpeech; --disjoint-halves draws the two sides from different sentences).
3. Training through fairseq-hydra-train (examples/speech2sign_u/word_tiny.yaml).
4. DTW retrieval on the test split: metrics.json, rankings.json, alignments.png,
   training_curves.png, mapping.png under --out.
"""
import argparse
import json
import os
import sys

import numpy as np

from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus
from fairseq_signlang.corpora.text_sources import kjv_sentences, restrict_vocabulary, text_file_sentences
from fairseq_signlang.tools.reports import training_curves
from fairseq_signlang.tools.training import train_demo_model


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
    ap.add_argument("--max-update", type=int, default=200, help="training updates")
    ap.add_argument(
        "--disjoint-halves",
        action="store_true",
        help="draw speech and sign from disjoint sentences instead of hiding the pairing of one set (much harder)",
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    data = os.path.join(out, "data")

    print("[1/4] sentences")
    try:
        sentences = text_file_sentences(args.text) if args.text else kjv_sentences()
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    vocab, kept = restrict_vocabulary(sentences, args.vocab, min_words=5)
    rng = np.random.default_rng(args.seed)
    kept = [kept[i] for i in rng.permutation(len(kept))[: args.sentences]]
    print(f"      {len(kept)} sentences of >= 5 words from a {len(vocab)}-word vocabulary")

    print("[2/4] unit corpus with a known mapping")
    truth = build_unit_corpus(kept, vocab, data, UnitCorpusSpec(disjoint_halves=args.disjoint_halves, seed=args.seed))
    print(f"      {truth['sentences']}, similar sign pairs: {truth['similar_sign_pairs']}")

    print("[3/4] fairseq-hydra-train (examples/speech2sign_u/word_tiny.yaml)")
    ckpt_dir, log_text = train_demo_model(data, out, args.max_update, args.seed)
    training_curves(log_text, os.path.join(out, "training_curves.png"))

    print("[4/4] retrieval on the test split")
    from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint
    from fairseq_signlang.tools.reports import write_evaluation

    model, task = load_checkpoint(os.path.join(ckpt_dir, "checkpoint_best.pt"), data, "cpu")
    result = evaluate_split(model, task, "test")
    sign_dict = task.target_dictionary
    words_of_unit = {}
    for w, u in zip(truth["vocab"], truth["sign_of_word"]):
        words_of_unit.setdefault(str(u), []).append(w)
    labels = ["/".join(words_of_unit.get(sign_dict[i], [sign_dict[i]])) for i in range(len(sign_dict))]
    metrics = write_evaluation(result, out, task, word_labels=labels)
    mapping_picture(model, task, truth, os.path.join(out, "mapping.png"))
    print(json.dumps(metrics, indent=1))
    print(f"wrote {out}/metrics.json, rankings.json, alignments.png, training_curves.png, mapping.png")


if __name__ == "__main__":
    main()
