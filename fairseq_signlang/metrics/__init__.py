from .dtw import dtw_accumulated_cost, dtw_distance, dtw_path  # noqa: F401
from .retrieval import RECALL_KS, cosine_cost, dtw_similarity, recall_at_k, ranks_of_targets  # noqa: F401
from .uer import unit_error_rate, unit_errors  # noqa: F401
