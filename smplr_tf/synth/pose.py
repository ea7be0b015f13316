"""Pose sampler for synthetic bodies: pose families, anatomical joint limits, global orientation.

Angles are per-joint intrinsic Euler angles ``(x, y, z)`` (radians, ``R = Rx(x) Ry(y) Rz(z)``) in SMPL's
joint frames: at rest every frame is aligned with the model frame (y up, x to the body's left, z forward).
With that convention (derived from the T-pose rest geometry):

* hip flexion (thigh forward) is ``-x``; knee flexion (shank backward) is ``+x``; spine / neck bending
  forward is ``+x``;
* left arm (along +x): raising it is ``+z``, lowering it to the side ``-z`` (about -pi/2), swinging it
  forward ``-y``; left elbow flexion is ``-y``;
* the right side mirrors the left (``y`` and ``z`` change sign).

A family gives mean angles with random parameters (e.g. the walking phase); 30 % of the random poses take their
upper body from a second family; Gaussian noise is added to every joint, and the result is clipped to
:data:`JOINT_LIMITS`. The pelvis (root) gets a family rotation too (e.g.
bending tilts the pelvis forward while the hips flex to keep the legs down); :func:`camera_rotation` then
applies yaw over the full circle, moderate pitch/roll, and the flip from SMPL's y-up to the camera's y-down.
Only NumPy / SciPy: it runs in the main process or in workers.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

FAMILIES = ("standing", "walking", "running", "sitting", "crouching", "reaching", "arms_raised", "bending")

# Joint indices (see smplr_tf.body.skeleton.JOINT_NAMES).
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3, L_FOOT, R_FOOT, NECK, \
    L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = range(24)

_LEFT_RIGHT = ((L_HIP, R_HIP), (L_KNEE, R_KNEE), (L_ANKLE, R_ANKLE), (L_FOOT, R_FOOT), (L_COLLAR, R_COLLAR),
               (L_SHOULDER, R_SHOULDER), (L_ELBOW, R_ELBOW), (L_WRIST, R_WRIST), (L_HAND, R_HAND))

# Limits (radians) for central and LEFT joints as ((xlo, xhi), (ylo, yhi), (zlo, zhi)); right = mirrored.
_LIMITS_LEFT = {
    L_HIP: ((-2.3, 0.5), (-0.6, 0.7), (-0.35, 0.9)),
    L_KNEE: ((0.0, 2.5), (-0.15, 0.15), (-0.1, 0.1)),
    L_ANKLE: ((-0.7, 0.8), (-0.3, 0.3), (-0.3, 0.3)),
    L_FOOT: ((-0.4, 0.4), (-0.1, 0.1), (-0.1, 0.1)),
    SPINE1: ((-0.3, 0.6), (-0.35, 0.35), (-0.3, 0.3)),
    SPINE2: ((-0.3, 0.6), (-0.35, 0.35), (-0.3, 0.3)),
    SPINE3: ((-0.3, 0.6), (-0.35, 0.35), (-0.3, 0.3)),
    NECK: ((-0.5, 0.6), (-0.6, 0.6), (-0.4, 0.4)),
    HEAD: ((-0.4, 0.5), (-0.6, 0.6), (-0.3, 0.3)),
    L_COLLAR: ((-0.2, 0.2), (-0.3, 0.3), (-0.3, 0.5)),
    L_SHOULDER: ((-1.2, 1.2), (-1.7, 0.8), (-1.6, 1.4)),
    L_ELBOW: ((-0.8, 0.8), (-2.5, 0.0), (-0.1, 0.1)),
    L_WRIST: ((-0.8, 0.8), (-0.6, 0.6), (-0.5, 0.5)),
    L_HAND: ((-0.3, 0.3), (-0.3, 0.3), (-0.3, 0.3)),
}


def _joint_limits() -> np.ndarray:
    lim = np.zeros((24, 3, 2), np.float64)
    for j, l in _LIMITS_LEFT.items():
        lim[j] = l
    for left, right in _LEFT_RIGHT:
        lim[right, 0] = lim[left, 0]
        lim[right, 1:] = -lim[left, 1:, ::-1]
    lim[PELVIS] = [(-np.pi, np.pi)] * 3  # the root is free (family tilt + global orientation)
    return lim


#: (24, 3, 2) lower / upper Euler angle (x, y, z) of every joint, radians.
JOINT_LIMITS = _joint_limits()


class _Angles:
    """Mean Euler angles being built for one pose (24, 3), with left/right helpers."""

    def __init__(self):
        self.a = np.zeros((24, 3))

    def side(self, left_joint: int, right: bool, x=0.0, y=0.0, z=0.0):
        """Set a left joint's angles, or the mirrored right joint's when ``right``."""
        j = dict(_LEFT_RIGHT)[left_joint] if right else left_joint
        s = -1.0 if right else 1.0
        self.a[j] = (x, s * y, s * z)

    def leg(self, right, hip_flex, knee_flex, abd=0.0, rot=0.0, ankle=0.0):
        self.side(L_HIP, right, x=-hip_flex, y=rot, z=abd)
        self.side(L_KNEE, right, x=knee_flex)
        self.side(L_ANKLE, right, x=ankle)

    def arm(self, right, down, forward, elbow, twist=0.0):
        """down: 0 = T-pose, pi/2 = along the body, < 0 = raised; forward: swing to the front; elbow: flexion."""
        self.side(L_SHOULDER, right, x=twist, y=-forward, z=-down)
        self.side(L_ELBOW, right, y=-elbow)

    def spine(self, bend=0.0, twist=0.0, side=0.0):
        for j in (SPINE1, SPINE2, SPINE3):
            self.a[j] = (bend / 3.0, twist / 3.0, side / 3.0)


def _family_angles(family: str, rng: np.random.Generator):
    """Mean Euler angles (24, 3) and the pelvis tilt forward (radians) of one random member of ``family``."""
    u = rng.uniform
    A = _Angles()
    tilt = 0.0
    flip = bool(rng.integers(2))  # which side leads, for asymmetric families
    if family == "standing":
        for r in (False, True):
            A.leg(r, u(-0.1, 0.25), u(0.0, 0.2), abd=u(-0.05, 0.2), rot=u(-0.2, 0.3))
            A.arm(r, u(1.0, 1.5), u(-0.2, 0.4), u(0.0, 0.7), twist=u(-0.4, 0.4))
        A.spine(u(-0.1, 0.2), u(-0.3, 0.3), u(-0.15, 0.15))
    elif family in ("walking", "running"):
        run = family == "running"
        phase = u(0, 2 * np.pi)
        amp = u(0.6, 1.0) if run else u(0.25, 0.5)
        for r, leg_phase in ((False, phase), (True, phase + np.pi)):
            # Hip flexion follows the phase; the knee bends most while the leg swings forward (cos > 0);
            # the arm swings against the leg of its side.
            swing = max(0.0, np.cos(leg_phase))
            A.leg(r, amp * np.sin(leg_phase), (u(0.3, 0.6) if run else u(0.05, 0.25)) + (1.4 if run else 0.7) * swing,
                  abd=u(0.0, 0.1), ankle=u(-0.2, 0.2))
            A.arm(r, u(1.0, 1.3) if run else u(1.1, 1.45), -0.8 * amp * np.sin(leg_phase),
                  u(1.2, 1.8) if run else u(0.1, 0.5), twist=u(-0.3, 0.3))
        A.spine(u(0.0, 0.15) + (0.2 if run else 0.0), u(-0.2, 0.2))
        tilt = u(0.0, 0.25) if run else 0.0
    elif family == "sitting":
        for r in (False, True):
            A.leg(r, u(1.2, 1.7), u(1.2, 1.8), abd=u(0.0, 0.35), rot=u(-0.2, 0.2), ankle=u(-0.2, 0.3))
            A.arm(r, u(1.1, 1.5), u(0.2, 0.9), u(0.3, 1.4), twist=u(-0.4, 0.4))
        A.spine(u(-0.1, 0.4), u(-0.3, 0.3), u(-0.1, 0.1))
    elif family == "crouching":
        tilt = u(0.2, 0.7)
        for r in (False, True):
            A.leg(r, u(1.8, 2.2), u(2.0, 2.45), abd=u(0.1, 0.45), ankle=u(-0.6, -0.1))
            A.arm(r, u(0.9, 1.4), u(0.3, 1.2), u(0.2, 1.5))
        A.spine(u(0.0, 0.6), u(-0.2, 0.2))
    elif family == "reaching":
        for r in (False, True):
            A.leg(r, u(-0.1, 0.3), u(0.0, 0.3), abd=u(0.0, 0.2))
        reach_both = rng.uniform() < 0.4
        for r in (flip, not flip):
            if r == flip or reach_both:
                A.arm(r, u(-0.6, 0.7), u(0.9, 1.6), u(0.0, 0.5), twist=u(-0.5, 0.5))
            else:
                A.arm(r, u(1.0, 1.5), u(-0.2, 0.4), u(0.0, 0.8))
        A.spine(u(0.0, 0.4), u(-0.35, 0.35) * (1 if flip else -1), u(-0.2, 0.2))
    elif family == "arms_raised":
        for r in (False, True):
            A.leg(r, u(-0.1, 0.2), u(0.0, 0.2), abd=u(0.0, 0.3))
        both = rng.uniform() < 0.6
        for r in (flip, not flip):
            if r == flip or both:
                A.arm(r, u(-1.4, -0.4), u(-0.3, 0.5), u(0.0, 1.0), twist=u(-0.5, 0.5))
            else:
                A.arm(r, u(0.6, 1.5), u(-0.2, 0.5), u(0.0, 1.0))
        A.spine(u(-0.2, 0.1), u(-0.2, 0.2), u(-0.2, 0.2))
    elif family == "bending":
        tilt = u(0.4, 1.2)
        for r in (False, True):
            A.leg(r, tilt + u(-0.2, 0.2), u(0.0, 0.5), abd=u(0.0, 0.2))
            A.arm(r, u(0.9, 1.5), tilt + u(-0.3, 0.5), u(0.0, 0.8))
        A.spine(u(0.2, 0.8), u(-0.2, 0.2))
    else:
        raise ValueError(f"unknown pose family '{family}' (one of {FAMILIES})")
    A.a[NECK] = (u(-0.3, 0.3) - 0.3 * tilt, u(-0.4, 0.4), u(-0.2, 0.2))
    A.a[HEAD] = (u(-0.2, 0.3), u(-0.3, 0.3), u(-0.15, 0.15))
    return A.a, tilt


def clip_to_limits(euler: np.ndarray) -> np.ndarray:
    """euler: (..., 24, 3) radians -> clipped to :data:`JOINT_LIMITS`."""
    return np.clip(euler, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])


def euler_to_rotvec(euler: np.ndarray) -> np.ndarray:
    """(..., 3) intrinsic XYZ Euler angles -> (..., 3) axis-angle."""
    e = np.asarray(euler, np.float64)
    return Rotation.from_euler("XYZ", e.reshape(-1, 3)).as_rotvec().reshape(e.shape)


UPPER_BODY = (SPINE1, SPINE2, SPINE3, NECK, HEAD, L_COLLAR, R_COLLAR, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW,
              L_WRIST, R_WRIST, L_HAND, R_HAND)


def sample_body(rng: np.random.Generator, family: str | None = None, noise: float = 0.08, mix_prob: float = 0.3):
    """One random pose of ``family``.

    family None: uniform over :data:`FAMILIES`, and with probability ``mix_prob`` the upper body (spine, neck,
    head, arms) comes from a second family (e.g. walking legs with raised arms; name "walking+arms_raised").
    Returns (family name, euler (24, 3) radians within the joint limits (row 0 = pelvis tilt),
    body_pose (69,) axis-angle of joints 1..23, pelvis rotation (3, 3) in SMPL's model frame).
    """
    mixed = None
    if family is None:
        family = FAMILIES[int(rng.integers(len(FAMILIES)))]
        if rng.uniform() < mix_prob:
            mixed = FAMILIES[int(rng.integers(len(FAMILIES)))]
    mean, tilt = _family_angles(family, rng)
    if mixed is not None and mixed != family:
        upper, _ = _family_angles(mixed, rng)
        mean[list(UPPER_BODY)] = upper[list(UPPER_BODY)]
        family = f"{family}+{mixed}"
    euler = mean + rng.normal(0.0, noise, size=mean.shape)
    euler[PELVIS] = (tilt, 0.0, 0.0)
    euler = clip_to_limits(euler)
    body_pose = euler_to_rotvec(euler[1:]).reshape(69)
    pelvis = Rotation.from_euler("XYZ", euler[PELVIS]).as_matrix()
    return family, euler, body_pose, pelvis


# SMPL's model frame (y up, body facing +z) -> camera frame (y down, z forward): a half turn about x,
# so an upright body faces the camera.
MODEL_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def camera_rotation(rng: np.random.Generator, pelvis: np.ndarray, max_tilt: float = 0.3):
    """Global rotation in the camera frame: flip to y-down, yaw over the full circle about the body's vertical,
    pitch / roll ~ N(0, 0.1) clipped to +-max_tilt radians, then the family's pelvis rotation.

    Returns (3, 3).
    """
    yaw = rng.uniform(-np.pi, np.pi)
    pitch, roll = np.clip(rng.normal(0.0, 0.1, size=2), -max_tilt, max_tilt)
    R = Rotation.from_euler("XZY", [pitch, roll, yaw]).as_matrix()
    return MODEL_TO_CAMERA @ R @ pelvis


def full_pose(global_rot: np.ndarray, body_pose: np.ndarray) -> np.ndarray:
    """(3, 3) global rotation + (69,) body pose -> (72,) SMPL axis-angle pose."""
    return np.concatenate([Rotation.from_matrix(global_rot).as_rotvec(), np.asarray(body_pose).reshape(69)])
