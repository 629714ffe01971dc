"""The clip geometry belongs to the VQ-VAE: chosen by the video_vqvae stage's task settings, kept in
its model config, taken from there by the GPT (with no task at all) and by the task that loads data
for a later stage; task settings that disagree are replaced with a warning. And the task's two
names: uslnet, and its former name uslnet_bt."""
import logging
from types import SimpleNamespace

import pytest
from fairseq import tasks
from omegaconf import OmegaConf

from fairseq_signlang.models.uslnet.geometry import ClipGeometry
from fairseq_signlang.models.uslnet.video import UslnetVideoGPTConfig, UslnetVideoGPTModel, UslnetVQVAEConfig, UslnetVQVAEModel
from fairseq_signlang.tasks.uslnet import UslnetTask


def tiny_vqvae_cfg(**kw):
    return OmegaConf.structured(UslnetVQVAEConfig(embedding_dim=8, n_codes=16, n_hiddens=8, n_res_layers=1, downsample=[2, 4, 4], **kw))


def test_vqvae_takes_the_task_settings_and_keeps_them():
    cfg = tiny_vqvae_cfg()
    model = UslnetVQVAEModel.build_model(cfg, SimpleNamespace(cfg=SimpleNamespace(fps=10.0, resolution=32, window_frames=8)))
    assert model.geometry == ClipGeometry(10.0, 32, 8)
    assert cfg.clip_geometry == {"fps": 10.0, "resolution": 32, "window_frames": 8}  # what the checkpoint carries
    defaults = UslnetVQVAEModel.build_model(tiny_vqvae_cfg(), SimpleNamespace(cfg=SimpleNamespace(fps=None, resolution=None, window_frames=None)))
    assert defaults.geometry == ClipGeometry(25.0, 64, 16)


def test_gpt_takes_the_geometry_of_its_vqvae_without_a_task():
    vqvae_cfg = tiny_vqvae_cfg(clip_geometry={"fps": 5.0, "resolution": 32, "window_frames": 16})
    gpt = UslnetVideoGPTModel.build_model(OmegaConf.structured(UslnetVideoGPTConfig(vqvae_args=vqvae_cfg, layers=1, heads=2, hidden=16)))
    assert gpt.geometry == ClipGeometry(5.0, 32, 16)
    assert gpt.gpt.latent_shape == (8, 8, 8)
    with pytest.raises(ValueError, match="no clip_geometry"):
        UslnetVideoGPTModel.build_model(OmegaConf.structured(UslnetVideoGPTConfig(vqvae_args=tiny_vqvae_cfg(), layers=1, heads=2, hidden=16)))


def test_downsampling_that_does_not_divide_the_window_is_refused():
    with pytest.raises(ValueError, match=r"task.resolution 30 is not divisible .*\(model.downsample\)"):
        UslnetVQVAEModel.build_model(tiny_vqvae_cfg(), SimpleNamespace(cfg=SimpleNamespace(fps=10.0, resolution=30, window_frames=8)))
    for bad in ({"fps": 0.0}, {"resolution": 0}, {"window_frames": 2.5}):
        with pytest.raises(ValueError, match=f"task.{next(iter(bad))}"):
            ClipGeometry.from_dict({"fps": 10.0, "resolution": 32, "window_frames": 8, **bad})


def test_disagreeing_task_settings_are_replaced_with_a_warning(caplog):
    geometry = ClipGeometry(10.0, 32, 8)
    with caplog.at_level(logging.WARNING):
        geometry.log_ignored_settings(SimpleNamespace(fps=25.0, resolution=32, window_frames=None), "the video model")
    assert [r.getMessage() for r in caplog.records] == ["task.fps=25.0 is replaced by 10.0, the clip geometry of the video model"]


def test_task_reads_the_geometry_off_the_model_it_builds(tmp_path):
    cfg = OmegaConf.create({"_name": "uslnet", "stage": "video_vqvae", "video_data": str(tmp_path), "fps": 10.0, "resolution": 32, "window_frames": 8})
    task = tasks.setup_task(cfg)
    with pytest.raises(RuntimeError, match="build the model"):
        task.load_dataset("train")  # no model, no geometry: data cannot be cut yet
    model_cfg = tiny_vqvae_cfg()
    model_cfg._name = "uslnet_vqvae"
    task.build_model(model_cfg)
    assert task.geometry == ClipGeometry(10.0, 32, 8)


def test_uslnet_bt_is_the_same_task(tmp_path):
    cfg = OmegaConf.create({"_name": "uslnet_bt", "stage": "video_vqvae", "video_data": str(tmp_path)})
    task = tasks.setup_task(cfg)
    assert isinstance(task, UslnetTask) and task.stage == "video_vqvae"
    assert tasks.TASK_DATACLASS_REGISTRY["uslnet_bt"] is tasks.TASK_DATACLASS_REGISTRY["uslnet"]


def test_checkpoints_from_before_the_vqvae_carried_its_geometry_still_load(tmp_path):
    """Older VQ-VAE and GPT checkpoints kept the geometry only in their task config."""
    import torch
    from fairseq import checkpoint_utils

    from fairseq_signlang.models.uslnet.video import load_video_model

    vqvae_cfg = tiny_vqvae_cfg()
    model = UslnetVQVAEModel.build_model(vqvae_cfg, SimpleNamespace(cfg=SimpleNamespace(fps=10.0, resolution=32, window_frames=8)))
    old_cfg = OmegaConf.to_container(vqvae_cfg)
    del old_cfg["clip_geometry"]
    old_cfg["_name"] = "uslnet_vqvae"
    path = str(tmp_path / "old_vqvae.pt")
    checkpoint_utils.torch_persistent_save({
        "args": None, "cfg": {"common": {"seed": 1}, "model": old_cfg,
                              "task": {"_name": "uslnet_bt", "stage": "video_vqvae", "fps": 10.0, "resolution": 32, "window_frames": 8}},
        "model": model.state_dict(), "criterion": None, "task_state": {},
        "optimizer_history": [{"criterion_name": "x", "optimizer_name": "adam", "lr_scheduler_state": {}, "num_updates": 5}],
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
    }, path)
    loaded = load_video_model(path)
    assert loaded.geometry == ClipGeometry(10.0, 32, 8)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    gpt = UslnetVideoGPTModel.build_model(OmegaConf.structured(UslnetVideoGPTConfig(vqvae_checkpoint=path, layers=1, heads=2, hidden=16)))
    assert gpt.geometry == ClipGeometry(10.0, 32, 8) and gpt.gpt.latent_shape == (4, 8, 8)
