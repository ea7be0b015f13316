"""DAE training noise: uniform +-sigma_i per coordinate of each of the 41 points (DESIGN.md).

The authors bound the noise of each point between 5 and 91 mm, larger at the extremities; their per-point
table is not published. Ours grows linearly with the point's depth in the 42-node tree
(``skeleton.TREE_PARENTS``, so it follows ``skeleton.LANDMARK_PARENTS``): depth 1 (e.g. the hips) -> 5 mm, the
deepest nodes (the hands, or the hand-surface landmarks when their parents are the hands) -> 91 mm::

    sigma_i = 5 mm + (depth_i - 1) / (max_depth - 1) * 86 mm

The resulting table is printed by ``python -m smplr_tf.data.noise``.
"""

from __future__ import annotations

import numpy as np

from smplr_tf.body import skeleton

SIGMA_MIN = 0.005  # metres
SIGMA_MAX = 0.091  # metres
NOISE_MODES = ("uniform", "depth0", "none")


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


def _sigma_table() -> np.ndarray:
    d = tree_depths()[1:].astype(np.float64)  # the 41 points
    s = SIGMA_MIN + (d - 1.0) / (d.max() - 1.0) * (SIGMA_MAX - SIGMA_MIN)
    return s.astype(np.float32)


# (41,) metres, per point (skeleton.POINT_NAMES order).
POINT_NOISE_SIGMA = _sigma_table()


def point_sigma(num_points: int = skeleton.NUM_POINTS) -> np.ndarray:
    """(P,) metres: the sigmas of the first ``num_points`` points (23 = joints only)."""
    return POINT_NOISE_SIGMA[:num_points]


def apply_noise(points, mode: str = "uniform", seed=None, sigma=None, scale: float = 1.0):
    """Noisy copy of root-relative points for DAE training.

    points: (..., P, 3) float32 metres (TF tensor). mode: "uniform" (+-sigma_i per coordinate),
    "depth0" (the same noise on x, y, then z set to 0: the 2D lifting input), "none".
    seed: stateless seed, shape (2,) int; None uses the global generator. sigma: (P,) metres, default
    POINT_NOISE_SIGMA[:P]; scale multiplies it. Returns (..., P, 3) float32.
    """
    import tensorflow as tf

    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode '{mode}': expected one of {NOISE_MODES}")
    points = tf.convert_to_tensor(points, tf.float32)
    if mode == "none":
        return points
    if sigma is None:
        sigma = point_sigma(points.shape[-2])
    s = tf.constant(np.asarray(sigma, np.float32) * scale)[:, None]  # (P, 1)
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
    for n, dd, sg in zip(skeleton.POINT_NAMES, depths, POINT_NOISE_SIGMA):
        print(f"{n:24s} depth {dd}  sigma {1000 * sg:5.1f} mm")
