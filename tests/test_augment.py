"""Augmentation: flip / rotation geometry agrees between image, 2D and 3D labels; background swap; seeds."""

import cv2
import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import augment

S = 64
ALL_NAMES = skeleton.JOINT_NAMES + skeleton.LANDMARK_NAMES  # the 42 points augment works on


def _project(p_cam, K):
    uvw = p_cam @ K.T
    return uvw[:, :2] / uvw[:, 2:]


def _scene(seed=0, root=(0.0, 0.0, 5.0)):
    """42 camera-frame points around a root, a crop camera whose centre (S-1)/2 is the projected root."""
    rng = np.random.default_rng(seed)
    rel = rng.uniform(-0.8, 0.8, size=(42, 3)).astype(np.float32)
    rel[0] = 0.0
    root = np.array(root, np.float32)
    f = S * root[2] / 2.5  # the paper's crop: 2.5 m at the root depth spans the crop
    c = (S - 1) / 2.0
    K = np.array([[f, 0, c], [0, f, c], [0, 0, 1]], np.float32)
    # principal point so that the root projects onto the crop centre
    K[0, 2] -= f * root[0] / root[2]
    K[1, 2] -= f * root[1] / root[2]
    p2 = _project(rel + root, K).astype(np.float32)
    return rel, p2, K, root


def _dot_image(p2, idx):
    img = np.zeros((S, S, 3), np.float32)
    for k in idx:
        x, y = np.round(p2[k]).astype(int)
        img[y, x] = 1.0
    return img


def test_flip_twice_is_identity():
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(S, S, 3)).astype(np.float32)
    mask = (rng.uniform(size=(S, S)) > 0.5).astype(np.float32)
    p3, p2, _, _ = _scene()
    out = augment.flip(*augment.flip(img, mask, p3, p2))
    for a, b in zip(out, (img, mask, p3, p2)):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-6)


def test_flip_swaps_left_right_by_name_and_mirrors():
    p3, p2, K, root = _scene(1)
    img = _dot_image(p2, range(42))
    fi, _, f3, f2 = [t.numpy() for t in augment.flip(img, img[..., 0], p3, p2)]
    for i, name in enumerate(ALL_NAMES):
        other = name.replace("left", "@").replace("right", "left").replace("@", "right")
        j = ALL_NAMES.index(other)
        if other == name:
            assert i == j
        np.testing.assert_allclose(f3[i], p3[j] * [-1, 1, 1], atol=1e-6)
        np.testing.assert_allclose(f2[i], [S - 1 - p2[j, 0], p2[j, 1]], atol=1e-5)
    # the image follows the 2D labels
    for k in range(42):  # (x.5 rounds either way: look at both neighbours)
        x, y = np.floor(f2[k]).astype(int)
        assert fi[int(np.round(f2[k, 1])), x:x + 2].max() == 1.0
    # root on the optical axis: the mirrored 3D body projects exactly onto the mirrored 2D labels
    np.testing.assert_allclose(_project(f3 + root, K), f2, atol=1e-3)


def test_rotation_consistent_between_image_2d_and_3d():
    p3, p2, K, root = _scene(2)
    keep = [k for k in range(42) if np.all((p2[k] > 8) & (p2[k] < S - 9))]
    img = _dot_image(p2, keep)
    angle = tf.constant(0.15)
    r3, r2 = [t.numpy() for t in augment.rotate_points(p3, p2, angle, S)]
    # 3D rotation about the camera z axis through the root projects onto the rotated 2D labels
    np.testing.assert_allclose(_project(r3 + root, K), r2, atol=1e-3)
    # independent check of the 2D rotation with OpenCV (angle in degrees, counter-clockwise = our -angle)
    c = (S - 1) / 2.0
    M = cv2.getRotationMatrix2D((c, c), -np.degrees(0.15), 1.0)
    np.testing.assert_allclose(r2, p2 @ M[:, :2].T + M[:, 2], atol=1e-3)
    # the rotated image has its bright spots where the rotated labels are
    rimg = augment.rotate_image(tf.constant(img), angle).numpy()
    for k in keep:
        x, y = r2[k]
        patch = rimg[int(np.floor(y)):int(np.floor(y)) + 2, int(np.floor(x)):int(np.floor(x)) + 2, 0]
        assert patch.sum() > 0.3, (k, patch)
    # rotating by +a then -a gives the labels back
    b3, b2 = [t.numpy() for t in augment.rotate_points(r3, r2, -angle, S)]
    np.testing.assert_allclose(b3, p3, atol=1e-5)
    np.testing.assert_allclose(b2, p2, atol=1e-4)
    # depth is untouched
    np.testing.assert_allclose(r3[:, 2], p3[:, 2])


def test_flip_exactness_off_axis_is_the_documented_perspective_term():
    # root 1 m off axis at 5 m: the mirrored 3D projects near, not onto, the mirrored 2D labels
    p3, p2, K, root = _scene(3, root=(1.0, 0.0, 5.0))
    _, _, f3, f2 = [t.numpy() for t in augment.flip(np.zeros((S, S, 3), np.float32), np.zeros((S, S)), p3, p2)]
    err = np.abs(_project(f3 + root, K)[:, 0] - f2[:, 0])
    f = K[0, 0]
    z = p3[:, 2] + root[2]
    zf = f3[:, 2] + root[2]
    bound = 2 * f * root[0] * np.abs(1 / zf - 1 / root[2]) + 1e-3
    # the mirrored point keeps its depth (z of point j -> point i), so the documented formula applies per point
    np.testing.assert_array_less(err, bound + 1e-3)
    assert err.max() > 0.01  # and it is not exact
    del z


def test_background_swap_keeps_person_pixels():
    rng = np.random.default_rng(4)
    img = rng.uniform(size=(S, S, 3)).astype(np.float32)
    mask = np.zeros((S, S), np.float32)
    mask[10:40, 20:30] = 1.0
    bg = augment.smooth_colour_field(tf.constant([1, 2], tf.int64), S).numpy()
    out = np.asarray(augment.swap_background(img, mask, bg))
    np.testing.assert_array_equal(out[mask > 0], img[mask > 0])
    np.testing.assert_allclose(out[mask == 0], bg[mask == 0])
    assert bg.shape == (S, S, 3) and bg.min() >= 0 and bg.max() <= 1 and bg.std() > 0.01


def test_augment_example_deterministic_and_keeps_labels_consistent():
    p3, p2, _, _ = _scene(5)
    rng = np.random.default_rng(5)
    img = rng.uniform(size=(S, S, 3)).astype(np.float32)
    mask = np.ones((S, S), np.float32)
    outs = [augment.augment_example(img, mask, p3, p2, tf.constant([7, k], tf.int64)) for k in (0, 0, 1, 2, 3)]
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert any(not np.array_equal(outs[0][0].numpy(), o[0].numpy()) for o in outs[2:])
    for o in outs:
        im, m, q3, q2 = [t.numpy() for t in o]
        assert im.shape == (S, S, 3) and im.min() >= 0 and im.max() <= 1
        # flips and rotations preserve the root-relative geometry: the distances between points
        np.testing.assert_allclose(np.sort(np.linalg.norm(q3 - q3[0], axis=1)),
                                   np.sort(np.linalg.norm(p3 - p3[0], axis=1)), atol=1e-5)


def test_image_banks(tmp_path):
    rng = np.random.default_rng(6)
    bgdir, occdir = tmp_path / "bg", tmp_path / "occ"
    bgdir.mkdir()
    occdir.mkdir()
    for i in range(2):
        cv2.imwrite(str(bgdir / f"b{i}.jpg"), rng.integers(0, 255, (40 + 10 * i, 70, 3), dtype=np.uint8))
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[5:25, 5:15, 3] = 255  # the object is the opaque middle
    cv2.imwrite(str(occdir / "o.png"), rgba)
    bank_bg = augment.ImageBank(str(bgdir), "background")
    bank_occ = augment.ImageBank(str(occdir), "occluder")
    bg = augment.random_background(tf.constant([0, 1], tf.int64), S, bank_bg).numpy()
    assert bg.shape == (S, S, 3) and bg.std() > 0.05
    cfg = augment.AugmentConfig()
    rgb, alpha = [t.numpy() for t in augment.random_occluder(tf.constant([0, 2], tf.int64), S, cfg, bank_occ)]
    assert rgb.shape == (S, S, 3) and alpha.shape == (S, S, 1)
    assert 0 < alpha.sum() < S * S
    np.testing.assert_allclose(rgb[alpha[..., 0] > 0.99], 200 / 255, atol=0.02)
    # procedural occluder: a shape of at least occluder_min of the crop (may be cut by the border)
    _, a2 = augment.random_occluder(tf.constant([3, 3], tf.int64), S, cfg, None)
    assert a2.numpy().sum() > 0


def test_flipped_targets_are_mirrored_and_swapped():
    # targets of the flipped labels = the original targets mirrored in x with channels permuted by the flip
    # permutations (skeleton.POINT_FLIP_PERM for points, LIMB_FLIP_PERM for the limb maps)
    from smplr_tf.data import targets

    p3, p2, _, _ = _scene(7)
    p3 = p3 * 0.8
    _, _, f3, _ = augment.flip(np.zeros((S, S, 3), np.float32), np.zeros((S, S), np.float32), p3, p2)
    f3 = f3.numpy()
    shape = (16, 16, 4)
    pts = skeleton.points_from_smpl(p3[:24], p3[24:])
    fpts = skeleton.points_from_smpl(f3[:24], f3[24:])
    vol, fvol = targets.volumetric_heatmaps(pts, shape).numpy(), targets.volumetric_heatmaps(fpts, shape).numpy()
    np.testing.assert_allclose(fvol, vol[:, ::-1][..., skeleton.POINT_FLIP_PERM], atol=1e-6)
    lim, flim = targets.limb_heatmaps(p3[:24], shape).numpy(), targets.limb_heatmaps(f3[:24], shape).numpy()
    np.testing.assert_allclose(flim, lim[:, ::-1][..., skeleton.LIMB_FLIP_PERM], atol=1e-5)


def test_rotation_comes_last_and_fills_with_the_image_mean():
    # the authors' code rotates after standardising, with zero fill: the corners get the image's mean
    p3, p2, _, _ = _scene(6)
    rng = np.random.default_rng(6)
    img = rng.uniform(0.2, 0.9, size=(S, S, 3)).astype(np.float32)
    mask = np.zeros((S, S), np.float32)
    only_rotation = augment.AugmentConfig(flip_prob=0.0, rotation_prob=1.0, max_rotation=0.15,
                                          background_prob=0.0, occlusion_prob=0.0, colour_gain=0.0, brightness=0.0)
    im = augment.augment_example(img, mask, p3, p2, tf.constant([3, 1], tf.int64), cfg=only_rotation)[0].numpy()
    assert not np.allclose(im, img)  # rotated
    np.testing.assert_allclose(im[0, 0], img.mean(), atol=1e-6)
    np.testing.assert_allclose(im[-1, -1], img.mean(), atol=1e-6)
    # with the background swapped first (no person in the mask), the corners take the new image's mean: the
    # rotation sees the swapped image, not the original
    swap_then_rotate = augment.AugmentConfig(flip_prob=0.0, rotation_prob=1.0, max_rotation=0.15,
                                             background_prob=1.0, occlusion_prob=0.0, colour_gain=0.0,
                                             brightness=0.0)
    im2 = augment.augment_example(img, mask, p3, p2, tf.constant([3, 1], tf.int64), cfg=swap_then_rotate)[0].numpy()
    assert abs(float(im2[0, 0, 0]) - float(img.mean())) > 1e-3
    np.testing.assert_allclose(im2[0, 0], im2[0, 0, 0])  # one grey value: a mean over pixels and channels


def test_random_scale_moves_2d_with_the_image_and_keeps_3d():
    size = 64
    c = (size - 1) / 2.0
    img = np.zeros((size, size, 3), np.float32)
    p = np.array([[40.0, 20.0], [10.0, 50.0]], np.float32)
    for x, y in p.astype(int):
        img[y, x] = 1.0
    s = 1.25
    out = augment.scale_image(tf.constant(img), s).numpy()[..., 0]
    moved = c + s * (p - c)
    for (x, y) in moved:  # each dot is where the 2D label says (intensity-weighted centroid around it)
        x0, y0 = int(round(x)), int(round(y))
        win = out[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
        ys, xs = np.mgrid[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
        assert win.sum() > 0.5
        np.testing.assert_allclose([(xs * win).sum() / win.sum(), (ys * win).sum() / win.sum()], [x, y], atol=0.3)
    # Through augment_example (everything else off): 3D unchanged, 2D scaled by a factor in range, both seeds
    # repeatable.
    cfg = augment.AugmentConfig(flip_prob=0.0, rotation_prob=0.0, background_prob=0.0, occlusion_prob=0.0,
                                colour_gain=0.0, brightness=0.0, scale=0.2)
    p3 = tf.random.stateless_normal((42, 3), (1, 2))
    p2 = tf.random.stateless_uniform((42, 2), (3, 4), 0.0, size - 1.0)
    im, m, q3, q2 = augment.augment_example(tf.constant(img), tf.ones((size, size)), p3, p2, (5, 6), cfg=cfg)
    np.testing.assert_array_equal(q3.numpy(), p3.numpy())
    ratio = (q2.numpy() - c) / (p2.numpy() - c)
    assert np.allclose(ratio, ratio.flat[0], atol=1e-4) and 1 / 1.2 <= ratio.flat[0] <= 1.2 and ratio.flat[0] != 1.0
    again = augment.augment_example(tf.constant(img), tf.ones((size, size)), p3, p2, (5, 6), cfg=cfg)[3]
    np.testing.assert_array_equal(again.numpy(), q2.numpy())


def test_aug_scale_flag_reaches_the_hourglass_input(tmp_path):
    import pytest

    from smplr_tf import runs
    from smplr_tf.stages import get_stage
    from smplr_tf.synth.generate import generate_split

    generate_split(str(tmp_path), "train", 2, seed=0, progress=False)
    common = dict(stage="shn", data_dir=str(tmp_path), input_size=32, heatmap_size=8, depth_bins=4, hg_stacks=1,
                  hg_features=8, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="--augment"):
        get_stage("shn")(runs.flag_values(aug_scale=0.2, **common)).make_dataset("train", True)
    off = {k: 0.0 for k in ("aug_scale",)}
    quiet = dict(augment=True, **common)

    def first(**kw):
        return next(iter(get_stage("shn")(runs.flag_values(**quiet, **kw)).make_dataset("train", True)[0]))

    (_, a), (_, b) = first(**off), first(aug_scale=0.5)
    np.testing.assert_array_equal(a["points"].numpy(), b["points"].numpy())  # 3D targets unchanged
    assert not np.allclose(a["points2d"].numpy(), b["points2d"].numpy())  # 2D zoomed with the image
