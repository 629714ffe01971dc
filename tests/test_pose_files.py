""".pose files (pose-format): landmarks written by pose-format itself, in the header layout its
MediaPipe reader writes, read back as sign features equal to the MediaPipe array path; the
errors for a header without a needed component; the extract script's `.pose` input and output."""
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pose_format")  # the `pose` extra, which `make test` installs

from pose_format import Pose  # noqa: E402
from pose_format.numpy.pose_body import NumPyPoseBody  # noqa: E402
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions  # noqa: E402

from fairseq_signlang.features.pose import (  # noqa: E402
    BODY_POINTS, HAND_POINTS, PoseFileLandmarks, holistic_parts, landmark_array, pose_file_landmarks, sample_frame_indices,
    write_holistic_pose,
)
from fairseq_signlang.io.readers import CorpusError, read_features  # noqa: E402
from fairseq_signlang.io.video import ClipRow, write_clip_manifest, write_video  # noqa: E402

from .test_speech_features import run_script  # noqa: E402

W, H, FPS = 320, 240, 25.0
# pose-format's MediaPipe Holistic layout: body, face, hands, then body world landmarks
HOLISTIC = [("POSE_LANDMARKS", BODY_POINTS), ("FACE_LANDMARKS", [str(i) for i in range(468)]), ("LEFT_HAND_LANDMARKS", HAND_POINTS),
            ("RIGHT_HAND_LANDMARKS", HAND_POINTS), ("POSE_WORLD_LANDMARKS", BODY_POINTS)]


def holistic_results(frames=10, seed=0):
    """MediaPipe-shaped results (normalised x, y; z about the same scale), parts missing in some frames."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        part = {}
        for name, count in (("pose_landmarks", 33), ("face_landmarks", 468), ("left_hand_landmarks", 21), ("right_hand_landmarks", 21)):
            missing = (name == "left_hand_landmarks" and t % 3 == 0) or (name == "right_hand_landmarks" and t in (4, 5)) or (name == "pose_landmarks" and t == 7)
            xyz = rng.uniform([-0.1, -0.1, -0.5], [1.1, 1.1, 0.5], size=(count, 3)).astype(np.float32)
            part[name] = None if missing else SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, z=z) for x, y, z in xyz])
        out.append(SimpleNamespace(**part))
    return out


def write_like_pose_format(path, results, drop=()):
    """A .pose file as pose-format's MediaPipe reader writes one (pixels, body confidence =
    visibility, 0 for missing parts), built here with pose-format alone; `drop`: components to leave out."""
    rng = np.random.default_rng(1)
    data, conf = [], []
    for r in results:
        frame, c = [], []
        for name, points in HOLISTIC:
            if name in drop:
                continue
            found = getattr(r, name.lower().replace("pose_world", "pose"), None)
            if found is None:
                frame.append(np.zeros((len(points), 3))), c.append(np.zeros(len(points)))
            else:
                frame.append([(p.x * W, p.y * H, p.z) for p in found.landmark])
                c.append(rng.uniform(0.2, 1.0, len(points)) if "POSE" in name else np.ones(len(points)))
        data.append(np.concatenate(frame)), conf.append(np.concatenate(c))
    header = PoseHeader(0.2, PoseHeaderDimensions(W, H, 0), [
        PoseHeaderComponent(name, list(points), [], [(255, 0, 0)], "XYZC") for name, points in HOLISTIC if name not in drop])
    body = NumPyPoseBody(FPS, np.stack(data)[:, None].astype(np.float32), np.stack(conf)[:, None].astype(np.float32))
    with open(path, "wb") as f:
        Pose(header, body).write(f)


def array_path(results, face):
    """What HolisticLandmarks gives for these MediaPipe results: (T, K * 3)."""
    return np.stack([landmark_array(r, holistic_parts(face)) for r in results]).reshape(len(results), -1)


@pytest.mark.parametrize("face", [False, True])
def test_pose_file_features_equal_the_array_path(tmp_path, face):
    results = holistic_results()
    write_like_pose_format(tmp_path / "a.pose", results)
    extractor = PoseFileLandmarks(face=face)
    feats = extractor(extractor.read_clip(str(tmp_path / "a.pose"), None, None, None, None))
    expected = array_path(results, face)
    assert feats.shape == expected.shape == (10, extractor.dim) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, expected, rtol=1e-6, atol=1e-7)
    assert not feats[0].reshape(-1, 3)[33:54].any() and not feats[7].reshape(-1, 3)[:33].any()  # missing parts are zeros


def test_pose_file_manifest_through_the_extract_script(tmp_path):
    results = [holistic_results(frames=n, seed=n) for n in (6, 9)]
    rows = []
    for k, r in enumerate(results):
        write_like_pose_format(tmp_path / f"c{k}.pose", r)
        rows.append(ClipRow(f"c{k}", str(tmp_path / f"c{k}.pose")))
    rows.append(ClipRow("c1_part", str(tmp_path / "c1.pose"), start=0.08, end=0.24))  # frames 2..5 of 9 at 25 fps
    write_clip_manifest(str(tmp_path / "clips.tsv"), rows)
    out = run_script("extract_sign_features.py", tmp_path / "clips.tsv", "--features", "pose_file", "--out", tmp_path / "f", "--clip-dir", tmp_path / "npy")
    assert out.returncode == 0, out.stderr
    feats, offsets, lengths = read_features(str(tmp_path / "f"))
    assert list(lengths) == [6, 9, 4]
    expected = np.concatenate([array_path(results[0], False), array_path(results[1], False), array_path(results[1][2:6], False)])
    np.testing.assert_allclose(feats, expected, rtol=1e-6, atol=1e-7)
    assert np.load(tmp_path / "npy" / "c1.npy").shape == (9, 75, 3)


def test_resampling_follows_the_video_rule():
    assert sample_frame_indices(8, 50.0, 25.0).tolist() == [0, 2, 4, 6]
    assert sample_frame_indices(4, 25.0, 50.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert sample_frame_indices(10, 25.0, None, 0.1, 0.2).tolist() == [2, 3, 4]


def test_header_without_a_component_is_refused_by_name(tmp_path):
    path = tmp_path / "nohand.pose"
    write_like_pose_format(path, holistic_results(frames=3), drop=("LEFT_HAND_LANDMARKS",))
    with pytest.raises(CorpusError, match=r"nohand\.pose: .pose header has no LEFT_HAND_LANDMARKS component"):
        pose_file_landmarks(str(path), holistic_parts())
    write_like_pose_format(tmp_path / "noface.pose", holistic_results(frames=3), drop=("FACE_LANDMARKS",))
    pose_file_landmarks(str(tmp_path / "noface.pose"), holistic_parts())  # the face is only needed with --face
    with pytest.raises(CorpusError, match=r"noface\.pose: .pose header has no FACE_LANDMARKS component"):
        PoseFileLandmarks(face=True).read_clip(str(tmp_path / "noface.pose"), None, None, None, None)


def test_written_pose_files_read_back_exactly(tmp_path):
    results = holistic_results(frames=5)
    for face in (False, True):
        landmarks = array_path(results, face).reshape(5, -1, 3)
        write_holistic_pose(str(tmp_path / "w.pose"), landmarks, holistic_parts(face), FPS, W, H)
        with open(tmp_path / "w.pose", "rb") as f:
            pose = Pose.read(f.read())
        assert [c.name for c in pose.header.components][:3] == ["POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"]
        assert (pose.header.dimensions.width, pose.header.dimensions.height, pose.body.fps) == (W, H, FPS)
        assert not pose.body.confidence[0, 0, 33:54].any() and pose.body.confidence[1, 0, 33:54].all()  # missing hand: confidence 0
        np.testing.assert_allclose(pose_file_landmarks(str(tmp_path / "w.pose"), holistic_parts(face)), landmarks, rtol=1e-6, atol=1e-7)


def test_extraction_writes_pose_files(tmp_path):
    """extract_clips with pose_dir (the script's --pose-dir), in-process to keep the test short."""
    pytest.importorskip("mediapipe")
    from fairseq_signlang.features.glove_tracker import GloveTracker
    from fairseq_signlang.features.pipeline import extract_clips
    from fairseq_signlang.features.pose import HolisticLandmarks

    write_video(str(tmp_path / "v.mp4"), np.full((3, 48, 64, 3), 90, np.uint8), fps=25)
    write_clip_manifest(str(tmp_path / "clips.tsv"), [ClipRow("v", str(tmp_path / "v.mp4"))])
    extract_clips(str(tmp_path / "clips.tsv"), str(tmp_path / "f"), HolisticLandmarks(), fps=25.0, pose_dir=str(tmp_path / "pose"))
    feats, _, lengths = read_features(str(tmp_path / "f"))
    with open(tmp_path / "pose" / "v.pose", "rb") as f:
        pose = Pose.read(f.read())
    assert (pose.header.dimensions.width, pose.header.dimensions.height, pose.body.fps, pose.body.data.shape) == (64, 48, 25.0, (3, 1, 75, 3))
    np.testing.assert_allclose(pose_file_landmarks(str(tmp_path / "pose" / "v.pose"), holistic_parts()).reshape(3, -1), feats, atol=1e-6)
    with pytest.raises(ValueError, match="no landmarks"):
        extract_clips(str(tmp_path / "clips.tsv"), str(tmp_path / "g"), GloveTracker(), pose_dir=str(tmp_path / "pose"))
