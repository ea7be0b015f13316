"""The one definition of the volumetric heatmap frame (shared by targets, soft-argmax and evaluation).

A cube of side ``CUBE_SIZE`` metres, centred on the root (pelvis), axes aligned with the camera
(x right, y down, z forward). The heatmap tensor of one point is laid out (H, W, D) = (y, x, z):
rows follow y, columns follow x, depth bins follow z. Voxel ``i`` along an axis of ``n`` voxels has its
centre at ``((i + 0.5) / n - 0.5) * CUBE_SIZE`` metres, so that the continuous voxel coordinate of a
point ``p`` (metres, root-relative) is ``(p / CUBE_SIZE + 0.5) * n - 0.5``: the index (p / 2.5 + 0.5) * (64, 64, 16) of the authors' code measured from
the voxel's lower face, i.e. a half-voxel shift from sampling at i / n (shared by targets and read-out).
"""

from __future__ import annotations

import numpy as np

CUBE_SIZE = 2.5  # metres


def metres_to_voxels(points, shape_xyz, cube_size: float = CUBE_SIZE):
    """Root-relative points -> continuous voxel coordinates (centre of voxel i is i).

    points: (..., 3) metres (x, y, z). shape_xyz: (nx, ny, nz), e.g. (64, 64, 16).
    Returns (..., 3) float, in (x, y, z) order. Works on numpy arrays and TF tensors.
    """
    n = np.asarray(shape_xyz, dtype=np.float32)
    return (points / cube_size + 0.5) * n - 0.5


def voxels_to_metres(coords, shape_xyz, cube_size: float = CUBE_SIZE):
    """Inverse of :func:`metres_to_voxels`. coords: (..., 3) voxel units (x, y, z) -> metres."""
    n = np.asarray(shape_xyz, dtype=np.float32)
    return ((coords + 0.5) / n - 0.5) * cube_size


def voxel_centres(n: int, cube_size: float = CUBE_SIZE) -> np.ndarray:
    """(n,) float32 metres: centres of the n voxels along one axis."""
    return (((np.arange(n, dtype=np.float32) + 0.5) / n) - 0.5) * cube_size
