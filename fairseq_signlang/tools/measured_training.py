"""fairseq-hydra-train in a process that measures itself, for scripts/bench_scale.py.

Run as `python -m fairseq_signlang.tools.measured_training RESULT.json [hydra arguments]`: it
trains exactly as fairseq-hydra-train would, and writes to RESULT.json what only the training
process can see: when each update started and ended, how long each load_dataset and the sign
chain took, its peak resident memory and, on a GPU, torch.cuda.max_memory_allocated. Timing
hooks wrap the methods, so the training itself is unchanged.
"""
import functools
import json
import resource
import sys
import time


def _timed(owner, name: str, record: list, label=None) -> None:
    """Wrap owner.name so each call appends (label, start, end) to `record`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            record.append((label(*args, **kwargs) if label else name, start, time.perf_counter()))

    setattr(owner, name, wrapper)


def peak_memory() -> dict:
    """This process's peak resident memory and, where CUDA was used, the peak allocated by torch (MiB)."""
    out = {"max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}  # Linux: KiB
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["cuda_device"] = torch.cuda.get_device_name()
    return out


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.exit("usage: python -m fairseq_signlang.tools.measured_training RESULT.json [fairseq-hydra-train arguments]")
    result_path, hydra_args = argv[0], argv[1:]
    from fairseq.trainer import Trainer
    from fairseq_cli import hydra_train

    from fairseq_signlang.io.writers import atomic_open
    from fairseq_signlang.tasks.speech2sign_u_word import Speech2SignUWordTask

    updates, loads, chains = [], [], []
    _timed(Trainer, "train_step", updates)
    _timed(Speech2SignUWordTask, "load_dataset", loads, label=lambda self, split, *a, **k: split)
    _timed(Speech2SignUWordTask, "sign_chain", chains)
    started = time.perf_counter()
    sys.argv = ["fairseq-hydra-train", *hydra_args]
    try:
        hydra_train.cli_main()
    finally:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        result = {
            "update_starts": [s - started for _, s, _ in updates],
            "update_ends": [e - started for _, _, e in updates],
            "load_dataset_s": {split: e - s for split, s, e in loads},
            # the first call builds the n-gram chain; later calls only move it
            "sign_chain_s": chains[0][2] - chains[0][1] if chains else None,
            "total_s": time.perf_counter() - started,
            "torch_threads": torch.get_num_threads(),
            **peak_memory(),
        }
        with atomic_open(result_path, encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
