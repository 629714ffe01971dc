"""An n-gram model of the sign corpus: the prior over sign-unit sequences that decipherment
explains the speech with (the sign side plays the part the plaintext language model plays in
Ravi & Knight's decipherment).

Interpolated Kneser-Ney with one absolute discount per order (D = n1 / (n1 + 2 n2)) over the
units 0..V-1, a sentence start `<s>` padding the histories and an end `</s>` predicted like a
unit; the base of the interpolation is uniform over the V units and `</s>`. For the forward
algorithm the model is laid out as a first-order chain (`chain`) whose states are the histories
after at least one unit: V states at order 2, V + V^2 at order 3.
"""
import math
from collections import Counter, defaultdict
from itertools import product
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

BOS, EOS = -1, -2  # history padding and sentence end, outside the unit ids 0..V-1


class SignNgramModel:
    def __init__(self, sentences: Iterable[Sequence[int]], num_units: int, order: int = 2):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if num_units < 1:
            raise ValueError(f"num_units must be positive, got {num_units}")
        self.order, self.num_units = order, num_units
        top: Counter = Counter()  # n-gram counts, histories padded with <s>
        self.num_sentences = 0
        for sentence in sentences:
            units = [int(u) for u in sentence]
            bad = [u for u in units if not 0 <= u < num_units]
            if bad:
                raise ValueError(f"sentence {self.num_sentences + 1}: unit {bad[0]} outside 0..{num_units - 1}")
            padded = [BOS] * (order - 1) + units + [EOS]
            for i in range(order - 1, len(padded)):
                top[tuple(padded[i - order + 1 : i + 1])] += 1
            self.num_sentences += 1
        if not self.num_sentences:
            raise ValueError("the sign corpus has no sentences")
        # counts[k]: grams of k + 1 symbols; below the top order, continuation counts (the number
        # of distinct symbols seen before the gram), as Kneser-Ney takes them
        self.counts: List[Counter] = [Counter() for _ in range(order)]
        self.counts[order - 1] = top
        for k in range(order - 2, -1, -1):
            for gram in self.counts[k + 1]:
                self.counts[k][gram[1:]] += 1
        self.discounts = [self._discount(c) for c in self.counts]
        self._totals: List[Dict[Tuple[int, ...], int]] = []
        self._types: List[Dict[Tuple[int, ...], int]] = []
        for c in self.counts:
            totals, types = defaultdict(int), defaultdict(int)
            for gram, n in c.items():
                totals[gram[:-1]] += n
                types[gram[:-1]] += 1
            self._totals.append(dict(totals))
            self._types.append(dict(types))

    @staticmethod
    def _discount(counts: Counter) -> float:
        n1 = sum(1 for n in counts.values() if n == 1)
        n2 = sum(1 for n in counts.values() if n == 2)
        return n1 / (n1 + 2 * n2) if n1 else 0.5

    def history(self, previous: Sequence[int]) -> Tuple[int, ...]:
        """The last order-1 units of `previous`, padded with <s>."""
        k = self.order - 1
        return tuple(([BOS] * k + [int(u) for u in previous])[-k:]) if k else ()

    def prob(self, history: Tuple[int, ...], symbol: int) -> float:
        """P(symbol | history), symbol a unit 0..V-1 or EOS, history as `history()` gives it."""
        k = len(history)
        lower = self.prob(history[1:], symbol) if k else 1.0 / (self.num_units + 1)
        total = self._totals[k].get(history, 0)
        if not total:
            return lower
        d = self.discounts[k]
        seen = self.counts[k].get(history + (symbol,), 0)
        return max(seen - d, 0.0) / total + d * self._types[k][history] / total * lower

    def log_prob(self, sentence: Sequence[int]) -> float:
        """log P(sentence followed by </s>)."""
        units = [int(u) for u in sentence]
        return sum(math.log(self.prob(self.history(units[:i]), s)) for i, s in enumerate(units + [EOS]))

    def prob_vector(self, history: Tuple[int, ...], cache: Optional[Dict] = None) -> np.ndarray:
        """[P(u | history) for u in 0..V-1] + [P(EOS | history)] as one float64 array, with the
        same arithmetic as `prob` (equal to the last bit), a vector op per history instead of a
        Python call per symbol: what makes `chain` take a second at V = 1000, not minutes."""
        if cache is not None and history in cache:
            return cache[history]
        V, k = self.num_units, len(history)
        lower = self.prob_vector(history[1:], cache) if k else np.full(V + 1, 1.0 / (V + 1))
        total = self._totals[k].get(history, 0)
        if total:
            symbols, counts = self._continuations(k).get(history, ((), ()))
            seen = np.zeros(V + 1)
            seen[np.asarray(symbols, dtype=np.int64)] = counts
            d = self.discounts[k]
            lower = np.maximum(seen - d, 0.0) / total + d * self._types[k][history] / total * lower
        if cache is not None:
            cache[history] = lower
        return lower

    def _continuations(self, k: int) -> Dict[Tuple[int, ...], Tuple[List[int], List[int]]]:
        """history -> (symbols seen after it, their counts) at order k + 1, EOS as index V."""
        if not hasattr(self, "_next"):
            self._next: Dict[int, Dict] = {}
        if k not in self._next:
            table: Dict[Tuple[int, ...], Tuple[List[int], List[int]]] = defaultdict(lambda: ([], []))
            for gram, n in self.counts[k].items():
                symbols, counts = table[gram[:-1]]
                symbols.append(self.num_units if gram[-1] == EOS else gram[-1])
                counts.append(n)
            self._next[k] = dict(table)
        return self._next[k]

    def chain(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[Tuple[int, ...]]]:
        """The model as a first-order chain, in log space: (log_start (S,), log_trans (S, S),
        log_end (S,), states). A state is the history after emitting its last unit (at least one
        unit, <s> padding the rest); log_start[s] emits the first unit, log_trans[s, s'] moves on
        by the last unit of s', log_end[s] ends the sentence."""
        V, k = self.num_units, max(self.order - 1, 1)
        states = [(BOS,) * pad + units for pad in range(k - 1, -1, -1) for units in product(range(V), repeat=k - pad)]
        index = {s: i for i, s in enumerate(states)}
        S = len(states)
        log_start = torch.full((S,), float("-inf"), dtype=torch.float64)
        log_trans = torch.full((S, S), float("-inf"), dtype=torch.float64)
        log_end = torch.empty(S, dtype=torch.float64)
        context = (lambda s: s) if self.order > 1 else (lambda s: ())  # what the model conditions on
        cache: Dict = {}
        first = self.prob_vector(self.history([]), cache)
        for u in range(V):
            log_start[index[(BOS,) * (k - 1) + (u,)]] = math.log(first[u])
        for s in states:
            # math.log, as prob's callers take it, so the chain is the same to the last bit
            logs = [math.log(p) for p in self.prob_vector(context(s), cache).tolist()]
            log_end[index[s]] = logs[V]
            # the states s[1:] + (u,), u = 0..V-1, are consecutive (product varies the last unit fastest)
            base = index[s[1:] + (0,)]
            log_trans[index[s], base : base + V] = torch.tensor(logs[:V], dtype=torch.float64)
        return log_start, log_trans, log_end, states
