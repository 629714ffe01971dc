"""The clip geometry of a USLNet video model: the frame rate clips are sampled to, the square
they are resized and cropped to, and the frames of one VQ-VAE window.

It is chosen once, by the task settings of the video_vqvae stage, and from then on belongs to
the VQ-VAE: its model config carries it (`clip_geometry`), the GPT takes it from the VQ-VAE it
models and the joint model from its video stage, as VideoGPT's GPT takes its shapes from its
VQ-VAE. Tasks read it off the model they built, so data is cut the way the model was trained.
"""
import logging
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

logger = logging.getLogger(__name__)

# task settings of the video_vqvae stage when the user gives none
DEFAULT_FPS, DEFAULT_RESOLUTION, DEFAULT_WINDOW_FRAMES = 25.0, 64, 16
FIELDS = ("fps", "resolution", "window_frames")


@dataclass(frozen=True)
class ClipGeometry:
    fps: float
    resolution: int
    window_frames: int

    def __post_init__(self):
        if not self.fps or self.fps <= 0:
            raise ValueError(f"task.fps must be positive, got {self.fps}")
        for name in ("resolution", "window_frames"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"task.{name} must be a positive integer, got {value}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "fps", float(self.fps))

    @classmethod
    def from_dict(cls, d) -> "ClipGeometry":
        return cls(d["fps"], d["resolution"], d["window_frames"])

    @classmethod
    def from_task_settings(cls, task_cfg) -> "ClipGeometry":
        """The geometry a video_vqvae run chooses: the task's settings, defaults where unset."""
        defaults = {"fps": DEFAULT_FPS, "resolution": DEFAULT_RESOLUTION, "window_frames": DEFAULT_WINDOW_FRAMES}
        return cls.from_dict({k: defaults[k] if _setting(task_cfg, k) is None else _setting(task_cfg, k) for k in FIELDS})

    def as_dict(self) -> dict:
        return asdict(self)

    def check_downsampling(self, downsample: Sequence[int]) -> None:
        check_downsampling(self.resolution, self.window_frames, tuple(downsample))

    def log_ignored_settings(self, task_cfg, source: str) -> None:
        """Task settings that disagree with a model's geometry are replaced by it: say so."""
        for k in FIELDS:
            value = _setting(task_cfg, k)
            if value is not None and float(value) != float(getattr(self, k)):
                logger.warning(f"task.{k}={value} is replaced by {getattr(self, k)}, the clip geometry of {source}")


def _setting(task_cfg, key: str) -> Optional[float]:
    return getattr(task_cfg, key, None) if not hasattr(task_cfg, "get") else task_cfg.get(key, None)


def check_downsampling(resolution: int, window_frames: int, downsample: tuple) -> None:
    """Fail before training when the VQ-VAE's (time, height, width) down-sampling does not divide
    the window: the encoder would silently drop frames or pixels and the decoder could not
    reconstruct the input's shape."""
    if len(downsample) != 3 or any(int(d) != d or d < 1 for d in downsample):
        raise ValueError(f"model.downsample must be three positive integers (time, height, width), got {list(downsample)}")
    t, h, w = (int(d) for d in downsample)
    problems = []
    if window_frames % t:
        problems.append(f"task.window_frames {window_frames} is not divisible by the VQ-VAE's temporal down-sampling {t} (model.downsample)")
    for d in dict.fromkeys((h, w)):
        if resolution % d:
            problems.append(f"task.resolution {resolution} is not divisible by the VQ-VAE's spatial down-sampling {d} (model.downsample)")
    if problems:
        raise ValueError("; ".join(problems))
