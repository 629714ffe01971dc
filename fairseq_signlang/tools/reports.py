"""Files a person reads after training and evaluation: metrics and rankings as JSON, alignment
pictures, training curves."""
import os
from typing import Dict, Optional, Sequence

from fairseq_signlang.io.writers import write_json
from fairseq_signlang.metrics.retrieval import pair_cosine_cost
from fairseq_signlang.tools.objective_bench import reference_baselines
from fairseq_signlang.tools.training import log_records
from fairseq_signlang.viz.alignment import plot_alignments, plot_curves

METRIC_KEYS = ("uer", "a2v_recall@1", "a2v_recall@5", "a2v_recall@10", "v2a_recall@1", "v2a_recall@5", "v2a_recall@10")


def write_evaluation(result: Dict, out_dir: str, task, num_pairs: int = 6, word_labels: Optional[Sequence[str]] = None) -> Dict:
    """metrics.json (UER and recall@k), rankings.json (top candidates and the rank of the true
    item, both directions) and alignments.png (DTW paths of the first `num_pairs` true pairs).
    `word_labels`, when known, name the sign units on the picture's axes."""
    metrics = {k: round(float(result[k]), 2) for k in METRIC_KEYS}
    write_json(os.path.join(out_dir, "metrics.json"), metrics)
    write_json(os.path.join(out_dir, "rankings.json"), {"split": result["split"], "metrics": metrics, **result["rankings"]})
    dataset = task.datasets[result["split"]]
    sign_dict = task.target_dictionary
    maps, titles, sp_labels, sg_labels = [], [], [], []
    name = (lambda i: word_labels[i]) if word_labels is not None else (lambda i: sign_dict[i])
    for i in range(min(num_pairs, len(dataset.refs))):
        probs = result["_probs"][i, : result["_lengths"][i]]
        ref = dataset.refs[i]
        maps.append(1.0 - pair_cosine_cost(probs, ref).numpy())
        better = result["rankings"]["a2v"]["better_than_true"][i]
        ties = result["rankings"]["a2v"]["tied_with_true"][i]
        cap = result["rankings"]["a2v"].get("capped_at")
        rank = f"below the top {cap}" if cap is not None and better >= cap else f"ranked {better + 1}"
        titles.append(f"{result['split']} #{i}: true sign {rank}" + (f" (tied with {ties})" if ties else ""))
        sp_labels.append([name(int(u)) for u in probs.argmax(-1)])
        sg_labels.append([name(int(u)) for u in ref])
    plot_alignments(maps, os.path.join(out_dir, "alignments.png"), titles, sp_labels, sg_labels)
    return metrics


BUILD_COLUMNS = (
    ("uer", "UER"), ("oracle_uer", "oracle UER"), ("majority_uer", "majority UER"),
    ("a2v_recall@1", "A->V R@1"), ("v2a_recall@1", "V->A R@1"), ("chance_recall@1", "chance R@1"),
)


def build_summary(metrics: Dict, data: str, test_sentences: int) -> Dict:
    """A build's test metrics beside the split's oracle and majority-unit UER and chance R@1."""
    baselines = {k: round(v, 2) for k, v in reference_baselines(data).items()}
    return {**metrics, **baselines, "chance_recall@1": round(100.0 / test_sentences, 2)}


def builds_table(summary: Dict[str, Dict]) -> str:
    """One markdown row per corpus build (hidden pairing, disjoint sentences): the test split's
    scores beside its oracle, majority-unit baseline and chance recall."""
    head = "| build | " + " | ".join(title for _, title in BUILD_COLUMNS) + " |"
    rule = "| --- |" + " ---: |" * len(BUILD_COLUMNS)
    rows = [f"| {name} | " + " | ".join(f"{row[key]:.1f}" for key, _ in BUILD_COLUMNS) + " |" for name, row in summary.items()]
    return "\n".join([head, rule, *rows])


def training_curves(log_text: str, out_png: str) -> None:
    """The training loss (`{out}_loss.png`) and validation UER and A->V R@1 (`out_png`) over updates."""
    train = log_records(log_text, "train_inner")
    valid = [r for r in log_records(log_text, "valid") if "valid_a2v_recall@1" in r]
    plot_curves([int(r["num_updates"]) for r in train], {"train loss": [float(r["loss"]) for r in train]}, out_png.replace(".png", "_loss.png"))
    plot_curves(
        [int(r["valid_num_updates"]) for r in valid],
        {"valid A->V R@1 (%)": [float(r["valid_a2v_recall@1"]) for r in valid], "valid UER (%)": [float(r["valid_uer"]) for r in valid]},
        out_png,
    )

