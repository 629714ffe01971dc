"""A procedural signer: per-word sign trajectories of body and hand landmarks, with
signer-to-signer variation and visually similar pairs, rendered to real video frames.

No sign video can be had offline, so the demo's sign side is made here and then sent through
the same video feature path as a user's clips. Each word gets a sign: a start location near
the body, a movement (line, arc, circle, tap or hold), a hand shape (how far each finger is
extended), a palm orientation, one or two hands. A signer changes body size and position,
speed, movement size and adds tremor; a similar pair differs in a single parameter.

Landmarks are (x, y, z) in [0, 1] image coordinates, z = 0, in this order:
0 head, 1 neck, 2/3 left/right shoulder, 4/5 left/right elbow, 6/7 left/right wrist,
8-13 right hand (palm centre, thumb .. little fingertip), 14-19 left hand (same order).
"""
from dataclasses import dataclass, replace
from typing import Dict, List, Sequence, Tuple

import numpy as np

from fairseq_signlang.features.glove_tracker import HEAD_COLOUR, LEFT_HAND_COLOUR, RIGHT_HAND_COLOUR

NUM_LANDMARKS = 20
LOCATIONS = {"forehead": (0.5, 0.22), "chin": (0.5, 0.36), "chest": (0.5, 0.55), "side": (0.72, 0.55), "waist": (0.55, 0.72)}
MOVEMENTS = ("line", "arc", "circle", "tap", "hold")


@dataclass(frozen=True)
class SignSpec:
    location: Tuple[float, float]
    movement: str
    direction: float  # radians
    amplitude: float
    handshape: Tuple[float, ...]  # extension of thumb .. little finger, 0..1
    orientation: float  # palm angle, radians
    two_handed: bool
    frames: int  # at 25 fps, for an average signer


@dataclass(frozen=True)
class SignerStyle:
    scale: float
    offset: Tuple[float, float]
    speed: float
    amplitude: float
    tremor: float


def random_sign(rng: np.random.Generator) -> SignSpec:
    loc = LOCATIONS[list(LOCATIONS)[rng.integers(len(LOCATIONS))]]
    return SignSpec(
        location=(loc[0] + rng.uniform(-0.05, 0.05), loc[1] + rng.uniform(-0.04, 0.04)),
        movement=MOVEMENTS[rng.integers(len(MOVEMENTS))],
        direction=float(rng.uniform(0, 2 * np.pi)),
        amplitude=float(rng.uniform(0.06, 0.16)),
        handshape=tuple(float(x) for x in rng.choice([0.15, 0.6, 1.0], size=5)),
        orientation=float(rng.uniform(-0.8, 0.8)),
        two_handed=bool(rng.random() < 0.4),
        frames=int(rng.integers(12, 20)),
    )


def similar_sign(spec: SignSpec, rng: np.random.Generator) -> SignSpec:
    """A sign that differs from `spec` in one parameter only (visually similar signs)."""
    which = rng.integers(3)
    if which == 0:
        shape = list(spec.handshape)
        i = int(rng.integers(5))
        shape[i] = 1.0 if shape[i] < 0.5 else 0.15
        return replace(spec, handshape=tuple(shape))
    if which == 1:
        return replace(spec, direction=spec.direction + np.pi / 2)
    return replace(spec, orientation=-spec.orientation if abs(spec.orientation) > 0.2 else spec.orientation + 0.6)


class ProceduralSigner:
    def __init__(self, vocab: Sequence[str], similar_pairs: Sequence[Tuple[str, str]] = (), seed: int = 0, variation: float = 1.0):
        """variation scales how much signers differ from the average signer (body size and
        position, speed, movement size, tremor); 0 makes every signer the same."""
        rng = np.random.default_rng(seed)
        self.variation = variation
        self.signs: Dict[str, SignSpec] = {w: random_sign(rng) for w in vocab}
        for a, b in similar_pairs:
            self.signs[b] = similar_sign(self.signs[a], rng)
        self.seed = seed

    def style(self, signer: int) -> SignerStyle:
        rng = np.random.default_rng([self.seed, 1000 + signer])
        v = self.variation
        return SignerStyle(
            scale=float(1 + v * rng.uniform(-0.1, 0.1)),
            offset=(float(v * rng.uniform(-0.06, 0.06)), float(v * rng.uniform(-0.04, 0.04))),
            speed=float(np.exp(v * rng.uniform(np.log(0.8), np.log(1.25)))),
            amplitude=float(1 + v * rng.uniform(-0.15, 0.15)),
            tremor=float(v * rng.uniform(0.002, 0.006)),
        )

    def word(self, word: str, signer: int, rng: np.random.Generator) -> np.ndarray:
        """Landmarks (T, 20, 3) of one sign by one signer."""
        spec, style = self.signs[word], self.style(signer)
        T = max(6, int(round(spec.frames / style.speed * rng.uniform(0.9, 1.1))))
        s = np.linspace(0.0, 1.0, T)
        amp = spec.amplitude * style.amplitude
        d = np.array([np.cos(spec.direction), np.sin(spec.direction)])
        if spec.movement == "line":
            path = np.outer(s - 0.5, d) * amp * 2
        elif spec.movement == "arc":
            path = np.outer(s - 0.5, d) * amp * 2 + np.outer(np.sin(np.pi * s), d[::-1] * [-1, 1]) * amp * 0.6
        elif spec.movement == "circle":
            a = spec.direction + 2 * np.pi * s
            path = np.stack([np.cos(a), np.sin(a)], 1) * amp * 0.7
        elif spec.movement == "tap":
            path = np.outer(np.abs(np.sin(3 * np.pi * s)), d) * amp * 0.6
        else:  # hold
            path = np.outer(np.sin(np.pi * s), d) * amp * 0.15
        wrist_r = np.asarray(spec.location) + path
        pose = np.stack([self._body(style) for _ in range(T)])  # (T, 20, 3)
        pose[:, 7, :2] = _to_body(wrist_r, style)
        if spec.two_handed:
            mirrored = np.stack([1.0 - wrist_r[:, 0], wrist_r[:, 1]], 1)
            pose[:, 6, :2] = _to_body(mirrored, style)
        _place_arm(pose, side=1, style=style)
        _place_arm(pose, side=0, style=style)
        _place_hand(pose, 8, pose[:, 7, :2], spec.handshape, spec.orientation, style)
        left_shape = spec.handshape if spec.two_handed else (0.6,) * 5
        _place_hand(pose, 14, pose[:, 6, :2], left_shape, np.pi - spec.orientation if spec.two_handed else np.pi, style)
        pose[..., :2] += rng.normal(scale=style.tremor, size=pose[..., :2].shape)
        return np.clip(pose, 0.0, 1.0).astype(np.float32)

    def _body(self, style: SignerStyle) -> np.ndarray:
        p = np.zeros((NUM_LANDMARKS, 3))
        p[0, :2], p[1, :2] = (0.5, 0.2), (0.5, 0.4)
        p[2, :2], p[3, :2] = (0.32, 0.45), (0.68, 0.45)
        p[6, :2] = (0.38, 0.85)  # left wrist at rest
        p[:, :2] = _to_body(p[:, :2], style)
        return p

    def sentence(self, words: Sequence[str], signer: int, seed: int = 0, transition: int = 4) -> Tuple[np.ndarray, List[Tuple[str, int, int]]]:
        """Landmarks of the signs of `words` in order, joined by short transitions, and each
        sign's (word, first frame, end frame) in the result."""
        rng = np.random.default_rng([self.seed, signer, seed])
        parts, bounds, t = [], [], 0
        for i, w in enumerate(words):
            sign = self.word(w, signer, rng)
            if i > 0:
                a, b = parts[-1][-1], sign[0]
                steps = np.linspace(0, 1, transition + 2)[1:-1, None, None]
                parts.append((a + (b - a) * steps).astype(np.float32))
                t += transition
            parts.append(sign)
            bounds.append((w, t, t + len(sign)))
            t += len(sign)
        return np.concatenate(parts), bounds


def _to_body(xy: np.ndarray, style: SignerStyle) -> np.ndarray:
    """Scale about the neck and shift, per signer."""
    neck = np.array([0.5, 0.4])
    return (np.asarray(xy) - neck) * style.scale + neck + np.asarray(style.offset)


def _place_arm(pose: np.ndarray, side: int, style: SignerStyle) -> None:
    """Elbow between shoulder and wrist, bent outwards and down."""
    shoulder, wrist = pose[:, 2 + side, :2], pose[:, 6 + side, :2]
    mid = (shoulder + wrist) / 2
    out = np.array([0.08 if side else -0.08, 0.06]) * style.scale
    pose[:, 4 + side, :2] = mid + out


def _place_hand(pose: np.ndarray, first: int, wrist: np.ndarray, shape: Sequence[float], orientation: float, style: SignerStyle) -> None:
    """Palm centre, then five fingertips fanned around the palm direction, reaching as far as
    each finger is extended."""
    length = 0.06 * style.scale
    palm_dir = np.array([np.sin(orientation), -np.cos(orientation)])
    pose[:, first, :2] = wrist + palm_dir * length * 0.5
    for f, ext in enumerate(shape):
        angle = orientation + (f - 2) * 0.35
        finger = np.array([np.sin(angle), -np.cos(angle)])
        pose[:, first + 1 + f, :2] = pose[:, first, :2] + finger * length * (0.3 + 0.9 * ext)


def render(landmarks: np.ndarray, size: Tuple[int, int] = (128, 128)) -> np.ndarray:
    """Landmarks (T, 20, 3) -> RGB frames (T, H, W, 3) uint8: a grey signer with a skin-toned
    head, blue arms, and hands drawn as an orange (right) and green (left) fan of fingers."""
    from PIL import Image, ImageDraw

    W, H = size
    frames = np.empty((len(landmarks), H, W, 3), dtype=np.uint8)
    line = max(1, W // 40)
    for t, p in enumerate(landmarks):
        img = Image.new("RGB", (W, H), (40, 40, 48))
        d = ImageDraw.Draw(img)
        xy = [(float(x * W), float(y * H)) for x, y, _ in p]
        d.polygon([xy[2], xy[3], (xy[3][0], H), (xy[2][0], H)], fill=(90, 90, 100))  # torso
        r = 0.09 * W * np.hypot(p[3, 0] - p[2, 0], p[3, 1] - p[2, 1]) / 0.36  # head size follows body size
        d.ellipse([xy[0][0] - r, xy[0][1] - r * 1.2, xy[0][0] + r, xy[0][1] + r * 1.2], fill=HEAD_COLOUR)
        for a, b in ((2, 4), (4, 6), (3, 5), (5, 7)):
            d.line([xy[a], xy[b]], fill=(70, 110, 200), width=2 * line)
        for first, colour in ((8, RIGHT_HAND_COLOUR), (14, LEFT_HAND_COLOUR)):
            palm = xy[first]
            d.ellipse([palm[0] - 2 * line, palm[1] - 2 * line, palm[0] + 2 * line, palm[1] + 2 * line], fill=colour)
            for f in range(5):
                d.line([palm, xy[first + 1 + f]], fill=colour, width=line)
        frames[t] = np.asarray(img)
    return frames
