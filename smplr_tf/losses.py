"""Losses of every stage. Plain functions ``f(y_true, y_pred, ...) -> scalar float32 tensor``.

Every function casts to float32 first (safe under mixed precision) and works on logits where it takes
logits (never on probabilities), using log-sum-exp / the stable sigmoid cross-entropy.

Reductions (documented per function; all are means, so the loss scale does not grow with the batch):

* ``weights``: optional per-sample (B,) or per-sample-and-channel/point (B, C) non-negative weights (e.g.
  ``has_3d`` or a per-point validity mask). The result is then ``sum(w * l) / sum(w)`` over the same
  elements (0 when all weights are 0), where ``l`` is the per-(sample, channel) or per-element loss.

Heatmaps: :func:`volumetric_softmax_ce` (the paper), :func:`volumetric_sigmoid_ce` (the authors' code),
:func:`heatmap_mse` (2D hourglass), and :func:`hourglass_loss` for intermediate supervision over stacks
(summed, as in the authors' code). The softmax loss normalises each target channel over its volume, so it
takes the peak-1 Gaussians of :mod:`smplr_tf.data.targets` (form "gaussian"; the Gaussian of the distance to
the limb for the 4 limb channels) and trains on their normalised versions. The sigmoid loss takes the targets
as they are, and is paired with the authors' target values (form "code": the normal density, peak ~0.0635,
and the softmaxed limb maps); with every channel valid it is the code's loss exactly: per stack the mean of
the sigmoid cross-entropy over all B x H x W x D x C elements, the stacks summed.
Points and parameters: :func:`l2_loss` (AlexNet), :func:`l1_loss` (DAE, L_R, L_SMPL), :func:`beta_loss`
(L_beta with the 0.01 |beta| term), :func:`smpl_points_loss` (L_SMPL on joints + landmarks),
:func:`bone_length_l1` (the DAE's optional loss on B, eq. 3).
"""

from __future__ import annotations

import tensorflow as tf

from smplr_tf.body import skeleton

BETA_REG = 0.01


def _f32(x):
    return tf.cast(x, tf.float32)


def _weighted_mean(loss, weights=None):
    """loss (B, ...) -> scalar. weights: None, (B,) or (B, k) broadcast over the remaining axes of loss."""
    loss = _f32(loss)
    if weights is None:
        return tf.reduce_mean(loss)
    w = _f32(weights)
    while len(w.shape) < len(loss.shape):
        w = w[..., None]
    w = tf.broadcast_to(w, tf.shape(loss))
    return tf.math.divide_no_nan(tf.reduce_sum(w * loss), tf.reduce_sum(w))


def _flatten_volume(x):
    """(B, ..., C) -> (B, N, C): all spatial axes in one."""
    x = _f32(x)
    return tf.reshape(x, [tf.shape(x)[0], -1, tf.shape(x)[-1]])


def volumetric_softmax_ce_per_channel(y_true, logits):
    """(B, C) cross-entropy of each channel's softmax over ALL its voxels/pixels (paper Sec. 4.1).

    y_true: (B, H, W, D, C) or (B, H, W, C) non-negative targets (e.g. Gaussians); each channel is
    normalised to sum 1. logits: same shape. CE = -sum_v t_v log softmax(logits)_v
    = logsumexp(logits) - sum_v t_v logits_v. A channel whose target sums to 0 gives 0.
    """
    x = _flatten_volume(logits)
    t = _flatten_volume(y_true)
    s = tf.reduce_sum(t, axis=1)  # (B, C)
    t = tf.math.divide_no_nan(t, s[:, None, :])
    lse = tf.reduce_logsumexp(x, axis=1)  # (B, C)
    valid = tf.cast(s > 0, tf.float32)
    return valid * (lse - tf.reduce_sum(t * x, axis=1))


def volumetric_softmax_ce(y_true, logits, weights=None):
    """Scalar: mean over samples and channels of :func:`volumetric_softmax_ce_per_channel`.

    Channels with an all-zero target (nothing to supervise) are left out of the mean, as are weight-0
    entries when ``weights`` (B,) or (B, C) is given.
    """
    ce = volumetric_softmax_ce_per_channel(y_true, logits)
    has = tf.cast(tf.reduce_sum(_flatten_volume(y_true), axis=1) > 0, tf.float32)
    w = has if weights is None else has * _broadcast_bc(weights, has)
    return tf.math.divide_no_nan(tf.reduce_sum(w * ce), tf.reduce_sum(w))


def _broadcast_bc(weights, like):
    w = _f32(weights)
    if len(w.shape) == 1:
        w = w[:, None]
    return tf.broadcast_to(w, tf.shape(like))


def volumetric_sigmoid_ce(y_true, logits, weights=None):
    """Scalar: per-voxel sigmoid cross-entropy with the targets as labels (as given: the authors' code pairs it
    with density targets, see the module docstring), averaged over voxels, channels and samples (the authors'
    code). ``weights`` (B,) or (B, C): channels of weight 0 are left out of the mean."""
    x = _flatten_volume(logits)
    t = _flatten_volume(y_true)
    per = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x), axis=1)  # (B, C)
    return _weighted_mean(per, weights)


def heatmap_mse(y_true, y_pred, weights=None):
    """Scalar: mean squared error over pixels (voxels), channels and samples (2D hourglass). ``y_pred`` are
    the raw head outputs regressed onto the Gaussian targets. ``weights`` (B,) or (B, C)."""
    d = _flatten_volume(y_pred) - _flatten_volume(y_true)
    return _weighted_mean(tf.reduce_mean(tf.square(d), axis=1), weights)


HEATMAP_LOSSES = {"softmax": volumetric_softmax_ce, "sigmoid": volumetric_sigmoid_ce, "mse": heatmap_mse}


def hourglass_loss(y_true, heatmaps, kind: str = "softmax", weights=None, stack_reduction: str = "sum"):
    """Intermediate supervision: the heatmap loss of every stack against the same target.

    y_true: (B, H, W, D, C) or (B, H, W, C). heatmaps: list of per-stack logits (or one tensor).
    kind: "softmax" (paper, default), "sigmoid" (authors' code) or "mse" (2D). stack_reduction: "sum"
    (Newell et al.; default) or "mean" over stacks.
    """
    fn = HEATMAP_LOSSES[kind]
    if not isinstance(heatmaps, (list, tuple)):
        heatmaps = [heatmaps]
    losses = [fn(y_true, h, weights) for h in heatmaps]
    total = tf.add_n(losses)
    if stack_reduction == "mean":
        return total / float(len(losses))
    if stack_reduction != "sum":
        raise ValueError(f"stack_reduction must be 'sum' or 'mean', got {stack_reduction!r}")
    return total


def l1_loss(y_true, y_pred, weights=None):
    """Scalar: mean absolute error over all elements (DAE on points, L_R on rotation matrices, L_SMPL).
    ``weights`` (B,) or (B, P) broadcast over the trailing axes."""
    return _weighted_mean(tf.abs(_f32(y_pred) - _f32(y_true)), weights)


def l2_loss(y_true, y_pred, weights=None):
    """Scalar: mean squared error over all elements (AlexNet's direct 3D regression)."""
    return _weighted_mean(tf.square(_f32(y_pred) - _f32(y_true)), weights)


def beta_loss(y_true, y_pred, beta_reg: float = BETA_REG, num_betas: int = 10, weights=None,
              reg_outputs: str = "betas"):
    """L_beta: mean |y_pred - y_true| over the num_betas + 1 shape outputs (betas + gender code in {-1,+1})
    plus ``beta_reg`` * mean |regularised outputs|.

    reg_outputs: "betas" (the predicted betas only; the paper names no regulariser, and a beta penalty is what
    it would mean) or "all" (the authors' code: all num_betas + 1 outputs, the gender code included).
    y_true, y_pred: (B, num_betas + 1). ``weights`` (B,) or (B, num_betas + 1) for the L1 part (e.g. 0 on
    the gender entry of neutral-gender samples).
    """
    y_pred = _f32(y_pred)
    if reg_outputs not in ("betas", "all"):
        raise ValueError(f"reg_outputs must be 'betas' or 'all', got {reg_outputs!r}")
    reg = y_pred[:, :num_betas] if reg_outputs == "betas" else y_pred
    return l1_loss(y_true, y_pred, weights) + beta_reg * tf.reduce_mean(tf.abs(reg))


def rotation_loss(y_true, y_pred, weights=None):
    """L_R: mean absolute error over the (B, 24, 3, 3) rotation matrices."""
    return l1_loss(y_true, y_pred, weights)


def smpl_points_loss(y_true, y_pred, weights=None):
    """L_SMPL: mean absolute error over the root-relative joints + landmarks, (B, 41, 3) metres."""
    return l1_loss(y_true, y_pred, weights)


def bone_length_l1(y_true, y_pred, weights=None):
    """Mean |bone length(y_pred) - bone length(y_true)| over the 41 bones of the 42-node tree (eq. 3; the
    template cancels). y_*: (B, 41, 3) root-relative metres."""
    lt = tf.norm(skeleton.bone_vectors(_f32(y_true)), axis=-1)
    lp = tf.sqrt(tf.reduce_sum(tf.square(skeleton.bone_vectors(_f32(y_pred))), axis=-1) + 1e-16)
    return _weighted_mean(tf.abs(lp - lt), weights)
