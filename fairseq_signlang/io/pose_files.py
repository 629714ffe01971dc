"""`.pose` files (the `pose-format` library of the sign-language-processing tools), read and
written by component name, so that corpora those tools prepared plug in as sign features.

pose-format is the optional `pose` extra, imported inside the functions. A `.pose` file keeps
pixel coordinates (T, people, points, dims) with a confidence per point, fps and the frame size
in its header; this module only moves them in and out of files (the first person, the named
components, in the order asked for) and leaves what they mean to features/pose.py.
"""
from typing import NamedTuple, Sequence, Tuple

import numpy as np

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import atomic_open


class PoseComponent(NamedTuple):
    """One header component: its name, point names and limbs (pairs of point indices)."""

    name: str
    points: Sequence[str]
    limbs: Sequence[Tuple[int, int]] = ()


class PoseArrays(NamedTuple):
    points: np.ndarray  # (T, K, 3) float32, the file's (pixel) coordinates
    confidence: np.ndarray  # (T, K) float32, 0 where a point is missing
    fps: float
    width: int
    height: int


def _pose_format():
    try:
        import pose_format  # noqa: F401
    except ImportError:
        raise ImportError(".pose files need pose-format: pip install -e .[pose]  (pose-format 0.15)") from None
    return pose_format


def read_pose_components(path: str, components: Sequence[Tuple[str, int]]) -> PoseArrays:
    """The first person's points of the named components (name, number of points), concatenated
    in that order. A component with more points keeps its first ones (MediaPipe's refined face
    adds 10 iris points after the 468 of the mesh); a missing or too short component is refused
    with the file's name and the component's."""
    _pose_format()
    from pose_format import Pose

    try:
        with open(path, "rb") as f:
            pose = Pose.read(f.read())
    except FileNotFoundError:
        raise CorpusError(f"{path}: .pose file not found") from None
    except Exception as e:
        raise CorpusError(f"{path}: unreadable .pose file ({type(e).__name__}: {e})") from None
    header, body = pose.header, pose.body
    offsets, start = {}, 0
    for c in header.components:
        offsets[c.name] = (start, c)
        start += len(c.points)
    data = np.asarray(np.ma.getdata(body.data), dtype=np.float32)
    confidence = np.asarray(np.ma.getdata(body.confidence), dtype=np.float32)
    if data.ndim != 4 or data.shape[1] == 0:
        raise CorpusError(f"{path}: .pose body has shape {data.shape}, expected (frames, people >= 1, points, dims)")
    if data.shape[3] < 3:
        raise CorpusError(f"{path}: .pose points have {data.shape[3]} dimensions, expected x, y, z")
    if len(data) == 0:
        raise CorpusError(f"{path}: .pose file has no frames")
    have = [c.name for c in header.components]
    parts, conf = [], []
    for name, count in components:
        if name not in offsets:
            raise CorpusError(f"{path}: .pose header has no {name} component (it has {', '.join(have) or 'none'})")
        first, component = offsets[name]
        if len(component.points) < count:
            raise CorpusError(f"{path}: .pose component {name} has {len(component.points)} points, expected {count}")
        parts.append(data[:, 0, first : first + count, :3])
        conf.append(confidence[:, 0, first : first + count])
    points = np.concatenate(parts, axis=1)
    if not np.isfinite(points).all():
        raise CorpusError(f"{path}: .pose file has NaN or infinite coordinates")
    dims = header.dimensions
    return PoseArrays(points, np.concatenate(conf, axis=1), float(body.fps), int(dims.width), int(dims.height))


def write_pose_file(
    path: str,
    components: Sequence[PoseComponent],
    points: np.ndarray,
    confidence: np.ndarray,
    fps: float,
    width: int,
    height: int,
) -> None:
    """One person's points (T, K, 3) and confidence (T, K), K the components' points in order,
    as a `.pose` file (header version 0.2, point format XYZC, as pose-format's MediaPipe
    reader writes); written to a temporary name and renamed."""
    _pose_format()
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    total = sum(len(c.points) for c in components)
    if points.ndim != 3 or points.shape[1:] != (total, 3) or confidence.shape != points.shape[:2]:
        raise ValueError(f"{path}: points {points.shape} / confidence {confidence.shape} do not match the header's {total} points")
    header = PoseHeader(
        version=0.2,
        dimensions=PoseHeaderDimensions(width=int(width), height=int(height), depth=0),
        components=[
            PoseHeaderComponent(name=c.name, points=list(c.points), limbs=[tuple(map(int, l)) for l in c.limbs], colors=[(255, 0, 0)], point_format="XYZC")
            for c in components
        ],
    )
    body = NumPyPoseBody(
        fps=float(fps),
        data=np.asarray(points, dtype=np.float32)[:, None],
        confidence=np.asarray(confidence, dtype=np.float32)[:, None],
    )
    with atomic_open(path, "wb") as f:
        Pose(header, body).write(f)
