"""Metrics against hand-computed cases and independent formulations."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smplr_tf import metrics
from smplr_tf.body import skeleton


def _points(seed=0, b=3, p=41):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=(b, p, 3))


def test_protocol1_hand_case():
    gt = _points()
    pred = gt.copy()
    # 10 mm on the head joint (15) only, 30 mm on one landmark.
    pred[:, skeleton.joint_to_point(15), 0] += 0.010
    pred[:, 23 + 4, 2] -= 0.030
    row = metrics.table1_row(pred, gt, protocol=1)
    assert row["Hd"] == pytest.approx(10.0 / 2)  # Hd = joints 12, 15
    assert row["Jt"] == pytest.approx(10.0 / 23)
    assert row["Jt16"] == pytest.approx(10.0 / 16)  # the head is one of the authors' 16 joints
    assert row["Lm"] == pytest.approx(30.0 / 18)
    for g in ("Ts", "Sr", "Ew", "Wt", "Hp", "Kn", "Ft"):
        assert row[g] == pytest.approx(0.0, abs=1e-9)
    # Bones: node 15's bone (to 12) and the head-top landmark's bone (parent 15) change; landmark 4 too.
    assert row["Bn"] > 0


def test_groups_use_skeleton_groups_independently():
    rng = np.random.default_rng(5)
    gt = _points(1, b=4)
    pred = gt + rng.normal(scale=0.02, size=gt.shape)
    row = metrics.table1_row(pred, gt)
    err = np.sqrt(((pred - gt) ** 2).sum(-1))  # (B, 41)
    for name, joints in skeleton.EVAL_GROUPS.items():
        expect = np.mean([err[:, j - 1].mean() for j in joints]) * 1000
        assert row[name] == pytest.approx(expect)


def test_protocol2_invariant_to_similarity():
    gt = _points(2)
    R = Rotation.random(3, random_state=1).as_matrix()
    pred = 1.3 * np.einsum("bij,bpj->bpi", R, gt)  # s R gt: still root-relative (root -> 0)
    res = metrics.PointMetrics()
    res.update(pred, gt)
    out = res.result()
    assert out["p1"]["Jt"] > 50
    for col in ("Jt", "Lm", "Bn", "Hd"):
        assert out["p2"][col] == pytest.approx(0.0, abs=1e-6)


def test_protocol2_is_fitted_on_joints_only():
    gt = _points(3)
    pred = gt.copy()
    pred[:, 23:] += 0.05  # landmarks shifted: must not move the joint alignment
    row = metrics.table1_row(pred, gt, protocol=2)
    assert row["Jt"] == pytest.approx(0.0, abs=1e-6)
    assert row["Lm"] == pytest.approx(50.0 * np.sqrt(3), rel=1e-6)


def test_bone_lengths_against_loop_and_scaling():
    pts = _points(4, b=2)
    bl = metrics.bone_lengths(pts)
    nodes = np.concatenate([np.zeros((2, 1, 3)), pts], axis=1)
    for i in range(1, 42):
        expect = np.linalg.norm(nodes[:, i] - nodes[:, skeleton.TREE_PARENTS[i]], axis=-1)
        np.testing.assert_allclose(bl[:, i - 1], expect)
    # Scaling every point by 1.1 scales each bone by 1.1: mean |error| = 0.1 * mean length.
    row = metrics.table1_row(1.1 * pts, pts, protocol=1)
    assert row["Bn"] == pytest.approx(0.1 * bl.mean() * 1000)
    # Protocol 2 undoes a global scale.
    assert metrics.table1_row(1.1 * pts, pts, protocol=2)["Bn"] == pytest.approx(0.0, abs=1e-6)


def test_joint_only_sets():
    gt = _points(6, p=23)
    pred = gt + 0.01
    row = metrics.table1_row(pred, gt)
    assert row["Lm"] is None
    assert row["Jt"] == pytest.approx(10 * np.sqrt(3))
    assert row["Bn"] >= 0
    with pytest.raises(ValueError):
        metrics.table1_row(_points(p=30), _points(p=30))


def test_accumulator_equals_one_batch():
    gt = _points(7, b=6)
    pred = gt + np.random.default_rng(0).normal(scale=0.03, size=gt.shape)
    acc = metrics.PointMetrics()
    acc.update(pred[:2], gt[:2])
    acc.update(pred[2:], gt[2:])
    one = metrics.PointMetrics()
    one.update(pred, gt)
    a, b = acc.result(), one.result()
    assert a["count"] == 6
    for p in ("p1", "p2"):
        for k in metrics.TABLE1_COLUMNS:
            assert a[p][k] == pytest.approx(b[p][k])


def test_surface_errors_hand_case():
    v = np.zeros((1, 4, 3))
    gv = v.copy()
    pv = v.copy()
    pv[0, 0] = [0.0, 0.0, 0.004]  # 4 mm on one of 4 vertices -> 1 mm mean
    root = np.array([[1.0, 2.0, 3.0]])
    e = metrics.surface_errors(pv + root[:, None], root, gv - root[:, None], -root)
    assert e[0] * 1000 == pytest.approx(1.0)


def test_mask_iou_rectangles():
    a = np.zeros((20, 20), bool)
    b = np.zeros((20, 20), bool)
    a[0:10, 0:10] = True
    b[5:15, 0:10] = True
    assert metrics.mask_iou(a, b) == pytest.approx(50 / 150)
    assert metrics.mask_iou(a, a) == 1.0
    assert metrics.mask_iou(a, ~a) == 0.0


def test_silhouette_iou_of_projected_square():
    pytest.importorskip("smplr_tf.render")
    # A 0.4 m square at z = 2 m, f = 100 px, centre (32, 32): it covers x, y in [22, 42] pixels.
    verts = np.array([[-0.2, -0.2, 2.0], [0.2, -0.2, 2.0], [0.2, 0.2, 2.0], [-0.2, 0.2, 2.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    mask = np.zeros((64, 64), bool)
    mask[22:42, 22:42] = True
    assert metrics.silhouette_iou(verts, faces, K, mask) > 0.85
    shifted = np.zeros((64, 64), bool)
    shifted[22:42, 32:52] = True  # half overlap: IoU ~ 1/3
    assert metrics.silhouette_iou(verts, faces, K, shifted) == pytest.approx(1 / 3, abs=0.07)


def test_gender_accuracy():
    c = metrics.gender_correct([0.9, -0.3, 0.0, -1.0], [1, 0, 0, 2])
    np.testing.assert_array_equal(c[:3], [1, 1, 0])
    assert np.isnan(c[3])
    m = metrics.MeanMetric()
    m.update(c)
    assert m.result() == pytest.approx(2 / 3)


def test_all_proc_recovers_input_frame():
    rng = np.random.default_rng(8)
    inp = _points(9, b=2)
    R = Rotation.random(2, random_state=3).as_matrix()
    root = rng.normal(size=(2, 3))
    # SMPLR output = a rotated, scaled copy of its input; the "mesh" is the same points plus the root.
    out = 0.9 * np.einsum("bij,bpj->bpi", R, inp)
    verts = np.concatenate([out, np.zeros((2, 1, 3))], axis=1) + root[:, None]
    pts, v = metrics.all_proc(out, inp, verts, root)
    np.testing.assert_allclose(pts, inp, atol=1e-9)
    np.testing.assert_allclose(v[:, :41], inp, atol=1e-9)
    np.testing.assert_allclose(v[:, 41], 0.0, atol=1e-9)


def test_joint_sets_16_and_23():
    gt = _points(8, b=2)
    pred = gt.copy()
    pred[:, skeleton.joint_to_point(22), 0] += 0.100  # left hand: in Jt (23 joints), not in Jt16
    pred[:, skeleton.joint_to_point(20), 1] += 0.032  # left wrist: in both, and in the Wt group
    row = metrics.table1_row(pred, gt)
    assert row["Jt"] == pytest.approx((100.0 + 32.0) / 23)
    assert row["Jt16"] == pytest.approx(32.0 / 16)
    assert row["Wt"] == pytest.approx(32.0 / 2)  # Wt = the two wrists only
