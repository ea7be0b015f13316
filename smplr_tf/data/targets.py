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
    # built directly in the (..., H, W, D, P) layout: no transpose of the big tensor
    gx = tf.linalg.matrix_transpose(gx)  # (..., W, P)
    gy = tf.linalg.matrix_transpose(gy)  # (..., H, P)
    gz = tf.linalg.matrix_transpose(gz)  # (..., D, P)
    gyx = gy[..., :, None, :] * gx[..., None, :, :]  # (..., H, W, P)
    return gyx[..., :, :, None, :] * gz[..., None, None, :, :]  # (..., H, W, D, P)


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
    gx = tf.linalg.matrix_transpose(gx)  # (..., W, P)
    gy = tf.linalg.matrix_transpose(gy)  # (..., H, P)
    return gy[..., :, None, :] * gx[..., None, :, :]  # (..., H, W, P)


def _limb_segments():
    """(L, S, 2) int: SMPL joint ids of the start / end of each segment of each limb chain."""
    segs = [[(c[i], c[i + 1]) for i in range(len(c) - 1)] for c in skeleton.LIMB_CHAINS]
    return np.array(segs, dtype=np.int32)


def _limb_maps(coords, grid_shape, sigma, dtype):
    """coords: (..., 24, k) joint positions in map units; grid_shape: the k sizes in (x, y[, z]) order.

    Returns (..., H, W[, D], L): Gaussian of the distance to the nearest segment of each limb chain.
    Separable arithmetic: for a segment a -> b and a grid point g, ``dot = (g - a) . (b - a)`` and
    ``|g - a|^2`` are sums of per-axis terms, so nothing of size (grid x segments x k) is built;
    ``d^2 = |g - a|^2 - 2 t dot + t^2 |b - a|^2`` with ``t = clip(dot / |b - a|^2, 0, 1)``.
    """
    segs = _limb_segments()
    k = len(grid_shape)
    a = tf.gather(coords, segs[..., 0], axis=-2)  # (..., L, S, k)
    b = tf.gather(coords, segs[..., 1], axis=-2)
    ab = b - a
    ab2 = tf.maximum(tf.reduce_sum(ab * ab, -1), 1e-12)  # (..., L, S)
    # map axes in layout order: (y, x[, z]) -> component index (1, 0[, 2])
    comp_of_axis = [1, 0] + list(range(2, k))
    dot, sq = 0.0, 0.0
    for axis, c in enumerate(comp_of_axis):
        n = grid_shape[c]
        g = tf.range(n, dtype=tf.float32)
        ga = g - a[..., c][..., None]  # (..., L, S, n)
        # move n in front of (L, S) at its layout position: (..., [1,] n, [1,] L, S)
        ga = tf.experimental.numpy.moveaxis(ga, -1, -3)  # (..., n, L, S)
        shape_pad = [1] * k
        shape_pad[axis] = n
        lead = tf.shape(ga)[:-3]
        ga = tf.reshape(ga, tf.concat([lead, shape_pad, tf.shape(ga)[-2:]], 0))  # (..., 1.., n, ..1, L, S)
        abc = ab[..., c]
        for _ in range(k):
            abc = abc[..., None, :, :]
        dot = dot + ga * abc
        sq = sq + ga * ga
    ab2e = ab2
    for _ in range(k):
        ab2e = ab2e[..., None, :, :]
    t = tf.clip_by_value(dot / ab2e, 0.0, 1.0)
    d2 = tf.maximum(sq - 2.0 * t * dot + t * t * ab2e, 0.0)
    d2 = tf.reduce_min(d2, axis=-1)  # (..., H, W[, D], L)
    return tf.cast(tf.exp(-0.5 * d2 / (sigma * sigma)), dtype)


LIMB_WINDOW_SIGMAS = 5.0  # single examples: limb maps computed in a window of +-5 sigma around each limb


def _limb_maps_windowed(coords, grid_shape, sigma, dtype, margin_sigmas=LIMB_WINDOW_SIGMAS):
    """One example: like :func:`_limb_maps` but computed only in each limb's bounding box grown by
    ``margin_sigmas`` sigma and zero elsewhere (the values dropped are below exp(-margin^2 / 2) = 3.7e-6 at 5).

    coords: (24, k) map units. Returns (H, W[, D], L).
    """
    k = len(grid_shape)
    comp_of_axis = [1, 0] + list(range(2, k))
    margin = margin_sigmas * sigma
    maps = []
    for chain in skeleton.LIMB_CHAINS:
        pts = tf.gather(coords, list(chain))  # (J, k)
        segs = np.array([[i, i + 1] for i in range(len(chain) - 1)], np.int32)
        a = tf.gather(pts, segs[:, 0])  # (S, k)
        ab = tf.gather(pts, segs[:, 1]) - a
        ab2 = tf.maximum(tf.reduce_sum(ab * ab, -1), 1e-12)  # (S,)
        lo_all = tf.cast(tf.math.ceil(tf.reduce_min(pts, 0) - margin), tf.int32)
        hi_all = tf.cast(tf.math.floor(tf.reduce_max(pts, 0) + margin), tf.int32)
        dot, sq, pads = 0.0, 0.0, []
        for axis, c in enumerate(comp_of_axis):
            n = grid_shape[c]
            lo = tf.clip_by_value(lo_all[c], 0, n)
            size = tf.maximum(tf.minimum(hi_all[c], n - 1) - lo + 1, 0)
            pads.append(tf.stack([lo, n - lo - size]))
            ga = tf.cast(tf.range(lo, lo + size), tf.float32)[:, None] - a[None, :, c]  # (n', S)
            shape_pad = [1] * k
            shape_pad[axis] = -1
            ga = tf.reshape(ga, shape_pad + [len(chain) - 1])
            dot = dot + ga * ab[:, c]
            sq = sq + ga * ga
        t = tf.clip_by_value(dot / ab2, 0.0, 1.0)
        d2 = tf.reduce_min(tf.maximum(sq - 2.0 * t * dot + t * t * ab2, 0.0), axis=-1)
        m = tf.exp(-0.5 * d2 / (sigma * sigma))
        maps.append(tf.pad(m, tf.stack(pads)))
    return tf.cast(tf.stack(maps, axis=-1), dtype)


def limb_heatmaps(joints24, shape=DEFAULT_SHAPE, sigma: float = 1.0, dtype=tf.float32):
    """The 4 limb volumes (``skeleton.LIMB_CHAINS``): Gaussian of each voxel's distance to the chain.

    joints24: (..., 24, 3) metres, root-relative (pelvis at the origin), camera axes. shape: (H, W, D).
    The distance to the nearest segment of the chain is measured in voxel units (so sigma = 1 voxel means
    the same as for the point targets; the cube's voxels are 3.9 cm in x, y and 15.6 cm in z).
    Returns (..., H, W, D, 4), 1 on the segments. A single example (rank 2 input) is computed in a window
    around each limb (5 sigma; ~5x cheaper on CPU), a batch densely.
    """
    h, w, d = shape
    v = points_to_voxels(joints24, shape)
    if v.shape.rank == 2:
        return _limb_maps_windowed(v, (w, h, d), sigma, dtype)
    return _limb_maps(v, (w, h, d), sigma, dtype)


def limb_heatmaps_2d(joints2d, input_size: int = 256, shape=(64, 64), sigma: float = 1.0, dtype=tf.float32):
    """The 4 limb maps in 2D. joints2d: (..., 24, 2) crop pixels. Returns (..., H, W, 4)."""
    h, w = shape
    hx = pixels_to_heatmap(joints2d[..., 0:1], input_size, w)
    hy = pixels_to_heatmap(joints2d[..., 1:2], input_size, h)
    c = tf.concat([hx, hy], -1)
    if c.shape.rank == 2:
        return _limb_maps_windowed(c, (w, h), sigma, dtype)
    return _limb_maps(c, (w, h), sigma, dtype)
