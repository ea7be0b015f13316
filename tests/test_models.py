"""Models: shapes (tiny and full size), soft-argmax, DAE residual, bone features, SMPLR wiring, BN folding."""

import time

import numpy as np
import pytest
import tensorflow as tf

from smplr_tf import volume
from smplr_tf.body import skeleton
from smplr_tf.models.alexnet import build_alexnet
from smplr_tf.models.dae import build_dae
from smplr_tf.models.hourglass import build_hourglass, hourglass_flops
from smplr_tf.models.inference import (fold_batch_norm, hourglass_inference_model, inference_model,
                                       randomize_batch_norms)
from smplr_tf.models.pipeline import smpl_from_points
from smplr_tf.models.smplr import bone_features, build_omega, build_omega_net, build_psi, build_psi_net
from smplr_tf.models.softargmax import peak_2d, soft_argmax_2d, soft_argmax_3d

RNG = np.random.default_rng(0)
TINY = dict(trunk=(32, 16), head_a=(8, 8), head_b=(8,))


def _n_params(m):
    return int(sum(np.prod(w.shape) for w in m.weights))


# --------------------------------------------------------------------------------------------- sizes
def test_full_size_models_build_with_expected_shapes():
    t0 = time.perf_counter()
    vol = build_hourglass()
    shn2d = build_hourglass(depth_bins=0, name="hourglass2d")
    final = build_hourglass(num_limbs=4, name="hourglass_final")
    alex, dae, psi, omega = build_alexnet(), build_dae(), build_psi(), build_omega()
    build_s = time.perf_counter() - t0
    hm = vol.output["heatmaps"]
    assert len(hm) == 5 and all(tuple(h.shape) == (None, 64, 64, 16, 41) for h in hm)
    assert tuple(vol.output["points"].shape) == (None, 41, 3)
    assert tuple(final.output["heatmaps"][-1].shape) == (None, 64, 64, 16, 45)
    assert tuple(final.output["points"].shape) == (None, 41, 3)  # limbs are not points
    assert tuple(shn2d.output["heatmaps"][0].shape) == (None, 64, 64, 41)
    assert tuple(shn2d.output["points"].shape) == (None, 41, 2)
    assert tuple(alex.output.shape) == (None, 23, 3)
    assert tuple(dae.output.shape) == (None, 41, 3)
    assert tuple(psi.output.shape) == (None, 11)
    assert tuple(omega.output.shape) == (None, 24, 3, 3)
    counts = {m.name: _n_params(m) for m in (vol, shn2d, final, alex, dae, psi, omega)}
    print(f"\nparameter counts (built in {build_s:.1f} s):")
    for k, v in counts.items():
        print(f"  {k:16s} {v:>11,d}")
    print(f"  vol SHN conv GFLOPs/image: {hourglass_flops() / 1e9:.1f} (inference graph "
          f"{hourglass_flops(inference=True) / 1e9:.1f})")
    # DAE: 123->1024->1024->512->1024->1024->123 dense (+ BN gamma/beta/mean/var per hidden unit)
    dense = 123 * 1024 + 1024 * 1024 + 1024 * 512 + 512 * 1024 + 1024 * 1024 + 1024 * 123 + 123
    assert counts["dae"] == dense + 4 * (4 * 1024 + 512)
    for m in (dae, psi, omega):  # a full-size batch-1 forward is cheap for the MLPs
        x = np.zeros((1,) + tuple(m.input.shape[1:]), np.float32)
        assert m(x, training=False).shape[0] == 1


@pytest.mark.parametrize("depth_bins,num_limbs", [(4, 0), (4, 2), (0, 0)])
def test_tiny_hourglass_forward(depth_bins, num_limbs):
    m = build_hourglass(num_stacks=2, features=16, input_size=64, num_points=5, depth_bins=depth_bins,
                        num_limbs=num_limbs, downsamplings=3)
    out = m(RNG.normal(size=(2, 64, 64, 3)).astype(np.float32), training=True)
    c = 5 + num_limbs
    want = (2, 16, 16, depth_bins, c) if depth_bins else (2, 16, 16, c)
    assert len(out["heatmaps"]) == 2 and all(tuple(h.shape) == want for h in out["heatmaps"])
    assert tuple(out["points"].shape) == (2, 5, 3 if depth_bins else 2)
    # points are the soft-argmax of the last stack's point channels
    last = out["heatmaps"][-1][..., :5]
    ref = soft_argmax_3d(last) if depth_bins else peak_2d(last)
    np.testing.assert_allclose(out["points"].numpy(), ref.numpy(), atol=1e-6)


@pytest.mark.parametrize("size", [64, 96, 128])
def test_tiny_alexnet_any_input_size(size):
    m = build_alexnet(input_size=size, num_points=23, width=0.05, fc_units=16)
    assert tuple(m(np.zeros((2, size, size, 3), np.float32), training=False).shape) == (2, 23, 3)


def test_hourglass_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        build_hourglass(num_stacks=1, features=8, input_size=48, downsamplings=3)


# ------------------------------------------------------------------------------------- soft-argmax
def _np_soft_argmax_3d(logits):
    """Independent reference: softmax of the flattened volume, expectation of voxels_to_metres(index)."""
    b, h, w, d, p = logits.shape
    iy, ix, iz = np.meshgrid(np.arange(h), np.arange(w), np.arange(d), indexing="ij")
    idx = np.stack([ix, iy, iz], -1).reshape(-1, 3).astype(np.float64)
    centres = volume.voxels_to_metres(idx, (w, h, d))  # (N, 3) metres (x, y, z)
    out = np.zeros((b, p, 3))
    for i in range(b):
        for k in range(p):
            v = logits[i, ..., k].reshape(-1).astype(np.float64)
            e = np.exp(v - v.max())
            out[i, k] = (e / e.sum()) @ centres
    return out


def test_soft_argmax_3d_matches_numpy_and_sharp_peak_is_voxel_centre():
    x = RNG.normal(size=(2, 8, 6, 4, 3)).astype(np.float32) * 3
    np.testing.assert_allclose(soft_argmax_3d(x).numpy(), _np_soft_argmax_3d(x), atol=1e-5)
    sharp = np.full((1, 64, 64, 16, 2), -50.0, np.float32)
    sharp[0, 10, 40, 3, 0] = 1e4  # y row 10, x col 40, z bin 3
    sharp[0, 63, 0, 15, 1] = 60.0
    got = soft_argmax_3d(sharp).numpy()[0]
    np.testing.assert_allclose(got[0], volume.voxels_to_metres(np.array([40.0, 10.0, 3.0]), (64, 64, 16)),
                               atol=1e-6)
    c64, c16 = volume.voxel_centres(64), volume.voxel_centres(16)
    np.testing.assert_allclose(got[1], [c64[0], c64[63], c16[15]], atol=1e-6)
    # the inverse of metres_to_voxels: a target point put on its voxel comes back
    p = np.array([0.31, -0.52, 0.2])
    v = np.round(volume.metres_to_voxels(p, (64, 64, 16))).astype(int)
    one = np.zeros((1, 64, 64, 16, 1), np.float32)
    one[0, v[1], v[0], v[2], 0] = 100.0
    assert np.abs(soft_argmax_3d(one).numpy()[0, 0] - p).max() <= 2.5 / 16 / 2 + 1e-6


def test_soft_argmax_fp16_uniform_and_gradients():
    x16 = tf.constant(RNG.normal(size=(1, 8, 8, 4, 2)) * 30, tf.float16)
    y = soft_argmax_3d(x16)
    assert y.dtype == tf.float32 and np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(soft_argmax_3d(np.zeros((1, 8, 8, 4, 1), np.float32)).numpy(), 0, atol=1e-6)
    xv = tf.Variable(RNG.normal(size=(1, 8, 8, 4, 2)).astype(np.float32) * 1e3)
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(soft_argmax_3d(xv))
    assert np.isfinite(tape.gradient(s, xv).numpy()).all()


def test_soft_argmax_2d_matches_numpy():
    x = RNG.normal(size=(2, 6, 5, 3)).astype(np.float32) * 2
    xs, ys = volume.voxel_centres(5), volume.voxel_centres(6)
    e = np.exp(x - x.max(axis=(1, 2), keepdims=True))
    p = e / e.sum(axis=(1, 2), keepdims=True)
    ref = np.stack([np.einsum("bhwp,w->bp", p, xs), np.einsum("bhwp,h->bp", p, ys)], -1)
    np.testing.assert_allclose(soft_argmax_2d(x).numpy(), ref, atol=1e-6)


def test_peak_2d_reads_regressed_gaussians_where_softmax_cannot():
    h, w = 64, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    true = [(20.3, 11.6), (50.0, 40.0)]  # (x, y) in pixels
    hm = np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2.0) for x, y in true], -1)[None]
    hm = hm + RNG.normal(scale=0.01, size=hm.shape)  # regression noise over the whole map
    got = peak_2d(hm.astype(np.float32)).numpy()[0]
    # independent reference: window of radius 2 around the argmax, weights max(h, 0)
    for k, (x, y) in enumerate(true):
        iy, ix = np.unravel_index(np.argmax(hm[0, ..., k]), (h, w))
        win = np.maximum(hm[0, iy - 2:iy + 3, ix - 2:ix + 3, k], 0)
        ref_px = np.array([(win * xx[iy - 2:iy + 3, ix - 2:ix + 3]).sum(), (win * yy[iy - 2:iy + 3, ix - 2:ix + 3]).sum()]) / win.sum()
        np.testing.assert_allclose(got[k], volume.voxels_to_metres(np.r_[ref_px, 0.0], (w, h, 1))[:2], atol=1e-5)
        assert np.abs(got[k] - volume.voxels_to_metres(np.array([x, y, 0.0]), (w, h, 1))[:2]).max() < 0.1 * 2.5 / 64
    soft = soft_argmax_2d(hm.astype(np.float32)).numpy()[0]
    assert np.abs(soft).max() < 0.05  # the softmax of a [0, 1] map is ~uniform: stuck near the centre


# --------------------------------------------------------------------------------------------- DAE
def test_dae_zero_correction_returns_input_even_with_dropout():
    m = build_dae(num_points=7, hidden=32, bottleneck=16)
    last = m.get_layer("correction")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    x = RNG.normal(size=(4, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x, training=False).numpy(), x, atol=1e-7)
    np.testing.assert_allclose(m(x, training=True).numpy(), x, atol=1e-7)  # residual uses the clean input
    assert sum(type(l).__name__ == "Dropout" for l in m.layers) == 2
    assert abs(m.get_layer("input_dropout").rate - 0.2) < 1e-9


def test_dae_skips_connect_encoder_to_decoder():
    m = build_dae(num_points=5, hidden=16, bottleneck=8)
    srcs = {n: [t._keras_history.operation.name for t in m.get_layer(n)._inbound_nodes[0].input_tensors]
            for n in ("dec1_skip", "dec2_skip")}
    assert srcs == {"dec1_skip": ["dec1_elu", "enc2_elu"], "dec2_skip": ["dec2_elu", "enc1_elu"]}


# ---------------------------------------------------------------------------------------- SMPLR
def _np_bone_features(points, template):
    nodes = np.concatenate([np.zeros((points.shape[0], 1, 3)), points], axis=1)
    vec = np.stack([nodes[:, i] - nodes[:, skeleton.TREE_PARENTS[i]] for i in range(1, 42)], axis=1)
    ln = np.linalg.norm(vec, axis=-1)
    return vec / ln[..., None], ln - template


def test_bone_features_match_numpy_and_are_safe_at_zero_length():
    pts = RNG.normal(size=(3, 41, 3)).astype(np.float32) * 0.3
    tmpl = RNG.uniform(0.05, 0.4, size=41).astype(np.float32)
    n, b = bone_features(pts, tmpl)
    n_ref, b_ref = _np_bone_features(pts.astype(np.float64), tmpl)
    np.testing.assert_allclose(n.numpy(), n_ref, atol=1e-5)
    np.testing.assert_allclose(b.numpy(), b_ref, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(n.numpy(), axis=-1), 1.0, atol=1e-5)
    import keras

    var = keras.Variable(tmpl, trainable=False)  # a template held as a weight, read inside tf.function
    b_var = tf.function(lambda p: bone_features(p, var)[1])(tf.constant(pts))
    np.testing.assert_allclose(b_var.numpy(), b_ref, atol=1e-6)
    zero = tf.Variable(np.zeros((1, 41, 3), np.float32))
    with tf.GradientTape() as tape:
        n0, b0 = bone_features(zero, tmpl)
        s = tf.reduce_sum(n0) + tf.reduce_sum(b0)
    assert np.isfinite(n0.numpy()).all() and np.isfinite(tape.gradient(s, zero).numpy()).all()


def test_psi_omega_tiny_outputs():
    psi = build_psi(**TINY)
    omega = build_omega(**TINY)
    assert tuple(psi(np.zeros((2, 41), np.float32)).shape) == (2, 11)
    r = omega(RNG.normal(size=(2, 41, 3)).astype(np.float32)).numpy()
    assert r.shape == (2, 24, 3, 3) and np.abs(r).max() <= 1.0  # tanh
    # the architecture: two heads concatenated, then one linear layer
    assert psi.get_layer("heads").output.shape[-1] == 22 and omega.get_layer("heads").output.shape[-1] == 432


@pytest.fixture(scope="module")
def smpl_layer():
    from smplr_tf.body.smpl import SMPL
    from smplr_tf.body.testing import random_model_data

    models = {g: random_model_data(num_vertices=300, seed=0, gender=g) for g in ("female", "male")}
    return SMPL(models=models)


def _smplr_nets(smpl_layer, **sizes):
    from smplr_tf.body.smpl import template_bone_lengths

    tmpl = template_bone_lengths(smpl_layer)
    return build_psi_net(template_lengths=tmpl, **sizes), build_omega_net(template_lengths=tmpl, **sizes)


def test_smplr_wiring_and_gender(smpl_layer):
    from smplr_tf.body.smpl import template_bone_lengths

    psi, omega = _smplr_nets(smpl_layer, **TINY)
    for net in (psi, omega):
        np.testing.assert_allclose(net.get_layer("bone_features").template.numpy(), template_bone_lengths(smpl_layer))
    pts = RNG.normal(size=(3, 41, 3)).astype(np.float32) * 0.3
    out = smpl_from_points(psi, omega, smpl_layer, pts)
    want = {"rotmats": (3, 24, 3, 3), "betas": (3, 10), "gender": (3,), "vertices": (3, 300, 3),
            "joints": (3, 24, 3), "landmarks": (3, 18, 3), "smpl_points": (3, 41, 3), "gender_index": (3,)}
    assert {k: tuple(v.shape) for k, v in out.items()} == want
    np.testing.assert_array_equal(out["gender_index"].numpy(), (out["gender"].numpy() >= 0).astype(int))
    np.testing.assert_allclose(out["smpl_points"].numpy(),
                               skeleton.points_from_smpl(out["joints"].numpy(), out["landmarks"].numpy()),
                               atol=1e-6)
    # the encoders' inputs are the bone features of the points; predictions go through SMPL unchanged
    n, b = bone_features(pts, template_bone_lengths(smpl_layer))
    np.testing.assert_allclose(out["betas"].numpy(), psi.get_layer("psi")(b, training=False).numpy()[:, :10],
                               atol=1e-6)
    np.testing.assert_allclose(out["rotmats"].numpy(), omega.get_layer("omega")(n, training=False).numpy(), atol=1e-6)
    ref = smpl_layer(out["betas"], out["rotmats"], gender=out["gender_index"])
    np.testing.assert_allclose(out["vertices"].numpy(), ref["vertices"].numpy(), atol=1e-5)


def test_smplr_gradients_reach_both_encoders(smpl_layer):
    psi, omega = _smplr_nets(smpl_layer, **TINY)
    pts = RNG.normal(size=(2, 41, 3)).astype(np.float32) * 0.3
    with tf.GradientTape() as tape:
        out = smpl_from_points(psi, omega, smpl_layer, pts)
        loss = tf.reduce_mean(tf.abs(out["smpl_points"] - pts))
    grads = tape.gradient(loss, [psi.trainable_weights, omega.trainable_weights])
    for g in grads:
        assert any(x is not None and np.any(x.numpy()) for x in g)


# ------------------------------------------------------------------------------------- folding
def _close(a, b, tol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, atol=tol * max(1.0, np.abs(b).max()), rtol=0)


@pytest.mark.parametrize("depth_bins", [4, 0])
def test_fold_batch_norm_hourglass_equivalent(depth_bins):
    m = build_hourglass(num_stacks=2, features=16, input_size=64, num_points=5, depth_bins=depth_bins,
                        num_limbs=2)
    randomize_batch_norms(m, seed=1)
    x = RNG.normal(size=(2, 64, 64, 3)).astype(np.float32)
    ref = m(x, training=False)
    f = fold_batch_norm(m)
    assert not any(type(l).__name__ == "BatchNormalization" for l in f.layers)
    out = f(x, training=False)
    for h, hr in zip(out["heatmaps"], ref["heatmaps"]):
        _close(h, hr)
    _close(out["points"], ref["points"])
    merged = hourglass_inference_model(m)
    assert inference_model(m).count_params() == merged.count_params() < f.count_params()
    om = merged(x, training=False)
    assert len(om["heatmaps"]) == 1
    _close(om["heatmaps"][0], ref["heatmaps"][-1])
    _close(om["points"], ref["points"])


@pytest.mark.parametrize("builder", [
    lambda: build_dae(num_points=9, hidden=32, bottleneck=16),
    lambda: build_psi(**TINY),
    lambda: build_omega(**TINY),
    lambda: build_alexnet(input_size=96, num_points=4, width=0.1, fc_units=32),
])
def test_fold_batch_norm_mlps_and_alexnet_equivalent(builder):
    m = builder()
    randomize_batch_norms(m, seed=2)
    x = RNG.normal(size=(3,) + tuple(m.input.shape[1:])).astype(np.float32)
    f = fold_batch_norm(m)
    assert not any(type(l).__name__ == "BatchNormalization" for l in f.layers)
    _close(f(x, training=False), m(x, training=False))


def test_fold_batch_norm_smplr(smpl_layer):
    psi, omega = _smplr_nets(smpl_layer, trunk=(32, 32, 16), head_a=(8, 8), head_b=(8,))
    assert psi.get_layer("psi").get_layer("trunk0_dense").units == 32
    assert omega.get_layer("omega").get_layer("headB0_dense").units == 8
    for net in (psi, omega):
        randomize_batch_norms(net, seed=3)
    pts = RNG.normal(size=(2, 41, 3)).astype(np.float32) * 0.3
    ref = smpl_from_points(psi, omega, smpl_layer, pts)
    out = smpl_from_points(fold_batch_norm(psi), fold_batch_norm(omega), smpl_layer, pts)
    for k in ("rotmats", "betas", "gender", "joints", "smpl_points"):
        _close(out[k], ref[k])


def test_hourglass_under_mixed_precision_gives_float32_points():
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        m = build_hourglass(num_stacks=1, features=8, input_size=32, num_points=3, depth_bins=2,
                            downsamplings=2)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    out = m(RNG.normal(size=(1, 32, 32, 3)).astype(np.float32), training=False)
    assert out["heatmaps"][0].dtype == tf.float16 and out["points"].dtype == tf.float32
    np.testing.assert_allclose(out["points"].numpy(), soft_argmax_3d(out["heatmaps"][0]).numpy(), atol=1e-6)


def test_fold_batch_norm_nested_lambda_and_custom_layers():
    import keras

    class Scale(keras.layers.Layer):  # a weighted custom layer whose config cannot rebuild it
        def __init__(self, init, **kw):
            super().__init__(**kw)
            self.init = np.asarray(init, np.float32)

        def build(self, shape):
            self.s = self.add_weight(shape=self.init.shape, initializer=keras.initializers.Constant(self.init))

        def call(self, x):
            return x * self.s

    inner = build_dae(num_points=4, hidden=16, bottleneck=8)
    x = keras.Input((4, 3))
    y = Scale(RNG.uniform(0.5, 2, size=(3,)))(x)
    y = inner(y)
    y = keras.layers.Lambda(lambda t: t * 2.0)(y)
    y = keras.layers.Dense(5, use_bias=False)(keras.layers.Flatten()(y))
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.Dense(4, activation="relu")(y)  # an activation in between: must not be folded
    y = keras.layers.BatchNormalization()(y)
    outer = keras.Model(x, y)
    randomize_batch_norms(outer, seed=4)
    f = fold_batch_norm(outer)
    nested = [l for l in f.layers if isinstance(l, keras.Model)]
    assert len(nested) == 1
    assert not any(type(l).__name__ == "BatchNormalization" for l in f.layers + nested[0].layers)
    assert sum(type(l).__name__ == "ChannelAffine" for l in f.layers) == 1
    data = RNG.normal(size=(3, 4, 3)).astype(np.float32)
    _close(f(data, training=False), outer(data, training=False))


def test_hourglass_inference_model_bfloat16_option_close_on_tiny_model():
    m = build_hourglass(num_stacks=1, features=8, input_size=32, num_points=3, depth_bins=2, downsamplings=2)
    x = RNG.normal(size=(1, 32, 32, 3)).astype(np.float32)
    fast = hourglass_inference_model(m, dtype_policy="mixed_bfloat16")
    import keras

    assert keras.mixed_precision.dtype_policy().name == "float32"  # global policy restored
    out = fast(x, training=False)
    assert out["heatmaps"][0].dtype == tf.bfloat16 and out["points"].dtype == tf.float32
    ref = m(x, training=False)["heatmaps"][-1].numpy()
    err = np.abs(out["heatmaps"][0].numpy().astype(np.float32) - ref).max()
    assert err < 0.05 * np.abs(ref).max()  # bf16: close, not exact


def test_readouts_invert_the_pipelines_targets():
    """Axis conventions end to end: targets.py's Gaussians -> our readouts give the labelled points back."""
    from smplr_tf.data import targets

    pts = np.stack([RNG.uniform(-1.0, 1.0, 6), RNG.uniform(-1.0, 1.0, 6), RNG.uniform(-0.7, 0.7, 6)], -1)
    hm = targets.volumetric_heatmaps(tf.constant(pts[None], tf.float32), shape=(64, 64, 16), sigma=1.0)
    got = soft_argmax_3d(tf.math.log(hm + 1e-30)).numpy()[0]  # softmax(log t) = t / sum t
    np.testing.assert_allclose(got, pts, atol=2e-3)
    px = RNG.uniform(20, 236, size=(5, 2))  # crop pixels (x, y)
    hm2 = targets.heatmaps_2d(tf.constant(px[None], tf.float32), input_size=256, shape=(64, 64))
    got2 = peak_2d(hm2).numpy()[0]  # metres of the cube plane
    want = targets.pixels_to_heatmap(px, 256, 64).numpy()  # heatmap pixels (x, y)
    back = volume.metres_to_voxels(np.c_[got2, np.zeros(5)], (64, 64, 16))[:, :2]
    np.testing.assert_allclose(back, want, atol=0.05)


def test_dae_under_mixed_bfloat16_keeps_the_points_float32():
    """Only the correction is computed in bfloat16: a zero correction returns the float32 input bit for bit
    (a bfloat16 residual would round 1 m points to ~4 mm)."""
    import keras

    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        m = build_dae(num_points=7, hidden=32, bottleneck=16)
    finally:
        keras.mixed_precision.set_global_policy(old)
    assert m.get_layer("enc1_dense").compute_dtype == "bfloat16"
    last = m.get_layer("correction")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    x = (1.0 + RNG.uniform(0, 1e-3, size=(4, 7, 3))).astype(np.float32)
    out = m(x, training=False)
    assert out.dtype == "float32"
    np.testing.assert_array_equal(out.numpy(), x)


def test_alexnet_dropout_rate_is_configurable():
    rates = [l.rate for l in build_alexnet(input_size=64, width=0.05, fc_units=8, dropout=0.3).layers
             if type(l).__name__ == "Dropout"]
    assert rates == [0.3, 0.3]
    assert not [l for l in build_alexnet(input_size=64, width=0.05, fc_units=8, dropout=0.0).layers
                if type(l).__name__ == "Dropout"]


# ------------------------------------------------------------------------------ the authors' hourglass
def _expected_hourglass_params(stacks=5, f=256, points=41, bins=16, levels=4):
    """Weights of the authors' hourglass counted from its structure: convolutions without biases, batch norms
    with beta, moving mean and moving variance (no gamma)."""
    def conv(cin, cout, k):
        return k * k * cin * cout

    def bn(c):
        return 3 * c

    def residual(cin, cout):
        h = cout // 2
        n = bn(cin) + conv(cin, h, 1) + bn(h) + conv(h, h, 3) + bn(h) + conv(h, cout, 1)
        return n + (conv(cin, cout, 1) if cin != cout else 0)

    total = conv(3, f // 4, 6) + residual(f // 4, f // 2) + residual(f // 2, f // 2) + residual(f // 2, f)
    head = points * bins
    for i in range(stacks):
        total += (3 * levels + 1) * residual(f, f)  # up1, low1, low3 per level + the innermost low2
        total += residual(f, f) + conv(f, f, 1) + bn(f) + conv(f, head, 1)  # res, lin, head
        if i < stacks - 1:
            total += conv(f, f, 1) + conv(head, f, 1)  # lin2, remap
    return total


def test_full_size_hourglass_is_the_authors_network():
    import keras

    m = build_hourglass()
    assert _n_params(m) == _expected_hourglass_params()
    # 4 pooling levels per hourglass: 64 -> 32 -> 16 -> 8 -> 4
    for s in range(5):
        pools = [layer for layer in m.layers if layer.name.startswith(f"s{s}_hg_") and layer.name.endswith("_pool")]
        assert sorted(tuple(p.output.shape[1:3]) for p in pools) == [(4, 4), (8, 8), (16, 16), (32, 32)]
        assert tuple(m.get_layer(f"s{s}_hg_l1_low2_add").output.shape) == (None, 4, 4, 256)
    # stem: 2-pixel padding, 6x6 stride-2 conv to 64 channels without bias, no norm after it
    pad, conv = m.get_layer("stem1_pad"), m.get_layer("stem1_conv")
    assert tuple(pad.output.shape) == (None, 260, 260, 3)
    assert conv.kernel.shape == (6, 6, 3, 64) and conv.strides == (2, 2) and not conv.use_bias
    assert tuple(conv.output.shape) == (None, 128, 128, 64)
    assert tuple(m.get_layer("stem_pool").output.shape) == (None, 64, 64, 128)
    assert tuple(m.get_layer("stem_res3_add").output.shape) == (None, 64, 64, 256)
    assert "stem1_bn" not in [layer.name for layer in m.layers]
    bns = [layer for layer in m.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(not b.scale and b.momentum == 0.9 and b.epsilon == 1e-5 for b in bns)
    convs = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(not c.use_bias and isinstance(c.kernel_initializer, keras.initializers.GlorotNormal) for c in convs)
    # FLOPs: the 6x6 stem and the 4th level counted
    assert hourglass_flops() > hourglass_flops(downsamplings=3)
    assert hourglass_flops(stem="newell") - hourglass_flops() == pytest.approx(
        2.0 * 128 * 128 * 3 * 64 * (49 - 36))


def test_old_runs_rebuild_the_first_hourglass_and_fold():
    import keras

    from smplr_tf.runs import flag_values, parse_flags_text
    from smplr_tf.stages import get_stage

    old = parse_flags_text("--stage=shn\n--hg_stacks=1\n--hg_features=16\n--input_size=64\n--heatmap_size=16\n"
                           "--depth_bins=2\n--hg_downsamplings=2\n")
    net = get_stage("shn")(old).build_network()
    assert isinstance(net.get_layer("stem1_bn"), keras.layers.BatchNormalization)
    assert net.get_layer("stem1_conv").kernel.shape[:2] == (7, 7) and net.get_layer("stem1_bn").scale
    assert net.get_layer("s0_head").use_bias
    new = flag_values(stage="shn", hg_stacks=1, hg_features=16, input_size=64, heatmap_size=16, depth_bins=2,
                      hg_downsamplings=2)
    net2 = get_stage("shn")(new).build_network()
    assert net2.get_layer("stem1_conv").kernel.shape[:2] == (6, 6) and not net2.get_layer("s0_head").use_bias
    # the inference rewrite handles both (gamma-free norms, bias-free convolutions)
    for m in (net, net2):
        randomize_batch_norms(m, seed=5)
        x = RNG.normal(size=(2, 64, 64, 3)).astype(np.float32)
        ref = m(x, training=False)
        out = hourglass_inference_model(m)(x, training=False)
        _close(out["heatmaps"][0], ref["heatmaps"][-1])


def test_mlps_follow_the_authors_batch_norms_and_initialisers():
    import keras

    for m in (build_dae(num_points=9, hidden=32, bottleneck=16), build_psi(**TINY), build_omega(**TINY)):
        bns = [layer for layer in m.layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert bns and all(b.momentum == 0.99 and b.epsilon == 1e-3 and b.scale and b.center for b in bns)
        outs = [layer for layer in m.layers if isinstance(layer, keras.layers.Dense) and layer.use_bias]
        assert outs
        for layer in outs:  # Glorot-uniform biases: U(-sqrt(3 / n), sqrt(3 / n)), not zeros
            b = layer.bias.numpy()
            assert np.abs(b).max() <= np.sqrt(3.0 / b.size) + 1e-6 and np.abs(b).max() > 0
    zero = build_dae(num_points=9, hidden=32, bottleneck=16, bias_initializer="zeros")
    assert not zero.get_layer("correction").bias.numpy().any()
    # the skip additions take the ELU outputs; the residual adds the input before its dropout
    dae = build_dae(num_points=9, hidden=32, bottleneck=16)
    skip_inputs = [t._keras_history.operation.name for t in dae.get_layer("dec1_skip").input]
    assert skip_inputs == ["dec1_elu", "enc2_elu"]
    assert [t._keras_history.operation.name for t in dae.get_layer("residual").input] == ["flatten", "correction"]
