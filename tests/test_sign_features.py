"""Sign video features: I3D and VGG from checkpoints saved by the project, MediaPipe Holistic
landmarks, glove tracking, the clip feature script (per clip and concatenated) and clip pooling."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fairseq_signlang.corpora.synthetic.procedural_signer import ProceduralSigner, render
from fairseq_signlang.io.checkpoints import CheckpointError
from fairseq_signlang.io.readers import CorpusError, read_features
from fairseq_signlang.features.glove_tracker import HEAD_COLOUR, RIGHT_HAND_COLOUR, GloveTracker
from fairseq_signlang.features.pose import PARTS, landmark_array
from fairseq_signlang.io.video import ClipRow, write_clip_manifest, write_video
from fairseq_signlang.features.visual_models import (
    I3D_WIDTHS, VGG, VGG19_LAYOUT, I3DExtractor, InceptionI3D, VGGFrameExtractor, build_from_checkpoint
)

from .random_weights import save_random_visual_model
from .test_speech_features import run_script


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("visual")
    i3d, vgg = str(root / "i3d.pt"), str(root / "vgg.pt")
    save_random_visual_model(i3d, "i3d", width=0.125)
    save_random_visual_model(vgg, "vgg", width=0.0625)
    return i3d, vgg


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four rendered sign clips (two words, two signers) and a clip manifest over them."""
    root = tmp_path_factory.mktemp("signclips")
    signer = ProceduralSigner(["house", "tree"], seed=3)
    rng = np.random.default_rng(0)
    rows = []
    for w in ("house", "tree"):
        for k in range(2):
            path = str(root / "videos" / f"{w}{k}.mp4")
            write_video(path, render(signer.word(w, k, rng), (64, 64)), fps=25)
            rows.append(ClipRow(f"{w}_{k}", path, text=w))
    write_clip_manifest(str(root / "clips.tsv"), rows)
    return root


def test_paper_size_i3d_shapes_and_parameters():
    model = InceptionI3D().eval()
    assert sum(p.numel() for p in model.parameters()) == 12_287_264  # I3D RGB without its classifier
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 16, 64, 64))
    assert out.shape == (1, 1024, 2, 2, 2)  # time / 8, space / 32 ('SAME' padding rounds up)
    assert InceptionI3D.widths_of(model.state_dict()) == I3D_WIDTHS


def test_vgg_layout_is_read_from_torchvision_style_keys():
    with torch.device("meta"):
        vgg19 = VGG()
        vgg16 = VGG((64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"))
    state19 = vgg19.state_dict()
    assert VGG.layout_of(state19) == VGG19_LAYOUT
    assert sorted(int(k.split(".")[1]) for k in state19 if k.startswith("features.") and k.endswith("weight"))[:5] == [0, 2, 5, 7, 10]
    assert {k for k in state19 if k.startswith("classifier")} == {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    assert sum(p.numel() for p in vgg19.parameters()) == 143_667_240
    assert VGG.layout_of(vgg16.state_dict()).count("M") == 5 and len(VGG.layout_of(vgg16.state_dict())) == 18


def test_i3d_windows_and_checkpoint_formats(checkpoints, tmp_path):
    i3d, _ = checkpoints
    extractor = I3DExtractor(i3d, window=16, stride=4, device="cpu")
    frames = np.random.default_rng(0).integers(0, 255, size=(30, 48, 48, 3), dtype=np.uint8)
    feats = extractor(frames)
    assert feats.shape == (4, extractor.dim) and np.isfinite(feats).all()  # windows start at 0, 4, 8, 12
    assert extractor.frame_rate(25) == 6.25
    assert extractor(frames[:5]).shape == (1, extractor.dim)  # shorter than a window: last frame repeated
    # the same weights wrapped as DataParallel training scripts save them, with a classifier head
    state = torch.load(i3d, weights_only=True)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    wrapped["state_dict"]["module.logits.conv3d.weight"] = torch.zeros(157, extractor.dim, 1, 1, 1)
    torch.save(wrapped, tmp_path / "wrapped.pt")
    np.testing.assert_allclose(I3DExtractor(str(tmp_path / "wrapped.pt"), device="cpu")(frames), feats, rtol=1e-5, atol=1e-6)
    # a VGG-style per-frame extractor: one feature per frame
    vgg = VGGFrameExtractor(checkpoints[1], device="cpu")
    assert vgg(frames[:7]).shape == (7, vgg.dim)


def test_wrong_or_unreadable_checkpoints_are_named(checkpoints, tmp_path):
    i3d, vgg = checkpoints
    with pytest.raises(CheckpointError, match=rf"{vgg}: not an I3D checkpoint \(no Conv3d_1a_7x7.conv3d.weight\)"):
        build_from_checkpoint(vgg, "i3d")
    with pytest.raises(CheckpointError, match=rf"{i3d}: not a VGG checkpoint"):
        build_from_checkpoint(i3d, "vgg")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=rf"{junk}: not a readable PyTorch checkpoint"):
        build_from_checkpoint(str(junk), "i3d")
    state = torch.load(i3d, weights_only=True)
    state["Mixed_5c.b0.conv3d.weight"] = state["Mixed_5c.b0.conv3d.weight"][:, :1]  # wrong input width
    torch.save(state, tmp_path / "cut.pt")
    with pytest.raises((CorpusError, RuntimeError), match="cut.pt|size mismatch"):
        build_from_checkpoint(str(tmp_path / "cut.pt"), "i3d")


def _landmarks(points):
    return SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, z=z) for x, y, z in points])


def test_holistic_result_to_array_zeros_where_nothing_is_detected():
    pose = np.random.default_rng(0).uniform(size=(33, 3))
    right = np.random.default_rng(1).uniform(size=(21, 3))
    result = SimpleNamespace(pose_landmarks=_landmarks(pose), left_hand_landmarks=None, right_hand_landmarks=_landmarks(right), face_landmarks=None)
    arr = landmark_array(result, PARTS)
    assert arr.shape == (75, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[:33], pose, rtol=1e-6)
    assert not arr[33:54].any()  # left hand not detected
    np.testing.assert_allclose(arr[54:], right, rtol=1e-6)


def test_holistic_landmarks_on_video(clips, tmp_path):
    import mediapipe  # noqa: F401  (the `pose` extra, which `make test` installs: fails here if missing)
    out = run_script("extract_sign_features.py", clips / "clips.tsv", "--features", "pose", "--out", tmp_path / "pose", "--clip-dir", tmp_path / "npy")
    assert out.returncode == 0, out.stderr
    feats, offsets, lengths = read_features(str(tmp_path / "pose"))
    assert feats.shape[1] == 75 * 3 and len(lengths) == 4
    per_clip = np.load(tmp_path / "npy" / "house_0.npy")
    assert per_clip.shape == (lengths[0], 75, 3)  # per-clip files keep (T, K, 3)
    np.testing.assert_array_equal(per_clip.reshape(lengths[0], -1), feats[: lengths[0]])
    assert np.all((per_clip[..., :2] == 0) | ((per_clip[..., :2] >= -0.5) & (per_clip[..., :2] <= 1.5)))  # normalised by frame size


def _frame(face_xy, hand_xy, face=8, hand=4, size=64):
    img = np.full((size, size, 3), 40, np.uint8)
    fx, fy = face_xy
    img[fy : fy + face, fx : fx + face] = HEAD_COLOUR
    if hand_xy is not None:
        hx, hy = hand_xy
        img[hy : hy + hand, hx : hx + hand] = RIGHT_HAND_COLOUR
    return img


def test_glove_tracker_values_and_invariance_to_body_position():
    tracker = GloveTracker()
    frames = np.stack([_frame((20, 10), (30 + 2 * t, 40)) for t in range(5)])
    feats = tracker(frames)
    assert feats.shape == (5, 16)
    x, y, area, sx, sy, tilt, vx, vy = feats[:, :8].T
    # face 8 px wide, centre (23.5, 13.5); the hand's centre (31.5 + 2t, 41.5): (8 + 2t, 28) px away
    np.testing.assert_allclose(x, (8 + 2 * np.arange(5)) / 8, atol=1e-5)
    np.testing.assert_allclose(y, 28 / 8, atol=1e-5)
    np.testing.assert_allclose(area, 16 / 64, atol=1e-6)
    np.testing.assert_allclose(sx, np.sqrt((4**2 - 1) / 12) / 8, atol=1e-5)  # spread of 4 pixel centres
    np.testing.assert_allclose(vx, 2 / 8, atol=1e-5)
    assert np.allclose(tilt, 0) and np.allclose(vy, 0)
    assert not feats[:, 8:].any()  # the left hand is never seen
    shifted = np.stack([_frame((14, 5), (24 + 2 * t, 35)) for t in range(5)])
    np.testing.assert_allclose(tracker(shifted), feats, atol=1e-5)
    assert not tracker(np.full((3, 64, 64, 3), 40, np.uint8)).any()  # nobody there


def test_sign_feature_script_per_clip_and_concatenated(clips, checkpoints, tmp_path):
    out = run_script("extract_sign_features.py", clips / "clips.tsv", "--features", "i3d", "--checkpoint", checkpoints[0], "--size", 48,
                     "--out", tmp_path / "i3d", "--clip-dir", tmp_path / "npy", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    feats, offsets, lengths = read_features(str(tmp_path / "i3d"))
    ids = [line.strip() for line in open(tmp_path / "i3d.ids")]
    assert ids == ["0", "1", "2", "3"]
    for name, o, n in zip(["house_0", "house_1", "tree_0", "tree_1"], offsets, lengths):
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / f"{name}.npy"), feats[o : o + n])
    # pooling sentences of clips: each word is its clip's mean feature
    corpus = tmp_path / "sign.jsonl"
    corpus.write_text(json.dumps({"words": ["tree", "house"], "clip_ids": ["tree_1", "house_0"], "clips": []}) + "\n")
    out = run_script("pool_features.py", "clips", "--clip-dir", tmp_path / "npy", "--corpus", corpus, "--out", tmp_path / "words")
    assert out.returncode == 0, out.stderr
    words, _, word_lengths = read_features(str(tmp_path / "words"))
    assert list(word_lengths) == [2]
    np.testing.assert_allclose(words[0], feats[offsets[3] : offsets[3] + lengths[3]].mean(0), rtol=1e-5)
    np.testing.assert_allclose(words[1], feats[: lengths[0]].mean(0), rtol=1e-5)
    assert open(tmp_path / "words.wrd").read() == "tree house\n"
    corpus.write_text(json.dumps({"words": ["tree"], "clip_ids": ["tree_9"], "clips": []}) + "\n")
    out = run_script("pool_features.py", "clips", "--clip-dir", tmp_path / "npy", "--corpus", corpus, "--out", tmp_path / "bad")
    assert out.returncode != 0 and f"{corpus}:1: no features for clip 'tree_9'" in out.stderr


def test_bad_videos_are_named_or_skipped(clips, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    manifest = tmp_path / "clips.tsv"
    manifest.write_text(f"id\tpath\tstart\tend\na\t{clips / 'videos' / 'house0.mp4'}\t\t\nb\t{empty}\t\t\nc\t{clips / 'videos' / 'tree0.mp4'}\t5.0\t6.0\n")
    out = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "g")
    assert out.returncode != 0 and f"{empty}: unreadable video" in out.stderr
    out = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "g", "--skip-bad")
    assert out.returncode == 0, out.stderr
    assert "left out 2 bad clips" in out.stderr and "video has no frames between 5.0 and 6.0 s" in out.stderr
    assert [line.strip() for line in open(tmp_path / "g.ids")] == ["0"]
    manifest.write_text(f"id\tpath\na\t{tmp_path / 'gone.mp4'}\n")
    out = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "h")
    assert out.returncode != 0 and f"{manifest}:2: {tmp_path / 'gone.mp4'} does not exist" in out.stderr
    manifest.write_text("id\tvideo\na\tx.mp4\n")
    out = run_script("extract_sign_features.py", manifest, "--features", "gloves", "--out", tmp_path / "h")
    assert out.returncode != 0 and f"{manifest}:1: header must name columns" in out.stderr
    out = run_script("extract_sign_features.py", clips / "clips.tsv", "--features", "i3d", "--out", tmp_path / "h")
    assert out.returncode != 0 and "--features i3d needs --checkpoint" in out.stderr
