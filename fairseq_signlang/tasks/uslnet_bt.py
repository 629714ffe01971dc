"""Task uslnet_bt: USLNet, unsupervised sign language translation and generation.

One task, configured by the stage it trains (`task.stage`):
  text_mass    the text encoder-decoder, MASS span masking (eq. 1)       model uslnet_text
  video_vqvae  the video VQ-VAE: codebook + reconstruction (eq. 2-4)     model uslnet_vqvae
  video_gpt    the GPT prior over the VQ-VAE's code grid (eq. 5)         model uslnet_video_gpt
A later stage loads an earlier one's checkpoint by path (`model.vqvae_checkpoint`,
`model.init_checkpoint`).

Data, unpaired (the i-th sentence has nothing to do with the i-th clip):
  task.data         fairseq-preprocess output of sentencepiece-encoded text (scripts/prepare_text.py):
                    dict.txt, {split}.bin, {split}.idx
  task.video_data   {split}.tsv clip manifests (id, path, optional start/end seconds and text);
                    clips are decoded once (PyAV), sampled to task.fps, resized and centre-cropped
                    to task.resolution, cached memory-mapped in task.video_cache, and cut into
                    windows of task.window_frames frames
"""
import logging
import os
from dataclasses import dataclass, field

from fairseq.data import Dictionary, data_utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II, open_dict

from ..data.mass_noise import MassDataset
from ..data.readers import CorpusError
from ..data.video_windows import DecodedClipCache, VideoWindowDataset

logger = logging.getLogger(__name__)

STAGES = ("text_mass", "video_vqvae", "video_gpt")
STAGE_MODELS = {"text_mass": "uslnet_text", "video_vqvae": "uslnet_vqvae", "video_gpt": "uslnet_video_gpt"}
MASK_SYMBOL = "<mask>"


@dataclass
class UslnetConfig(FairseqDataclass):
    stage: ChoiceEnum(STAGES) = field(default="text_mass", metadata={"help": "what this run trains: " + ", ".join(STAGES)})
    data: str = field(default="", metadata={"help": "text: fairseq-preprocess folder (dict.txt, {split}.bin/.idx)"})
    video_data: str = field(default="", metadata={"help": "video: folder with {split}.tsv clip manifests"})
    # text (MASS)
    mask_ratio: float = field(default=0.5, metadata={"help": "fraction of each sentence masked as one contiguous fragment"})
    mask_prob: float = field(default=0.8, metadata={"help": "masked positions shown as <mask> with this probability"})
    random_token_prob: float = field(default=0.1, metadata={"help": "... as a random token with this one (else unchanged)"})
    max_source_positions: int = field(default=512, metadata={"help": "longest sentence, in sentencepiece tokens"})
    max_target_positions: int = field(default=512, metadata={"help": "longest decoder sequence"})
    # video
    fps: float = field(default=25.0, metadata={"help": "frames per second clips are sampled to"})
    resolution: int = field(default=64, metadata={"help": "frames are resized (short side) and centre-cropped to this square"})
    window_frames: int = field(default=16, metadata={"help": "frames per VQ-VAE window"})
    window_stride: int = field(default=0, metadata={"help": "frames between window starts; 0 = window_frames (no overlap)"})
    video_cache: str = field(default="", metadata={"help": "folder of decoded clips (memory-mapped); default {video_data}/cache"})
    skip_short_clips: bool = field(default=False, metadata={"help": "skip clips shorter than a window instead of stopping"})
    seed: int = field(default=II("common.seed"), metadata={"help": "seeds the MASS masking"})


@register_task("uslnet_bt", dataclass=UslnetConfig)
class UslnetTask(FairseqTask):
    def __init__(self, cfg: UslnetConfig, dictionary):
        super().__init__(cfg)
        self.stage = str(cfg.stage)  # a ChoiceEnum member under hydra
        self.dictionary = dictionary

    @classmethod
    def setup_task(cls, cfg: UslnetConfig, **kwargs):
        dictionary, stage = None, str(cfg.stage)
        if stage == "text_mass":
            if not cfg.data:
                raise CorpusError(f"stage {stage} needs task.data (a fairseq-preprocess folder of the text)")
        if cfg.data:
            dict_path = os.path.join(cfg.data, "dict.txt")
            if not os.path.isfile(dict_path):
                raise CorpusError(f"{dict_path}: text dictionary not found (task.data must be fairseq-preprocess output)")
            dictionary = Dictionary.load(dict_path)
            dictionary.add_symbol(MASK_SYMBOL)
            logger.info(f"text dictionary: {len(dictionary)} types")
        if stage.startswith("video") and not cfg.video_data:
            raise CorpusError(f"stage {stage} needs task.video_data (a folder of {{split}}.tsv clip manifests)")
        return cls(cfg, dictionary)

    def load_dataset(self, split: str, epoch: int = 1, combine: bool = False, **kwargs):
        if self.stage == "text_mass":
            self.datasets[split] = self._mass_dataset(split)
        else:
            self.datasets[split] = self._video_windows(split)

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
        cache = DecodedClipCache(self.cfg.video_cache or os.path.join(self.cfg.video_data, "cache"), self.cfg.fps, self.cfg.resolution)
        dataset = VideoWindowDataset(os.path.join(self.cfg.video_data, f"{split}.tsv"), cache, self.cfg.window_frames,
                                     self.cfg.window_stride, skip_short=self.cfg.skip_short_clips)
        logger.info(f"{split}: {len(dataset)} windows of {self.cfg.window_frames} frames from {len(dataset.clips)} clips")
        return dataset

    def build_model(self, cfg, from_checkpoint=False):
        expected = STAGE_MODELS[self.stage]
        if cfg._name != expected:
            raise ValueError(f"task.stage={self.stage} trains model {expected}, but model._name is {cfg._name}")
        if from_checkpoint and cfg.get("init_checkpoint"):
            with open_dict(cfg):
                cfg.init_checkpoint = ""  # the checkpoint's own weights replace the initial ones anyway
        model = super().build_model(cfg, from_checkpoint)
        # fairseq builds the model from a merged copy of cfg: write back what the model derived
        # (the VQ-VAE's config inside the GPT's), so that the checkpoint carries it
        with open_dict(cfg):
            for key, value in getattr(model, "derived_cfg", {}).items():
                cfg[key] = value
        return model

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    def max_positions(self):
        if self.stage == "text_mass":
            return (self.cfg.max_source_positions, self.cfg.max_target_positions)
        return None

    def get_batch_iterator(self, dataset, *args, **kwargs):
        """Batches of any size: fairseq drops a last batch smaller than required_batch_size_multiple."""
        kwargs["required_batch_size_multiple"] = 1
        return super().get_batch_iterator(dataset, *args, **kwargs)
