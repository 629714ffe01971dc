"""Pretrained video feature extractors loaded from a user's checkpoint: I3D (RGB) over
sliding windows and per-frame VGG. No weights can be downloaded here, so the modules are
written in the project with the parameter names of the checkpoints researchers have:

- I3D: the Inception-v1 I3D of Carreira & Zisserman in the layout of the widely used PyTorch
  port (`Conv3d_1a_7x7.conv3d.weight`, `Mixed_3b.b1b.bn.running_mean`, ...), as in its
  ImageNet and Charades RGB checkpoints (the paper's I3D is ImageNet + Charades).
- VGG: torchvision's layout (`features.N.weight`, `classifier.N.weight`), VGG-11 to VGG-19.

Channel widths (and VGG's depth) are read from the checkpoint's tensor shapes, so a thinner
network with the same layout (what the tests save) loads as well as the paper-size one.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fairseq_signlang.io.device import default_device
from fairseq_signlang.io.checkpoints import CheckpointError, read_checkpoint

MIXED = ("Mixed_3b", "Mixed_3c", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c")
BRANCHES = ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")
I3D_WIDTHS = {  # out channels of the stem convolutions and of each inception branch
    "Conv3d_1a_7x7": 64, "Conv3d_2b_1x1": 64, "Conv3d_2c_3x3": 192,
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """TensorFlow's 'SAME' padding over (T, H, W), which the I3D weights were trained with."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm + ReLU with 'SAME' padding."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x):
        return F.relu(self.bn(self.conv3d(same_padding(x, self.kernel, self.stride))))


class SamePool3d(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):  # inputs follow a ReLU, so zero padding never wins the max
        return F.max_pool3d(same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class Inception3D(nn.Module):
    def __init__(self, cin: int, widths: Sequence[int]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = widths
        self.b0 = Unit3D(cin, c0)
        self.b1a, self.b1b = Unit3D(cin, c1a), Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c2a), Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a, self.b3b = SamePool3d((3, 3, 3), (1, 1, 1)), Unit3D(cin, c3)
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3D(nn.Module):
    """RGB I3D up to Mixed_5c. Input (B, 3, T, H, W) in [-1, 1]; output (B, C, T/8, H/32, W/32),
    C = 1024 at paper size."""

    def __init__(self, widths: Dict = I3D_WIDTHS):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, widths["Conv3d_1a_7x7"], (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = SamePool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(widths["Conv3d_1a_7x7"], widths["Conv3d_2b_1x1"])
        self.Conv3d_2c_3x3 = Unit3D(widths["Conv3d_2b_1x1"], widths["Conv3d_2c_3x3"], (3, 3, 3))
        self.MaxPool3d_3a_3x3 = SamePool3d((1, 3, 3), (1, 2, 2))
        pools = {"Mixed_4b": SamePool3d((3, 3, 3), (2, 2, 2)), "Mixed_5b": SamePool3d((2, 2, 2), (2, 2, 2))}
        self.order: List[str] = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        cin = widths["Conv3d_2c_3x3"]
        for name in MIXED:
            if name in pools:
                pool_name = {"Mixed_4b": "MaxPool3d_4a_3x3", "Mixed_5b": "MaxPool3d_5a_2x2"}[name]
                setattr(self, pool_name, pools[name])
                self.order.append(pool_name)
            block = Inception3D(cin, widths[name])
            setattr(self, name, block)
            self.order.append(name)
            cin = block.out_channels
        self.out_channels = cin

    def forward(self, x):
        for name in self.order:
            x = getattr(self, name)(x)
        return x

    @staticmethod
    def widths_of(state: Dict[str, torch.Tensor]) -> Dict:
        widths = {k: state[f"{k}.conv3d.weight"].shape[0] for k in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")}
        for name in MIXED:
            widths[name] = tuple(state[f"{name}.{b}.conv3d.weight"].shape[0] for b in BRANCHES)
        return widths


VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class VGG(nn.Module):
    """torchvision-layout VGG; `layout` lists conv widths with "M" for 2x2 max pools. Input
    (B, 3, H, W) ImageNet-normalised; output the fc7 activations (B, hidden)."""

    def __init__(self, layout=VGG19_LAYOUT, hidden: int = 4096, num_classes: int = 1000):
        super().__init__()
        layers, cin = [], 3
        for width in layout:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
                cin = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(cin * 49, hidden), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(hidden, num_classes),
        )
        self.out_channels = hidden

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)  # (B, C * 7 * 7)
        return self.classifier[:5](x)  # up to fc7 + ReLU: (B, hidden)

    @staticmethod
    def layout_of(state: Dict[str, torch.Tensor]):
        """Conv widths and pools from the indices of `features.N.weight`: a conv is followed by
        its ReLU, and a gap of one more index is a max pool."""
        convs = sorted(int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight"))
        layout = []
        for i, idx in enumerate(convs):
            layout.append(state[f"features.{idx}.weight"].shape[0])
            if i + 1 == len(convs) or convs[i + 1] - idx == 3:
                layout.append("M")
        return tuple(layout)


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a checkpoint saved as a bare state dict or under "state_dict" / "model",
    with DataParallel's "module." prefixes removed. Loaded weights-only."""
    obj = read_checkpoint(path, "PyTorch checkpoint")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _a(kind: str) -> str:
    return "an I3D" if kind == "i3d" else "a VGG"


def build_from_checkpoint(path: str, kind: str) -> nn.Module:
    """An I3D or VGG in eval mode with the weights of `path` (head layers not used are dropped)."""
    state = load_state_dict(path)
    try:
        if kind == "i3d":
            model = InceptionI3D(InceptionI3D.widths_of(state))
            state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        elif kind == "vgg":
            head = state["classifier.0.weight"]
            model = VGG(VGG.layout_of(state), hidden=head.shape[0], num_classes=state["classifier.6.weight"].shape[0])
        else:
            raise ValueError(f"unknown visual model {kind!r} (i3d or vgg)")
    except KeyError as e:
        raise CheckpointError(f"{path}: not {_a(kind)} checkpoint (no {e.args[0]})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(f"{path}: not {_a(kind)} checkpoint of the expected layout (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()


class I3DExtractor:
    """Frames (T, H, W, 3) uint8 -> one feature per window of `window` frames every `stride`
    frames: (windows, C), Mixed_5c averaged over time and space. Clips shorter than a window
    repeat their last frame."""

    def __init__(self, checkpoint: str, window: int = 16, stride: int = 4, batch_size: int = 8, device: Optional[str] = None):
        self.device = default_device(device)
        self.model = build_from_checkpoint(checkpoint, "i3d").to(self.device)
        self.window, self.stride, self.batch_size = window, stride, batch_size
        self.dim = self.model.out_channels

    def frame_rate(self, fps: float) -> float:
        return fps / self.stride

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(frames)).permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)  # (3, T, H, W)
        if x.shape[1] < self.window:
            x = torch.cat([x, x[:, -1:].expand(-1, self.window - x.shape[1], -1, -1)], dim=1)
        starts = range(0, x.shape[1] - self.window + 1, self.stride)
        out = []
        for b in range(0, len(starts), self.batch_size):
            clips = torch.stack([x[:, s : s + self.window] for s in starts[b : b + self.batch_size]]).to(self.device)  # (B, 3, window, H, W)
            out.append(self.model(clips).mean(dim=(2, 3, 4)).float().cpu())  # (B, C)
        return torch.cat(out).numpy()


class VGGFrameExtractor:
    """Frames (T, H, W, 3) uint8 -> fc7 features (T, hidden), one per frame."""

    MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, checkpoint: str, batch_size: int = 32, device: Optional[str] = None):
        self.device = default_device(device)
        self.model = build_from_checkpoint(checkpoint, "vgg").to(self.device)
        self.batch_size = batch_size
        self.dim = self.model.out_channels
        self.mean = torch.tensor(self.MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(self.STD).view(1, 3, 1, 1)

    def frame_rate(self, fps: float) -> float:
        return fps

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W)
        x = (x - self.mean) / self.std
        return torch.cat([self.model(x[b : b + self.batch_size].to(self.device)).float().cpu() for b in range(0, len(x), self.batch_size)]).numpy()
