"""Unit error rate: (insertions + deletions + substitutions) / reference length x 100."""
from typing import Iterable, Sequence, Tuple

import editdistance


def unit_errors(hyp: Sequence[int], ref: Sequence[int]) -> Tuple[int, int]:
    """Edit distance between a hypothesis and its reference, and the reference length."""
    return editdistance.eval(list(hyp), list(ref)), len(ref)


def unit_error_rate(pairs: Iterable[Tuple[Sequence[int], Sequence[int]]]) -> float:
    """Corpus UER in %: all errors over all reference units."""
    errors = length = 0
    for hyp, ref in pairs:
        e, n = unit_errors(hyp, ref)
        errors += e
        length += n
    if length == 0:
        raise ValueError("unit_error_rate: the references are empty")
    return 100.0 * errors / length
