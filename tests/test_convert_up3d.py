"""UP-3D converter on exact-format fixtures (.pkl / .png / .npy / .txt): the fit camera (rt, t, f, crop info),
the neutral gender, has_3d = 0, silhouettes uncropped from the fit frame, splits, left/right on the image."""

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fixtures import up3d as fx
from fixtures.records import crop_pixels, read_split, write_smpl_dir
from fixtures.smpl_numpy import NumpySMPL

from tfrecords_tools import _common, convert_up3d

os.environ.setdefault("SMPLR_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("up3d")
    files = write_smpl_dir(str(base / "smpl"), genders=("neutral",))
    model = NumpySMPL(files["neutral"])
    root = str(base / "up-3d")
    gt = {i: fx.write_sample(root, i, model, seed=i) for i in range(3)}
    fx.write_splits(root, {"train": [0, 2], "val": [1], "test": []})
    out = str(base / "rec")
    stats = convert_up3d.convert(root, out, "train", smpl_dir=str(base / "smpl"))
    return {"gt": gt, "model": model, "root": root, "out": out, "stats": stats, "smpl": str(base / "smpl"),
            "recs": read_split(out, "train")}


def test_split_and_flags(data):
    assert [int(r["frame"]) for r in data["recs"]] == [0, 2]
    for r in data["recs"]:
        assert (r["has_3d"], r["has_smpl"], r["has_landmarks"], r["has_mask"]) == (0, 1, 1, 1)
        assert r["gender"] == 2 and r["dataset"] == b"up3d" and r["subject"] == b"lsp"
    man = json.load(open(os.path.join(data["out"], "manifest.json")))
    assert man["splits"]["train"]["num_examples"] == 2
    assert data["stats"]["fit_vs_lsp_px_median"] < 0.05


def test_camera_frame_and_crop_pixels(data):
    for r in data["recs"]:
        g = data["gt"][int(r["frame"])]
        np.testing.assert_allclose(r["joints3d"], g["joints_cam"], atol=5e-4)
        np.testing.assert_allclose(r["landmarks3d"], g["landmarks_cam"], atol=5e-4)
        np.testing.assert_allclose(r["joints2d"], crop_pixels(g["joints_img"], r["crop_box"]), atol=0.02)
        # 2.5 m at the root depth with the image focal length f / 2 (fit frame scaled by 2)
        assert r["crop_box"][2] - r["crop_box"][0] == pytest.approx(2500.0 * 2.5 / r["root_depth"], rel=1e-4)


def test_pose_in_camera_frame(data):
    for r in data["recs"]:
        g = data["gt"][int(r["frame"])]
        J, _, L = data["model"].forward(r["pose"], r["betas"])
        t = r["joints3d"][0] - J[0]
        np.testing.assert_allclose(J + t, r["joints3d"], atol=5e-4)
        np.testing.assert_allclose(L + t, r["landmarks3d"], atol=5e-4)
        G = Rotation.from_rotvec(r["pose"][:3]).as_matrix()
        expect = Rotation.from_rotvec(g["rt"]).as_matrix() @ Rotation.from_rotvec(g["pose"][:3]).as_matrix()
        np.testing.assert_allclose(G, expect, atol=1e-5)


def test_left_right_and_mask(data):
    for r in data["recs"]:
        img = r["image"].astype(int)
        for j, (hi, lo) in ((20, (0, 2)), (21, (2, 0))):
            x, y = np.round(r["joints2d"][j]).astype(int)
            patch = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
            assert patch[hi] > 150 and patch[lo] < 110, (j, patch)
        m = r["mask"] > 0
        assert m[126:130, 126:130].all() and not m[:5, :5].any()


def test_silhouette_uncrop():
    H, W, y0, y1, x0, x1 = fx.CROP
    render = np.zeros((H, W, 3), np.uint8)
    render[100:120, 200:240] = 200
    m = convert_up3d.silhouette(render, (fx.IMG_H, fx.IMG_W, 3), fx.CROP)
    ys, xs = np.nonzero(m)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20 + 50, 20 + 59, 30 + 100, 30 + 119)


def test_requires_neutral_model(data, tmp_path):
    with pytest.raises(ValueError, match="neutral"):
        convert_up3d.convert(data["root"], str(tmp_path / "x"), "val", smpl_dir=None)


def test_manifest_records_the_neutral_model(data, tmp_path, caplog):
    """The model file and its shape-component count are in the manifest; a 300-component (v1.1.0-style)
    neutral model is recorded as such, with a warning: UP-3D's fits were made with 10 components."""
    man = json.load(open(os.path.join(data["out"], "manifest.json")))
    assert man["body_model_file"] == "SMPL_NEUTRAL.npz" and man["body_model_shape_components"] == 10
    assert man["body_model_matches_fits"] is True
    raw = dict(np.load(os.path.join(data["smpl"], "SMPL_NEUTRAL.npz")))
    extra = np.random.default_rng(0).normal(0, 1e-3, raw["shapedirs"].shape[:2] + (290,))
    raw["shapedirs"] = np.concatenate([raw["shapedirs"], extra.astype(raw["shapedirs"].dtype)], -1)
    d = tmp_path / "smpl300"
    d.mkdir()
    np.savez(str(d / "SMPL_NEUTRAL.npz"), **raw)
    with caplog.at_level("WARNING", logger="smplr_tf.convert.up3d"):
        rec = convert_up3d.neutral_model_record(str(d))
    assert rec == {"body_model_file": "SMPL_NEUTRAL.npz", "body_model_shape_components": 300,
                   "body_model_matches_fits": False}
    assert "300 shape components" in caplog.text


def test_parts_merge_to_the_whole_run(data, tmp_path):
    two = str(tmp_path / "two")  # 2 worker processes: the same bytes
    convert_up3d.convert(data["root"], two, "train", smpl_dir=data["smpl"], num_workers=2)
    for f in sorted(os.listdir(data["out"])):
        if f.endswith(".tfrecord"):
            assert open(os.path.join(data["out"], f), "rb").read() == open(os.path.join(two, f), "rb").read()
    parts = str(tmp_path / "parts")
    for k in (0, 1):
        convert_up3d.convert(data["root"], parts, "train", smpl_dir=data["smpl"], num_shards=2, shard_index=k)
    merged = _common.merge_parts(parts, "train")
    assert [int(r["frame"]) for r in read_split(parts, "train")] == [int(r["frame"]) for r in read_split(
        data["out"], "train")]
    assert merged["written"] == data["stats"]["written"]
    man = json.load(open(os.path.join(parts, "manifest.json")))
    assert man["body_model_shape_components"] == 10 and man["parts_train"] == 2
