from .dtw import dtw_accumulated_cost, dtw_distance, dtw_distance_cells, dtw_path  # noqa: F401
from .retrieval import (  # noqa: F401
    RECALL_KS, dtw_lower_bound, dtw_similarity, frame_cosine_cost, pair_cosine_cost, pruned_recall_at_k, pruned_target_ranks,
    recall_at_k, recall_from_ranks, recall_hits, target_rank,
)
from .uer import unit_error_rate, unit_errors  # noqa: F401
