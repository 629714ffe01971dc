"""Hand features from coloured gloves, the classic marker-based sign tracking, and the offline
stand-in for I3D or pose on the procedural signer's videos (whose hands are drawn in glove
colours; no pretrained video model can be had here).

Per frame and hand: the centroid of the glove's pixels relative to the face, divided by the
face's size (so body position and signer size drop out), the glove's area relative to the
face's, its second moments (spread and tilt: the hand shape), and the centroid's velocity.
A hand not seen in a frame gets zeros.
"""
from typing import Sequence, Tuple

import numpy as np

Colour = Tuple[int, int, int]
# the glove colours tracked by default (the procedural signer draws its hands in them)
HEAD_COLOUR, RIGHT_HAND_COLOUR, LEFT_HAND_COLOUR = (200, 160, 130), (250, 150, 40), (60, 200, 90)
PER_HAND = ("x", "y", "area", "spread_x", "spread_y", "tilt", "velocity_x", "velocity_y")


class GloveTracker:
    """Frames (T, H, W, 3) uint8 RGB -> (T, 16): PER_HAND for the right then the left hand."""

    def __init__(self, face: Colour = HEAD_COLOUR, hands: Sequence[Colour] = (RIGHT_HAND_COLOUR, LEFT_HAND_COLOUR), tolerance: float = 90.0):
        """tolerance: the largest L1 distance in RGB from a colour that still counts as it
        (video compression shifts colours)."""
        self.face, self.hands, self.tolerance = np.array(face, np.float32), [np.array(c, np.float32) for c in hands], tolerance
        self.dim = len(PER_HAND) * len(self.hands)

    def frame_rate(self, fps: float) -> float:
        return fps

    def _blobs(self, frames: np.ndarray, colour: np.ndarray):
        """Per frame: pixel count, centroid (x, y) and second moments (xx, yy, xy) of the
        pixels near `colour`, in units of the frame height."""
        T, H, W, _ = frames.shape
        mask = (np.abs(frames.astype(np.float32) - colour).sum(-1) < self.tolerance).astype(np.float32)  # (T, H, W)
        ys, xs = np.mgrid[0:H, 0:W] / H
        count = mask.sum((1, 2))
        n = np.maximum(count, 1.0)
        cx, cy = (mask * xs).sum((1, 2)) / n, (mask * ys).sum((1, 2)) / n
        dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
        moments = [(mask * a * b).sum((1, 2)) / n for a, b in ((dx, dx), (dy, dy), (dx, dy))]
        return count / (H * H), cx, cy, moments

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        face_area, fx, fy, _ = self._blobs(frames, self.face)
        seen_face = face_area > 0
        if not seen_face.any():
            return np.zeros((len(frames), self.dim), np.float32)
        # frames without a visible face borrow the clip's average face
        size = np.where(seen_face, np.sqrt(face_area), np.sqrt(face_area[seen_face].mean()))
        fx = np.where(seen_face, fx, fx[seen_face].mean())
        fy = np.where(seen_face, fy, fy[seen_face].mean())
        out = []
        for colour in self.hands:
            area, cx, cy, (sxx, syy, sxy) = self._blobs(frames, colour)
            x, y = (cx - fx) / size, (cy - fy) / size
            seen = area > 0
            feats = np.stack([x, y, area / size**2, np.sqrt(sxx) / size, np.sqrt(syy) / size, sxy / size**2, np.gradient(x) if len(x) > 1 else 0 * x, np.gradient(y) if len(y) > 1 else 0 * y], 1)
            out.append(np.where(seen[:, None], feats, 0.0))
        return np.concatenate(out, 1).astype(np.float32)
