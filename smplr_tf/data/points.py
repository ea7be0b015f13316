"""Body points from SMPL parameters on the fly, and random SMPL parameters (for the DAE / SMPLR stages).

The random parameters come from the synthetic generator's pose sampler (:mod:`smplr_tf.synth.pose`:
pose families with joint limits, yaw over the full circle, moderate pitch / roll, the model -> camera flip),
so the DAE / SMPLR stages see the same pose distribution as the rendered data. Betas ~ N(0, 1), gender
uniform over female / male.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.body.smpl import pose_to_rotmats

NUM_BETAS = skeleton.NUM_BETAS


def smpl_points(smpl_layer, pose, betas, gender, num_points: int = skeleton.NUM_POINTS):
    """Root-relative points and rotation matrices of a batch of SMPL parameters.

    smpl_layer: an :class:`~smplr_tf.body.smpl.SMPL` layer (only its joints and landmarks are computed).
    pose: (B, 72) axis-angle or (B, 24, 3, 3); betas: (B, 10); gender: (B,) int index into smpl_layer.genders.
    Returns dict ``points (B, P, 3)`` metres, root-relative (joints 1..23 then landmarks, first
    ``num_points``), ``joints (B, 24, 3)`` root-relative, ``rotmats (B, 24, 3, 3)``.
    """
    rotmats = pose_to_rotmats(tf.cast(pose, tf.float32))
    out = smpl_layer.joints_and_landmarks(tf.cast(betas, tf.float32), rotmats, tf.cast(gender, tf.int32))
    points = skeleton.points_from_smpl(out["joints"], out["landmarks"])[:, :num_points]
    joints = out["joints"] - out["joints"][:, :1]
    return {"points": points, "joints": joints, "rotmats": rotmats}


def sample_params_numpy(seed, batch_size: int, num_genders: int = 2):
    """Random SMPL parameters, deterministic in ``seed`` (any value np.random.default_rng accepts).

    Returns (pose (B, 72) float32 axis-angle, camera-frame global rotation; betas (B, 10) float32;
    gender (B,) int32 in [0, min(num_genders, 2))).
    """
    from smplr_tf.synth import pose as pose_sampler

    rng = np.random.default_rng(seed)
    poses = np.zeros((batch_size, 72), np.float32)
    for i in range(batch_size):
        _, _, body, pelvis = pose_sampler.sample_body(rng)
        poses[i] = pose_sampler.full_pose(pose_sampler.camera_rotation(rng, pelvis), body)
    betas = rng.normal(0.0, 1.0, size=(batch_size, NUM_BETAS)).astype(np.float32)
    gender = rng.integers(0, min(num_genders, 2), size=batch_size).astype(np.int32)
    return poses, betas, gender


def sample_params(seed, batch_size: int, num_genders: int = 2):
    """TF wrapper of :func:`sample_params_numpy` for tf.data. seed: (2,) int64 tensor.

    Returns (pose (B, 72), betas (B, 10), gender (B,)) tensors with static shapes.
    """
    def _np(s):
        return sample_params_numpy([int(x) for x in s], batch_size, num_genders)

    pose, betas, gender = tf.numpy_function(_np, [tf.cast(seed, tf.int64)], [tf.float32, tf.float32, tf.int32],
                                            stateful=False)
    return (tf.ensure_shape(pose, (batch_size, 72)), tf.ensure_shape(betas, (batch_size, NUM_BETAS)),
            tf.ensure_shape(gender, (batch_size,)))
