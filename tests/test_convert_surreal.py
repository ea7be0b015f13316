"""SURREAL converter on exact-format fixture clips (.mat via scipy.io, mp4 via OpenCV): world -> camera,
the zrot / global-rotation composition, left/right, gender, the 5 cm sampling, crop pixels, masks, atomicity."""

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fixtures import surreal as fx
from fixtures.records import crop_pixels, read_split, write_smpl_dir
from fixtures.smpl_numpy import NumpySMPL

from tfrecords_tools import _common, convert_surreal

os.environ.setdefault("SMPLR_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    base = tmp_path_factory.mktemp("surreal")
    files = write_smpl_dir(str(base / "smpl"), genders=("female", "male"))
    models = {0: NumpySMPL(files["female"]), 1: NumpySMPL(files["male"])}
    root = str(base / "SURREAL" / "data")
    gt = {
        ("run0", "01_01", 1): fx.write_clip(root, models[0], run="run0", seq="01_01", clip=1, gender=0, seed=1),
        ("run1", "02_03", 2): fx.write_clip(root, models[1], run="run1", seq="02_03", clip=2, gender=1, seed=2,
                                            zrot=-2.1),
    }
    out = str(base / "records")
    stats = convert_surreal.convert(root, out, "train", smpl_dir=str(base / "smpl"), examples_per_shard=3)
    recs = read_split(out, "train")
    return {"gt": gt, "recs": recs, "out": out, "stats": stats, "models": models, "base": base, "root": root}


def _records_of(conv, run, seq, clip):
    return [r for r in conv["recs"] if r["sequence"].decode() == f"{run}/{seq}_c{clip:04d}"]


def test_counts_sampling_and_shards(converted):
    assert converted["stats"]["frames_total"] == 16
    assert len(converted["recs"]) == 8  # 4 kept per clip
    for key in converted["gt"]:
        frames = [int(r["frame"]) for r in _records_of(converted, *key)]
        assert frames == list(fx.DEFAULT_KEPT)
    man = json.load(open(os.path.join(converted["out"], "manifest.json")))
    assert man["splits"]["train"]["num_examples"] == 8
    assert [s["count"] for s in man["splits"]["train"]["shards"]] == [3, 3, 2]
    assert not [f for f in os.listdir(converted["out"]) if "inprogress" in f or f.endswith(".partial")]
    # joints2D released by SURREAL agree with our projection of joints3D (camera convention check)
    assert converted["stats"]["joints2d_reprojection_px_median"] < 0.01


def test_world_to_camera_by_hand(converted):
    """A world joint ends up at hand-derived camera coordinates: the camera looks along world -x, image down is
    world +y and, once the mirrored video is flipped back, image right is world +z: x_cam = (z - cz, y - cy,
    -(x - cx)), a proper rotation."""
    for key, g in converted["gt"].items():
        c = g["cam_loc"]
        for r in _records_of(converted, *key):
            w = g["joints_world"][r["frame"]]
            expect = np.stack([w[:, 2] - c[2], w[:, 1] - c[1], -(w[:, 0] - c[0])], -1)
            np.testing.assert_allclose(r["joints3d"], expect, atol=2e-5)
            assert r["root_depth"] == pytest.approx(expect[0, 2], abs=1e-5)


def test_crop_pixels_and_intrinsics(converted):
    for key, g in converted["gt"].items():
        for r in _records_of(converted, *key):
            full = g["joints2d_full"][r["frame"]]
            np.testing.assert_allclose(r["joints2d"], crop_pixels(full, r["crop_box"]), atol=2e-3)
            # box: 2.5 m at the root depth, f = 600, centred on the projected root
            side = 600 * 2.5 / r["root_depth"]
            box = r["crop_box"]
            assert box[2] - box[0] == pytest.approx(side, rel=1e-4)
            assert (box[0] + box[2]) / 2 == pytest.approx(full[0, 0], abs=1e-3)
            assert r["joints2d"][0] == pytest.approx([127.5, 127.5], abs=1e-3)


def test_left_right_against_image_content(converted):
    """The (mirrored) video has a red dot on the left wrist and a blue one on the right wrist: after the
    converter mirrors the frames back, joint 20 (left_wrist) must sit on red and 21 on blue, and the body must
    be a proper one: its left wrist on the image side a real person's left wrist would be."""
    for r in converted["recs"]:
        img = r["image"].astype(int)
        for j, (hi, lo) in ((fx.LEFT_WRIST, (0, 2)), (fx.RIGHT_WRIST, (2, 0))):
            x, y = np.round(r["joints2d"][j]).astype(int)
            patch = img[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3).mean(0)
            assert patch[hi] > 150 and patch[lo] < 110, (j, patch)


def test_pose_in_camera_frame_and_landmarks(converted):
    """SMPL(pose, betas, gender) + (root - J0) reproduces the camera-frame joints and landmarks (numpy SMPL)."""
    for key, g in converted["gt"].items():
        model = converted["models"][g["gender"]]
        for r in _records_of(converted, *key):
            assert int(r["gender"]) == g["gender"]
            J, _, L = model.forward(r["pose"], r["betas"])
            t = r["joints3d"][0] - J[0]
            np.testing.assert_allclose(J + t, r["joints3d"], atol=2e-4)
            np.testing.assert_allclose(L + t, r["landmarks3d"], atol=2e-4)
            np.testing.assert_allclose(r["landmarks3d"], g["landmarks_cam"][r["frame"]], atol=2e-4)
            np.testing.assert_allclose(r["pose"][3:], g["pose_cam"][r["frame"]][3:], atol=1e-6)
            # a proper (not mirrored) body: the model's +x (its left) points from the right hip to the left hip
            G = Rotation.from_rotvec(r["pose"][:3]).as_matrix()
            assert (r["joints3d"][1] - r["joints3d"][2]) @ G[:, 0] > 0.05
            assert (r["has_3d"], r["has_smpl"], r["has_landmarks"], r["has_mask"]) == (1, 1, 1, 1)
    assert converted["stats"]["smpl_vs_surreal_joints_mm_mean"] < 0.5


def test_mask_from_segm(converted):
    for r in converted["recs"]:
        m = r["mask"] > 0
        assert m[126:130, 126:130].all()  # the pelvis sits on the body
        assert not m[:10, :10].any()


def test_without_smpl_dir_no_landmarks(converted, tmp_path):
    out = str(tmp_path / "rec")
    convert_surreal.convert(converted["root"], out, "train", smpl_dir=None, max_examples=3)
    recs = read_split(out, "train")
    assert len(recs) == 3
    g = converted["gt"][("run0", "01_01", 1)]
    for r in recs:
        assert r["has_landmarks"] == 0 and not r["landmarks3d"].any() and not r["landmarks2d"].any()
        assert r["has_smpl"] == 1 and r["has_3d"] == 1
        np.testing.assert_allclose(r["joints3d"], g["joints_cam"][r["frame"]], atol=2e-5)


def test_sampling_rule():
    base = np.zeros((1, 24, 3))
    steps = np.array([0.0, 0.01, 0.049, 0.05, 0.06, 0.30, 0.33])
    joints = base + steps[:, None, None] * np.array([1.0, 0, 0])
    # kept: 0; 0.01 / 0.049 < 5 cm from 0; 0.05 >= 5 cm -> kept; 0.06 is 1 cm from it; 0.30 kept; 0.33 not
    assert _common.keep_by_motion(joints, 0.05).tolist() == [0, 3, 5]


def test_failure_leaves_no_complete_looking_output(converted, tmp_path):
    import shutil

    root = str(tmp_path / "data")
    shutil.copytree(converted["root"], root)
    bad = os.path.join(root, "cmu", "train", "run1", "02_03", "02_03_c0002_info.mat")
    with open(bad, "wb") as f:
        f.write(b"MATLAB 5.0 MAT-file, truncated")
    out = str(tmp_path / "rec")
    with pytest.raises(ValueError, match="02_03_c0002_info.mat"):
        convert_surreal.convert(root, out, "train", examples_per_shard=2)
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    assert not [f for f in os.listdir(out) if f.endswith(".tfrecord") or "inprogress" in f]


def _shard_bytes(out, split="train"):
    import tensorflow as tf

    from smplr_tf.data import schema

    return [bytes(r.numpy()) for f in schema.split_files(out, split) for r in tf.data.TFRecordDataset(f)]


def test_zero_joint_frames_skipped_and_counted(converted, tmp_path):
    """SURREAL writes all-zero joints where it has no annotation: such a frame is neither written nor taken as
    the reference of the 5 cm rule, and the manifest counts it."""
    root = str(tmp_path / "data")
    g = fx.write_clip(root, converted["models"][0], seq="05_01", clip=1, gender=0, seed=5, zero_frames=(3,))
    out = str(tmp_path / "rec")
    stats = convert_surreal.convert(root, out, "train", smpl_dir=None)
    recs = read_split(out, "train")
    # offsets 0, .01, .02, [no joints], .12, .20, .201, .30 -> 0, 4 (12 cm), 5 (8 cm), 7 (~10 cm)
    assert [int(r["frame"]) for r in recs] == [0, 4, 5, 7]
    for r in recs:
        np.testing.assert_allclose(r["joints3d"], g["joints_cam"][r["frame"]], atol=2e-5)
    assert stats["zero_joint_frames"] == 1 and stats["frames_total"] == 8 and stats["written"] == 4
    man = json.load(open(os.path.join(out, "manifest.json")))
    assert man["stats_train"]["zero_joint_frames"] == 1
    assert convert_surreal.zero_joint_frames(np.zeros((2, 24, 3))).tolist() == [True, True]


def test_workers_and_parts_give_the_same_records(converted, tmp_path):
    """2 worker processes write the same bytes as 1; two parts (--num_shards 2) merged give the records of the
    whole run in the same order, and the merged manifest sums the parts' counters."""
    root, one, smpl = converted["root"], str(tmp_path / "one"), str(converted["base"] / "smpl")
    s1 = convert_surreal.convert(root, one, "train", smpl_dir=smpl, examples_per_shard=3)
    two = str(tmp_path / "two")
    convert_surreal.convert(root, two, "train", smpl_dir=smpl, examples_per_shard=3, num_workers=2)
    for a, b in zip(sorted(os.listdir(one)), sorted(os.listdir(two))):
        assert a == b
        if a.endswith(".tfrecord"):
            assert open(os.path.join(one, a), "rb").read() == open(os.path.join(two, b), "rb").read(), a
    parts = str(tmp_path / "parts")
    for k in (1, 0):
        convert_surreal.convert(root, parts, "train", smpl_dir=smpl, examples_per_shard=3, num_shards=2,
                                shard_index=k)
    assert not os.path.exists(os.path.join(parts, "manifest.json"))
    merged = _common.merge_parts(parts, "train")
    assert _shard_bytes(parts) == _shard_bytes(one) and len(_shard_bytes(one)) == 8
    man = json.load(open(os.path.join(parts, "manifest.json")))
    assert man["parts_train"] == 2 and man["splits"]["train"]["num_examples"] == 8
    assert len(merged["smpl_vs_surreal_joints_mm_mean_by_part"]) == 2
    for k in ("clips", "frames_total", "written", "zero_joint_frames"):
        assert merged[k] == s1[k], k
    assert len(merged["joints2d_reprojection_px_median_by_part"]) == 2
    assert not os.path.exists(os.path.join(parts, "parts"))


def test_merge_refuses_a_missing_part(converted, tmp_path):
    out = str(tmp_path / "rec")
    convert_surreal.convert(converted["root"], out, "train", num_shards=3, shard_index=0)
    with pytest.raises(FileNotFoundError, match="train-00001-of-00003"):
        _common.merge_parts(out, "train")
    assert not os.path.exists(os.path.join(out, "manifest.json"))
    with pytest.raises(ValueError, match="shard_index"):
        _common.input_part([1, 2], 2, 2)
    assert [_common.input_part(range(5), 3, k) for k in range(3)] == [[0], [1, 2], [3, 4]]


def test_workers_import_no_tensorflow():
    """The per-clip work (what the worker processes import) needs no TensorFlow: workers start in a second."""
    import subprocess
    import sys

    code = ("import sys; from tfrecords_tools import _common, convert_surreal, convert_h36m, convert_up3d; "
            "_common.PointsModel(None, genders=('female',))([[0.1] * 72], [[0.0] * 10], [0]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=root))
    assert r.returncode == 0, r.stderr[-2000:]


def test_principal_point_pixel_centres():
    """SURREAL's K = Blender's raster (pixels measured from the image corner): the optical axis hits raster
    (160, 120), the point between pixels 159 and 160 / 119 and 120, i.e. 159.5 / 119.5 with pixel i at
    coordinate i; mirroring x -> 319 - x leaves 159.5."""
    K = convert_surreal.K_UNMIRRORED
    assert (K[0, 2], K[1, 2], K[0, 0], K[1, 1]) == (159.5, 119.5, 600.0, 600.0)
    # a point on the optical axis of the proper camera is the centre of the 320 x 240 grid of pixel centres
    x = K @ np.array([0.0, 0.0, 4.0])
    assert x[0] / x[2] == pytest.approx((0 + 319) / 2) and x[1] / x[2] == pytest.approx((0 + 239) / 2)


def test_points_model_matches_the_smpl_layer(converted):
    """The workers' NumPy joints + landmarks (PointsModel) against the SMPL layer (BodyModel), on random poses,
    shapes and both genders of an official-format model with pose correctives."""
    smpl = str(converted["base"] / "smpl")
    rng = np.random.default_rng(0)
    pose, betas = rng.normal(0, 0.6, (9, 72)), rng.normal(0, 1.5, (9, 10))
    gender = rng.integers(0, 2, 9)
    Ja, La = _common.BodyModel(smpl, genders=("female", "male"))(pose, betas, gender)
    Jb, Lb = _common.PointsModel(smpl, genders=("female", "male"))(pose, betas, gender)
    np.testing.assert_allclose(Jb, Ja, atol=1e-5)
    np.testing.assert_allclose(Lb, La, atol=1e-5)
    assert np.abs(La[gender == 0] - La[gender == 0].mean(0)).max() > 0.05  # not a degenerate body
    with pytest.raises(ValueError, match="neutral"):
        _common.PointsModel(smpl, genders=("female", "male"))(pose[:1], betas[:1], [2])
