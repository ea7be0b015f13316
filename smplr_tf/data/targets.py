"""Heatmap targets: volumetric Gaussians per point, limb maps, 2D Gaussians. Pure TF, batch dims optional.

Frame: :mod:`smplr_tf.volume` (a 2.5 m cube centred on the root, camera axes). A volume is laid out
``(H, W, D) = (y rows, x cols, z bins)``, channels last. Every function accepts any number of leading batch
dimensions, so the same code runs inside ``tf.data`` (one example) and in a loss (a batch, on device).

Values are *unnormalised* Gaussians ``exp(-d^2 / (2 sigma^2))`` with ``d`` in voxel units: the peak is 1 when
the point sits on a voxel centre. A softmax cross-entropy loss normalises them per channel (sum over the
volume); a sigmoid cross-entropy / MSE loss uses them as they are. A point outside the cube gives an all but
zero volume: :func:`inside_cube` tells which points have a usable target.

Pixels of the 256 crop follow :mod:`smplr_tf.data.crop` (OpenCV: a pixel's centre has integer coordinates,
the crop centre is ``(S - 1) / 2``); heatmap pixels follow the same convention at their own resolution, so
``h = (u + 0.5) * n / S - 0.5``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from smplr_tf import volume
from smplr_tf.body import skeleton

DEFAULT_SHAPE = (64, 64, 16)  # (H, W, D)


def _axis_gaussian(coord, n: int, sigma: float, dtype):
    """coord: (..., P) continuous voxel coordinate along one axis -> (..., P, n) 1D Gaussians."""
    grid = tf.range(n, dtype=tf.float32)
    d = grid - tf.cast(coord, tf.float32)[..., None]
    return tf.cast(tf.exp(-0.5 * tf.square(d / sigma)), dtype)


def points_to_voxels(points, shape=DEFAULT_SHAPE):
    """Root-relative points -> continuous voxel coordinates (x, y, z) in a volume of ``shape`` (H, W, D).

    points: (..., P, 3) metres. Returns (..., P, 3) float32 voxel units (centre of voxel i is i).
    """
    h, w, d = shape
    return volume.metres_to_voxels(tf.cast(points, tf.float32), (w, h, d))


def inside_cube(points, shape=DEFAULT_SHAPE):
    """(..., P, 3) metres -> (..., P) bool: the point lies inside the cube (its Gaussian peak is in the volume)."""
    h, w, d = shape
    v = points_to_voxels(points, shape)
    hi = tf.constant([w, h, d], tf.float32) - 0.5
    return tf.reduce_all((v >= -0.5) & (v <= hi), axis=-1)


def volumetric_heatmaps(points, shape=DEFAULT_SHAPE, sigma: float = 1.0, dtype=tf.float32):
    """3D Gaussian per point, separable (outer product of three 1D Gaussians).

    points: (..., P, 3) metres, root-relative, camera axes. shape: (H, W, D) voxels. sigma: voxels.
    Returns (..., H, W, D, P) of ``dtype``, values in (0, 1].
    """
    h, w, d = shape
    v = points_to_voxels(points, shape)
    gx = _axis_gaussian(v[..., 0], w, sigma, dtype)  # (..., P, W)
    gy = _axis_gaussian(v[..., 1], h, sigma, dtype)  # (..., P, H)
    gz = _axis_gaussian(v[..., 2], d, sigma, dtype)  # (..., P, D)
    gyx = gy[..., :, :, None] * gx[..., :, None, :]  # (..., P, H, W)
    vol = gyx[..., None] * gz[..., :, None, None, :]  # (..., P, H, W, D)
    rank = len(vol.shape)
    perm = list(range(rank - 4)) + [rank - 3, rank - 2, rank - 1, rank - 4]
    return tf.transpose(vol, perm)


def pixels_to_heatmap(points2d, input_size: int, size: int):
    """Crop pixels (OpenCV centre convention) -> heatmap pixels of a ``size`` map. (..., 2) -> (..., 2)."""
    return (tf.cast(points2d, tf.float32) + 0.5) * (size / input_size) - 0.5


def heatmaps_2d(points2d, input_size: int = 256, shape=(64, 64), sigma: float = 1.0, dtype=tf.float32):
    """2D Gaussian per point on the crop.

    points2d: (..., P, 2) crop pixels (x, y) of an ``input_size`` crop. shape: (H, W) heatmap pixels.
    sigma: heatmap pixels. Returns (..., H, W, P), values in (0, 1].
    """
    h, w = shape
    hx = pixels_to_heatmap(points2d[..., 0:1], input_size, w)[..., 0]
    hy = pixels_to_heatmap(points2d[..., 1:2], input_size, h)[..., 0]
    gx = _axis_gaussian(hx, w, sigma, dtype)  # (..., P, W)
    gy = _axis_gaussian(hy, h, sigma, dtype)  # (..., P, H)
    m = gy[..., :, :, None] * gx[..., :, None, :]  # (..., P, H, W)
    rank = len(m.shape)
    perm = list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3]
    return tf.transpose(m, perm)


def _limb_segments():
    """(L, S, 2) int: SMPL joint ids of the start / end of each segment of each limb chain."""
    segs = [[(c[i], c[i + 1]) for i in range(len(c) - 1)] for c in skeleton.LIMB_CHAINS]
    return np.array(segs, dtype=np.int32)


def _segment_distance_sq(grid, a, b):
    """Squared distance of grid points to segments.

    grid: (N, k); a, b: (..., L, S, k) segment ends. Returns (..., N, L, S).
    """
    ab = b - a  # (..., L, S, k)
    denom = tf.maximum(tf.reduce_sum(ab * ab, -1), 1e-12)  # (..., L, S)
    g = grid[:, None, None, :]  # (N, 1, 1, k)
    ag = g - a[..., None, :, :, :]  # (..., N, L, S, k)
    t = tf.clip_by_value(tf.reduce_sum(ag * ab[..., None, :, :, :], -1) / denom[..., None, :, :], 0.0, 1.0)
    diff = ag - t[..., None] * ab[..., None, :, :, :]
    return tf.reduce_sum(diff * diff, -1)


def _limb_maps(coords, grid_shape, sigma, dtype):
    """coords: (..., 24, k) joint positions in map units; grid_shape: k sizes in (x, y[, z]) order.

    Returns (..., N, L) with N = prod(grid_shape) in row-major (y, x[, z]) order.
    """
    segs = _limb_segments()
    a = tf.gather(coords, segs[..., 0], axis=-2)  # (..., L, S, k)
    b = tf.gather(coords, segs[..., 1], axis=-2)
    axes = [tf.range(n, dtype=tf.float32) for n in grid_shape]
    # Row-major over (y, x[, z]): meshgrid with 'ij' on (y, x, z) then reorder to (x, y, z) components.
    order = [1, 0] + list(range(2, len(grid_shape)))
    mesh = tf.meshgrid(*[axes[i] for i in order], indexing="ij")
    comps = [None] * len(grid_shape)
    for pos, i in enumerate(order):
        comps[i] = tf.reshape(mesh[pos], [-1])
    grid = tf.stack(comps, axis=-1)  # (N, k) in (x, y[, z]) order
    d2 = tf.reduce_min(_segment_distance_sq(grid, a, b), axis=-1)  # (..., N, L)
    return tf.cast(tf.exp(-0.5 * d2 / (sigma * sigma)), dtype)


def limb_heatmaps(joints24, shape=DEFAULT_SHAPE, sigma: float = 1.0, dtype=tf.float32):
    """The 4 limb volumes (``skeleton.LIMB_CHAINS``): Gaussian of each voxel's distance to the chain.

    joints24: (..., 24, 3) metres, root-relative (pelvis at the origin), camera axes. shape: (H, W, D).
    The distance to the nearest segment of the chain is measured in voxel units (so sigma = 1 voxel means
    the same as for the point targets; the cube's voxels are 3.9 cm in x, y and 15.6 cm in z).
    Returns (..., H, W, D, 4), 1 on the segments.
    """
    h, w, d = shape
    v = points_to_voxels(joints24, shape)
    flat = _limb_maps(v, (w, h, d), sigma, dtype)  # (..., N, 4)
    lead = tf.shape(flat)[:-2]
    return tf.reshape(flat, tf.concat([lead, [h, w, d, skeleton.NUM_LIMBS]], 0))


def limb_heatmaps_2d(joints2d, input_size: int = 256, shape=(64, 64), sigma: float = 1.0, dtype=tf.float32):
    """The 4 limb maps in 2D. joints2d: (..., 24, 2) crop pixels. Returns (..., H, W, 4)."""
    h, w = shape
    hx = pixels_to_heatmap(joints2d[..., 0:1], input_size, w)
    hy = pixels_to_heatmap(joints2d[..., 1:2], input_size, h)
    flat = _limb_maps(tf.concat([hx, hy], -1), (w, h), sigma, dtype)
    lead = tf.shape(flat)[:-2]
    return tf.reshape(flat, tf.concat([lead, [h, w, skeleton.NUM_LIMBS]], 0))
