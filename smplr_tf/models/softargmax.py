"""Soft-argmax: heatmap logits -> expected point coordinates (differentiable, paper Sec. 4.5).

The softmax runs over the whole volume (all H*W*D voxels) of each channel; the expectation of the voxel
centres under that distribution is the point. Voxel centres come from :mod:`smplr_tf.volume`, so the result
is in root-relative metres, camera-aligned axes (x right, y down, z forward).

Numerics: the logits are cast to float32 (fp16-safe under mixed precision) and shifted by their per-channel
maximum before ``exp`` (the log-sum-exp trick), so no overflow for any finite logits. The expectation is
computed from the three marginals of the unnormalised probabilities (one reduction per axis) and divided by
the partition sum at the end, which is cheaper than materialising the normalised volume.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from smplr_tf import volume


def _marginal_expectation(e, axis_sum, centres, total):
    """sum over the other axes -> (B, n, P); dot with centres (n,) -> (B, P), divided by total (B, P)."""
    m = tf.reduce_sum(e, axis=axis_sum)  # (B, n, P)
    return tf.einsum("bnp,n->bp", m, centres) / total


def soft_argmax_3d(logits, cube_size: float = volume.CUBE_SIZE):
    """Volumetric soft-argmax.

    logits: (B, H, W, D, P) heatmap logits, layout (y rows, x cols, z bins, points) as in volume.py.
    Returns (B, P, 3) float32 root-relative metres in (x, y, z) order.
    """
    x = tf.cast(logits, tf.float32)
    m = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    e = tf.exp(x - m)  # (B, H, W, D, P), max element = 1
    total = tf.reduce_sum(e, axis=[1, 2, 3])  # (B, P), >= 1
    h, w, d = x.shape[1], x.shape[2], x.shape[3]
    cy = tf.constant(volume.voxel_centres(h, cube_size))
    cx = tf.constant(volume.voxel_centres(w, cube_size))
    cz = tf.constant(volume.voxel_centres(d, cube_size))
    px = _marginal_expectation(e, [1, 3], cx, total)
    py = _marginal_expectation(e, [2, 3], cy, total)
    pz = _marginal_expectation(e, [1, 2], cz, total)
    return tf.stack([px, py, pz], axis=-1)


def soft_argmax_2d(logits, cube_size: float = volume.CUBE_SIZE):
    """2D soft-argmax.

    logits: (B, H, W, P) heatmap logits (y rows, x cols).
    Returns (B, P, 2) float32 (x, y) in root-relative metres of the crop's cube plane, i.e. pixel centres
    mapped with ``volume.voxel_centres`` exactly as the x/y axes of the volume (so a 2D prediction with a
    zero depth appended is a depth-less 3D point, the DAE's 2D-lifting input). For heatmap pixel units use
    ``volume.metres_to_voxels``.
    """
    x = tf.cast(logits, tf.float32)
    m = tf.reduce_max(x, axis=[1, 2], keepdims=True)
    e = tf.exp(x - m)
    total = tf.reduce_sum(e, axis=[1, 2])
    h, w = x.shape[1], x.shape[2]
    cy = tf.constant(volume.voxel_centres(h, cube_size))
    cx = tf.constant(volume.voxel_centres(w, cube_size))
    px = _marginal_expectation(e, [1], cx, total)
    py = _marginal_expectation(e, [2], cy, total)
    return tf.stack([px, py], axis=-1)


def peak_2d(heatmaps, radius: int = 2, cube_size: float = volume.CUBE_SIZE):
    """Peak of regressed (MSE-trained) 2D heatmaps: argmax, refined by the mean of the pixel centres in the
    (2 radius + 1)^2 window around it weighted by the rectified heatmap.

    A softmax over a heatmap regressed onto [0, 1] Gaussians is nearly uniform (e^1 vs e^0 over 4096 pixels),
    so soft-argmax would return the map centre; this is the readout for the 2D hourglass trained with MSE.
    heatmaps: (B, H, W, P). Returns (B, P, 2) float32 (x, y) metres of the cube plane, like soft_argmax_2d.
    Differentiable with respect to the heatmap values inside the window.
    """
    x = tf.cast(heatmaps, tf.float32)
    h, w = x.shape[1], x.shape[2]
    flat = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [tf.shape(x)[0], tf.shape(x)[3], h * w])  # (B, P, HW)
    idx = tf.argmax(flat, axis=-1, output_type=tf.int32)  # (B, P)
    iy, ix = idx // w, idx % w
    rows = tf.range(h)[None, None, :, None]
    cols = tf.range(w)[None, None, None, :]
    win = tf.logical_and(tf.abs(rows - iy[..., None, None]) <= radius,
                         tf.abs(cols - ix[..., None, None]) <= radius)  # (B, P, H, W)
    wts = tf.nn.relu(tf.transpose(x, [0, 3, 1, 2])) * tf.cast(win, tf.float32)
    total = tf.reduce_sum(wts, axis=[2, 3])
    cy = tf.constant(volume.voxel_centres(h, cube_size))
    cx = tf.constant(volume.voxel_centres(w, cube_size))
    # marginal sums weighted by the centres (an einsum "bphw,w->bp" does not convert to TFLite)
    ex = tf.math.divide_no_nan(tf.reduce_sum(tf.reduce_sum(wts, axis=2) * cx, axis=-1), total)
    ey = tf.math.divide_no_nan(tf.reduce_sum(tf.reduce_sum(wts, axis=3) * cy, axis=-1), total)
    # an all-non-positive window (untrained net) falls back to the argmax pixel centre
    ok = total > 0
    ex = tf.where(ok, ex, tf.gather(cx, ix))
    ey = tf.where(ok, ey, tf.gather(cy, iy))
    return tf.stack([ex, ey], axis=-1)


@keras.saving.register_keras_serializable(package="smplr_tf")
class SoftArgmax(keras.layers.Layer):
    """Keras layer around :func:`soft_argmax_3d` (rank-5 input) / :func:`soft_argmax_2d` (rank-4 input).

    ``num_points``: only the first ``num_points`` channels are used (the limb channels that follow are
    dropped). ``mode``: "softmax" (soft-argmax) or, for 2D only, "peak" (:func:`peak_2d`, for MSE-regressed
    heatmaps). Output float32 metres: (B, P, 3) or (B, P, 2).
    """

    def __init__(self, num_points: int | None = None, cube_size: float = volume.CUBE_SIZE,
                 mode: str = "softmax", **kw):
        kw.setdefault("dtype", "float32")
        super().__init__(**kw)
        if mode not in ("softmax", "peak"):
            raise ValueError(f"SoftArgmax mode must be 'softmax' or 'peak', got {mode!r}")
        self.num_points = num_points
        self.cube_size = cube_size
        self.mode = mode

    def call(self, logits):
        if self.num_points is not None:
            logits = logits[..., : self.num_points]
        if len(logits.shape) == 5:
            return soft_argmax_3d(logits, self.cube_size)
        if self.mode == "peak":
            return peak_2d(logits, cube_size=self.cube_size)
        return soft_argmax_2d(logits, self.cube_size)

    def compute_output_shape(self, shape):
        p = self.num_points if self.num_points is not None else shape[-1]
        return (shape[0], p, 3 if len(shape) == 5 else 2)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(num_points=self.num_points, cube_size=self.cube_size, mode=self.mode)
        return cfg
