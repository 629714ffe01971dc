"""Task uslnet (also registered as uslnet_bt): USLNet's stages, unsupervised sign language
translation and generation.

One task, configured by the stage it trains (`task.stage`):
  text_mass    the text encoder-decoder, MASS span masking (eq. 1)       model uslnet_text
  video_vqvae  the video VQ-VAE: codebook + reconstruction (eq. 2-4)     model uslnet_vqvae
  video_gpt    the GPT prior over the VQ-VAE's code grid (eq. 5)         model uslnet_video_gpt
  joint        everything tied by the aligner, back-translation (eq. 13) model uslnet
A later stage loads an earlier one's checkpoint by path (`model.vqvae_checkpoint`,
`model.init_checkpoint`).

Data, unpaired (the i-th sentence has nothing to do with the i-th clip):
  task.data         fairseq-preprocess output of sentencepiece-encoded text (scripts/prepare_text.py):
                    dict.txt, {split}.bin, {split}.idx
  task.video_data   {split}.tsv clip manifests (id, path, optional start/end seconds and text);
                    clips are decoded once (PyAV), sampled to a frame rate, resized and
                    centre-cropped to a square, cached memory-mapped in task.video_cache, and cut
                    into windows

The clip geometry (frame rate, square size, window length) is chosen by task.fps,
task.resolution and task.window_frames in the video_vqvae stage and belongs to the VQ-VAE from
then on: later stages read it off the model they build (`model.geometry`), and a task setting
that disagrees with it is replaced, with a warning.

A stage started again resumes checkpoint.save_dir/checkpoint_last.pt: one that is finished ends
having written nothing, and a checkpoint trained on another task.data or task.video_data is
refused (resume_guard).
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from fairseq.data import data_utils
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, open_dict

from fairseq_signlang.data.mass_noise import MassDataset
from fairseq_signlang.data.uslnet_datasets import UnpairedTextVideoDataset, VideoClipDataset
from fairseq_signlang.io.readers import CorpusError, load_dictionary
from fairseq_signlang.data.video_windows import DecodedClipCache, VideoWindowDataset
from fairseq_signlang.models.uslnet.joint import UslnetModel
from fairseq_signlang.models.uslnet.geometry import DEFAULT_FPS, DEFAULT_RESOLUTION, DEFAULT_WINDOW_FRAMES, ClipGeometry
from fairseq_signlang.tasks.batching import AnyBatchSize
from fairseq_signlang.tasks.resume_guard import ResumeGuardConfig, check_model_of_task, check_resume

logger = logging.getLogger(__name__)

STAGES = ("text_mass", "video_vqvae", "video_gpt", "joint")
STAGE_MODELS = {"text_mass": "uslnet_text", "video_vqvae": "uslnet_vqvae", "video_gpt": "uslnet_video_gpt", "joint": "uslnet"}
MASK_SYMBOL = "<mask>"
JOINT_MODES = ("unsupervised", "supervised", "pseudo_parallel")
PSEUDO_PARALLEL_MANIFEST = "train_pseudo.tsv"


@dataclass
class UslnetConfig(ResumeGuardConfig):
    """One config for the four stages; each field's help starts with the stages that read it."""

    stage: ChoiceEnum(STAGES) = field(default="text_mass", metadata={"help": "what this run trains: " + ", ".join(STAGES)})
    data: str = field(default="", metadata={"help": "[text_mass, joint] text: fairseq-preprocess folder (dict.txt, {split}.bin/.idx)"})
    video_data: str = field(default="", metadata={"help": "[video_vqvae, video_gpt, joint] video: folder with {split}.tsv clip manifests"})
    # text (MASS)
    mask_ratio: float = field(default=0.5, metadata={"help": "[text_mass, joint] fraction of each sentence masked as one contiguous fragment"})
    mask_prob: float = field(default=0.8, metadata={"help": "[text_mass, joint] masked positions shown as <mask> with this probability"})
    random_token_prob: float = field(default=0.1, metadata={"help": "[text_mass, joint] ... as a random token with this one (else unchanged)"})
    max_source_positions: int = field(default=512, metadata={"help": "[text_mass, joint] longest sentence, in sentencepiece tokens"})
    max_target_positions: int = field(default=512, metadata={"help": "[text_mass] longest decoder sequence"})
    # video: the clip geometry, chosen in stage video_vqvae (later stages take their checkpoint's)
    fps: Optional[float] = field(
        default=None, metadata={"help": f"[video_vqvae] frames per second clips are sampled to (default {DEFAULT_FPS:g}); "
                                        "later stages take the VQ-VAE's"})
    resolution: Optional[int] = field(
        default=None, metadata={"help": "[video_vqvae] frames are resized (short side) and centre-cropped to this square "
                                        f"(default {DEFAULT_RESOLUTION}); later stages take the VQ-VAE's"})
    window_frames: Optional[int] = field(
        default=None, metadata={"help": f"[video_vqvae] frames per VQ-VAE window (default {DEFAULT_WINDOW_FRAMES}); "
                                        "later stages take the VQ-VAE's"})
    window_stride: int = field(default=0, metadata={"help": "[video_vqvae, video_gpt] frames between window starts; 0 = window_frames (no overlap)"})
    video_cache: str = field(default="", metadata={"help": "[video_vqvae, video_gpt, joint] folder of decoded clips (memory-mapped); default {video_data}/cache"})
    skip_short_clips: bool = field(default=False, metadata={"help": "[video_vqvae, video_gpt] skip clips shorter than a window instead of stopping"})
    joint_mode: ChoiceEnum(JOINT_MODES) = field(
        default="unsupervised",
        metadata={"help": "[joint] unpaired text ({data}/train) and video ({video_data}/train.tsv), eq. 13; or clips "
                          "with their text (the manifest's text column; point dataset.train_subset at a paired manifest); "
                          "or pseudo_parallel: eq. 13 on the unpaired corpora, each clip also trained towards its pseudo "
                          "translation (task.pseudo_parallel_manifest; criterion.alpha_pseudo). "
                          "U+S: supervised with model.init_checkpoint from an unsupervised run"},
    )
    pseudo_parallel_manifest: str = field(
        default="",
        metadata={"help": "[joint, pseudo_parallel] clip manifest of the video corpus whose text column holds each clip's "
                          f"pseudo translation (scripts/induce_lexicon.py's word-by-word one, or a model's); default "
                          f"{{video_data}}/{PSEUDO_PARALLEL_MANIFEST}"},
    )
    seed: int = field(default=II("common.seed"), metadata={"help": "seeds the MASS masking and the drawing of clips"})


@register_task("uslnet", dataclass=UslnetConfig)
class UslnetTask(AnyBatchSize, FairseqTask):
    TRAINED_MODELS = {model: f"task.stage={stage}" for stage, model in STAGE_MODELS.items()}  # resume_guard.model_owner
    RESUME_DATA_FIELDS = ("data", "video_data")  # a checkpoint trained on another of these is not resumed

    def __init__(self, cfg: UslnetConfig, dictionary):
        super().__init__(cfg)
        self._spm = None
        self.stage = str(cfg.stage)  # a ChoiceEnum member under hydra
        self.dictionary = dictionary
        self.geometry: Optional[ClipGeometry] = None  # the built model's; video data is cut by it
        self._clip_sets = {}

    @classmethod
    def setup_task(cls, cfg: UslnetConfig, **kwargs):
        dictionary, stage = None, str(cfg.stage)
        if stage in ("text_mass", "joint"):
            if not cfg.data:
                raise CorpusError(f"stage {stage} needs task.data (a fairseq-preprocess folder of the text)")
        if cfg.data:
            dict_path = os.path.join(cfg.data, "dict.txt")
            if not os.path.isfile(dict_path):
                raise CorpusError(f"{dict_path}: text dictionary not found (task.data must be fairseq-preprocess output)")
            dictionary = load_dictionary(dict_path)
            dictionary.add_symbol(MASK_SYMBOL)
            logger.info(f"text dictionary: {len(dictionary)} types")
        if stage != "text_mass" and not cfg.video_data:
            raise CorpusError(f"stage {stage} needs task.video_data (a folder of {{split}}.tsv clip manifests)")
        return cls(cfg, dictionary)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, task_cfg=None, **kwargs):
        if task_cfg is not None:  # fairseq-generate passes the checkpoint's task config: its stage, video and clip settings
            self.adopt(task_cfg)
        if self.stage == "text_mass":
            self.datasets[split] = self._mass_dataset(split)
        elif self.stage != "joint":
            self.datasets[split] = self._video_windows(split)
        elif split == "train" and str(self.cfg.joint_mode) == "unsupervised":
            self.datasets[split] = UnpairedTextVideoDataset(self._mass_dataset(split), self._clips(split, with_text=False), self.cfg.seed)
        elif split == "train" and str(self.cfg.joint_mode) == "pseudo_parallel":
            manifest = self.cfg.pseudo_parallel_manifest or os.path.join(self.cfg.video_data, PSEUDO_PARALLEL_MANIFEST)
            self.datasets[split] = UnpairedTextVideoDataset(self._mass_dataset(split), self._clips(split, with_text=True, manifest=manifest),
                                                            self.cfg.seed)
        else:
            self.datasets[split] = self._clips(split, with_text=True)

    def adopt(self, task_cfg) -> None:
        """Take the stage and the window settings a checkpoint was trained with; keep task.data
        (the text folder given on the command line) and any video_data given there."""
        with open_dict(self.cfg):
            for key in ("stage", "joint_mode", "window_stride", "skip_short_clips"):
                if key in task_cfg:
                    self.cfg[key] = task_cfg[key]
            for key in ("video_data", "video_cache"):
                if not self.cfg.get(key) and task_cfg.get(key):
                    self.cfg[key] = task_cfg[key]
        self.stage = str(self.cfg.stage)

    def resume_conflicts(self, saved_task, saved_model) -> list:
        """Settings of this run that the checkpoint it would resume contradicts (resume_guard):
        a video_vqvae run's clip geometry is its VQ-VAE's, fixed when it started."""
        saved = saved_model.get("clip_geometry") if self.stage == "video_vqvae" and saved_model is not None else None
        if saved is None:
            return []
        ours, theirs = ClipGeometry.from_task_settings(self.cfg), ClipGeometry.from_dict(saved)
        return [f"it was trained with task.{k}={getattr(theirs, k)}, this run has task.{k}={getattr(ours, k)}"
                for k in ("fps", "resolution", "window_frames") if getattr(ours, k) != getattr(theirs, k)]

    def _geometry(self) -> ClipGeometry:
        if self.geometry is None:
            raise RuntimeError("the clip geometry is the model's: build the model (task.build_model) before loading video data")
        return self.geometry

    def _cache(self, geometry: ClipGeometry) -> DecodedClipCache:
        return DecodedClipCache(self.cfg.video_cache or os.path.join(self.cfg.video_data, "cache"), geometry.fps, geometry.resolution)

    def _manifest(self, split: str) -> str:
        return os.path.join(self.cfg.video_data, f"{split}.tsv")

    def _clips(self, split: str, with_text: bool, geometry: Optional[ClipGeometry] = None, manifest: Optional[str] = None) -> VideoClipDataset:
        geometry = geometry or self._geometry()
        manifest = manifest or self._manifest(split)
        key = (manifest, with_text, geometry)
        if key in self._clip_sets:  # the train clips the rate was measured on, read once
            return self._clip_sets.pop(key)
        encode = self.encode_text if with_text else None
        clips = VideoClipDataset(manifest, self._cache(geometry), geometry.window_frames, self.dictionary.pad(), self.dictionary.eos(), encode)
        logger.info(f"{split}: {len(clips)} clips" + (" with their text" if with_text else ""))
        return clips

    def encode_text(self, text: str) -> torch.Tensor:
        """A manifest's text -> tokens of the text model's dictionary (its sentencepiece model)."""
        if self._spm is None:
            import sentencepiece

            path = os.path.join(self.cfg.data, "spm.model")
            if not os.path.isfile(path):
                raise CorpusError(f"{path}: the sentencepiece model of the text (scripts/prepare_text.py writes it) is needed to read clip texts")
            self._spm = sentencepiece.SentencePieceProcessor(model_file=path)
        pieces = " ".join(self._spm.encode(text.strip(), out_type=str))
        return self.dictionary.encode_line(pieces, add_if_not_exist=False, append_eos=True).long()

    def measure_tokens_per_second(self, geometry: ClipGeometry) -> float:
        """Text tokens per second of sign video, from the unpaired training corpora: mean
        sentence length over mean clip duration (sets how many text memory positions a clip
        gets). Asked once, when a joint model is first built; its checkpoint keeps the rate."""
        tokens = data_utils.load_indexed_dataset(os.path.join(self.cfg.data, "train"), self.dictionary)
        if tokens is None:
            raise CorpusError(f"{self.cfg.data}/train.bin: needed to measure tokens per second of video")
        clips = self._clips("train", with_text=False, geometry=geometry)
        if str(self.cfg.joint_mode) == "unsupervised":  # load_dataset("train") takes them (memory maps, not frames)
            self._clip_sets[(self._manifest("train"), False, geometry)] = clips
        rate = float(np.mean(tokens.sizes)) / float(np.mean(clips.durations))
        logger.info(f"text: {np.mean(tokens.sizes):.2f} tokens per sentence; video: {np.mean(clips.durations):.2f} s per clip; "
                    f"{rate:.3f} tokens per second")
        return rate

    def _mass_dataset(self, split: str) -> MassDataset:
        prefix = os.path.join(self.cfg.data, split)
        tokens = data_utils.load_indexed_dataset(prefix, self.dictionary)
        if tokens is None:
            raise CorpusError(f"{prefix}.bin/.idx: split {split!r} not found in task.data")
        too_long = [i for i in range(len(tokens)) if tokens.sizes[i] > self.cfg.max_source_positions]
        if too_long:
            raise CorpusError(f"{prefix}: sentence {too_long[0] + 1} has {tokens.sizes[too_long[0]]} tokens, more than "
                              f"task.max_source_positions={self.cfg.max_source_positions}")
        logger.info(f"{split}: {len(tokens)} sentences from {prefix}")
        return MassDataset(tokens, self.dictionary, mask_ratio=self.cfg.mask_ratio, p_mask=self.cfg.mask_prob,
                           p_random=self.cfg.random_token_prob, seed=self.cfg.seed)

    def _video_windows(self, split: str) -> VideoWindowDataset:
        geometry = self._geometry()
        dataset = VideoWindowDataset(os.path.join(self.cfg.video_data, f"{split}.tsv"), self._cache(geometry), geometry.window_frames,
                                     self.cfg.window_stride, skip_short=self.cfg.skip_short_clips)
        logger.info(f"{split}: {len(dataset)} windows of {geometry.window_frames} frames from {len(dataset.clips)} clips")
        return dataset

    def build_model(self, cfg, from_checkpoint=False):
        if from_checkpoint:
            check_model_of_task(self, cfg)
            if cfg._name != STAGE_MODELS[self.stage]:
                # fairseq-generate --task uslnet --path <ckpt>: the stage is the checkpoint's
                self.stage = next(stage for stage, name in STAGE_MODELS.items() if name == cfg._name)
        expected = STAGE_MODELS[self.stage]
        if cfg._name != expected:
            raise ValueError(f"task.stage={self.stage} trains model {expected}, but model._name is {cfg._name}")
        if not from_checkpoint:  # fairseq-train: the checkpoint it is about to resume must be this run's
            check_resume(self, cfg)
        if from_checkpoint and cfg.get("init_checkpoint"):
            with open_dict(cfg):
                cfg.init_checkpoint = ""  # the checkpoint's own weights replace the initial ones anyway
        model = super().build_model(cfg, from_checkpoint)
        # fairseq builds the model from a merged copy of cfg: write back what the model derived
        # (the clip geometry, the stage configs it was built from), so that the checkpoint carries it
        with open_dict(cfg):
            for key, value in getattr(model, "derived_cfg", {}).items():
                cfg[key] = value
        if self.stage != "text_mass":
            self.geometry = model.geometry
            if self.stage != "video_vqvae":
                self.geometry.log_ignored_settings(self.cfg, "the video model")
            logger.info(f"clip geometry: {self.geometry}")
        return model

    @property
    def source_dictionary(self):
        """None: sources are sign video (translation) or masked text in the target dictionary (MASS)."""
        return None

    @property
    def target_dictionary(self):
        return self.dictionary

    def build_generator(self, models, args, **kwargs):
        """fairseq-generate: sign video -> text, which only a joint-stage checkpoint does."""
        if not isinstance(models[0], UslnetModel):
            raise ValueError(
                f"fairseq-generate translates sign video to text with a checkpoint of the joint stage "
                f"(model uslnet); this one is a {type(models[0]).__name__} (stage {self.stage}). Train the joint "
                f"stage from it (examples/uslnet/joint*.yaml), or score it with fairseq-validate"
            )
        return super().build_generator(models, args, **kwargs)

    def max_positions(self):
        if self.stage == "text_mass":
            return (self.cfg.max_source_positions, self.cfg.max_target_positions)
        return None


@register_task("uslnet_bt", dataclass=UslnetConfig)
class UslnetBtTask(UslnetTask):
    """The same task under its former name (for cross-modal back-translation), so configs and
    checkpoints that say uslnet_bt keep working."""
