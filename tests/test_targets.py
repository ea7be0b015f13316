"""Heatmap targets: expectation returns the point, peak location, limb maps on the segments."""

import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import targets

CUBE = 2.5


def _np_expectation(vol, shape):
    """Independent numpy soft-argmax-style expectation of one (H, W, D) volume -> (x, y, z) metres."""
    h, w, d = shape
    p = vol / vol.sum()
    cy = ((np.arange(h) + 0.5) / h - 0.5) * CUBE
    cx = ((np.arange(w) + 0.5) / w - 0.5) * CUBE
    cz = ((np.arange(d) + 0.5) / d - 0.5) * CUBE
    return np.array([(p.sum((0, 2)) * cx).sum(), (p.sum((1, 2)) * cy).sum(), (p.sum((0, 1)) * cz).sum()])


def test_volumetric_expectation_returns_point():
    rng = np.random.default_rng(0)
    shape = (64, 64, 16)
    pts = rng.uniform(-0.8, 0.8, size=(5, 3)).astype(np.float32)
    pts[:, 2] = rng.uniform(-0.6, 0.6, size=5)  # keep 3 sigma away from the depth faces
    vol = targets.volumetric_heatmaps(tf.constant(pts), shape).numpy()
    assert vol.shape == (64, 64, 16, 5)
    for i in range(5):
        np.testing.assert_allclose(_np_expectation(vol[..., i], shape), pts[i], atol=1e-4)


def test_volumetric_peak_and_value_against_direct_formula():
    shape = (16, 16, 4)
    p = np.array([[0.31, -0.52, 0.2]], np.float32)
    vol = targets.volumetric_heatmaps(tf.constant(p), shape, sigma=1.0).numpy()[..., 0]
    # direct, non-separable evaluation in voxel units
    vx = (p[0] / CUBE + 0.5) * np.array([16, 16, 4]) - 0.5
    yy, xx, zz = np.meshgrid(np.arange(16), np.arange(16), np.arange(4), indexing="ij")
    ref = np.exp(-0.5 * ((xx - vx[0]) ** 2 + (yy - vx[1]) ** 2 + (zz - vx[2]) ** 2))
    np.testing.assert_allclose(vol, ref, atol=1e-6)
    iy, ix, iz = np.unravel_index(np.argmax(vol), vol.shape)
    assert (ix, iy, iz) == tuple(np.round(vx).astype(int))


def test_batched_equals_per_example():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1, 1, size=(2, 3, 3)).astype(np.float32)
    shape = (16, 16, 4)
    b = targets.volumetric_heatmaps(tf.constant(pts), shape).numpy()
    assert b.shape == (2, 16, 16, 4, 3)
    for i in range(2):
        np.testing.assert_allclose(b[i], targets.volumetric_heatmaps(tf.constant(pts[i]), shape).numpy(),
                                   rtol=1e-5, atol=1e-7)


def test_inside_cube():
    p = tf.constant([[0.0, 0.0, 0.0], [1.3, 0.0, 0.0], [0.0, 0.0, -1.2]], tf.float32)
    np.testing.assert_array_equal(targets.inside_cube(p).numpy(), [True, False, True])


def _joints_with_limbs(rng):
    j = np.zeros((24, 3), np.float32)
    j[1:] = rng.uniform(-0.9, 0.9, size=(23, 3))
    return j


def test_limb_maps_maximal_on_segment_and_decay():
    rng = np.random.default_rng(2)
    shape = (32, 32, 8)
    j = _joints_with_limbs(rng)
    maps = targets.limb_heatmaps(tf.constant(j), shape).numpy()
    assert maps.shape == (32, 32, 8, 4)
    h, w, d = shape
    for limb, chain in enumerate(skeleton.LIMB_CHAINS):
        m = maps[..., limb]
        # the voxel nearest to any point of a segment is within the Gaussian of that distance
        assert m.max() > np.exp(-0.5 * 0.75)
        for s in range(len(chain) - 1):
            a, b = j[chain[s]], j[chain[s + 1]]
            for t in np.linspace(0, 1, 5):
                q = a + t * (b - a)
                v = (q / CUBE + 0.5) * np.array([w, h, d]) - 0.5
                iv = np.clip(np.round(v).astype(int), 0, [w - 1, h - 1, d - 1])
                dist = np.linalg.norm(iv - v)
                if np.all((v >= 0) & (v <= [w - 1, h - 1, d - 1])):
                    # the voxel is at most ``dist`` from the segment
                    assert m[iv[1], iv[0], iv[2]] >= np.exp(-0.5 * dist ** 2) - 1e-5
        # independent brute force for a few voxels: min distance to the 3 segments (numpy)
        for _ in range(20):
            iy, ix, iz = rng.integers(0, h), rng.integers(0, w), rng.integers(0, d)
            g = np.array([ix, iy, iz], np.float64)
            best = np.inf
            for s in range(len(chain) - 1):
                a = (j[chain[s]] / CUBE + 0.5) * np.array([w, h, d]) - 0.5
                b = (j[chain[s + 1]] / CUBE + 0.5) * np.array([w, h, d]) - 0.5
                t = np.clip(np.dot(g - a, b - a) / np.dot(b - a, b - a), 0, 1)
                best = min(best, np.linalg.norm(g - a - t * (b - a)))
            np.testing.assert_allclose(m[iy, ix, iz], np.exp(-0.5 * best ** 2), atol=1e-5)


def test_heatmaps_2d_peak_and_crop_centre():
    # the crop centre (127.5 in a 256 crop, OpenCV convention) is the heatmap centre (31.5 in 64)
    p = tf.constant([[127.5, 127.5], [10.0, 200.0]], tf.float32)
    hm = targets.heatmaps_2d(p, 256, (64, 64)).numpy()
    assert hm.shape == (64, 64, 2)
    c = hm[..., 0]
    np.testing.assert_allclose(c[31, 31], c[32, 32])
    np.testing.assert_allclose(c[31, 32], c[32, 31])
    iy, ix = np.unravel_index(np.argmax(hm[..., 1]), (64, 64))
    assert (ix, iy) == (round((10 + 0.5) / 4 - 0.5), round((200 + 0.5) / 4 - 0.5))


def test_limb_maps_2d_on_segment():
    rng = np.random.default_rng(3)
    j2 = rng.uniform(20, 230, size=(24, 2)).astype(np.float32)
    maps = targets.limb_heatmaps_2d(tf.constant(j2), 256, (64, 64)).numpy()
    assert maps.shape == (64, 64, 4)
    for limb, chain in enumerate(skeleton.LIMB_CHAINS):
        for k in chain:
            h = (j2[k] + 0.5) / 4 - 0.5
            ih = np.round(h).astype(int)
            assert maps[ih[1], ih[0], limb] >= np.exp(-0.5 * np.sum((ih - h) ** 2)) - 1e-5


def test_windowed_single_example_equals_dense_batch():
    # a single example is computed in a +-5 sigma window per limb; a batch densely: same maps to 4e-6
    rng = np.random.default_rng(5)
    j = np.zeros((24, 3), np.float32)
    for chain in skeleton.LIMB_CHAINS:
        start = rng.uniform(-0.4, 0.4, 3)
        for k, jj in enumerate(chain):
            j[jj] = start + k * rng.uniform(-0.2, 0.2, 3)
    j[skeleton.LIMB_CHAINS[0][-1]] = [1.4, 0.0, 0.0]  # a hand outside the cube: its window is clipped
    single = targets.limb_heatmaps(tf.constant(j), (32, 32, 8)).numpy()
    dense = targets.limb_heatmaps(tf.constant(j[None]), (32, 32, 8)).numpy()[0]
    np.testing.assert_allclose(single, dense, atol=4e-6)
    j2 = rng.uniform(0, 255, (24, 2)).astype(np.float32)
    np.testing.assert_allclose(targets.limb_heatmaps_2d(tf.constant(j2), 256, (32, 32)).numpy(),
                               targets.limb_heatmaps_2d(tf.constant(j2[None]), 256, (32, 32)).numpy()[0], atol=4e-6)


def test_code_form_point_targets_are_the_normal_density():
    shape = (16, 16, 8)
    p = np.array([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0]], np.float32)
    vol = targets.volumetric_heatmaps(tf.constant(p), shape, form="code").numpy()
    vx = (p / CUBE + 0.5) * np.array([16, 16, 8]) - 0.5
    yy, xx, zz = np.meshgrid(np.arange(16), np.arange(16), np.arange(8), indexing="ij")
    for i in range(2):
        d2 = (xx - vx[i, 0]) ** 2 + (yy - vx[i, 1]) ** 2 + (zz - vx[i, 2]) ** 2
        np.testing.assert_allclose(vol[..., i], np.exp(-0.5 * d2) / (2 * np.pi) ** 1.5, atol=1e-7)
    assert vol.max() <= (2 * np.pi) ** -1.5 + 1e-7 and vol.max() > 0.03  # peak ~0.0635, not 1
    np.testing.assert_allclose(vol.sum(axis=(0, 1, 2)), 1.0, atol=0.02)  # a density: sums to ~1


def test_code_form_limb_targets_against_brute_force():
    rng = np.random.default_rng(7)
    shape = (12, 10, 4)
    h, w, d = shape
    j = _joints_with_limbs(rng)
    maps = targets.limb_heatmaps(tf.constant(j), shape, form="code").numpy()
    assert maps.shape == (12, 10, 4, 4)
    batched = targets.limb_heatmaps(tf.constant(j[None]), shape, form="code").numpy()[0]
    np.testing.assert_allclose(batched, maps, rtol=1e-6)
    yy, xx, zz = np.meshgrid(np.arange(h), np.arange(w), np.arange(d), indexing="ij")
    g = np.stack([xx, yy, zz], -1).astype(np.float64)  # (H, W, D, 3) voxel coordinates (x, y, z)
    for limb, chain in enumerate(skeleton.LIMB_CHAINS):
        per_bone = []
        for a_id, b_id in zip(chain[:-1], chain[1:]):
            a = (j[a_id] / CUBE + 0.5) * np.array([w, h, d]) - 0.5
            b = (j[b_id] / CUBE + 0.5) * np.array([w, h, d]) - 0.5
            t = np.clip(((g - a) @ (b - a)) / np.dot(b - a, b - a), 0, 1)
            dist2 = np.sum((g - a - t[..., None] * (b - a)) ** 2, -1)
            z = 1.0 / (1.0 + dist2)
            per_bone.append(np.exp(z) / np.exp(z).sum())  # softmax over the whole volume
        np.testing.assert_allclose(maps[..., limb], np.max(per_bone, axis=0), rtol=1e-5)
    # nearly flat: every value between 1/(e N) and e/N
    n = h * w * d
    assert maps.min() >= 1.0 / (np.e * n) and maps.max() <= np.e / n


def test_target_form_follows_the_loss():
    assert targets.target_form_for_loss("sigmoid") == "code"
    assert targets.target_form_for_loss("softmax") == "gaussian"
    assert targets.target_form_for_loss("sigmoid", "gaussian") == "gaussian"
