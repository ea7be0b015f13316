"""Heatmap targets: volumetric Gaussians per point, limb maps, 2D Gaussians. Pure TF, batch dims optional.

Frame: :mod:`smplr_tf.volume` (a 2.5 m cube centred on the root, camera axes). A volume is laid out
``(H, W, D) = (y rows, x cols, z bins)``, channels last. Every function accepts any number of leading batch
dimensions, so the same code runs inside ``tf.data`` (one example) and in a loss (a batch, on device).

Two target forms (``form``), one per heatmap loss (:mod:`smplr_tf.losses`):

* ``"gaussian"`` (with the paper's softmax cross-entropy): *unnormalised* Gaussians ``exp(-d^2 / (2 sigma^2))``,
  ``d`` in voxel units, peak 1 when the point sits on a voxel centre; limbs: the same Gaussian of the distance
  to the limb's nearest bone. The softmax loss normalises every channel to sum 1 over the volume, so the
  point target it trains on is the discrete Gaussian density.
* ``"code"`` (with the authors' sigmoid cross-entropy, which takes the targets as they are): the values of the
  authors' code. Points: the 3D normal *density* ``exp(-d^2 / (2 sigma^2)) / ((2 pi)^1.5 sigma^3)`` (peak
  ~0.0635 at sigma = 1 voxel; the volume sums to ~1). Limbs: per bone ``z = 1 / (1 + d^2)`` (d in voxels to
  the segment), softmaxed over the whole volume, then the max over the limb's bones: almost flat maps,
  ~1.5e-5 to 4e-5 on a 64x64x16 volume.

The sigma of 1 voxel is 3.9 cm in x and y but 15.6 cm in depth (16 bins over 2.5 m), as in the authors' code.
A point outside the cube gives an all but zero volume: :func:`inside_cube` tells which points have a usable
target.

Pixels of the 256 crop follow :mod:`smplr_tf.data.crop` (OpenCV: a pixel's centre has integer coordinates,
the crop centre is ``(S - 1) / 2``); heatmap pixels follow the same convention at their own resolution, so
``h = (u + 0.5) * n / S - 0.5``. (The authors' code puts voxel i's sample at ``i / n`` of the cube rather
than at its centre: a half-voxel shift of the whole grid, immaterial as targets and read-out share it.)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from smplr_tf import volume
from smplr_tf.body import skeleton

DEFAULT_SHAPE = (64, 64, 16)  # (H, W, D)
TARGET_FORMS = ("gaussian", "code")


def target_form_for_loss(heatmap_loss: str, heatmap_targets: str = "auto") -> str:
    """The target form of a run: --heatmap_targets, where "auto" means "code" for the sigmoid loss (the
    authors' pairing) and "gaussian" for the softmax (paper) and MSE losses."""
    if heatmap_targets != "auto":
        if heatmap_targets not in TARGET_FORMS:
            raise ValueError(f"heatmap targets '{heatmap_targets}': expected auto or one of {TARGET_FORMS}")
        return heatmap_targets
    return "code" if heatmap_loss == "sigmoid" else "gaussian"


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


def volumetric_heatmaps(points, shape=DEFAULT_SHAPE, sigma: float = 1.0, dtype=tf.float32, form: str = "gaussian"):
    """3D Gaussian per point, separable (outer product of three 1D Gaussians).

    points: (..., P, 3) metres, root-relative, camera axes. shape: (H, W, D) voxels. sigma: voxels.
    form: "gaussian" (values in (0, 1]) or "code" (the normal density, times (2 pi)^-1.5 sigma^-3: peak
    <= 0.0635 at sigma 1). Returns (..., H, W, D, P) of ``dtype``.
    """
    if form not in TARGET_FORMS:
        raise ValueError(f"target form '{form}': expected one of {TARGET_FORMS}")
    h, w, d = shape
    v = points_to_voxels(points, shape)
    gx = _axis_gaussian(v[..., 0], w, sigma, dtype)  # (..., P, W)
    if form == "code":
        gx = gx * tf.cast((2.0 * np.pi) ** -1.5 / sigma ** 3, dtype)
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
    """(L, S, 2) int: SMPL joint ids of the start / end of each segment of each limb chain. Chains with fewer
    segments repeat their last one (a repeated segment changes neither a min nor a max over segments)."""
    segs = [[(c[i], c[i + 1]) for i in range(len(c) - 1)] for c in skeleton.LIMB_CHAINS]
    n = max(len(s) for s in segs)
    return np.array([s + [s[-1]] * (n - len(s)) for s in segs], dtype=np.int32)


def _segment_d2(coords, grid_shape):
    """coords: (..., 24, k) joint positions in map units; grid_shape: the k sizes in (x, y[, z]) order.

    Returns (..., H, W[, D], L, S): squared distance of every grid point to every segment of every limb.
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
    return tf.maximum(sq - 2.0 * t * dot + t * t * ab2e, 0.0)


def _limb_maps(coords, grid_shape, sigma, dtype):
    """(..., H, W[, D], L): Gaussian of the distance to the nearest segment of each limb chain."""
    d2 = tf.reduce_min(_segment_d2(coords, grid_shape), axis=-1)  # (..., H, W[, D], L)
    return tf.cast(tf.exp(-0.5 * d2 / (sigma * sigma)), dtype)


def _limb_maps_code(coords, grid_shape, dtype):
    """(..., H, W[, D], L): the authors' limb targets: per bone z = 1 / (1 + d^2), softmax over the whole
    grid, max over the limb's bones (computed densely)."""
    z = 1.0 / (1.0 + _segment_d2(coords, grid_shape))  # (..., H, W[, D], L, S)
    k = len(grid_shape)
    lead = tf.shape(z)[: z.shape.rank - k - 2]
    ls = tf.shape(z)[-2:]
    flat = tf.reshape(z, tf.concat([lead, [-1], ls], 0))  # (..., N, L, S)
    soft = tf.reshape(tf.nn.softmax(flat, axis=-3), tf.shape(z))
    return tf.cast(tf.reduce_max(soft, axis=-1), dtype)


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


def limb_heatmaps(joints24, shape=DEFAULT_SHAPE, sigma: float = 1.0, dtype=tf.float32, form: str = "gaussian"):
    """The 4 limb volumes (``skeleton.LIMB_CHAINS``).

    joints24: (..., 24, 3) metres, root-relative (pelvis at the origin), camera axes. shape: (H, W, D).
    Distances to the chain's segments (bones) are measured in voxel units (the cube's voxels are 3.9 cm in
    x, y and 15.6 cm in z). form "gaussian": the Gaussian (``sigma`` voxels) of the distance to the nearest
    bone, 1 on the bones; a single example (rank 2 input) is computed in a window around each limb (5 sigma;
    ~5x cheaper on CPU), a batch densely. form "code": the authors' maps (module docstring; sigma unused),
    densely. Returns (..., H, W, D, 4).
    """
    if form not in TARGET_FORMS:
        raise ValueError(f"target form '{form}': expected one of {TARGET_FORMS}")
    h, w, d = shape
    v = points_to_voxels(joints24, shape)
    if form == "code":
        return _limb_maps_code(v, (w, h, d), dtype)
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
