"""Synthetic generator (smplr_tf/synth): pose families and limits checked with an independent NumPy forward
kinematics, camera placement, every schema field of generated records, determinism across worker counts."""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smplr_tf.body import skeleton
from smplr_tf.body.testing import _REST_JOINTS, write_random_model
from smplr_tf.data import crop, schema
from smplr_tf.synth import appearance, generate, pose

PARENTS = skeleton.JOINT_PARENTS


def fk(global_rot, body_pose):
    """Independent forward kinematics of the rest joints: (3,3) root rotation, (69,) axis-angle -> (24, 3)."""
    R = Rotation.from_rotvec(np.asarray(body_pose).reshape(23, 3)).as_matrix()
    G = [global_rot]
    p = [_REST_JOINTS[0]]
    for j in range(1, 24):
        q = PARENTS[j]
        p.append(p[q] + G[q] @ (_REST_JOINTS[j] - _REST_JOINTS[q]))
        G.append(G[q] @ R[j - 1])
    return np.array(p)


def _samples(family, n=30):
    out = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        _, euler, body_pose, pelvis = pose.sample_body(rng, family)
        out.append((euler, fk(pelvis, body_pose)))
    return out


@pytest.mark.parametrize("family", pose.FAMILIES)
def test_families_respect_limits_and_round_trip(family):
    for i in range(10):
        name, euler, body_pose, pelvis = pose.sample_body(np.random.default_rng(i), family)
        assert name == family
        lim = pose.JOINT_LIMITS
        assert np.all(euler >= lim[..., 0] - 1e-9) and np.all(euler <= lim[..., 1] + 1e-9)
        back = Rotation.from_rotvec(body_pose.reshape(23, 3)).as_euler("XYZ")
        np.testing.assert_allclose(Rotation.from_euler("XYZ", back).as_matrix(),
                                   Rotation.from_euler("XYZ", euler[1:]).as_matrix(), atol=1e-9)


def _frac(family, cond, n=30):
    return np.mean([cond(J) for _, J in _samples(family, n)])


def test_family_semantics():
    """Model frame: y up, z forward (the way the body faces), x to the body's left."""
    y, z = 1, 2
    upright = lambda J: J[15, y] > J[12, y] > J[0, y] > J[4, y] > J[7, y] and J[5, y] > J[8, y]
    assert _frac("standing", lambda J: upright(J) and max(J[20, y], J[21, y]) < J[16, y]) > 0.9
    assert _frac("walking", upright) > 0.9
    assert _frac("sitting", lambda J: min(J[4, z] - J[1, z], J[5, z] - J[2, z]) > 0.25
                 and abs(J[4, y] - J[1, y]) < 0.2 and J[7, y] < J[4, y] - 0.2) > 0.9
    assert _frac("crouching", lambda J: J[0, y] - min(J[7, y], J[8, y]) < 0.55) > 0.9
    assert _frac("arms_raised", lambda J: max(J[20, y], J[21, y]) > J[15, y]) > 0.9
    assert _frac("reaching", lambda J: max(J[20, z] - J[16, z], J[21, z] - J[17, z]) > 0.3) > 0.9
    assert _frac("bending", lambda J: J[15, z] - J[0, z] > 0.2 and J[7, y] < J[0, y] - 0.5) > 0.9
    assert _frac("running", lambda J: abs(J[7, z] - J[8, z]) > 0.15 or abs(J[7, y] - J[8, y]) > 0.15) > 0.8
    # Left/right mirroring: the left elbow bends forward like the right one.
    e = np.array([eu for eu, _ in _samples("running")])
    assert np.all(e[:, pose.L_ELBOW, 1] <= 0) and np.all(e[:, pose.R_ELBOW, 1] >= 0)


def test_camera_rotation_upright_and_all_yaws():
    yaws, up = [], []
    for i in range(200):
        rng = np.random.default_rng(i)
        _, _, body_pose, pelvis = pose.sample_body(rng, "standing")
        R = pose.camera_rotation(rng, pelvis)
        J = fk(R, body_pose)
        up.append(J[15, 1] < J[0, 1] - 0.3)  # head above the pelvis: smaller y (y down)
        f = R @ np.array([0.0, 0.0, 1.0])  # where the body faces
        yaws.append(np.arctan2(f[0], f[2]))
    assert np.mean(up) == 1.0
    hist, _ = np.histogram(yaws, bins=4, range=(-np.pi, np.pi))
    assert hist.min() > 25
    # The camera pose is a proper rotation and round-trips through the 72-vector.
    full = pose.full_pose(R, body_pose)
    np.testing.assert_allclose(Rotation.from_rotvec(full[:3]).as_matrix(), R, atol=1e-9)


def test_body_params_camera():
    zs, uv = [], []
    for i in range(100):
        p = generate.sample_body_params(3, "train", i)
        assert p["pose"].shape == (72,) and p["betas"].shape == (10,) and p["gender_index"] in (0, 1)
        zs.append(p["root_cam"][2])
        uv.append(crop.project(p["root_cam"], generate.K_SOURCE))
    zs, uv = np.array(zs), np.array(uv)
    assert zs.min() >= 3.0 and zs.max() <= 7.0 and zs.max() - zs.min() > 3
    assert np.all(np.abs(uv - [160, 120]) <= [30.01, 20.01])
    far = [generate.sample_body_params(3, "train", i, depth_range=(6.0, 10.0))["root_cam"][2] for i in range(50)]
    assert min(far) >= 6.0 and max(far) <= 10.0
    a = generate.sample_body_params(3, "train", 5)
    assert np.array_equal(a["pose"], generate.sample_body_params(3, "train", 5)["pose"])
    assert not np.array_equal(a["pose"], generate.sample_body_params(3, "val", 5)["pose"])


def test_outward_faces_and_regions():
    s = 0.5
    v = np.array([[x, y, z] for x in (-s, s) for y in (-s, s) for z in (-s, s)])
    f = np.array([(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),
                  (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)])
    assert generate.outward_faces(f, v) is f
    np.testing.assert_array_equal(generate.outward_faces(f[:, ::-1], v), f)
    w = np.zeros((8, 24))
    w[:, 15] = 1.0  # all head
    w[:2, 20] = 2.0  # two wrist (skin) vertices
    r = appearance.face_regions(w, f, v)
    assert set(np.unique(r)) <= {appearance.HEAD, appearance.HAIR, appearance.SKIN}
    assert r[0] == appearance.SKIN  # face 0 starts at vertex 0 (wrist)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl")
    for g in ("female", "male"):
        write_random_model(os.path.join(d, f"{g}.npz"), num_vertices=1200, seed=3, gender=g)
    return str(d)


def _records(d, split="train"):
    import tensorflow as tf

    out = []
    for f in schema.split_files(d, split):
        for r in tf.data.TFRecordDataset(f):
            out.append({k: v.numpy() for k, v in schema.parse_example(r).items()})
    return out


def test_generated_records(model_dir, tmp_path):
    from smplr_tf.body.smpl import SMPL

    d = str(tmp_path / "syn")
    shards = generate.generate_split(d, "val", 5, seed=1, num_workers=0, examples_per_shard=2,
                                     smpl_dir=model_dir, batch_size=4, progress=False)
    assert [s["count"] for s in shards] == [2, 2, 1]
    man = schema.read_manifest(d)
    assert man["splits"]["val"]["num_examples"] == 5 and man["body_model"]["num_vertices"] == 1200
    recs = _records(d, "val")
    smpl = SMPL(smpl_dir=model_dir)
    for i, r in enumerate(recs):
        assert r["frame"] == i and r["dataset"] == b"synthetic" and r["gender"] in (0, 1)
        assert all(r[k] == 1 for k in ("has_3d", "has_smpl", "has_mask", "has_landmarks"))
        assert r["image"].shape == (256, 256, 3) and r["mask"].shape == (256, 256)
        Kc = r["intrinsics"]
        np.testing.assert_allclose(r["joints2d"], crop.project(r["joints3d"], Kc), atol=1e-3)
        np.testing.assert_allclose(r["landmarks2d"], crop.project(r["landmarks3d"], Kc), atol=1e-3)
        np.testing.assert_allclose(r["joints2d"][0], [127.5, 127.5], atol=1e-3)  # the root is the crop centre
        assert r["root_depth"] == pytest.approx(r["joints3d"][0, 2])
        box = r["crop_box"]
        assert box[2] - box[0] == pytest.approx(600 * 2.5 / r["root_depth"], rel=1e-4)
        np.testing.assert_allclose(box, crop.crop_box(r["joints3d"][0], generate.K_SOURCE), atol=1e-3)
        # The contract: joints3d = SMPL(pose, betas, gender).joints + t with one translation t.
        out = smpl(r["betas"][None], r["pose"][None], np.array([r["gender"]], np.int32))
        t = r["joints3d"] - out["joints"].numpy()[0]
        np.testing.assert_allclose(t, np.broadcast_to(t[0], t.shape), atol=1e-4)
        np.testing.assert_allclose(r["landmarks3d"] - out["landmarks"].numpy()[0],
                                   np.broadcast_to(t[0], (18, 3)), atol=1e-4)
        # The body is rendered where its joints project: the mask covers the root's neighbourhood.
        m = r["mask"] > 0
        assert m.sum() > 200 and m[120:136, 120:136].any()


def test_deterministic_across_worker_counts(model_dir, tmp_path):
    kw = dict(seed=4, examples_per_shard=3, smpl_dir=model_dir, batch_size=4, progress=False)
    a, b, c = (str(tmp_path / n) for n in "abc")
    generate.generate_split(a, "train", 4, num_workers=0, **kw)
    generate.generate_split(b, "train", 4, num_workers=2, **kw)
    generate.generate_split(c, "train", 4, num_workers=0, **(kw | {"seed": 5}))
    for f in schema.split_files(a, "train"):
        name = os.path.basename(f)
        assert open(f, "rb").read() == open(os.path.join(b, name), "rb").read()
        assert open(f, "rb").read() != open(os.path.join(c, name), "rb").read()


def test_workers_do_not_import_tensorflow():
    code = ("import sys; import smplr_tf.synth.generate as g, smplr_tf.render, smplr_tf.data.crop; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_free_model_skeleton_sits_on_the_body(tmp_path):
    """With the shipped free body model: joints and landmarks inside the frame fall on the rendered silhouette."""
    import cv2

    from smplr_tf.body import model_io

    if not all(model_io.FREE_MODEL_FILES[g].is_file() for g in ("female", "male")):
        pytest.skip("free body model files not built")
    d = str(tmp_path / "free")
    generate.generate_split(d, "train", 6, seed=11, num_workers=0, batch_size=8, progress=False)
    hits = []
    for r in _records(d):
        m = cv2.dilate((r["mask"] > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        pts3 = np.concatenate([r["joints3d"], r["landmarks3d"]])
        src = crop.project(pts3, generate.K_SOURCE)
        in_frame = (src[:, 0] > 2) & (src[:, 0] < 317) & (src[:, 1] > 2) & (src[:, 1] < 237)
        uv = np.rint(np.concatenate([r["joints2d"], r["landmarks2d"]])[in_frame]).astype(int)
        hits += list(m[np.clip(uv[:, 1], 0, 255), np.clip(uv[:, 0], 0, 255)])
        # The body is lit and coloured: its pixels are not the pad / background colour everywhere.
        assert (r["mask"] > 0).sum() > 1500
    assert len(hits) > 100 and np.mean(hits) > 0.9


def test_background_dir(model_dir, tmp_path):
    import cv2

    bg = tmp_path / "bg"
    (bg / "sub").mkdir(parents=True)
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    for k, c in enumerate(colours):
        cv2.imwrite(str(bg / ("sub" if k else "") / f"img{k}.jpg"), np.full((180 + 40 * k, 300, 3), c, np.uint8))
    (bg / "notes.txt").write_text("not an image")
    assert len(appearance.list_images(str(bg))) == 3
    d = str(tmp_path / "out")
    generate.generate_split(d, "train", 3, seed=2, num_workers=0, smpl_dir=model_dir, background_dir=str(bg),
                            batch_size=4, progress=False)
    assert schema.read_manifest(d)["sources"]["train"]["background_dir"] == str(bg)
    for r in _records(d):
        corner = r["image"][:6, :6].reshape(-1, 3).mean(0)  # background or pad: one of the pure colours (RGB)
        assert max(corner) > 200 and sorted(corner)[1] < 60
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        appearance.list_images(str(empty))


def test_random_families_and_mixing():
    names = [pose.sample_body(np.random.default_rng([9, i]))[0] for i in range(300)]
    mixed = [n for n in names if "+" in n]
    assert 0.15 < len(mixed) / len(names) < 0.35
    assert all(p in pose.FAMILIES for n in names for p in n.split("+"))
    assert {n.split("+")[0] for n in names} == set(pose.FAMILIES)
    # A mixed pose keeps the legs of its first family: sitting legs under any upper body.
    for i in range(300):
        name, euler, body_pose, pelvis = pose.sample_body(np.random.default_rng([9, i]))
        if name.startswith("sitting+"):
            J = fk(pelvis, body_pose)
            assert min(J[4, 2] - J[1, 2], J[5, 2] - J[2, 2]) > 0.2


def test_failure_leaves_no_shard_and_no_manifest(model_dir, tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "broken.jpg").write_bytes(b"not a jpeg")
    d = tmp_path / "out"
    with pytest.raises(OSError, match="broken.jpg"):
        generate.generate_split(str(d), "train", 3, seed=0, num_workers=0, smpl_dir=model_dir,
                                background_dir=str(bg), batch_size=4, progress=False)
    assert sorted(os.listdir(d)) == []


def test_background_clutter_zero_draws_no_shapes():
    """Bare wall and floor: along a row only noise varies, far less than with the default shapes."""
    def row_std(clutter):
        return np.mean([appearance.procedural_background(np.random.default_rng(s), (120, 160), clutter)
                        .astype(np.float32).std(axis=1).mean() for s in range(6)])

    assert row_std(0.0) < 0.5 * row_std(1.0)
    np.testing.assert_array_equal(appearance.procedural_background(np.random.default_rng(3), (60, 80)),
                                  appearance.procedural_background(np.random.default_rng(3), (60, 80), 1.0))
