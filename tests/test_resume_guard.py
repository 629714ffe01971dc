"""A training command started again: a finished run says so and changes nothing, a checkpoint of
other data is refused (task.resume_other_data lets it through), and a checkpoint of another
task's model is named as such when loaded."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from fairseq_signlang.io.checkpoints import CheckpointError
from fairseq_signlang.tasks.resume_guard import ModelOfOtherTask, ResumeRefused
from fairseq_signlang.tasks.speech2sign_u_char import Speech2SignUCharConfig, Speech2SignUCharTask
from fairseq_signlang.tasks.speech2sign_u_word import Speech2SignUWordConfig, Speech2SignUWordTask
from fairseq_signlang.tasks.uslnet import UslnetConfig, UslnetTask
from fairseq_signlang.tools.training import PACKAGE_DIR, hydra_train_command, log_records, run_hydra_train

from .conftest import CONFIG_DIR, REPO, free_port, gloo_overrides

BIN = os.path.dirname(sys.executable)
MAX_UPDATE = 5


def small_corpus(out: str, seed: int) -> str:
    from fairseq_signlang.corpora.synthetic.simulated_units import UnitCorpusSpec, build_unit_corpus, markov_sentences

    words = [f"w{i}" for i in range(30)]
    spec = UnitCorpusSpec(valid_sentences=20, test_sentences=20, seed=seed)
    build_unit_corpus(markov_sentences(len(words), 200, seed=seed, max_len=8), words, out, spec)
    return out


def overrides(data: str, run: str, *extra) -> list:
    return [f"task.data={data}", f"checkpoint.save_dir={run}/ckpt", f"hydra.run.dir={run}/hydra",
            f"optimization.max_update={MAX_UPDATE}", "dataset.batch_size=100", "common.log_format=json", "common.log_interval=1",
            *extra]


def train(data: str, run: str, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(hydra_train_command(CONFIG_DIR, "word_tiny", overrides(data, run, *extra)),
                          capture_output=True, text=True, cwd=REPO)


def snapshot(folder: str) -> dict:
    """Every file of a folder: its content hash, size and modification time."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        st = os.stat(path)
        out[name] = (hashlib.sha256(open(path, "rb").read()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_corpora")
    data = small_corpus(str(root / "data"), seed=1)
    other = small_corpus(str(root / "other"), seed=2)
    return data, other


@pytest.fixture(scope="module")
def finished(corpora, tmp_path_factory):
    """A word-level run trained to its max_update."""
    data, _ = corpora
    run = str(tmp_path_factory.mktemp("finished_run"))
    run_hydra_train(CONFIG_DIR, "word_tiny", overrides(data, run), f"{run}/train.log", MAX_UPDATE)
    return data, run


@pytest.fixture
def run_copy(finished, tmp_path):
    """The finished run's checkpoints, copied (times kept) for a test that may change them."""
    _, run = finished
    shutil.copytree(f"{run}/ckpt", f"{tmp_path}/ckpt")
    return str(tmp_path)


def test_finished_run_started_again_changes_nothing(finished):
    data, run = finished
    before = snapshot(f"{run}/ckpt")
    assert set(before) == {"checkpoint_last.pt", "checkpoint_best.pt"}
    proc = train(data, run)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert f"training is complete: {MAX_UPDATE} updates of max_update {MAX_UPDATE} in {run}/ckpt; nothing to do" in out
    assert not log_records(out, "train_inner")  # not one more update
    assert snapshot(f"{run}/ckpt") == before  # same files, same bytes, same modification times


def test_finished_run_started_again_on_two_ranks_changes_nothing(finished):
    """Every rank builds the model: rank 0 reads the checkpoint and all of them stop."""
    data, run = finished
    before = snapshot(f"{run}/ckpt")
    port = free_port()
    procs = [subprocess.Popen(hydra_train_command(CONFIG_DIR, "word_tiny", overrides(data, run, "common.cpu=true", *gloo_overrides(rank, port))),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
             for rank in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    assert "training is complete" in outs[0]
    assert snapshot(f"{run}/ckpt") == before


def test_checkpoint_of_other_data_is_refused(corpora, run_copy):
    data, other = corpora
    before = snapshot(f"{run_copy}/ckpt")
    proc = train(other, run_copy, "optimization.max_update=10")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{run_copy}/ckpt/checkpoint_last.pt: fairseq would resume this checkpoint" in out
    assert f"it was trained with task.data={data}, this run has task.data={other}" in out
    assert "another checkpoint.save_dir" in out and "task.resume_other_data=true" in out
    assert snapshot(f"{run_copy}/ckpt") == before


def test_moved_data_resumes_with_the_flag(corpora, run_copy, tmp_path):
    """The same corpus in another folder is other data to the check; the flag continues it."""
    data, _ = corpora
    moved = str(tmp_path / "moved")
    shutil.copytree(data, moved)
    refused = train(moved, run_copy, "optimization.max_update=8")
    assert refused.returncode != 0 and "task.resume_other_data=true" in refused.stdout + refused.stderr
    resumed = train(moved, run_copy, "optimization.max_update=8", "task.resume_other_data=true")
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out[-3000:]
    assert f"@ {MAX_UPDATE} updates" in out  # "Loaded checkpoint ... (epoch E @ N updates)"
    state = torch.load(f"{run_copy}/ckpt/checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 8 and state["cfg"]["task"]["data"] == moved


def test_fairseq_generate_reads_the_checkpoint(finished):
    """The task's fields bound to other groups stay out of fairseq-generate's options."""
    data, run = finished
    proc = subprocess.run(
        [f"{BIN}/fairseq-generate", data, "--user-dir", PACKAGE_DIR, "--task", "speech2sign_u_word",
         "--path", f"{run}/ckpt/checkpoint_last.pt", "--gen-subset", "test", "--batch-size", "64", "--scoring", "wer", "--cpu"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WER:" in proc.stdout + proc.stderr


# ---- the check itself, on task configs as fairseq-train resolves them ---------------------------

def word_task(data: str, save_dir: str, **settings) -> Speech2SignUWordTask:
    bound = dict(save_dir=save_dir, restore_file="checkpoint_last.pt", checkpoint_suffix="", reset_optimizer=False,
                 reset_dataloader=False, max_update=MAX_UPDATE, max_epoch=0)
    bound.update(settings)
    return Speech2SignUWordTask.setup_task(OmegaConf.structured(Speech2SignUWordConfig(data=data, seed=1, **bound)))


WORD_MODEL = {"_name": "speech2sign_u_word"}


def test_same_folder_by_another_path_is_the_same_data(finished, tmp_path):
    data, run = finished
    os.symlink(data, tmp_path / "link")
    with pytest.raises(SystemExit) as stop:
        word_task(str(tmp_path / "link"), f"{run}/ckpt").build_model(OmegaConf.create(WORD_MODEL))
    assert stop.value.code == 0


def test_epoch_limit_reached_is_complete(finished, caplog):
    data, run = finished
    state = torch.load(f"{run}/ckpt/checkpoint_last.pt", map_location="cpu", weights_only=True)
    next_epoch = state["extra_state"]["train_iterator"]["epoch"]
    task = word_task(data, f"{run}/ckpt", max_update=0, max_epoch=next_epoch - 1)
    with caplog.at_level("INFO"), pytest.raises(SystemExit):
        task.build_model(OmegaConf.create(WORD_MODEL))
    assert f"of max_epoch {next_epoch - 1} in {run}/ckpt; nothing to do" in caplog.text
    # more epochs, or more updates, or a reset optimizer: training goes on
    assert word_task(data, f"{run}/ckpt", max_update=0, max_epoch=next_epoch).build_model(OmegaConf.create(WORD_MODEL))
    assert word_task(data, f"{run}/ckpt", max_update=MAX_UPDATE + 1).build_model(OmegaConf.create(WORD_MODEL))
    assert word_task(data, f"{run}/ckpt", reset_optimizer=True).build_model(OmegaConf.create(WORD_MODEL))


def test_checkpoint_of_another_model_is_refused(finished):
    data, run = finished
    with pytest.raises(ResumeRefused, match="a checkpoint of model speech2sign_u_word, but this run trains model speech2sign_u_char"):
        word_task(data, f"{run}/ckpt").build_model(OmegaConf.create({"_name": "speech2sign_u_char"}))


def test_restore_file_is_the_checkpoint_checked(finished, corpora, tmp_path):
    data, other = corpora
    _, run = finished
    task = word_task(other, str(tmp_path), restore_file=f"{run}/ckpt/checkpoint_best.pt")
    with pytest.raises(ResumeRefused, match=rf"{run}/ckpt/checkpoint_best.pt: .*\(checkpoint.restore_file\).*task.data={data}"):
        task.build_model(OmegaConf.create(WORD_MODEL))


def test_unreadable_checkpoint_is_named(corpora, tmp_path):
    data, _ = corpora
    (tmp_path / "checkpoint_last.pt").write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=rf"{tmp_path}/checkpoint_last.pt: not a readable fairseq checkpoint.*another checkpoint.save_dir"):
        word_task(data, str(tmp_path)).build_model(OmegaConf.create(WORD_MODEL))


def test_task_config_built_by_hand_is_not_checked(finished, tmp_path, monkeypatch):
    """Outside fairseq-train the bound fields do not resolve: nothing to resume, nothing checked
    (even with a finished checkpoints/checkpoint_last.pt where save_dir's default points)."""
    data, run = finished
    os.makedirs(tmp_path / "checkpoints")
    shutil.copy(f"{run}/ckpt/checkpoint_last.pt", tmp_path / "checkpoints")
    monkeypatch.chdir(tmp_path)
    for cfg in (Speech2SignUWordConfig(data=data, seed=1), OmegaConf.structured(Speech2SignUWordConfig(data=data, seed=1))):
        assert Speech2SignUWordTask.setup_task(cfg).build_model(OmegaConf.create(WORD_MODEL)) is not None


# ---- a checkpoint's model of another task ---------------------------------------------------------

def test_checkpoint_model_of_another_task_is_named(finished, tmp_path):
    data, _ = finished
    word = Speech2SignUWordTask.setup_task(Speech2SignUWordConfig(data=data, seed=1))
    # the owning task also says what selects the model there (the char task builds two)
    with pytest.raises(ModelOfOtherTask, match=r"the checkpoint's model speech2sign_u_char belongs to task speech2sign_u_char "
                                               r"\(task\.speech_input=features\), not to task speech2sign_u_word .*--task speech2sign_u_char"):
        word.build_model(OmegaConf.create({"_name": "speech2sign_u_char"}), from_checkpoint=True)
    with pytest.raises(ModelOfOtherTask, match=r"model transformer is not one task speech2sign_u_word builds"):
        word.build_model(OmegaConf.create({"_name": "transformer"}), from_checkpoint=True)

    char = Speech2SignUCharTask(Speech2SignUCharConfig(data=data, seed=1), None, word.sign_dict, 4)
    with pytest.raises(ModelOfOtherTask, match=r"model uslnet_vqvae belongs to task uslnet \(task\.stage=video_vqvae\), not to "
                                               r"task speech2sign_u_char"):
        char.build_model(OmegaConf.create({"_name": "uslnet_vqvae"}), from_checkpoint=True)

    text = tmp_path / "text"
    text.mkdir()
    (text / "dict.txt").write_text("a 5\nb 3\n")
    uslnet = UslnetTask.setup_task(UslnetConfig(stage="text_mass", data=str(text), seed=1))
    with pytest.raises(ModelOfOtherTask, match=r"model speech2sign_u_word belongs to task speech2sign_u_word, not to task uslnet"):
        uslnet.build_model(OmegaConf.create({"_name": "speech2sign_u_word"}), from_checkpoint=True)
