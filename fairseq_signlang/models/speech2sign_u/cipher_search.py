"""A homophonic substitution cipher, searched: each of K symbols (speech units, sign-video
units) stands for one of V plaintext units (sign units, words), and an assignment is scored by
the likelihood of the symbol sentences under the plaintext's bigram model. Classical
decipherment's discrete view of what the decipherment criterion's EM fits softly; EM from a
random start can stall in a wrong optimum that this search, over whole assignments, leaves.

  HardLexiconScore  an assignment's log likelihood from the symbols' bigram counts, O(K^2)
  temper_lexicon    parallel tempering over assignments (heat-bath sweeps, replica exchange)
"""
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np
from tqdm import tqdm

from fairseq_signlang.models.speech2sign_u.sign_ngram import SignNgramModel


class HardLexiconScore:
    """The log likelihood of unit sentences when unit u is always word a[u]: the word sentences
    they decode to under the word bigram model, times each unit's share of its word's units,
    prod_u (n_u / N_a[u])^n_u. Computed from the units' bigram counts, so a candidate
    lexicon costs O(K^2), not a pass over the corpus. For segmentation errors the bigram model
    can allow a word to repeat as if its sign were cut in two (`self_loop`) and to be skipped
    as if merged into its neighbour (`skip`)."""

    def __init__(self, unit_sentences: Sequence[Sequence[int]], num_units: int, word_sentences: Sequence[Sequence[int]], num_words: int,
                 self_loop: float = 0.0, skip: float = 0.0):
        log_start, log_trans, log_end, _ = SignNgramModel(word_sentences, num_words, order=2).chain()
        V = num_words
        probs = np.zeros((V + 1, V + 1))  # index V: the sentence boundary (start as a row, end as a column)
        probs[V, :V], probs[:V, :V], probs[:V, V] = log_start.exp().numpy(), log_trans.exp().numpy(), log_end.exp().numpy()
        probs = (1 - skip) * probs + skip * (probs @ probs)  # a word the segmentation merged into its neighbour
        probs[:V, :V] = (1 - self_loop) * probs[:V, :V] + self_loop * np.eye(V)  # a sign cut in two
        probs[:V, V] *= 1 - self_loop
        self.log_probs, self.num_words, self.num_units = np.log(np.maximum(probs, 1e-300)), V, num_units
        self.bigrams = np.zeros((num_units + 1, num_units + 1))  # index num_units: the boundary
        for sentence in unit_sentences:
            ids = [num_units, *sentence, num_units]
            np.add.at(self.bigrams, (ids[:-1], ids[1:]), 1)
        self.counts = np.bincount(np.concatenate([np.asarray(x) for x in unit_sentences]), minlength=num_units).astype(np.float64)
        seen = self.counts > 0
        self._unit_entropy = float((self.counts[seen] * np.log(self.counts[seen])).sum())

    def __call__(self, assignment: np.ndarray) -> float:
        return float(self.batch(np.asarray(assignment)[None])[0])

    def batch(self, assignments: np.ndarray) -> np.ndarray:
        """(C, K) assignments -> (C,) scores."""
        C = len(assignments)
        words = np.concatenate([assignments, np.full((C, 1), self.num_words)], axis=1)  # (C, K + 1)
        language = (self.bigrams * self.log_probs[words[:, :, None], words[:, None, :]]).sum((1, 2))
        return language + self._unit_entropy - _xlogx(self._word_totals(assignments)).sum(1)

    def unit_scores(self, assignments: np.ndarray, u: int) -> np.ndarray:
        """(C, K) assignments -> (C, V): the score of each assignment with unit u read as each
        word, up to a constant per row. Only the bigrams through u and the totals of two words
        change with u's word, so this costs O(K V), not V full scores."""
        V, B, L = self.num_words, self.bigrams, self.log_probs
        C = len(assignments)
        old = assignments[:, u]
        words = np.concatenate([assignments, np.full((C, 1), V)], axis=1)  # (C, K + 1)
        out_of_u = np.einsum("vck,k->cv", L[:V][:, words], B[u])  # bigrams u -> j, u read as v
        into_u = np.einsum("ckv,k->cv", L[words][:, :, :V], B[:, u])  # bigrams i -> u
        loop = B[u, u] * (np.diag(L)[None, :V] - L[:V, old].T - L[old, :V])  # u -> u was counted in both, at u's old word
        totals = self._word_totals(assignments)
        totals[np.arange(C), old] -= self.counts[u]
        return out_of_u + into_u + loop - (_xlogx(totals + self.counts[u]) - _xlogx(totals))

    def _word_totals(self, assignments: np.ndarray) -> np.ndarray:
        """(C, K) -> (C, V): each word's unit count under each assignment."""
        totals = np.zeros((len(assignments), self.num_words))
        np.add.at(totals, (np.arange(len(assignments))[:, None], assignments), self.counts[None, :])
        return totals


def _xlogx(x: np.ndarray) -> np.ndarray:
    return x * np.log(np.maximum(x, 1e-300))


@dataclass(frozen=True)
class Tempering:
    """temper_lexicon's settings; the defaults are those measured in examples/uslnet/README.md."""
    chains: int = 32  # one per temperature
    sweeps: int = 2000  # over all units, per chain
    min_temperature: float = 0.05  # the coldest chain's, in units of a unit's mean count
    max_temperature: float = 10.0  # the hottest chain's (geometric in between)


def temper_lexicon(score: HardLexiconScore, tempering: Tempering = Tempering(), seed: int = 0, desc: str = "tempering") -> Dict:
    """Parallel tempering over unit-to-word assignments. Each chain sweeps the units in random
    order, drawing each unit's word from its conditional at the chain's temperature (a
    heat-bath move); after every sweep neighbouring temperatures swap states by the Metropolis
    rule. Hot chains roam, cold ones refine, and swaps carry good states down: one cooling
    schedule (simulated annealing) falls into a trap where the second unit of many words is read
    as the most frequent word, which no single-unit move leaves. Temperatures (geometric from
    `min_temperature` to `max_temperature`) are in units of the mean count of a unit, so the
    ladder fits any corpus size. The most likely state seen, made greedy (each unit its best word
    until none changes), wins."""
    rng = np.random.default_rng(seed)
    K, V = score.num_units, score.num_words
    scale = score.counts.sum() / max(1, int((score.counts > 0).sum()))
    chains = tempering.chains
    temperatures = scale * np.geomspace(tempering.min_temperature, tempering.max_temperature, chains)  # (C,), coldest first
    states = rng.integers(V, size=(chains, K))
    values = score.batch(states)
    best_value, best_state = float(values.max()), states[values.argmax()].copy()
    for _ in tqdm(range(tempering.sweeps), desc=desc, unit="sweep"):
        for u in rng.permutation(K):
            logits = score.unit_scores(states, u) / temperatures[:, None]  # (C, V)
            probs = np.exp(logits - logits.max(1, keepdims=True)).cumsum(1)
            states[:, u] = np.minimum((probs < rng.random(chains)[:, None] * probs[:, -1:]).sum(1), V - 1)
        values = score.batch(states)
        if values.max() > best_value:
            best_value, best_state = float(values.max()), states[values.argmax()].copy()
        for c in range(chains - 1):  # replica exchange between neighbouring temperatures
            log_ratio = (values[c + 1] - values[c]) * (1 / temperatures[c] - 1 / temperatures[c + 1])
            if log_ratio >= 0 or rng.random() < np.exp(log_ratio):
                states[[c, c + 1]], values[[c, c + 1]] = states[[c + 1, c]], values[[c + 1, c]]
    changed = True
    while changed:
        changed = False
        for u in range(K):
            word = int(score.unit_scores(best_state[None], u)[0].argmax())
            changed |= word != best_state[u]
            best_state[u] = word
    return {"assignment": best_state, "score": round(score(best_state), 3),
            "chains": [{"temperature": round(float(t), 3), "final_score": round(float(v), 3)} for t, v in zip(temperatures, values)]}
