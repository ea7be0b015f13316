"""The paper's crop: a 2.5 m square centred on the root, perpendicular to the optical axis, projected.

Pixel convention (OpenCV's): a pixel's *centre* has integer coordinates, so pixel ``(i, j)`` covers
``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``. A crop box ``x0, y0, x1, y1`` gives the *outer edges* of the crop
in source pixels (continuous coordinates); it may lie partly or wholly outside the source image. A crop of
``size`` pixels maps source point ``x`` to ``(x - x0) * size / (x1 - x0) - 0.5``, so the root (the box centre)
lands at ``(size - 1) / 2`` = 127.5 in a 256 crop. :func:`crop_intrinsics` and :func:`crop_image` use the
same mapping, so ``project(p, crop_intrinsics(K, box))`` falls on the pixel of ``p`` in ``crop_image(img, box)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from smplr_tf.volume import CUBE_SIZE  # metres: side of the square (owner: smplr_tf.volume)


def project(points_cam, K):
    """Pinhole projection. points_cam: (..., 3) metres, camera frame (z forward). K: (3, 3).

    Returns (..., 2) pixels (x, y). Points with z <= 0 give non-finite or meaningless values: callers keep
    bodies in front of the camera.
    """
    p = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    uvw = p @ K.T
    return (uvw[..., :2] / uvw[..., 2:3]).astype(np.float32)


def crop_box(root_cam, K, cube: float = CUBE_SIZE):
    """The crop box of the paper: a ``cube`` x ``cube`` m square centred on ``root_cam``, perpendicular to the
    optical axis, projected into the image.

    root_cam: (3,) metres, camera frame, z > 0. K: (3, 3) intrinsics (zero skew).
    Returns (4,) float32 ``x0, y0, x1, y1`` source pixels (outer edges; see the module docstring): centred on
    the projected root, side ``fx * cube / z`` by ``fy * cube / z`` pixels.
    """
    root = np.asarray(root_cam, dtype=np.float64).reshape(3)
    if not root[2] > 0:
        raise ValueError(f"crop_box: root depth must be > 0, got {root[2]}")
    K = np.asarray(K, dtype=np.float64)
    u, v = project(root, K)
    hw = K[0, 0] * cube / root[2] / 2.0
    hh = K[1, 1] * cube / root[2] / 2.0
    # Pixel centres are integers, so the continuous edge coordinate of the box is the centre +- half side.
    return np.array([u - hw, v - hh, u + hw, v + hh], dtype=np.float32)


def _affine(box, size):
    """2x3 affine source pixel -> crop pixel (pixel-centre convention) and the two scales."""
    x0, y0, x1, y1 = [float(b) for b in box]
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop box {box} is empty")
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    # Edge coordinates (x + 0.5) scale linearly from the box edge: x' + 0.5 = (x + 0.5 - (x0 + 0.5)) * s.
    A = np.array([[sx, 0.0, -x0 * sx - 0.5], [0.0, sy, -y0 * sy - 0.5]], np.float64)
    return A, sx, sy


def crop_intrinsics(K, box, size: int = 256):
    """Intrinsics of the crop: camera frame -> crop pixels. K: (3, 3); box: (4,) source pixels.

    Returns (3, 3) float32 with ``fx' = fx * s``, ``cx' = (cx - x0) * s - 0.5`` (same for y).
    """
    A, _, _ = _affine(box, size)
    H = np.vstack([A, [0.0, 0.0, 1.0]])
    return (H @ np.asarray(K, dtype=np.float64)).astype(np.float32)


def crop_image(img, box, size: int = 256, pad=None, interpolation=cv2.INTER_LINEAR):
    """Cut ``box`` out of ``img`` and resize it to ``size`` x ``size``.

    img: (H, W) or (H, W, C) array (any OpenCV dtype). box: (4,) source pixels, may leave the frame.
    pad: None -> zeros where the box leaves the image; else an image (any size, same channels) that is
    resized to (size, size) and shows through wherever the crop lies outside the source frame (the paper
    pads with a random VOC image). Returns (size, size[, C]) of img's dtype.
    """
    img = np.asarray(img)
    A, _, _ = _affine(box, size)
    out = cv2.warpAffine(img, A, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    if pad is None:
        return out
    pad = np.asarray(pad)
    if pad.ndim != img.ndim or (img.ndim == 3 and pad.shape[2] != img.shape[2]):
        raise ValueError(f"crop_image: pad shape {pad.shape} does not match image shape {img.shape}")
    pad_r = cv2.resize(pad, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    valid = cv2.warpAffine(np.ones(img.shape[:2], np.float32), A, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if img.ndim == 3:
        valid = valid[..., None]
        if pad_r.ndim == 2:
            pad_r = pad_r[..., None]
    # ``out`` already holds the in-frame part weighted by the interpolation; ``valid`` is that weight.
    mixed = out.astype(np.float32) + pad_r * (1.0 - valid)
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        mixed = np.clip(np.rint(mixed), info.min, info.max)
    return mixed.astype(img.dtype)
