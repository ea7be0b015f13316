"""Similarity Procrustes: a hand-made case, two independent solvers (Horn's quaternions, scipy), reflections."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from smplr_tf import procrustes


def _horn(X, Y):
    """Horn (1987) closed form with unit quaternions: an independent formulation (no SVD)."""
    x0 = X - X.mean(0)
    y0 = Y - Y.mean(0)
    S = x0.T @ y0  # S_ab = sum x_a y_b
    sxx, sxy, sxz = S[0]
    syx, syy, syz = S[1]
    szx, szy, szz = S[2]
    N = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz]])
    w, v = np.linalg.eigh(N)
    q = v[:, np.argmax(w)]  # (w, x, y, z)
    R = Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()
    s = np.sum(y0 * (x0 @ R.T)) / np.sum(x0 ** 2)
    t = Y.mean(0) - s * R @ X.mean(0)
    return s, R, t


def test_hand_case_recovers_known_transform():
    X = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], float)
    Rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)  # 90 degrees about z
    Y = 2.0 * X @ Rz.T + np.array([1.0, 2.0, 3.0])
    s, R, t = procrustes.similarity_transform(X, Y)
    assert s == pytest.approx(2.0, abs=1e-9)
    np.testing.assert_allclose(R, Rz, atol=1e-9)
    np.testing.assert_allclose(t, [1, 2, 3], atol=1e-9)
    np.testing.assert_allclose(procrustes.align(X, Y), Y, atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_matches_horn_quaternion_and_scipy(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(41, 3))
    R_true = Rotation.random(random_state=seed).as_matrix()
    Y = 0.7 * X @ R_true.T + rng.normal(size=3) + 0.05 * rng.normal(size=(41, 3))
    s, R, t = procrustes.similarity_transform(X, Y)
    s_h, R_h, t_h = _horn(X, Y)
    np.testing.assert_allclose(R, R_h, atol=1e-8)
    assert s == pytest.approx(s_h, rel=1e-8)
    np.testing.assert_allclose(t, t_h, atol=1e-8)
    # scipy's align_vectors: proper rotation minimising sum |a_i - R b_i|^2 on centred points.
    rot, _ = Rotation.align_vectors(Y - Y.mean(0), X - X.mean(0))
    np.testing.assert_allclose(R, rot.as_matrix(), atol=1e-8)


def test_optimal_against_perturbations():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    Y = rng.normal(size=(30, 3))  # unrelated: the optimum is not trivial
    s, R, t = procrustes.similarity_transform(X, Y)
    best = np.sum((s * X @ R.T + t - Y) ** 2)
    for k in range(50):
        dR = Rotation.from_rotvec(0.05 * rng.normal(size=3)).as_matrix()
        ds = s * (1 + 0.05 * rng.normal())
        dt = t + 0.05 * rng.normal(size=3)
        assert np.sum((ds * X @ (dR @ R).T + dt - Y) ** 2) >= best - 1e-9


def test_reflection_is_never_used():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    Y = X * np.array([-1.0, 1.0, 1.0])  # a mirror image: only a reflection would fit exactly
    s, R, t = procrustes.similarity_transform(X, Y)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-9)
    assert s > 0
    # Same answer as the quaternion method (which can only express proper rotations).
    _, R_h, _ = _horn(X, Y)
    np.testing.assert_allclose(R, R_h, atol=1e-7)
    assert np.abs(procrustes.align(X, Y) - Y).max() > 1e-3  # cannot be fitted exactly


def test_batched_equals_loop_and_fit_subset():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 24, 3))
    Y = rng.normal(size=(4, 24, 3))
    s, R, t = procrustes.similarity_transform(X, Y)
    for b in range(4):
        sb, Rb, tb = procrustes.similarity_transform(X[b], Y[b])
        assert s[b] == pytest.approx(sb)
        np.testing.assert_allclose(R[b], Rb, atol=1e-10)
        np.testing.assert_allclose(t[b], tb, atol=1e-10)
    # Fitted on a subset, applied to other points of the same frame.
    idx = np.arange(10)
    extra = rng.normal(size=(4, 7, 3))
    out = procrustes.align(X, Y, fit_idx=idx, apply_to=extra)
    s2, R2, t2 = procrustes.similarity_transform(X[:, idx], Y[:, idx])
    np.testing.assert_allclose(out, s2[:, None, None] * extra @ np.swapaxes(R2, 1, 2) + t2[:, None], atol=1e-10)


def test_tf_matches_numpy():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 41, 3)).astype(np.float32)
    Y = (X[:, :, ::-1] * np.array([1, -1, 1]) + 0.1 * rng.normal(size=X.shape)).astype(np.float32)  # has reflections
    s, R, t = procrustes.similarity_transform(X, Y)
    s_t, R_t, t_t = procrustes.similarity_transform_tf(tf.constant(X), tf.constant(Y))
    np.testing.assert_allclose(s_t.numpy(), s, rtol=1e-5)
    np.testing.assert_allclose(R_t.numpy(), R, atol=1e-5)
    np.testing.assert_allclose(t_t.numpy(), t, atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R_t.numpy()), 1.0, atol=1e-5)
    np.testing.assert_allclose(procrustes.align_tf(tf.constant(X), tf.constant(Y), fit_idx=np.arange(23)).numpy(),
                               procrustes.align(X, Y, fit_idx=np.arange(23)), atol=1e-5)
