import os
import shutil
import socket
import subprocess
import sys

import pytest

from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "examples", "speech2sign_u")


def run_script(name, *args, **kwargs):
    """scripts/{name} as a user runs it, in a subprocess; its output captured as text."""
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", name), *map(str, args)], capture_output=True, text=True, **kwargs)


# the longest test files, started first so that the two test processes (make test) finish together
SLOW_FILES = ("test_uslnet_joint.py", "test_mass.py", "test_demo_media.py", "test_uslnet_stages.py", "test_char_training.py",
              "test_word_training.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(SLOW_FILES)))  # stable: file order kept


@pytest.fixture
def speech_synthesizers():
    """flite and espeak-ng, the Debian packages `make test` installs (`make demo-tools`): a test
    that needs them fails without them rather than skipping, so no run passes for complete
    without the main job."""
    missing = [tool for tool in ("flite", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: run `make demo-tools` (Debian packages flite, espeak-ng)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gloo_overrides(rank: int, port: int, world_size: int = 2):
    """fairseq's distributed trainer on CPU, one process per rank started by the test (DESIGN)."""
    return [
        f"distributed_training.distributed_world_size={world_size}", f"distributed_training.distributed_rank={rank}",
        "distributed_training.distributed_no_spawn=true", "distributed_training.distributed_backend=gloo",
        f"distributed_training.distributed_init_method=tcp://127.0.0.1:{port}", "distributed_training.ddp_backend=legacy_ddp",
    ]


@pytest.fixture(scope="session")
def known_mapping_corpus(tmp_path_factory):
    """Vocabulary 100, 4 speech clusters per word at 90 % purity, 3 pairs of words sharing a
    sign unit; 3000 training sentences rendered in both modalities, the sign side shuffled."""
    out = str(tmp_path_factory.mktemp("word_corpus"))
    vocab = [f"w{i}" for i in range(100)]
    sentences = markov_sentences(len(vocab), 3400, seed=7)
    truth = build_unit_corpus(sentences, vocab, out, UnitCorpusSpec(similar_sign_pairs=3, seed=7))
    return out, truth


# USLNet's tiny video stages, trained once and shared by the stage and joint tests
from .uslnet_corpora import clips, gpt_run, vqvae_run  # noqa: E402,F401
