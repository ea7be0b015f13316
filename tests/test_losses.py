"""Losses against independent numpy formulas (tiny shapes)."""

import numpy as np
import pytest
import tensorflow as tf

from smplr_tf import losses
from smplr_tf.body import skeleton

RNG = np.random.default_rng(0)


def _np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _np_softmax_ce(t, x):
    """(B, H, W, D, C) -> (B, C): -sum t/sum(t) * log_softmax over the volume, channel by channel."""
    b, c = x.shape[0], x.shape[-1]
    out = np.zeros((b, c))
    for i in range(b):
        for k in range(c):
            tv = t[i, ..., k].ravel().astype(np.float64)
            xv = x[i, ..., k].ravel().astype(np.float64)
            if tv.sum() == 0:
                continue
            out[i, k] = -(tv / tv.sum() * _np_log_softmax(xv, 0)).sum()
    return out


def test_softmax_ce_matches_numpy_per_channel_and_mean():
    x = RNG.normal(size=(2, 4, 5, 3, 3)).astype(np.float32) * 3
    t = RNG.uniform(size=x.shape).astype(np.float32)
    t[1, ..., 2] = 0.0  # nothing to supervise in this channel
    ref = _np_softmax_ce(t, x)
    got = losses.volumetric_softmax_ce_per_channel(t, x).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    mask = np.ones((2, 3), bool)
    mask[1, 2] = False
    np.testing.assert_allclose(losses.volumetric_softmax_ce(t, x).numpy(), ref[mask].mean(), rtol=1e-5)
    w = np.array([1.0, 3.0], np.float32)
    wm = (np.broadcast_to(w[:, None], (2, 3)) * mask)
    np.testing.assert_allclose(losses.volumetric_softmax_ce(t, x, weights=w).numpy(),
                               (wm * ref).sum() / wm.sum(), rtol=1e-5)


def test_softmax_ce_is_entropy_at_optimum_and_scale_free_in_target():
    t = RNG.uniform(0.01, 1, size=(1, 3, 3, 2, 2)).astype(np.float32)
    p = t / t.sum(axis=(1, 2, 3), keepdims=True)
    entropy = -(p * np.log(p)).sum(axis=(1, 2, 3))
    got = losses.volumetric_softmax_ce_per_channel(t, np.log(t) + 5.0).numpy()  # shift-invariant
    np.testing.assert_allclose(got, entropy, rtol=1e-5)
    other = RNG.normal(size=t.shape).astype(np.float32)
    assert (losses.volumetric_softmax_ce_per_channel(t, other).numpy() > entropy).all()  # Gibbs
    np.testing.assert_allclose(losses.volumetric_softmax_ce_per_channel(7 * t, other).numpy(),
                               losses.volumetric_softmax_ce_per_channel(t, other).numpy(), rtol=1e-5)


def test_softmax_ce_stable_for_huge_logits_and_fp16():
    x = np.zeros((1, 4, 4, 2, 1), np.float32)
    x[0, 1, 2, 1, 0] = 1e4  # exp would overflow without log-sum-exp
    t = np.zeros_like(x)
    t[0, 1, 2, 1, 0] = 1.0
    assert abs(float(losses.volumetric_softmax_ce(t, x))) < 1e-4
    t2 = np.zeros_like(x)
    t2[0, 0, 0, 0, 0] = 1.0
    np.testing.assert_allclose(float(losses.volumetric_softmax_ce(t2, x)), 1e4, rtol=1e-6)
    x16 = tf.constant(RNG.normal(size=(2, 4, 4, 2, 3)) * 20, tf.float16)
    t16 = tf.constant(RNG.uniform(size=(2, 4, 4, 2, 3)), tf.float16)
    v = losses.volumetric_softmax_ce(t16, x16)
    assert v.dtype == tf.float32 and np.isfinite(v.numpy())
    with tf.GradientTape() as tape:
        xv = tf.Variable(x)
        loss = losses.volumetric_softmax_ce(t2, xv)
    assert np.isfinite(tape.gradient(loss, xv).numpy()).all()


def test_sigmoid_ce_matches_numpy():
    x = RNG.normal(size=(2, 3, 4, 2, 3)).astype(np.float32) * 4
    t = RNG.uniform(size=x.shape).astype(np.float32)
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    ref = -(t * np.log(sig) + (1 - t) * np.log(1 - sig))
    np.testing.assert_allclose(losses.volumetric_sigmoid_ce(t, x).numpy(), ref.mean(), rtol=1e-5)
    w = np.array([0.0, 1.0], np.float32)
    np.testing.assert_allclose(losses.volumetric_sigmoid_ce(t, x, weights=w).numpy(), ref[1].mean(),
                               rtol=1e-5)
    big = np.full((1, 2, 2, 1), 1e4, np.float32)
    assert np.isfinite(losses.volumetric_sigmoid_ce(np.zeros_like(big), big).numpy())


def test_heatmap_mse_and_stack_reduction():
    t = RNG.uniform(size=(2, 5, 5, 3)).astype(np.float32)
    hs = [RNG.normal(size=t.shape).astype(np.float32) for _ in range(3)]
    refs = [((h - t) ** 2).mean() for h in hs]
    np.testing.assert_allclose(losses.heatmap_mse(t, hs[0]).numpy(), refs[0], rtol=1e-5)
    np.testing.assert_allclose(losses.hourglass_loss(t, hs, kind="mse").numpy(), sum(refs), rtol=1e-5)
    np.testing.assert_allclose(losses.hourglass_loss(t, hs, kind="mse", stack_reduction="mean").numpy(),
                               np.mean(refs), rtol=1e-5)
    t3 = RNG.uniform(size=(1, 3, 3, 2, 2)).astype(np.float32)
    h3 = [RNG.normal(size=t3.shape).astype(np.float32) for _ in range(2)]
    np.testing.assert_allclose(losses.hourglass_loss(t3, h3).numpy(),
                               sum(_np_softmax_ce(t3, h).mean() for h in h3), rtol=1e-5)
    with pytest.raises(ValueError):
        losses.hourglass_loss(t, hs, kind="mse", stack_reduction="max")


def test_l1_l2_beta_and_rotation_losses():
    a = RNG.normal(size=(4, 41, 3)).astype(np.float32)
    b = RNG.normal(size=(4, 41, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.l1_loss(a, b).numpy(), np.abs(a - b).mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.l2_loss(a, b).numpy(), ((a - b) ** 2).mean(), rtol=1e-6)
    np.testing.assert_allclose(losses.smpl_points_loss(a, b).numpy(), np.abs(a - b).mean(), rtol=1e-6)
    w = np.array([1, 0, 0, 1], np.float32)
    np.testing.assert_allclose(losses.l1_loss(a, b, weights=w).numpy(), np.abs(a - b)[[0, 3]].mean(),
                               rtol=1e-6)
    wp = (RNG.uniform(size=(4, 41)) > 0.5).astype(np.float32)
    ref = (np.abs(a - b) * wp[..., None]).sum() / (wp.sum() * 3)
    np.testing.assert_allclose(losses.l1_loss(a, b, weights=wp).numpy(), ref, rtol=1e-5)
    st = RNG.normal(size=(5, 11)).astype(np.float32)
    sp = RNG.normal(size=(5, 11)).astype(np.float32)
    ref = np.abs(st - sp).mean() + 0.01 * np.abs(sp[:, :10]).mean()
    np.testing.assert_allclose(losses.beta_loss(st, sp).numpy(), ref, rtol=1e-6)
    # the authors' code regularises all 11 outputs, the gender code included
    ref_all = np.abs(st - sp).mean() + 0.01 * np.abs(sp).mean()
    np.testing.assert_allclose(losses.beta_loss(st, sp, reg_outputs="all").numpy(), ref_all, rtol=1e-6)
    rt = RNG.normal(size=(2, 24, 3, 3)).astype(np.float32)
    rp = RNG.normal(size=(2, 24, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.rotation_loss(rt, rp).numpy(), np.abs(rt - rp).mean(), rtol=1e-6)


def test_bone_length_l1_matches_numpy():
    a = RNG.normal(size=(3, 41, 3)).astype(np.float32)
    b = RNG.normal(size=(3, 41, 3)).astype(np.float32)

    def lengths(p):
        nodes = np.concatenate([np.zeros((p.shape[0], 1, 3)), p], axis=1)
        return np.stack([np.linalg.norm(nodes[:, i] - nodes[:, skeleton.TREE_PARENTS[i]], axis=-1)
                         for i in range(1, 42)], axis=1)

    np.testing.assert_allclose(losses.bone_length_l1(a, b).numpy(),
                               np.abs(lengths(a) - lengths(b)).mean(), rtol=1e-5)


def test_sigmoid_hourglass_loss_is_the_authors_per_stack_mean_summed_over_stacks():
    t = RNG.uniform(0, 0.07, size=(2, 4, 4, 3, 5)).astype(np.float32)
    hs = [RNG.normal(size=t.shape).astype(np.float32) for _ in range(3)]

    def ce(x):  # sigmoid cross-entropy, elementwise, mean over ALL B x H x W x D x C elements
        return np.mean(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))

    np.testing.assert_allclose(losses.hourglass_loss(t, hs, kind="sigmoid").numpy(), sum(ce(h) for h in hs),
                               rtol=1e-5)


@pytest.mark.parametrize("balance", ["shn", "smplr"])
def test_e2e_balance_placement(tmp_path, balance):
    from smplr_tf.runs import flag_values
    from smplr_tf.stages.e2e import E2eStage

    (tmp_path / "flags.txt").write_text("--stage=shn\n--heatmap_loss=softmax\n--depth_bins=2\n")
    cfg = flag_values(stage="e2e", shn_run=str(tmp_path), e2e_shn_weight=1e-5, e2e_balance=balance)
    stage = E2eStage(cfg)
    t = RNG.uniform(size=(2, 4, 4, 2, 41)).astype(np.float32)
    y = {"heatmaps": t, "points": RNG.normal(size=(2, 41, 3)).astype(np.float32)}
    pred = {"heatmaps": [RNG.normal(size=t.shape).astype(np.float32)],
            "dae_points": RNG.normal(size=(2, 41, 3)).astype(np.float32),
            "smpl_points": RNG.normal(size=(2, 41, 3)).astype(np.float32)}
    out = {k: float(v) for k, v in stage.loss_fn(None, y, pred, True).items()}
    hl = float(losses.hourglass_loss(t, pred["heatmaps"], kind="softmax"))
    pts = np.abs(pred["dae_points"] - y["points"]).mean() + np.abs(pred["smpl_points"] - y["points"]).mean()
    want = 1e-5 * hl + pts if balance == "shn" else hl + 1e-5 * pts
    assert out["heatmap_loss"] == pytest.approx(hl, rel=1e-5)
    assert out["loss"] == pytest.approx(want, rel=1e-5)
