"""What every reduce_metrics starts from."""
from typing import Callable, Dict, Sequence


def log_totals(logging_outputs: Sequence[Dict]) -> Callable[[str], float]:
    """key -> the sum of that key over the logs of all batches and workers (0 where absent)."""
    return lambda key: sum(log.get(key, 0) for log in logging_outputs)
