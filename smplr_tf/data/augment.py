"""Hourglass input augmentation (paper Sec. 4.4.1 and the authors' code), one example at a time, pure TF.

Order: flip (p 0.5) -> background swap (p 0.35, needs the mask) -> object occlusion (p 0.35) -> colour noise
(always) -> random scale (only with ``scale`` > 0, always then) -> in-plane rotation (p 0.25, +-0.15 rad) ->
per-image standardisation (after this module).
The authors' code: crop -> background -> occluder -> per-image standardisation -> rotation with zero fill
(so the corners the rotation leaves take the image's mean), and no flip or colour noise (the paper lists
both: ours, placed before the rotation). Here the rotation comes last among the augmentations and fills with
the image's mean (over all pixels and channels), which the standardisation that follows maps to ~0: the
code's result, up to the mean and deviation being taken after the rotation rather than before.

Every random choice comes from stateless ops seeded by a per-example ``seed`` (2,) int, so an example's
augmentation is a pure function of (data, seed).

Geometry (crop pixels follow :mod:`smplr_tf.data.crop`: pixel centres are integers, the crop centre
``c = (S - 1) / 2`` is where the root projects, by construction of the paper's crop):

* Flip mirrors the image about the vertical line ``u = c``: ``u' = S - 1 - u``; left and right labels swap
  (``skeleton.JOINT_FLIP_PERM`` / ``LANDMARK_FLIP_PERM``); root-relative 3D points get ``x' = -x``. In 2D this
  is exact. In 3D it is the mirror about the plane ``x = x_root``, which projects exactly onto the mirrored
  image only when the root is on the optical axis; for a root at lateral offset ``X_r`` the image of a point
  at depth ``Z`` differs from the mirrored image by ``2 f X_r (1/Z - 1/Z_r)`` pixels (``f`` in crop pixels):
  for a SURREAL-like frame (root 5 m away, 1 m off-axis, a point 0.3 m nearer) that is ~2.6 px of 256,
  0.65 px of the 64 heatmap (on generated records: mean 0.9 px, max 11 px of 256). The 3D labels stay a valid
  (mirrored) body; only this perspective term is off.
* Random scale (paper Sec. 4.6: SHN^final fine-tuned for estimated crops) zooms the image about ``c`` by ``s``,
  log-uniform in ``[1 / (1 + scale), 1 + scale]``: ``p' = c + s (p - c)`` for the 2D labels, the 3D labels
  *unchanged* (metres): it shows the network the crop of a box ``1 / s`` times the true one, the error of an
  estimated crop, and trains it to give the true metres anyway (from the body's proportions). Outside the image:
  its mean, as for the rotation.
* Rotation by ``a`` turns crop pixels about ``c``: ``p' = c + R(a) (p - c)`` with
  ``R(a) = [[cos a, -sin a], [sin a, cos a]]`` acting on (x, y) (y down: positive ``a`` turns clockwise on
  screen); root-relative 3D points turn by the same ``R(a)`` on (x, y) about the camera z axis through the
  root. Exact for a root on the optical axis (a camera roll), the same perspective caveat otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import schema

# Flip permutation on the 42 "all points" = 24 SMPL joints followed by the 18 landmarks.
ALL_FLIP_PERM = np.concatenate([skeleton.JOINT_FLIP_PERM,
                                skeleton.LANDMARK_FLIP_PERM + skeleton.NUM_JOINTS]).astype(np.int32)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges. Defaults: the authors' code where given, our choice otherwise."""

    flip_prob: float = 0.5  # our choice (the paper only says "flipping")
    rotation_prob: float = 0.25  # the authors' code
    max_rotation: float = 0.15  # radians, the authors' code
    background_prob: float = 0.35  # the authors' code
    occlusion_prob: float = 0.35  # the authors' code
    occluder_min: float = 0.15  # occluder side as a fraction of the crop (our choice)
    occluder_max: float = 0.5
    colour_gain: float = 0.2  # per-channel gain in [1 - g, 1 + g] (our choice)
    brightness: float = 0.1  # additive offset in [-b, b] on [0, 1] images (our choice)
    scale: float = 0.0  # random scale: zoom in [1 / (1 + scale), 1 + scale], 0 = off (our range; --aug_scale)


# ------------------------------------------------------------------------------------------- geometry
def flip(image, mask, points3d, points2d, perm=ALL_FLIP_PERM):
    """Horizontal flip about the crop centre with the left/right swap.

    image: (S, S, C); mask: (S, S) or (S, S, 1); points3d: (N, 3) root-relative metres; points2d: (N, 2) crop
    pixels; perm: (N,) the left/right permutation of those points. Returns the four, flipped.
    """
    size = tf.cast(tf.shape(image)[1], tf.float32)
    image = tf.reverse(image, axis=[1])
    mask = tf.reverse(mask, axis=[1])
    points3d = tf.gather(points3d, perm) * tf.constant([-1.0, 1.0, 1.0])
    p2 = tf.gather(points2d, perm)
    points2d = tf.stack([size - 1.0 - p2[:, 0], p2[:, 1]], axis=-1)
    return image, mask, points3d, points2d


def _rotation_2d(angle):
    c, s = tf.cos(angle), tf.sin(angle)
    return tf.reshape(tf.stack([c, -s, s, c]), (2, 2))


def rotate_points(points3d, points2d, angle, size):
    """Turn labels by ``angle`` (radians): 2D about the crop centre, 3D about the camera z axis through the root.

    points3d: (N, 3) root-relative; points2d: (N, 2) pixels of a ``size`` crop. Returns both rotated.
    """
    r = _rotation_2d(tf.cast(angle, tf.float32))
    c = (tf.cast(size, tf.float32) - 1.0) / 2.0
    xy = tf.linalg.matvec(r, points3d[:, :2])
    points3d = tf.concat([xy, points3d[:, 2:]], axis=-1)
    points2d = tf.linalg.matvec(r, points2d - c) + c
    return points3d, points2d


def rotate_image(image, angle, interpolation="BILINEAR", fill_value=0.0):
    """Turn an (S, S, C) float image by ``angle`` about its centre (see the module docstring); ``fill_value``
    (a float scalar, may be a tensor) outside."""
    size = tf.cast(tf.shape(image)[1], tf.float32)
    c = (size - 1.0) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    # output pixel p' samples input p = c + R(-a) (p' - c)
    transform = tf.stack([cos, sin, c - cos * c - sin * c,
                          -sin, cos, c + sin * c - cos * c, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=tf.cast(transform[None], tf.float32),
        output_shape=tf.shape(image)[:2], fill_value=tf.cast(fill_value, tf.float32), interpolation=interpolation,
        fill_mode="CONSTANT")
    return out[0]


def scale_image(image, s, fill_value=0.0, interpolation="BILINEAR"):
    """Zoom an (S, S, C) float image by ``s`` about its centre ``c = (S - 1) / 2``: output pixel ``p'`` samples
    the input at ``c + (p' - c) / s``; ``fill_value`` outside."""
    size = tf.cast(tf.shape(image)[1], tf.float32)
    c = (size - 1.0) / 2.0
    inv = 1.0 / tf.cast(s, tf.float32)
    transform = tf.stack([inv, 0.0, c - inv * c, 0.0, inv, c - inv * c, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=tf.cast(transform[None], tf.float32),
        output_shape=tf.shape(image)[:2], fill_value=tf.cast(fill_value, tf.float32), interpolation=interpolation,
        fill_mode="CONSTANT")
    return out[0]


def random_scale(image, mask, points2d, seed, max_scale: float):
    """The random-scale augmentation (module docstring): -> (image, mask, points2d); 3D labels are unchanged."""
    size = tf.cast(tf.shape(image)[1], tf.float32)
    c = (size - 1.0) / 2.0
    r = float(np.log1p(max_scale))
    s = tf.exp(tf.random.stateless_uniform((), seed, -r, r))
    img = scale_image(image, s, fill_value=tf.reduce_mean(image))
    m = scale_image(mask[..., None], s)[..., 0]
    return img, m, c + s * (points2d - c)


# ------------------------------------------------------------------------------------------- textures
def smooth_colour_field(seed, size: int):
    """A procedural background: a random smooth colour field with some finer structure. (size, size, 3) in [0, 1]."""
    s = tf.random.experimental.stateless_split(seed, 3)
    coarse = tf.random.stateless_uniform((1, 3, 3, 3), s[0])
    fine = tf.random.stateless_uniform((1, 12, 12, 3), s[1])
    mix = tf.random.stateless_uniform((), s[2], 0.1, 0.5)
    img = (1.0 - mix) * tf.image.resize(coarse, (size, size)) + mix * tf.image.resize(fine, (size, size))
    return tf.clip_by_value(img[0], 0.0, 1.0)


class ImageBank:
    """Images from a folder, read on demand inside tf.data (backgrounds, or occluders with an alpha channel)."""

    def __init__(self, directory: str, what: str):
        files = schema.list_images(directory)
        if not files:
            raise FileNotFoundError(f"{what} folder '{directory}' holds no {'/'.join(schema.IMAGE_EXTENSIONS)} image")
        self.files = tf.constant(files)
        self.count = len(files)

    def sample(self, seed, channels: int = 3):
        """A random image, decoded: (H, W, channels) float32 in [0, 1] (size of the file)."""
        i = tf.random.stateless_uniform((), seed, 0, self.count, dtype=tf.int32)
        img = tf.io.decode_image(tf.io.read_file(self.files[i]), channels=channels, expand_animations=False)
        return tf.image.convert_image_dtype(img, tf.float32)


def random_background(seed, size: int, bank: ImageBank | None = None):
    """(size, size, 3) in [0, 1]: a random crop of a bank image resized to the crop, else a colour field."""
    if bank is None:
        return smooth_colour_field(seed, size)
    s = tf.random.experimental.stateless_split(seed, 2)
    img = bank.sample(s[0], 3)
    h, w = tf.shape(img)[0], tf.shape(img)[1]
    side = tf.minimum(h, w)
    box = tf.random.stateless_uniform((2,), s[1], 0.0, 1.0)
    y0 = tf.cast(box[0] * tf.cast(h - side, tf.float32), tf.int32)
    x0 = tf.cast(box[1] * tf.cast(w - side, tf.float32), tf.int32)
    sq = img[y0:y0 + side, x0:x0 + side]
    return tf.image.resize(sq[None], (size, size))[0]


def random_occluder(seed, size: int, cfg: AugmentConfig, bank: ImageBank | None = None):
    """An object to paste: (rgb (size, size, 3), alpha (size, size, 1)) in [0, 1], placed at random.

    With a bank: an RGBA image (alpha = the object; an RGB image gets an elliptical alpha) scaled to a side
    of ``occluder_min..occluder_max`` of the crop. Without: an ellipse or a rectangle of a smooth colour field.
    """
    s = tf.random.experimental.stateless_split(seed, 5)
    geo = tf.random.stateless_uniform((5,), s[0], 0.0, 1.0)
    fsize = tf.cast(size, tf.float32)
    side_w = (cfg.occluder_min + (cfg.occluder_max - cfg.occluder_min) * geo[0]) * fsize
    side_h = (cfg.occluder_min + (cfg.occluder_max - cfg.occluder_min) * geo[1]) * fsize
    cx, cy = geo[2] * fsize, geo[3] * fsize
    yy, xx = tf.meshgrid(tf.range(size, dtype=tf.float32), tf.range(size, dtype=tf.float32), indexing="ij")
    u = (xx - cx) / (0.5 * side_w)  # in [-1, 1] inside the object's box
    v = (yy - cy) / (0.5 * side_h)
    ellipse = tf.cast(u * u + v * v <= 1.0, tf.float32)
    if bank is None:
        rect = tf.cast((tf.abs(u) <= 1.0) & (tf.abs(v) <= 1.0), tf.float32)
        alpha = tf.where(geo[4] < 0.5, ellipse, rect)
        rgb = smooth_colour_field(s[1], size)
        return rgb, alpha[..., None]
    img = bank.sample(s[2], 4)  # decode_image gives RGB files an opaque alpha channel
    has_alpha = tf.reduce_min(img[..., 3]) < 1.0
    # sample the object image over its box (bilinear via a projective transform: output -> source pixels)
    h, w = tf.cast(tf.shape(img)[0], tf.float32), tf.cast(tf.shape(img)[1], tf.float32)
    sx, sy = w / side_w, h / side_h
    x0, y0 = cx - 0.5 * side_w, cy - 0.5 * side_h
    transform = tf.stack([sx, 0.0, -x0 * sx, 0.0, sy, -y0 * sy, 0.0, 0.0])
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=img[None], transforms=transform[None], output_shape=[size, size], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    rect_alpha = tf.cast((tf.abs(u) <= 1.0) & (tf.abs(v) <= 1.0), tf.float32)
    alpha = tf.where(has_alpha, warped[..., 3] * rect_alpha, ellipse)
    return warped[..., :3], alpha[..., None]


def colour_noise(image, seed, cfg: AugmentConfig):
    """Per-channel gain and a brightness offset, clipped to [0, 1]. image: (S, S, 3) in [0, 1]."""
    s = tf.random.experimental.stateless_split(seed, 2)
    gain = tf.random.stateless_uniform((3,), s[0], 1.0 - cfg.colour_gain, 1.0 + cfg.colour_gain)
    off = tf.random.stateless_uniform((), s[1], -cfg.brightness, cfg.brightness)
    return tf.clip_by_value(image * gain + off, 0.0, 1.0)


def swap_background(image, mask, background):
    """Keep the person (mask) and replace the rest. image, background: (S, S, 3); mask: (S, S) in [0, 1]."""
    m = mask[..., None]
    return image * m + background * (1.0 - m)


# ------------------------------------------------------------------------------------------- all
def augment_example(image, mask, points3d, points2d, seed, *, has_mask=True, cfg: AugmentConfig = AugmentConfig(),
                    backgrounds: ImageBank | None = None, occluders: ImageBank | None = None,
                    flip_perm=ALL_FLIP_PERM):
    """Augment one example.

    image: (S, S, 3) float32 in [0, 1]; mask: (S, S) float32 in [0, 1]; points3d: (N, 3) root-relative metres;
    points2d: (N, 2) crop pixels; seed: (2,) int stateless seed; has_mask: scalar bool, False disables the
    background swap (no silhouette). Returns (image, mask, points3d, points2d), image still in [0, 1].
    """
    size = image.shape[0] if image.shape[0] is not None else tf.shape(image)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)
    coin = tf.random.stateless_uniform((4,), seeds[0], 0.0, 1.0)
    image = tf.convert_to_tensor(image, tf.float32)
    mask = tf.convert_to_tensor(mask, tf.float32)
    points3d = tf.convert_to_tensor(points3d, tf.float32)
    points2d = tf.convert_to_tensor(points2d, tf.float32)

    image, mask, points3d, points2d = tf.cond(
        coin[0] < cfg.flip_prob,
        lambda: flip(image, mask, points3d, points2d, flip_perm),
        lambda: (image, mask, points3d, points2d))

    do_bg = tf.logical_and(coin[2] < cfg.background_prob, tf.cast(has_mask, tf.bool))
    image = tf.cond(do_bg, lambda: swap_background(image, mask, random_background(seeds[2], size, backgrounds)),
                    lambda: image)

    def _occlude():
        rgb, alpha = random_occluder(seeds[3], size, cfg, occluders)
        return image * (1.0 - alpha) + rgb * alpha

    image = tf.cond(coin[3] < cfg.occlusion_prob, _occlude, lambda: image)
    image = colour_noise(image, seeds[4], cfg)
    if cfg.scale > 0:
        image, mask, points2d = random_scale(image, mask, points2d, seeds[5], cfg.scale)

    angle = tf.random.stateless_uniform((), seeds[1], -cfg.max_rotation, cfg.max_rotation)

    def _rot():
        # fill = the image's mean, i.e. ~0 after the per-image standardisation (the code's zero fill)
        img = rotate_image(image, angle, fill_value=tf.reduce_mean(image))
        m = rotate_image(mask[..., None], angle)[..., 0]
        p3, p2 = rotate_points(points3d, points2d, angle, size)
        return img, m, p3, p2

    image, mask, points3d, points2d = tf.cond(coin[1] < cfg.rotation_prob, _rot,
                                              lambda: (image, mask, points3d, points2d))
    return image, mask, points3d, points2d
