"""USLNet from Python: load a joint checkpoint once, then translate sign video into text and
generate sign video from text, as fairseq's hub interfaces do for its translation models.

    hub = UslnetHub.from_checkpoint("checkpoints/joint/checkpoint_best.pt")
    hub.translate("clip.mp4")                  # -> "you teacher father dog"
    frames = hub.generate("you teacher father dog")   # (T, R, R, 3) uint8
    write_video("sign.mp4", frames, fps=hub.playback_fps("you teacher father dog"))

`from_stages` assembles the model from the text and video stage checkpoints without joint
training (the paper's "USLNet w/o joint training", USLNet-P in table 2); `save` writes any
of them as a checkpoint fairseq-generate reads.

A generated clip is one window of the VQ-VAE (window_frames frames) standing for the whole
sentence; played at `playback_fps(text)` it lasts the sentence's length over the model's
tokens_per_second, the duration the translation direction reads from a real clip, so a
generated mp4 read back by `translate` gets the memory length its sentence had.
"""
import os
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.dataclass.configs import FairseqConfig
from fairseq.sequence_generator import SequenceGenerator
from omegaconf import OmegaConf, open_dict

from fairseq_signlang.io.device import default_device
from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.data.video_windows import clip_tensor
from fairseq_signlang.io.video import center_crop, read_video, sample_evenly
from fairseq_signlang.metrics.bleu import strip_sentencepiece
from fairseq_signlang.models.uslnet.joint import UslnetModel, UslnetModelConfig
from fairseq_signlang.models.uslnet.video import load_stage_state
from fairseq_signlang.tasks.uslnet import UslnetConfig, UslnetTask
from fairseq_signlang.viz.video_panels import to_frames

Video = Union[str, np.ndarray]
MAX_LEN_B = 200  # fairseq-generate's default length limit, so the hub decodes as it does


class UslnetHub:
    def __init__(self, task: UslnetTask, model: UslnetModel, cfg, device: Optional[str] = None):
        self.task, self.cfg = task, cfg
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.geometry = model.geometry  # the video stage's: frame rate, square size, window length
        self.dictionary = task.target_dictionary

    # ---- loading and saving ---------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path: str, data: Optional[str] = None, device: Optional[str] = None) -> "UslnetHub":
        """A joint (uslnet) checkpoint; `data`: the text folder (dict.txt, spm.model) when it is
        not where the checkpoint was trained."""
        state = load_stage_state(path, "uslnet")
        if data:  # fairseq applies arg_overrides only to checkpoints it loads itself
            with open_dict(state["cfg"]):
                state["cfg"].task.data = data
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], state=state)
        return cls(task, models[0], cfg, device)

    @classmethod
    def from_stages(cls, text_checkpoint: str, video_checkpoint: str, data: str, video_data: str, video_cache: str = "",
                    device: Optional[str] = None, **model_options) -> "UslnetHub":
        """The joint model put together from the stage checkpoints, with no joint training.
        `data` / `video_data` / `video_cache` are the unpaired corpora's folders and the clip
        cache (as task.data / task.video_data / task.video_cache: the text memory rate is
        measured on their train splits); model_options set other fields of the uslnet model
        config (connection, sharpness, ...)."""
        # seed: common.seed's, which a config built outside fairseq-hydra-train cannot refer to
        task_cfg = OmegaConf.structured(UslnetConfig(stage="joint", data=data, video_data=video_data, video_cache=video_cache, seed=1))
        task_cfg._name = "uslnet"
        task = UslnetTask.setup_task(task_cfg)
        model_cfg = OmegaConf.structured(UslnetModelConfig(text_checkpoint=text_checkpoint, video_checkpoint=video_checkpoint, **model_options))
        model_cfg._name = "uslnet"
        with torch.no_grad():
            model = task.build_model(model_cfg)
        cfg = OmegaConf.structured(FairseqConfig())
        cfg.task, cfg.model = task_cfg, model_cfg
        cfg.criterion = OmegaConf.create({"_name": "uslnet_joint"})
        return cls(task, model, cfg, device)

    def save(self, path: str) -> None:
        """A fairseq checkpoint of the model as it is (fairseq-generate --path reads it);
        written under a temporary name and renamed."""
        cfg = OmegaConf.to_container(self.cfg, resolve=True, enum_to_str=True)
        state = {
            "args": None,
            "cfg": cfg,
            "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "criterion": {},
            "optimizer_history": [{"criterion_name": "UslnetJointCriterion", "optimizer_name": "none", "lr_scheduler_state": {},
                                   "num_updates": 0}],
            "task_state": {},
            "extra_state": {"metrics": {}, "previous_training_time": 0},
            "last_optimizer_state": None,
        }
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        checkpoint_utils.torch_persistent_save(state, path)

    # ---- sign video -> text ---------------------------------------------------------------

    def read_clip(self, path: str, start: Optional[float] = None, end: Optional[float] = None) -> np.ndarray:
        """A video file as the model reads clips: (T, R, R, 3) uint8 at its frame rate, resized on
        the short side and centre-cropped, as the training cache decodes them."""
        g = self.geometry
        frames, _ = read_video(path, fps=g.fps, start=start, end=end, short_side=g.resolution)
        return center_crop(frames, g.resolution)

    def _clip_input(self, video: Video) -> tuple:
        g = self.geometry
        frames = self.read_clip(video) if isinstance(video, str) else np.asarray(video)
        if frames.ndim != 4 or frames.shape[1:] != (g.resolution, g.resolution, 3) or frames.dtype != np.uint8:
            where = video if isinstance(video, str) else "frames"
            raise CorpusError(f"{where}: expected uint8 frames (T, {g.resolution}, {g.resolution}, 3) at {g.fps:g} fps, "
                              f"got {frames.dtype} {tuple(frames.shape)}")
        return clip_tensor(sample_evenly(frames, g.window_frames)), len(frames) / g.fps

    @torch.no_grad()
    def translate_batch(self, videos: Sequence[Video], beam: int = 1, max_len: Optional[int] = None) -> List[str]:
        """Sign clips (paths, or frames at the model's rate and resolution) -> sentences."""
        clips, durations = zip(*(self._clip_input(v) for v in videos))
        source = torch.stack(clips).to(self.device)  # (B, 3, T, R, R)
        sample = {"net_input": {"source": source, "padding_mask": torch.zeros(source.shape[0], source.shape[2], dtype=torch.bool, device=self.device),
                                "durations": torch.tensor(durations, dtype=torch.float, device=self.device)}}
        generator = SequenceGenerator([self.model], self.dictionary, beam_size=beam, max_len_a=0,
                                      max_len_b=max_len or MAX_LEN_B)
        hypos = generator.generate([self.model], sample)
        return [self.detokenize(h[0]["tokens"]) for h in hypos]

    def translate(self, video: Video, beam: int = 1) -> str:
        return self.translate_batch([video], beam=beam)[0]

    def detokenize(self, tokens: torch.Tensor) -> str:
        return strip_sentencepiece(self.dictionary.string(tokens.cpu()))

    # ---- text -> sign video ---------------------------------------------------------------

    def encode(self, text: str) -> torch.Tensor:
        tokens = self.task.encode_text(text)
        if tokens.numel() > self.model.cfg.max_text_len:
            raise ValueError(f"{text[:40]!r}...: {tokens.numel()} tokens, more than the model's max_text_len={self.model.cfg.max_text_len}")
        return tokens

    @torch.no_grad()
    def generate_batch(self, texts: Sequence[str], temperature: float = 1.0, top_k: Optional[int] = None,
                       seed: Optional[int] = None) -> List[np.ndarray]:
        """Sentences -> sign clips, each (window_frames, R, R, 3) uint8: text encoder, aligner,
        GPT sampling, VQ-VAE decoder."""
        encoded = [self.encode(t) for t in texts]
        lengths = torch.tensor([len(t) for t in encoded], device=self.device)
        tokens = torch.full((len(encoded), int(lengths.max())), self.dictionary.pad(), dtype=torch.long)
        for i, t in enumerate(encoded):
            tokens[i, : len(t)] = t  # right-padded, as the text encoder is trained
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        codes = self.model.generate_codes(tokens.to(self.device), lengths, temperature=temperature, top_k=top_k, generator=generator)
        video = self.model.video.vqvae.decode_codes(codes)  # (B, 3, T, R, R)
        return [to_frames(v) for v in video]

    def generate(self, text: str, temperature: float = 1.0, top_k: Optional[int] = None, seed: Optional[int] = None) -> np.ndarray:
        return self.generate_batch([text], temperature=temperature, top_k=top_k, seed=seed)[0]

    def playback_fps(self, text: str) -> float:
        """Frame rate at which a generated clip lasts as long as the model takes its sentence to be."""
        duration = len(self.encode(text)) / self.model.encoder.tokens_per_second
        return self.geometry.window_frames / duration
