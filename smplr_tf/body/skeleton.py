"""The skeleton: SMPL joint names and tree, the 18 SMPLR landmarks, the 42-node tree, flips, groups.

This module is the one owner of every index used to talk about body points. Everything else imports
from here rather than writing its own joint list.

Conventions
-----------
* SMPL joints: the 24 joints of SMPL, in SMPL's order (0 = pelvis, the root).
* Landmarks: the 18 surface points of SMPLR (paper Fig. 3), in the order of ``LANDMARK_NAMES``.
* Points (``P = 41``): what the networks predict, root-relative: SMPL joints 1..23 followed by the 18
  landmarks. The pelvis is dropped because it is always the origin.
* Nodes (42): a zero root prepended to the 41 points. ``TREE_PARENTS[i]`` is the parent node of node ``i``
  (``-1`` for the root); bone ``i - 1`` joins node ``i`` to its parent (paper eqs. 1-3).
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 24
NUM_LANDMARKS = 18
NUM_POINTS = NUM_JOINTS - 1 + NUM_LANDMARKS  # 41
NUM_NODES = NUM_POINTS + 1  # 42
NUM_BONES = NUM_POINTS  # 41
NUM_BETAS = 10  # SMPL shape coefficients used everywhere (model files may hold more; the first 10 are read)

# Genders: the one list. Index = the schema's gender code (records' "gender" field) and the default
# order of the SMPL layer's models. Psi regresses a signed code: -1 female, +1 male (male where >= 0).
GENDERS = ("female", "male", "neutral")
GENDER_FEMALE, GENDER_MALE, GENDER_NEUTRAL = 0, 1, 2
GENDER_IDS = {name: i for i, name in enumerate(GENDERS)}
# The SMPL layer's default models: female and male, so that a schema code 0/1 is also the layer's index.
BODY_GENDERS = GENDERS[:2]

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# SMPL's kinematic tree (kintree_table[0]); -1 for the root.
JOINT_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21], dtype=np.int32)

LANDMARK_NAMES = (
    "left_breast", "right_breast", "belly", "right_hip_side", "left_hip_side",
    "right_upper_leg_front", "left_upper_leg_front", "right_upper_leg_back", "left_upper_leg_back",
    "left_foot_surface", "right_foot_surface", "left_hand_surface", "left_biceps", "left_triceps",
    "right_biceps", "right_triceps", "right_hand_surface", "head_top",
)

# Vertex ids of the landmarks on the official SMPL mesh (6890 vertices), from the authors' public code.
# They apply to official SMPL files only; the free body model stores its own ids in its file.
SMPL_LANDMARK_VERTEX_IDS = np.array(
    [3042, 4428, 3503, 4311, 822, 4361, 877, 4386, 898, 3222, 6620, 2544, 2820, 1258, 4116, 5365,
     5989, 331], dtype=np.int32)

# Template distance (m) from each landmark to its parent joint on official SMPL, from the authors' code.
LANDMARK_PARENT_DISTANCES = np.array(
    [.1461, .1390, .1461, .1800, .1817, .1639, .1663, .1886, .1877, .0672, .0666, .0772, .1203,
     .0927, .1423, .0912, .0814, .1187], dtype=np.float32)

# Parent SMPL joint of each landmark. The authors did not publish these; derived with
# derive_landmark_parents on the free neutral template (tools/build_free_model.py; table, residuals and
# runner-ups in BUILD_NOTES.md, "Landmark parents"). The earlier anatomical guess was changed only where
# the derivation is decisive (derived residual < 2 cm, the guess worse by > 3 cm, same answer on the female
# and male templates): feet -> SMPL foot joints 10/11 (toe tip 7 cm from the foot joint, 21 cm from the
# ankle; published .067), hands -> SMPL hand joints 22/23 (fingertip 9 cm from the hand joint, 19 cm from
# the wrist; published .077/.081), upper-leg backs and belly -> pelvis (pelvis within 1.3 / 0.4 cm of the
# published .1886 / .1461, hip 4.5 cm and spine1 4.3 cm off).
LANDMARK_PARENTS = np.array(
    [9, 9, 0, 0, 0, 2, 1, 0, 0, 10, 11, 22, 16, 16, 17, 17, 23, 15], dtype=np.int32)

POINT_NAMES = JOINT_NAMES[1:] + LANDMARK_NAMES

# Template bone lengths B* (m) of the 23 joint bones on the official SMPL model, indexed by child joint
# 1..23 (bone of joint j = joint j minus its SMPL parent), as the authors' code holds them (a fixed constant
# there, not recomputed from the model). With LANDMARK_PARENT_DISTANCES these are the 41 entries of B*
# for official SMPL; the free body model has its own template (computed from the model: see
# smplr_tf.body.smpl.template_bone_lengths, which is what the networks use with either model).
SMPL_JOINT_BONE_LENGTHS = np.array(
    [0.1148, 0.1127, 0.1056, 0.3656, 0.3725, 0.1277, 0.3860, 0.3862, 0.0565, 0.1289, 0.1286, 0.2141,
     0.1446, 0.1451, 0.0801, 0.0913, 0.0955, 0.2530, 0.2472, 0.2382, 0.2454, 0.0813, 0.0814], dtype=np.float32)
OFFICIAL_TEMPLATE_BONE_LENGTHS = np.concatenate([SMPL_JOINT_BONE_LENGTHS, LANDMARK_PARENT_DISTANCES])  # (41,)


def _node_of_joint(j: int) -> int:
    """Node index (0..41) of SMPL joint ``j``: the pelvis is the root node 0, joint j >= 1 is node j."""
    return int(j)


def _tree_parents() -> np.ndarray:
    parents = np.full(NUM_NODES, -1, dtype=np.int32)
    parents[1:NUM_JOINTS] = JOINT_PARENTS[1:]  # joint j -> node j; pelvis is node 0
    for k in range(NUM_LANDMARKS):
        parents[NUM_JOINTS + k] = _node_of_joint(LANDMARK_PARENTS[k])
    return parents


# kappa of the paper: parent node of each of the 42 nodes (root first).
TREE_PARENTS = _tree_parents()

# ---------------------------------------------------------------------------------------------- flips
JOINT_FLIP_PERM = np.array(
    [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22], dtype=np.int32)
LANDMARK_FLIP_PERM = np.array(
    [1, 0, 2, 4, 3, 6, 5, 8, 7, 10, 9, 16, 14, 15, 12, 13, 11, 17], dtype=np.int32)
# On the 41 points: joints 1..23 are points 0..22, landmarks are points 23..40.
POINT_FLIP_PERM = np.concatenate([JOINT_FLIP_PERM[1:] - 1, LANDMARK_FLIP_PERM + NUM_JOINTS - 1]).astype(np.int32)

# ---------------------------------------------------------------------------------------------- limbs
# The 4 limb heatmaps of SHN^final (paper Sec. 4.4.1, Fig. 4): chains of SMPL joints whose segments are
# drawn into one volume each. The authors' code: the two arms from the collar to the hand, the two legs from
# the hip to the foot (pelvis -> hip not included; a fifth, spine chain is defined there but unused).
LIMB_NAMES = ("left_arm", "right_arm", "left_leg", "right_leg")
LIMB_CHAINS = (
    (13, 16, 18, 20, 22),
    (14, 17, 19, 21, 23),
    (1, 4, 7, 10),
    (2, 5, 8, 11),
)
NUM_LIMBS = len(LIMB_CHAINS)
LIMB_FLIP_PERM = np.array([1, 0, 3, 2], dtype=np.int32)

# ---------------------------------------------------------------------------------------------- groups
# Evaluation groups of Table 1, as SMPL joint indices: the paper names the groups only; these are the
# authors' test script's (the shoulder group holds the collars, the foot group the ankles; the wrist group
# is the two wrists, not the hands).
EVAL_GROUPS = {
    "Hd": (12, 15),
    "Ts": (3, 6, 9),
    "Sr": (13, 14, 16, 17),
    "Ew": (18, 19),
    "Wt": (20, 21),
    "Hp": (1, 2),
    "Kn": (4, 5),
    "Ft": (7, 8, 10, 11),
}
GROUP_NAMES = tuple(EVAL_GROUPS)


def joint_to_point(j: int) -> int:
    """Index among the 41 points of SMPL joint ``j`` (1..23)."""
    if not 1 <= j < NUM_JOINTS:
        raise ValueError(f"joint {j} has no point index (the pelvis is the origin)")
    return j - 1


def group_point_indices(name: str) -> np.ndarray:
    """Indices among the 41 points of the joints of evaluation group ``name`` (e.g. 'Hd')."""
    return np.array([joint_to_point(j) for j in EVAL_GROUPS[name]], dtype=np.int32)


# The joint sets that an MPJPE averages over, as SMPL joint indices. EVAL_JOINTS_16: the authors' test script
# (hips, spine1, knees, ankles, spine3, neck, head, shoulders, elbows, wrists; close to the 17-joint Human3.6M
# protocol of the methods the paper compares with in Tables 2 and 3). EVAL_JOINTS_23: every non-root joint.
# The groups above are not a partition of either (the 16 leave out spine2, the feet, collars and hands).
EVAL_JOINTS_16 = (1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 18, 19, 20, 21)
EVAL_JOINTS_23 = tuple(range(1, NUM_JOINTS))
JOINT_SETS = {"Jt": EVAL_JOINTS_23, "Jt16": EVAL_JOINTS_16}  # metrics.json key -> SMPL joints


def joint_set_point_indices(key: str) -> np.ndarray:
    """Indices among the 41 points of the joints of ``JOINT_SETS[key]`` ("Jt": 23 joints, "Jt16": 16)."""
    return np.array([joint_to_point(j) for j in JOINT_SETS[key]], dtype=np.int32)


JOINT_POINTS = np.arange(NUM_JOINTS - 1, dtype=np.int32)  # points 0..22
LANDMARK_POINTS = np.arange(NUM_JOINTS - 1, NUM_POINTS, dtype=np.int32)  # points 23..40


def points_from_smpl(joints, landmarks):
    """Build the 41 root-relative points from SMPL outputs.

    joints: (..., 24, 3) metres; landmarks: (..., 18, 3) metres, same frame.
    Returns (..., 41, 3): joints 1..23 then landmarks, minus the pelvis. Works on numpy or TF tensors.
    """
    if isinstance(joints, np.ndarray):
        root = joints[..., :1, :]
        return np.concatenate([joints[..., 1:, :], landmarks], axis=-2) - root
    import tensorflow as tf

    root = joints[..., :1, :]
    return tf.concat([joints[..., 1:, :], landmarks], axis=-2) - root


def bone_vectors(points):
    """Bone vectors of the 42-node tree: node i minus its parent, for i in 1..41 (paper eq. 1, unnormalised).

    points: (..., 41, 3) root-relative. Returns (..., 41, 3). Works on numpy or TF tensors.
    """
    idx_parent = TREE_PARENTS[1:]
    if isinstance(points, np.ndarray):
        nodes = np.concatenate([np.zeros_like(points[..., :1, :]), points], axis=-2)
        return nodes[..., 1:, :] - np.take(nodes, idx_parent, axis=-2)
    import tensorflow as tf

    nodes = tf.concat([tf.zeros_like(points[..., :1, :]), points], axis=-2)
    return nodes[..., 1:, :] - tf.gather(nodes, idx_parent, axis=-2)


def derive_landmark_parents(template_joints: np.ndarray, template_landmarks: np.ndarray,
                            distances: np.ndarray = LANDMARK_PARENT_DISTANCES,
                            candidates=None) -> tuple[np.ndarray, np.ndarray]:
    """For each landmark, the SMPL joint whose template distance best matches the published one.

    template_joints: (24, 3), template_landmarks: (18, 3) metres, rest pose of one model.
    candidates: optional per-landmark iterable of allowed joint ids (anatomical plausibility).
    Returns (parents (18,) int32, residual (18,) metres = |template distance - published distance|).
    """
    d = np.linalg.norm(template_landmarks[:, None, :] - template_joints[None, :, :], axis=-1)  # (18, 24)
    err = np.abs(d - distances[:, None])
    if candidates is not None:
        mask = np.full_like(err, np.inf)
        for k, cands in enumerate(candidates):
            mask[k, list(cands)] = 0.0
        err = err + mask
    parents = np.argmin(err, axis=1).astype(np.int32)
    return parents, err[np.arange(len(parents)), parents]
