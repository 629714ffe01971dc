"""Word-level objectives side by side on corpora with a known mapping: what scripts/bench_decipherment.py
runs. Each corpus is built from text (by default Debian's fortunes, which no test uses) in one
of two settings, each objective trained on it through fairseq-hydra-train, the checkpoint chosen
by the label-free speech_nll, and the test split scored beside the corpus's oracle and a trivial
baseline."""
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus
from fairseq_signlang.corpora.text_sources import restrict_vocabulary
from fairseq_signlang.metrics.uer import unit_error_rate
from fairseq_signlang.tools.tables import format_table
from fairseq_signlang.tools.training import REPO_DIR, log_records, run_hydra_train

CONFIG_DIR = os.path.join(REPO_DIR, "examples", "speech2sign_u")


@dataclass(frozen=True)
class Objective:
    """A config per vocabulary size (`{vocab}` in the name), the overrides the benchmark adds and
    its updates (0: the config's)."""

    config: str
    overrides: Sequence[str] = ()
    max_update: int = 0

    def config_name(self, vocab: int) -> str:
        return self.config.format(vocab=vocab)


OBJECTIVES: Dict[str, Objective] = {
    # the paper's objective and settings (eq. 8-11, K=6, batch 16k, Adam 0.4), validated more often
    "l1": Objective("word_vocab{vocab}", ("checkpoint.save_interval_updates=100", "dataset.validate_interval_updates=100")),
    # decipherment as the configs run it: 200 updates of the L1 terms, then EM
    "l1+decipher": Objective("word_decipher_vocab{vocab}"),
    # decipherment from a random G: EM only
    "decipher": Objective("word_decipher_vocab{vocab}", ("criterion.warm_start_updates=0",), max_update=150),
    # l1+decipher under the plain sign bigram, decoded by Viterbi (the configs before sign_lm_states)
    "l1+decipher-bigram": Objective("word_decipher_vocab{vocab}", ("task.sign_lm_states=1", "task.decoding=viterbi")),
}
PAIRINGS = ("hidden", "disjoint")


def check_configs(objectives: Sequence[str], vocab_sizes: Sequence[int]) -> None:
    """Every objective has a config at every vocabulary size, before any corpus is built (hydra
    would otherwise fail on the first override, not on the missing config)."""
    for name in objectives:
        objective = OBJECTIVES[name]
        for vocab in vocab_sizes:
            if not os.path.isfile(os.path.join(CONFIG_DIR, objective.config_name(vocab) + ".yaml")):
                pattern = re.escape(objective.config + ".yaml").replace(re.escape("{vocab}"), r"(\d+)")
                sizes = sorted(int(m.group(1)) for f in os.listdir(CONFIG_DIR) if (m := re.fullmatch(pattern, f)))
                raise ValueError(f"objective {name} has no config for {vocab} words ({CONFIG_DIR}/{objective.config_name(vocab)}.yaml); "
                                 f"it has configs for {', '.join(map(str, sizes))} words")


def _read_lines(path: str) -> List[List[str]]:
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f]


def reference_baselines(data: str, split: str = "test", merge_repeats: bool = False) -> Dict[str, float]:
    """The oracle (each speech unit read as the sign unit it most often stands for in this split:
    no mapping of speech units does better) and the trivial baseline (every word read as the most
    frequent sign unit), as UER on the split. merge_repeats: repeats of a unit in the mapped
    sequence are merged before scoring, as the character level recognises its segments."""
    src, ref = _read_lines(os.path.join(data, f"{split}.src")), _read_lines(os.path.join(data, f"{split}.ref"))
    pairs = [(x, y) for xs, ys in zip(src, ref) for x, y in zip(xs, ys)]
    by_unit = defaultdict(Counter)
    for x, y in pairs:
        by_unit[x][y] += 1
    best = {x: c.most_common(1)[0][0] for x, c in by_unit.items()}
    majority = Counter(y for _, y in pairs).most_common(1)[0][0]
    if merge_repeats:
        def merged_uer(read):
            hyps = [[u for i, u in enumerate(h) if i == 0 or u != h[i - 1]] for h in ([read(x) for x in xs] for xs in src)]
            return unit_error_rate(zip(hyps, ref))

        return {"oracle_uer": merged_uer(best.get), "majority_uer": merged_uer(lambda x: majority)}
    oracle_hits = sum(best[x] == y for x, y in pairs)
    majority_hits = sum(y == majority for _, y in pairs)
    return {"oracle_uer": 100.0 * (1 - oracle_hits / len(pairs)), "majority_uer": 100.0 * (1 - majority_hits / len(pairs))}


def build_corpus(sentences, vocab_size: int, pairing: str, out: str, seed: int, num_sentences: int) -> Dict:
    """A unit corpus of the `vocab_size` most frequent words (sentences of >= 5 of them), 4 speech
    clusters per word at 90 % purity, a few look-alike sign pairs; `pairing` hidden (both sides
    render the same sentences, the sign side shuffled) or disjoint (different sentences)."""
    vocab, kept = restrict_vocabulary(sentences, vocab_size, min_words=5)
    rng = np.random.default_rng(seed)
    kept = [kept[i] for i in rng.permutation(len(kept))[:num_sentences]]
    spec = UnitCorpusSpec(disjoint_halves=pairing == "disjoint", similar_sign_pairs=max(1, vocab_size // 20), seed=seed)
    truth = build_unit_corpus(kept, vocab, out, spec)
    return {**truth["sentences"], **reference_baselines(out)}


def train_and_score(data: str, out: str, objective: Objective, vocab: int, seed: int, max_update: int = 0) -> Dict:
    """An objective's run at one vocabulary size (`train_chosen_by_speech_nll`)."""
    max_update = max_update or objective.max_update
    overrides = [f"common.seed={seed}", *objective.overrides, *([f"optimization.max_update={max_update}"] if max_update else [])]
    return train_chosen_by_speech_nll(data, out, objective.config_name(vocab), overrides, max_update or None)


def train_chosen_by_speech_nll(data: str, out: str, config: str, overrides: Sequence[str], max_update: Optional[int] = None) -> Dict:
    """Train `config` from scratch into {out}; the test split scored with the checkpoint the
    label-free speech_nll chose. Also the validation UER of that checkpoint and the best
    validation UER of the run."""
    from fairseq_signlang.tools.evaluation import evaluate_split, load_checkpoint

    ckpt = os.path.join(out, "checkpoints")
    shutil.rmtree(ckpt, ignore_errors=True)
    overrides = [
        f"task.data={data}", f"checkpoint.save_dir={ckpt}", f"hydra.run.dir={os.path.join(out, 'hydra')}",
        "common.log_format=json", "checkpoint.best_checkpoint_metric=speech_nll", "checkpoint.maximize_best_checkpoint_metric=false",
        *overrides,
    ]
    start = time.time()
    log = run_hydra_train(CONFIG_DIR, config, overrides, os.path.join(out, "train.log"), max_update=max_update, desc=os.path.basename(out))
    wall = time.time() - start
    valid = [r for r in log_records(log, "valid") if "valid_uer" in r and "valid_speech_nll" in r]
    chosen = min(valid, key=lambda r: float(r["valid_speech_nll"]))
    model, task = load_checkpoint(os.path.join(ckpt, "checkpoint_best.pt"), data, "cpu")
    result = evaluate_split(model, task, "test")
    return {
        "uer": result["uer"], "a2v_r1": result["a2v_recall@1"], "v2a_r1": result["v2a_recall@1"],
        "valid_uer_chosen": float(chosen["valid_uer"]), "chosen_update": int(chosen["valid_num_updates"]),
        "valid_uer_best": min(float(r["valid_uer"]) for r in valid), "wall_s": wall,
    }


def run_bench(sentences, vocab_sizes: Sequence[int], pairings: Sequence[str], objectives: Sequence[str], out: str,
              seed: int, num_sentences: int, max_update: Dict[str, int] = None) -> List[Dict]:
    """max_update: objective -> updates (0 or absent: its config's)."""
    max_update = max_update or {}
    rows = []
    for vocab in vocab_sizes:
        for pairing in pairings:
            data = os.path.join(out, f"vocab{vocab}_{pairing}", "data")
            corpus = build_corpus(sentences, vocab, pairing, data, seed, num_sentences)
            for name in objectives:
                run = train_and_score(data, os.path.join(out, f"vocab{vocab}_{pairing}", name), OBJECTIVES[name], vocab, seed, max_update.get(name, 0))
                rows.append({"vocab": vocab, "pairing": pairing, "objective": name, **corpus, **run})
                print(format_table(rows[-1:], COLUMNS, text_columns=3), flush=True)
    return rows


COLUMNS = (
    ("vocab", "words", "{}"), ("pairing", "pairing", "{}"), ("objective", "objective", "{}"),
    ("uer", "UER", "{:.1f}"), ("oracle_uer", "oracle UER", "{:.1f}"), ("majority_uer", "majority UER", "{:.1f}"),
    ("a2v_r1", "A->V R@1", "{:.1f}"), ("v2a_r1", "V->A R@1", "{:.1f}"),
    ("valid_uer_chosen", "valid UER, chosen by speech_nll", "{:.1f}"), ("valid_uer_best", "best valid UER", "{:.1f}"),
    ("wall_s", "wall s", "{:.0f}"),
)
