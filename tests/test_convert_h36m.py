"""Human3.6M converter on exact-format fixtures: .cdf (cdflib) and .h5 mocap, metadata.xml and cameras.h5
cameras, mp4 videos, SMPL fits; world -> camera by hand, every 5th frame, splits, has_* flags, left/right."""

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fixtures import h36m as fx
from fixtures.records import crop_pixels, read_split, write_smpl_dir
from fixtures.smpl_numpy import NumpySMPL

from tfrecords_tools import _common, convert_h36m

os.environ.setdefault("SMPLR_NO_PROGRESS", "1")


def cam_a(X):
    """S1 camera 0 of the fixture: angles (pi/2, 0, 0), centre (0, -4.5, 1.0) m: looks along world +y."""
    return np.stack([X[..., 0], -(X[..., 2] - 1.0), X[..., 1] + 4.5], -1)


def cam_b(X):
    """S9 camera 1 of the fixture: centre (4.5, 0, 1.0) m, looking along world -x."""
    return np.stack([X[..., 1], -(X[..., 2] - 1.0), -(X[..., 0] - 4.5)], -1)


R_B = np.array([[0.0, 1, 0], [0, 0, -1], [-1, 0, 0]])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("h36m")
    files = write_smpl_dir(str(base / "smpl"), genders=("male",))
    model = NumpySMPL(files["male"])
    root = str(base / "h36m")
    b1 = fx.make_body(model, n=12, seed=1)
    b9 = fx.make_body(model, n=12, seed=9)
    fx.write_mocap(root, "S1", "Directions 1", b1["mocap"], "cdf")
    fx.write_mocap(root, "S9", "Walking", b9["mocap"], "h5")
    fx.write_video(root, "S1", "Directions 1", 0, cam_a(b1["mocap"]))
    fx.write_d2(root, "S1", "Directions 1", 0, fx.project(cam_a(b1["mocap"])))  # the release's 2D joints
    fx.write_video(root, "S9", "Walking", 1, cam_b(b9["mocap"]))
    # background-subtraction masks for the S9 video: a box around the projected pelvis
    masks = np.zeros((12, fx.H, fx.W), bool)
    for f, (x, y) in enumerate(fx.project(cam_b(b9["mocap"][:, 0]))):
        masks[f, int(y) - 20:int(y) + 20, int(x) - 8:int(x) + 8] = True
    fx.write_masks(root, "S9", "Walking", 1, masks)
    ext = {(s, c): (0.0, 0.0, 0.0, 0.0, 0.0, 0.0) for s in (1, 9) for c in range(4)}
    ext[(1, 0)] = (np.pi / 2, 0.0, 0.0, 0.0, -4500.0, 1000.0)
    fx.write_metadata_xml(os.path.join(root, "metadata.xml"), ext)
    fx.write_cameras_h5(str(base / "cameras.h5"), {(9, 1): (R_B, (4500.0, 0.0, 1000.0))})
    fits = str(base / "fits")
    fx.write_fits(fits, "S9", "Walking", b9, "male")
    return {"base": base, "root": root, "b1": b1, "b9": b9, "model": model, "fits": fits,
            "smpl": str(base / "smpl"), "cams_h5": str(base / "cameras.h5")}


def test_train_without_fits(data, tmp_path):
    out = str(tmp_path / "rec")
    stats = convert_h36m.convert(data["root"], out, "train", examples_per_shard=2)
    recs = read_split(out, "train")
    assert [int(r["frame"]) for r in recs] == [0, 5, 10]  # every 5th frame; S9 is not in train
    assert stats["missing_videos"] == 3  # cameras 1-3 of S1 have no video in the fixture
    assert stats["joints2d_vs_d2_positions_px_median"] < 1e-3  # the camera self-check against D2_Positions
    man = json.load(open(os.path.join(out, "manifest.json")))
    valid = np.array(man["joints3d_valid"], bool)
    assert valid.sum() == 17 and not valid[[3, 6, 9, 13, 14, 22, 23]].any()
    for r in recs:
        assert (r["has_3d"], r["has_smpl"], r["has_landmarks"], r["has_mask"]) == (0, 0, 0, 0)
        assert r["subject"] == b"S1" and r["sequence"] == b"Directions 1.54138969" and r["camera"] == 0
        mocap = data["b1"]["mocap"][r["frame"]]
        expect = cam_a(mocap[[fx.SMPL_TO_H36M[j] for j in range(24) if valid[j]]])
        np.testing.assert_allclose(r["joints3d"][valid], expect, atol=1e-5)
        assert not r["joints3d"][~valid].any() and not r["pose"].any() and not r["landmarks3d"].any()
        assert not r["joints2d"][~valid].any()
        assert r["root_depth"] == pytest.approx(mocap[0, 1] + 4.5, abs=1e-5)
        full = fx.project(expect)
        np.testing.assert_allclose(r["joints2d"][valid], crop_pixels(full, r["crop_box"]), atol=2e-3)
        assert r["crop_box"][2] - r["crop_box"][0] == pytest.approx(300 * 2.5 / r["root_depth"], rel=1e-4)
        img = r["image"].astype(int)
        for j, (hi, lo) in ((20, (0, 2)), (21, (2, 0))):  # left wrist on red, right wrist on blue
            x, y = np.round(r["joints2d"][j]).astype(int)
            patch = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
            assert patch[hi] > 150 and patch[lo] < 110, (j, patch)


def test_test_split_with_fits_and_smpl(data, tmp_path):
    out = str(tmp_path / "rec")
    stats = convert_h36m.convert(data["root"], out, "test", smpl_dir=data["smpl"], fits_dir=data["fits"],
                                 cameras=data["cams_h5"])
    recs = read_split(out, "test")
    assert [int(r["frame"]) for r in recs] == [0, 5, 10]
    assert stats["fit_vs_mocap_mm_mean"] < 0.5
    b = data["b9"]
    for r in recs:
        f = r["frame"]
        assert (r["has_3d"], r["has_smpl"], r["has_landmarks"], r["has_mask"]) == (1, 1, 1, 1)
        assert r["gender"] == 1 and r["subject"] == b"S9" and r["camera"] == 1
        m = r["mask"] > 0  # the mask box sits on the mocap pelvis, which is not the crop centre here
        px, py = crop_pixels(fx.project(cam_b(b["mocap"][f, 0])), r["crop_box"])
        assert m[int(py), int(px)] and not m[:10, :10].any()
        J, _, L = data["model"].forward(b["pose"][f], b["betas"])
        np.testing.assert_allclose(r["joints3d"], cam_b(J + b["trans"][f]), atol=2e-4)
        np.testing.assert_allclose(r["landmarks3d"], cam_b(L + b["trans"][f]), atol=2e-4)
        # the pose is in the camera frame: SMPL(pose) + (root - J0) is the camera-frame body
        Jc, _, Lc = data["model"].forward(r["pose"], r["betas"])
        t = r["joints3d"][0] - Jc[0]
        np.testing.assert_allclose(Jc + t, r["joints3d"], atol=2e-4)
        np.testing.assert_allclose(Lc + t, r["landmarks3d"], atol=2e-4)
        np.testing.assert_allclose(r["betas"], b["betas"], atol=1e-6)


def test_fits_without_smpl_dir(data, tmp_path):
    out = str(tmp_path / "rec")
    convert_h36m.convert(data["root"], out, "test", fits_dir=data["fits"], cameras=data["cams_h5"])
    recs = read_split(out, "test")
    b = data["b9"]
    for r in recs:
        assert (r["has_3d"], r["has_smpl"], r["has_landmarks"]) == (0, 1, 0)
        G = Rotation.from_rotvec(r["pose"][:3]).as_matrix()
        Gw = Rotation.from_rotvec(b["pose"][r["frame"], :3]).as_matrix()
        np.testing.assert_allclose(G, R_B @ Gw, atol=1e-5)
        np.testing.assert_allclose(r["pose"][3:], b["pose"][r["frame"], 3:], atol=1e-6)


def test_camera_angles_decoding():
    """metadata.xml angles: (pi/2, 0, 0) is the camera of cam_a (hand-derived); any angles give a rotation."""
    R = convert_h36m.rotation_from_angles(np.pi / 2, 0.0, 0.0)
    X = np.array([[0.3, 1.2, 0.4]])
    np.testing.assert_allclose((X - np.array([0.0, -4.5, 1.0])) @ R.T, cam_a(X), atol=1e-12)
    R = convert_h36m.rotation_from_angles(-1.7, 0.3, 2.5)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_corrupt_mocap_is_reported(data, tmp_path):
    import shutil

    root = str(tmp_path / "h36m")
    shutil.copytree(data["root"], root)
    with open(os.path.join(root, "S1", "MyPoseFeatures", "D3_Positions", "Directions 1.cdf"), "wb") as f:
        f.write(b"not a cdf")
    out = str(tmp_path / "rec")
    with pytest.raises(Exception, match="Directions 1.cdf"):
        convert_h36m.convert(root, out, "train")
    assert not os.path.exists(os.path.join(out, "manifest.json"))


@pytest.fixture(scope="module")
def with_broken(data, tmp_path_factory):
    """The fixture plus S9 "Greeting" (on the known-broken list: shifted ground truth), camera 1."""
    import shutil

    root = str(tmp_path_factory.mktemp("h36m_broken") / "h36m")
    shutil.copytree(data["root"], root)
    b = fx.make_body(data["model"], n=12, seed=3)
    fx.write_mocap(root, "S9", "Greeting", b["mocap"], "cdf")
    fx.write_video(root, "S9", "Greeting", 1, cam_b(b["mocap"]))
    return root


def test_known_broken_skipped_and_counted(data, with_broken, tmp_path):
    assert convert_h36m.known_broken("S11", "Directions", "54138969") == "corrupt video"
    assert convert_h36m.known_broken("S11", "Directions", "55011271") is None
    assert convert_h36m.known_broken("S9", "Waiting 1", "60457274")
    out = str(tmp_path / "skip")
    stats = convert_h36m.convert(with_broken, out, "test", cameras=data["cams_h5"])
    assert {r["sequence"] for r in read_split(out, "test")} == {b"Walking.55011271"}
    assert stats["skipped_known_broken"] == 1
    assert stats["skipped_known_broken_videos"] == ["S9/Greeting.55011271: ground truth shifted against the video"]
    man = json.load(open(os.path.join(out, "manifest.json")))
    assert man["stats_test"]["skipped_known_broken"] == 1 and man["known_broken"] == "skipped"
    out = str(tmp_path / "keep")
    stats = convert_h36m.convert(with_broken, out, "test", cameras=data["cams_h5"], keep_broken=True)
    assert {r["sequence"] for r in read_split(out, "test")} == {b"Walking.55011271", b"Greeting.55011271"}
    assert stats["skipped_known_broken"] == 0


def test_parts_merge_to_the_whole_run(data, with_broken, tmp_path):
    """Two parts (--num_shards 2) merged hold the whole run's records in its order; the known-broken count of
    the parts adds up to the whole run's."""
    whole = str(tmp_path / "whole")
    convert_h36m.convert(with_broken, whole, "test", cameras=data["cams_h5"])
    parts = str(tmp_path / "parts")
    for k in (0, 1):
        convert_h36m.convert(with_broken, parts, "test", cameras=data["cams_h5"], num_shards=2, shard_index=k)
    merged = _common.merge_parts(parts, "test")
    two = str(tmp_path / "two")  # 2 worker processes: the same bytes as one
    convert_h36m.convert(with_broken, two, "test", cameras=data["cams_h5"], num_workers=2)
    for f in sorted(os.listdir(whole)):
        if f.endswith(".tfrecord"):
            assert open(os.path.join(whole, f), "rb").read() == open(os.path.join(two, f), "rb").read(), f
    key = lambda r: (r["sequence"], int(r["frame"]))  # noqa: E731
    assert [key(r) for r in read_split(parts, "test")] == [key(r) for r in read_split(whole, "test")]
    assert merged["skipped_known_broken"] == 1 and len(merged["skipped_known_broken_videos"]) == 1


DIST = (-0.9, 0.4, 0.0, 0.03, -0.02)  # k1 k2 k3 p1 p2: a strong lens, so that ignoring it moves the wrists


def test_lens_distortion_undistorted_frames(data, tmp_path):
    """A video filmed through a distorting lens (the fixture draws through Human3.6M's lens model, written out
    independently): the converter undistorts the frames, so the wrist dots sit on the pinhole joints2d; the
    D2_Positions (through the lens) agree with our projection distorted alike."""
    root = str(tmp_path / "h36m")
    b1 = data["b1"]

    def cam(X):  # cam_a moved 1.5 m along world +x (its own x axis): the body sits off-centre, where lenses bend
        return cam_a(X) - np.array([1.5, 0.0, 0.0])

    fx.write_mocap(root, "S1", "Directions 1", b1["mocap"], "cdf")
    fx.write_video(root, "S1", "Directions 1", 0, cam(b1["mocap"]), dist=DIST)
    fx.write_d2(root, "S1", "Directions 1", 0, fx.project(cam(b1["mocap"]), DIST))
    ext = {(1, c): (0.0, 0.0, 0.0, 0.0, 0.0, 0.0) for c in range(4)}
    ext[(1, 0)] = (np.pi / 2, 0.0, 0.0, 1500.0, -4500.0, 1000.0)
    fx.write_metadata_xml(os.path.join(root, "metadata.xml"), ext, distortion={0: DIST})
    wrists = cam(b1["mocap"][::5][:, [19, 27]])
    moved = np.linalg.norm(fx.project(wrists, DIST) - fx.project(wrists), axis=-1)
    assert moved.max(axis=1).min() > 6.0, moved  # in every frame the lens moves a dot beyond the check below
    out = str(tmp_path / "rec")
    stats = convert_h36m.convert(root, out, "train")
    assert stats["undistorted_videos"] == 1 and stats["joints2d_vs_d2_positions_px_median"] < 1e-3
    recs = read_split(out, "train")
    assert len(recs) == 3
    for r in recs:
        img = r["image"].astype(int)
        for j, (hi, lo) in ((20, (0, 2)), (21, (2, 0))):  # left wrist on red, right wrist on blue
            x, y = np.round(r["joints2d"][j]).astype(int)
            patch = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)
            assert patch[hi] > 150 and patch[lo] < 110, (j, patch)
    # the undistortion map inverts the lens model: a distorted point maps back onto its pinhole pixel
    cam = convert_h36m.load_cameras(os.path.join(root, "metadata.xml"))[("S1", 0)]
    mx, my = convert_h36m.undistort_maps(cam, fx.W, fx.H)
    pin = fx.project(wrists.reshape(-1, 3))
    dis = fx.project(wrists.reshape(-1, 3), DIST)
    inside = (pin[:, 0] >= 0) & (pin[:, 0] < fx.W - 1) & (pin[:, 1] >= 0) & (pin[:, 1] < fx.H - 1)
    u, v = np.round(pin[inside]).astype(int).T
    got = np.stack([mx[v, u], my[v, u]], -1)
    expect = fx.project(np.concatenate([(np.stack([u, v], -1) - fx.C_PX) / fx.F_PX, np.ones((len(u), 1))], -1),
                        DIST)
    np.testing.assert_allclose(got, expect, atol=1e-3)
    assert np.abs(dis[inside] - pin[inside]).max() > 6.0
