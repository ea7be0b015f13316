"""Training noise of the SMPLR stages (DAE, Psi, Omega, their fine-tune): uniform +-s per coordinate.

The authors' code draws, for each coordinate of each of the 41 points, ``U(-s, +s)`` with ``s`` from a fixed
per-point, per-coordinate table (5 to 91 mm, larger at the extremities). Its three values per point are in
the code's label frame (depth, horizontal, vertical): the depth bound is about twice the others, the depth
being what a monocular estimate gets most wrong. In our camera frame (x right, y down, z forward) the bounds
of a point are therefore ``(s[1], s[2], s[0])``: :data:`POINT_NOISE_BOUNDS` (41, 3) metres.

The code adds this noise to the input of every SMPLR stage (so Psi and Omega train on noisy ground truth,
never on hourglass or DAE outputs), and also at validation.

The alternative ``table="tree_depth"`` (flag --noise_table; what runs saved before the flag existed used):
isotropic, growing linearly with the point's depth in the 42-node tree, ``s_i = 5 mm + (depth_i - 1) / (max_depth - 1) * 86 mm``.

``python -m smplr_tf.data.noise`` prints both tables.
"""

from __future__ import annotations

import numpy as np

from smplr_tf.body import skeleton

NOISE_MODES = ("uniform", "depth0", "none")
NOISE_TABLES = ("authors", "tree_depth")

# The authors' bounds, mm, per point in skeleton.POINT_NAMES order, per coordinate in THEIR frame
# (depth, horizontal, vertical).
AUTHORS_NOISE_MM = np.array([
    [8.3, 6.9, 5.2], [8.0, 7.1, 5.0], [8.5, 6.9, 5.3], [34.5, 22.2, 19.6], [34.3, 23.1, 19.1],
    [14.9, 8.9, 9.8], [53.5, 23.5, 24.2], [52.1, 22.3, 25.5], [16.7, 9.0, 10.8], [56.7, 24.3, 25.3],
    [56.1, 22.6, 24.7], [26.5, 10.6, 14.4], [21.7, 10.4, 12.2], [22.2, 10.3, 12.2], [30.5, 11.9, 15.8],
    [26.2, 16.4, 17.4], [27.0, 15.9, 16.6], [44.1, 25.8, 28.1], [45.8, 25.6, 27.2], [64.8, 30.7, 35.8],
    [69.7, 29.5, 33.4], [75.7, 33.6, 40.6], [81.7, 32.5, 37.5],
    # the 18 landmarks
    [20.6, 14.6, 15.0], [21.6, 14.8, 14.8], [11.3, 11.4, 10.5], [12.9, 13.2, 8.7], [13.2, 12.9, 8.1],
    [17.7, 15.9, 14.4], [18.6, 15.3, 14.1], [16.1, 12.3, 10.4], [15.3, 11.6, 10.1], [59.6, 28.3, 29.5],
    [60.4, 26.3, 28.7], [85.1, 41.0, 48.6], [30.4, 17.2, 19.1], [31.1, 19.8, 21.8], [33.9, 17.8, 19.7],
    [33.7, 20.4, 22.3], [91.2, 41.6, 45.9], [39.2, 21.6, 29.1],
], dtype=np.float64)

# Our camera axes (x, y, z) as columns of the authors' table: x = horizontal, y = vertical, z = depth.
AUTHORS_TO_CAMERA = (1, 2, 0)

# (41, 3) metres, camera frame: the bound of each coordinate of each point.
POINT_NOISE_BOUNDS = (AUTHORS_NOISE_MM[:, AUTHORS_TO_CAMERA] / 1000.0).astype(np.float32)

TREE_SIGMA_MIN = 0.005  # metres
TREE_SIGMA_MAX = 0.091  # metres


def tree_depths() -> np.ndarray:
    """(42,) int: depth of each node of the 42-node tree (root = 0)."""
    par = skeleton.TREE_PARENTS
    depth = np.zeros(len(par), np.int32)
    for i in range(len(par)):
        k, n = i, 0
        while par[k] >= 0:
            k, n = par[k], n + 1
        depth[i] = n
    return depth


def _tree_sigma_table() -> np.ndarray:
    d = tree_depths()[1:].astype(np.float64)  # the 41 points
    s = TREE_SIGMA_MIN + (d - 1.0) / (d.max() - 1.0) * (TREE_SIGMA_MAX - TREE_SIGMA_MIN)
    return s.astype(np.float32)


# (41,) metres, per point, the same on every axis: the "tree_depth" table.
TREE_DEPTH_SIGMA = _tree_sigma_table()


def point_bounds(num_points: int = skeleton.NUM_POINTS, table: str = "authors") -> np.ndarray:
    """(P, 3) float32 metres, camera frame: the noise bound of each coordinate of the first ``num_points``
    points (23 = joints only). table: "authors" (default) or "tree_depth" (isotropic)."""
    if table == "authors":
        return POINT_NOISE_BOUNDS[:num_points]
    if table == "tree_depth":
        return np.repeat(TREE_DEPTH_SIGMA[:num_points, None], 3, axis=1)
    raise ValueError(f"noise table '{table}': expected one of {NOISE_TABLES}")


def apply_noise(points, mode: str = "uniform", seed=None, sigma=None, scale: float = 1.0, table: str = "authors"):
    """Noisy copy of root-relative points: ``points + U(-1, 1) * bounds``, per coordinate.

    points: (..., P, 3) float32 metres, camera frame (TF tensor). mode: "uniform", "depth0" (the same noise on
    x, y, then z set to 0: the 2D lifting input), "none". seed: stateless seed, shape (2,) int; None uses the
    global generator. sigma: the bounds, (P, 3) or (P,) metres; default :func:`point_bounds` (P, table);
    scale multiplies them. Returns (..., P, 3) float32.
    """
    import tensorflow as tf

    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode '{mode}': expected one of {NOISE_MODES}")
    points = tf.convert_to_tensor(points, tf.float32)
    if mode == "none":
        return points
    if sigma is None:
        sigma = point_bounds(points.shape[-2], table)
    s = np.asarray(sigma, np.float32) * scale
    if s.ndim == 1:
        s = s[:, None]
    s = tf.constant(s)  # (P, 3) or (P, 1)
    if seed is None:
        u = tf.random.uniform(tf.shape(points), -1.0, 1.0)
    else:
        u = tf.random.stateless_uniform(tf.shape(points), seed=seed, minval=-1.0, maxval=1.0)
    noisy = points + u * s
    if mode == "depth0":
        noisy = tf.concat([noisy[..., :2], tf.zeros_like(noisy[..., 2:])], axis=-1)
    return noisy


if __name__ == "__main__":
    depths = tree_depths()[1:]
    print(f"{'point':24s}  authors x y z (mm, camera frame)   tree_depth (depth, mm)")
    for n, b, dd, sg in zip(skeleton.POINT_NAMES, POINT_NOISE_BOUNDS, depths, TREE_DEPTH_SIGMA):
        print(f"{n:24s}  {1000 * b[0]:5.1f} {1000 * b[1]:5.1f} {1000 * b[2]:5.1f}"
              f"                 {dd}  {1000 * sg:5.1f}")
