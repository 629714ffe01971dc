from .dtw import dtw_accumulated_cost, dtw_distance, dtw_distance_cells, dtw_path  # noqa: F401
from .retrieval import RECALL_KS, dtw_similarity, frame_cosine_cost, pair_cosine_cost, recall_at_k, recall_hits, target_rank  # noqa: F401
from .uer import unit_error_rate, unit_errors  # noqa: F401
