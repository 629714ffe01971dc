"""Run fairseq-hydra-train as a child process with a progress bar, for scripts, the demos and tests."""
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(PACKAGE_DIR)
_UPDATES = re.compile(r"num_updates[\"']?[=:]\s*[\"']?(\d+)")
# fairseq's json log lines, as hydra logs them ("[time][valid][INFO] - {...}") or as
# fairseq-train does ("time | INFO | valid | {...}")
_JSON_RECORD = re.compile(r"(?:\]\[(\w+)\]\[INFO\] - |\| INFO \| (\w+) \| )(\{.*\})\s*$")


def run_script(name: str, *args: str) -> str:
    """Run scripts/{name} as a user would (a demo's or benchmark's step): its command is printed,
    its errors stop the caller."""
    cmd = [sys.executable, os.path.join(REPO_DIR, "scripts", name), *map(str, args)]
    print(f"      $ python scripts/{name} " + " ".join(cmd[2:]), flush=True)
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_DIR)
    if run.returncode != 0:
        sys.exit(f"error: scripts/{name} failed:\n{run.stderr[-3000:]}")
    return run.stdout


def log_records(log_text: str, kind: str) -> List[Dict]:
    """The json records of one kind ("train_inner", "train", "valid") in a fairseq log
    written with common.log_format=json."""
    out = []
    for line in log_text.splitlines():
        m = _JSON_RECORD.search(line)
        if m and (m.group(1) or m.group(2)) == kind:
            out.append(json.loads(m.group(3)))
    return out


def hydra_train_command(config_dir: str, config_name: str, overrides: Sequence[str],
                        launcher: Optional[Sequence[str]] = None) -> List[str]:
    """The fairseq-hydra-train command line, with the plugin as user dir; `launcher` replaces the
    executable by a command that takes the same arguments (tools/measured_training.py)."""
    exe = os.path.join(os.path.dirname(sys.executable), "fairseq-hydra-train")
    return [
        *(launcher or [exe if os.path.exists(exe) else "fairseq-hydra-train"]),
        "--config-dir", os.path.abspath(config_dir),
        "--config-name", config_name,
        f"common.user_dir={PACKAGE_DIR}",
        *overrides,
    ]


def run_hydra_train(
    config_dir: str,
    config_name: str,
    overrides: Sequence[str],
    log_path: str,
    max_update: Optional[int] = None,
    desc: str = "training",
    env: Optional[dict] = None,
    cwd: str = REPO_DIR,
    launcher: Optional[Sequence[str]] = None,
) -> str:
    """Train, writing fairseq's log to `log_path`; a progress bar follows num_updates.
    Raises with the log's tail when training fails. Returns the log text."""
    cmd = hydra_train_command(config_dir, config_name, overrides, launcher)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    lines = []
    with open(log_path, "w", encoding="utf-8") as log, tqdm(total=max_update, desc=desc, unit="upd", mininterval=2) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            m = _UPDATES.search(line)
            if m and int(m.group(1)) > bar.n:
                bar.update(int(m.group(1)) - bar.n)
        proc.wait()
    if proc.returncode != 0:
        tail = "".join(lines[-40:])
        raise RuntimeError(f"fairseq-hydra-train failed (exit {proc.returncode}); log: {log_path}\n{tail}")
    return "".join(lines)


BUILDS = ("hidden", "disjoint")  # the demos' corpus builds


def add_demo_training_args(ap) -> None:
    """The demos' training options, the same in both."""
    ap.add_argument("--config", default="word_decipher_tiny", help="training config in examples/speech2sign_u")
    ap.add_argument("--max-update", type=int, default=260, help="training updates, the warm start's included")
    ap.add_argument("--warm-start-updates", type=int, default=200, help="updates of the L1 terms before decipherment's EM (0: EM from a random start)")
    ap.add_argument("--builds", nargs="+", choices=BUILDS, default=list(BUILDS),
                    help="hidden: both sides render the same training sentences, the pairing hidden; disjoint: different halves")


def train_demo_model(data: str, out: str, max_update: int, seed: int, config: str = "word_decipher_tiny",
                     overrides: Sequence[str] = ()) -> Tuple[str, str]:
    """Train examples/speech2sign_u/{config}.yaml on `data` from scratch into {out}/checkpoints,
    validating every 10 updates for dense curves (validation of 200 sentences is cheap); writes
    train.log. Returns the checkpoint folder and the log (reports.training_curves draws it)."""
    ckpt_dir = os.path.join(out, "checkpoints")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # a rerun trains afresh instead of resuming a finished run
    log_text = run_hydra_train(
        os.path.join(REPO_DIR, "examples", "speech2sign_u"),
        config,
        [f"task.data={data}", f"checkpoint.save_dir={ckpt_dir}", f"hydra.run.dir={os.path.join(out, 'hydra')}",
         f"optimization.max_update={max_update}", "common.log_format=json", "common.log_interval=10",
         "dataset.validate_interval_updates=10", "checkpoint.save_interval_updates=10", f"common.seed={seed}", *overrides],
        os.path.join(out, "train.log"),
        max_update=max_update,
    )
    return ckpt_dir, log_text
