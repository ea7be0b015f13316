"""Similarity Procrustes (scale, rotation, translation), reflections excluded; batched, numpy and TF.

Given two point sets ``X`` (source, e.g. a prediction) and ``Y`` (target, e.g. the ground truth) of the same
``N`` points, find ``s > 0``, a proper rotation ``R`` (det +1) and ``t`` minimising
``sum_i || s R x_i + t - y_i ||^2`` (Umeyama 1991). With ``M = sum_i (y_i - ȳ)(x_i - x̄)^T = U S V^T``,
``R = U D V^T`` where ``D = diag(1, 1, sign(det(U V^T)))`` excludes reflections, and
``s = trace(S D) / sum_i ||x_i - x̄||^2``, ``t = ȳ - s R x̄``.

The alignment may be fitted on a subset of the points (``fit_idx``) and applied to any other points of
the same frame (e.g. fitted on joints, applied to landmarks or a mesh). Used by MPJPE protocol 2 (prediction
onto ground truth) and by ALL_Proc (SMPLR output onto its own input JL, no ground truth).

:func:`kabsch` is the weighted rigid variant (no scale), the start of SMPL fitting (:mod:`smplr_tf.fitting`).
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def similarity_transform(X: np.ndarray, Y: np.ndarray):
    """Best similarity transform mapping ``X`` onto ``Y`` (numpy, batched).

    X, Y: (..., N, 3) same units (metres). Returns ``(s (...,), R (..., 3, 3), t (..., 3))`` with
    ``Y ≈ s * X @ R^T + t``; ``R`` is a proper rotation. A degenerate ``X`` (all points equal) gives ``s = 0``.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape or X.shape[-1] != 3:
        raise ValueError(f"similarity_transform: X {X.shape} and Y {Y.shape} must both be (..., N, 3)")
    mu_x = X.mean(axis=-2, keepdims=True)
    mu_y = Y.mean(axis=-2, keepdims=True)
    x0 = X - mu_x
    y0 = Y - mu_y
    var_x = np.sum(x0 ** 2, axis=(-2, -1))  # (...)
    m = np.swapaxes(y0, -1, -2) @ x0  # (..., 3, 3) = sum y0 x0^T
    u, sv, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    dmat = np.ones(sv.shape)
    dmat[..., -1] = d
    r = (u * dmat[..., None, :]) @ vt
    s = np.sum(sv * dmat, axis=-1) / np.maximum(var_x, _EPS)
    t = mu_y[..., 0, :] - s[..., None] * np.einsum("...ij,...j->...i", r, mu_x[..., 0, :])
    return s, r, t


def apply_transform(points: np.ndarray, s, r, t) -> np.ndarray:
    """``s * points @ R^T + t``. points: (..., M, 3); s (...,), r (..., 3, 3), t (..., 3). numpy."""
    points = np.asarray(points, dtype=np.float64)
    return s[..., None, None] * (points @ np.swapaxes(r, -1, -2)) + t[..., None, :]


def align(X: np.ndarray, Y: np.ndarray, fit_idx=None, apply_to=None) -> np.ndarray:
    """Align ``X`` onto ``Y`` with a similarity transform fitted on ``X[..., fit_idx, :]`` (all if None).

    X, Y: (..., N, 3). apply_to: (..., M, 3) points in X's frame to transform (default X itself).
    Returns the transformed points, float64 numpy.
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if fit_idx is not None:
        fit_idx = np.asarray(fit_idx)
        s, r, t = similarity_transform(X[..., fit_idx, :], Y[..., fit_idx, :])
    else:
        s, r, t = similarity_transform(X, Y)
    return apply_transform(X if apply_to is None else apply_to, s, r, t)


def kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray):
    """Weighted rigid alignment, batched: (B, Q, 3) source / target, (B, Q) weights >= 0 ->
    (R (B, 3, 3), t (B, 3)) minimising sum_q w_q |R s_q + t - x_q|^2 (proper rotations)."""
    w = weights / np.maximum(weights.sum(1, keepdims=True), 1e-12)
    ms = np.einsum("bq,bqc->bc", w, source)
    mt = np.einsum("bq,bqc->bc", w, target)
    cov = np.einsum("bq,bqi,bqj->bij", w, target - mt[:, None], source - ms[:, None])
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones((len(d), 3))
    fix[:, 2] = d
    R = u @ (fix[:, :, None] * vt)
    return R, mt - np.einsum("bij,bj->bi", R, ms)


# ------------------------------------------------------------------------------------------------- TF

def similarity_transform_tf(X, Y):
    """TF version of :func:`similarity_transform`: X, Y (B, N, 3) float tensors.

    Returns ``(s (B,), R (B, 3, 3), t (B, 3))`` in X's dtype (computed in float64 for stability).
    Differentiable except where singular values coincide (as any SVD).
    """
    import tensorflow as tf

    dtype = tf.convert_to_tensor(X).dtype
    X = tf.cast(X, tf.float64)
    Y = tf.cast(Y, tf.float64)
    mu_x = tf.reduce_mean(X, axis=-2, keepdims=True)
    mu_y = tf.reduce_mean(Y, axis=-2, keepdims=True)
    x0 = X - mu_x
    y0 = Y - mu_y
    var_x = tf.reduce_sum(tf.square(x0), axis=[-2, -1])
    m = tf.linalg.matmul(y0, x0, transpose_a=True)  # (B, 3, 3)
    sv, u, v = tf.linalg.svd(m)  # m = u diag(sv) v^T
    det = tf.linalg.det(tf.linalg.matmul(u, v, transpose_b=True))
    d = tf.where(det < 0, tf.constant(-1.0, tf.float64), tf.constant(1.0, tf.float64))
    ones = tf.ones_like(d)
    dvec = tf.stack([ones, ones, d], axis=-1)  # (B, 3)
    r = tf.linalg.matmul(u * dvec[..., None, :], v, transpose_b=True)
    s = tf.reduce_sum(sv * dvec, axis=-1) / tf.maximum(var_x, _EPS)
    t = mu_y[..., 0, :] - s[..., None] * tf.linalg.matvec(r, mu_x[..., 0, :])
    return tf.cast(s, dtype), tf.cast(r, dtype), tf.cast(t, dtype)


def apply_transform_tf(points, s, r, t):
    """TF: ``s * points @ R^T + t``; points (B, M, 3)."""
    import tensorflow as tf

    return s[:, None, None] * tf.linalg.matmul(points, r, transpose_b=True) + t[:, None, :]


def align_tf(X, Y, fit_idx=None, apply_to=None):
    """TF version of :func:`align`. X, Y: (B, N, 3); apply_to: (B, M, 3) or None."""
    import tensorflow as tf

    if fit_idx is not None:
        s, r, t = similarity_transform_tf(tf.gather(X, fit_idx, axis=-2), tf.gather(Y, fit_idx, axis=-2))
    else:
        s, r, t = similarity_transform_tf(X, Y)
    return apply_transform_tf(X if apply_to is None else apply_to, s, r, t)
