"""DAE noise: the sigma table and the noise modes."""

import numpy as np
import pytest
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import noise


def test_sigma_table_bounds_and_extremities():
    s = noise.POINT_NOISE_SIGMA
    assert s.shape == (41,) and s.dtype == np.float32
    np.testing.assert_allclose([s.min(), s.max()], [0.005, 0.091], atol=1e-7)
    name = dict(zip(skeleton.POINT_NAMES, s))
    # extremities get more noise than the joints they hang from
    for a, b in [("left_hand", "left_elbow"), ("left_wrist", "left_shoulder"), ("right_foot", "right_knee"),
                 ("head_top", "neck"), ("left_ankle", "left_hip")]:
        assert name[a] > name[b], (a, b)
    # the deepest nodes of the 42-node tree get the maximum
    depth = noise.tree_depths()[1:]
    np.testing.assert_array_equal(np.flatnonzero(s == s.max()), np.flatnonzero(depth == depth.max()))
    assert name["left_hand"] == name["right_hand"] >= s[depth == depth.max() - 1].max()
    # left / right symmetric
    np.testing.assert_array_equal(s, s[skeleton.POINT_FLIP_PERM])


def test_tree_depths_by_hand():
    d = noise.tree_depths()
    assert d[0] == 0
    assert d[skeleton.JOINT_NAMES.index("left_hand")] == 8  # pelvis-spine1-2-3-collar-shoulder-elbow-wrist-hand
    assert d[skeleton.JOINT_NAMES.index("left_foot")] == 4


def test_uniform_noise_bounds_and_spread():
    pts = tf.zeros((4000, 41, 3))
    n = noise.apply_noise(pts, "uniform", seed=tf.constant([1, 2], tf.int64)).numpy()
    s = noise.POINT_NOISE_SIGMA[None, :, None]
    assert np.all(np.abs(n) <= s + 1e-7)
    # uniform on [-s, s]: std s / sqrt(3), mean 0
    np.testing.assert_allclose(n.std(0), np.broadcast_to(s[0] / np.sqrt(3), (41, 3)), rtol=0.06)
    np.testing.assert_allclose(n.mean(0), 0, atol=0.004)
    again = noise.apply_noise(pts[:5], "uniform", seed=tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(again, noise.apply_noise(pts[:5], "uniform", seed=tf.constant([1, 2])).numpy())


def test_depth0_and_none_and_joints_only():
    rng = np.random.default_rng(0)
    pts = tf.constant(rng.normal(size=(3, 23, 3)).astype(np.float32))
    d0 = noise.apply_noise(pts, "depth0", seed=tf.constant([0, 1])).numpy()
    np.testing.assert_array_equal(d0[..., 2], 0)
    assert np.all(np.abs(d0[..., :2] - pts.numpy()[..., :2]) <= noise.POINT_NOISE_SIGMA[:23, None] + 1e-6)
    np.testing.assert_array_equal(noise.apply_noise(pts, "none").numpy(), pts.numpy())
    with pytest.raises(ValueError, match="noise mode"):
        noise.apply_noise(pts, "gauss")
