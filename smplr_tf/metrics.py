"""The paper's metrics (Sec. 4.3; Tables 1-4): MPJPE protocols 1 and 2, per-group errors, landmark and bone
length errors, SMPL surface error, silhouette IoU and gender accuracy.

Inputs are metres, outputs millimetres (IoU and accuracy: fractions). All functions are numpy; the
accumulators take batches and return plain dicts that go straight into ``metrics.json``.

Definitions (choices recorded in BUILD_NOTES.md):

* Points: the 41 root-relative points of :mod:`smplr_tf.body.skeleton` (SMPL joints 1..23 then the 18
  landmarks), or only the 23 joints for joint-only models (Alexnet, SHN_nL). The pelvis is the origin
  of both prediction and ground truth, so it is not averaged (its error is 0 by construction).
* Protocol 1: per-point Euclidean distance of the root-relative points.
* Protocol 2: the prediction is aligned to the ground truth with a similarity Procrustes (scale, proper
  rotation, translation; :mod:`smplr_tf.procrustes`) fitted on the 24 joints (the zero root included),
  then applied to every point (landmarks follow the joints' alignment).
* Groups ``Hd Ts Sr Ew Wt Hp Kn Ft``: mean over the joints of ``skeleton.EVAL_GROUPS`` (the authors' test
  script's groups); ``Jt``: mean over the 23 non-root joints (Table 1's column); ``Jt16``: mean over the 16
  joints of ``skeleton.EVAL_JOINTS_16`` (the authors' test script's average, close to the Human3.6M 17-joint
  protocol: what Tables 2 and 3 compare with other methods); ``Lm``: mean over the 18 landmarks; ``Bn``: mean
  absolute bone-length error over the bones of the 42-node tree (``skeleton.bone_vectors``): the 41 bones,
  or the 23 joint bones for 23 points.
* Surface: mean per-vertex distance after subtracting each mesh's own pelvis joint (protocol 1).
* IoU: |A ∩ B| / |A ∪ B| of the projected predicted mesh and the ground-truth mask, per image, averaged.
* Gender accuracy: Psi's gender output (male where >= 0) against the ground-truth index (0 f, 1 m);
  neutral (2) ground truth is skipped.
"""

from __future__ import annotations

import numpy as np

from smplr_tf import procrustes
from smplr_tf.body import skeleton

MM = 1000.0
GROUPS = skeleton.GROUP_NAMES  # ("Hd", "Ts", "Sr", "Ew", "Wt", "Hp", "Kn", "Ft")
TABLE1_COLUMNS = GROUPS + ("Jt", "Lm", "Bn")
JOINT_SET_KEYS = tuple(skeleton.JOINT_SETS)  # ("Jt", "Jt16"): 23 and 16 joints
NUM_JOINT_POINTS = skeleton.NUM_JOINTS - 1  # 23


def _check_points(pred, gt, where="points"):
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"{where}: prediction {pred.shape} and ground truth {gt.shape} differ")
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape[1] not in (NUM_JOINT_POINTS, skeleton.NUM_POINTS):
        raise ValueError(f"{where}: expected (B, 23 or 41, 3), got {pred.shape}")
    return pred, gt


def with_root(points: np.ndarray) -> np.ndarray:
    """(B, P, 3) root-relative -> (B, P + 1, 3) with the zero root prepended (node 0)."""
    return np.concatenate([np.zeros_like(points[:, :1]), points], axis=1)


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per point. pred, gt: (..., P, 3) metres -> (..., P) metres."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def align_protocol2(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol-2 alignment of root-relative points: Procrustes fitted on the 24 joints (root included).

    pred, gt: (B, P, 3), P = 23 or 41, metres. Returns the aligned prediction (B, P, 3) (no longer
    root-relative: the root moves with the alignment).
    """
    pred, gt = _check_points(pred, gt, "align_protocol2")
    pr, gr = with_root(pred), with_root(gt)
    fit = np.arange(skeleton.NUM_JOINTS)
    return procrustes.align(pr, gr, fit_idx=fit)[:, 1:]


def bone_lengths(points: np.ndarray) -> np.ndarray:
    """Bone lengths of the 42-node tree. points: (B, 23 or 41, 3) root-relative -> (B, 23 or 41) metres.

    For 23 points only the bones between joints (the first 23) are returned.
    """
    points = np.asarray(points, dtype=np.float64)
    p = points.shape[-2]
    if p == NUM_JOINT_POINTS:
        pad = np.zeros(points.shape[:-2] + (skeleton.NUM_LANDMARKS, 3))
        full = np.concatenate([points, pad], axis=-2)
    else:
        full = points
    lengths = np.linalg.norm(skeleton.bone_vectors(full), axis=-1)
    return lengths[..., :p]


def table1_row(pred: np.ndarray, gt: np.ndarray, protocol: int = 1) -> dict:
    """Table-1 columns (mm) for one set of predictions.

    pred, gt: (B, P, 3) root-relative metres, P = 23 or 41. protocol: 1 or 2.
    Returns {"Hd": .., ..., "Ft": .., "Jt": .. (23 joints), "Jt16": .. (16 joints), "Lm": .. (None for 23
    points), "Bn": ..}.
    """
    acc = PointMetrics()
    acc.update(pred, gt)
    return acc.result()[f"p{protocol}"]


class PointMetrics:
    """Accumulates per-point errors over batches for protocols 1 and 2 (Table 1 columns).

    ``update(pred, gt)`` with (B, P, 3) root-relative metres (P = 23 or 41, fixed per accumulator);
    ``result()`` -> ``{"count": n, "p1": {col: mm}, "p2": {col: mm}, "per_point_p1": [P mm]}``.
    """

    def __init__(self):
        self.count = 0
        self.num_points = None
        self._sum = {1: None, 2: None}
        self._bone = {1: None, 2: None}

    def update(self, pred, gt) -> None:
        pred, gt = _check_points(pred, gt, "PointMetrics.update")
        if self.num_points is None:
            self.num_points = pred.shape[1]
            for p in (1, 2):
                self._sum[p] = np.zeros(self.num_points)
                self._bone[p] = np.zeros(self.num_points)
        elif pred.shape[1] != self.num_points:
            raise ValueError(f"PointMetrics: got {pred.shape[1]} points after {self.num_points}")
        gt_bones = bone_lengths(gt)
        for p, pp in ((1, pred), (2, align_protocol2(pred, gt))):
            self._sum[p] += point_errors(pp, gt).sum(axis=0)
            # Bone vectors of the aligned prediction: relative to its (moved) root node.
            if p == 2:
                aligned_root = _aligned_root(pred, gt)
                bl = bone_lengths(pp - aligned_root[:, None, :])
            else:
                bl = bone_lengths(pp)
            self._bone[p] += np.abs(bl - gt_bones).sum(axis=0)
        self.count += pred.shape[0]

    def result(self) -> dict:
        out = {"count": int(self.count)}
        if not self.count:
            return out
        for p in (1, 2):
            per_point = self._sum[p] / self.count * MM
            bones = self._bone[p] / self.count * MM
            row = {g: float(per_point[skeleton.group_point_indices(g)].mean()) for g in GROUPS}
            for key in JOINT_SET_KEYS:
                row[key] = float(per_point[skeleton.joint_set_point_indices(key)].mean())
            row["Lm"] = float(per_point[NUM_JOINT_POINTS:].mean()) if self.num_points > NUM_JOINT_POINTS else None
            row["Bn"] = float(bones.mean())
            out[f"p{p}"] = row
        out["per_point_p1"] = [float(v) for v in self._sum[1] / self.count * MM]
        return out


def _aligned_root(pred, gt):
    """Where the zero root of ``pred`` lands under its protocol-2 alignment: (B, 3)."""
    pr, gr = with_root(pred), with_root(gt)
    fit = np.arange(skeleton.NUM_JOINTS)
    s, r, t = procrustes.similarity_transform(pr[:, fit], gr[:, fit])
    return t  # s * R @ 0 + t


# ------------------------------------------------------------------------------------------------ surface

def surface_errors(pred_vertices, pred_root, gt_vertices, gt_root) -> np.ndarray:
    """Mean per-vertex distance after subtracting each mesh's pelvis (protocol 1).

    pred_vertices, gt_vertices: (B, V, 3) metres; pred_root, gt_root: (B, 3) pelvis joints of each mesh.
    Returns (B,) metres.
    """
    pv = np.asarray(pred_vertices, np.float64) - np.asarray(pred_root, np.float64)[:, None, :]
    gv = np.asarray(gt_vertices, np.float64) - np.asarray(gt_root, np.float64)[:, None, :]
    if pv.shape != gv.shape:
        raise ValueError(f"surface_errors: meshes {pv.shape} and {gv.shape} differ")
    return np.linalg.norm(pv - gv, axis=-1).mean(axis=-1)


# ------------------------------------------------------------------------------------------------ IoU

def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of the same shape (H, W). Both empty -> 1.0."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"mask_iou: masks {a.shape} and {b.shape} differ")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def silhouette_iou(vertices_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, mask: np.ndarray) -> float:
    """IoU of the predicted mesh's silhouette (rasterised with OpenCV, ``render.silhouette``) and a mask.

    vertices_cam: (V, 3) metres in the camera frame of ``K`` (3, 3) (the crop's intrinsics);
    faces: (F, 3) int; mask: (H, W) bool / 0-255 ground-truth silhouette.
    """
    from smplr_tf import render

    mask = np.asarray(mask)
    sil = render.silhouette(np.asarray(vertices_cam, np.float32), np.asarray(faces), np.asarray(K, np.float32),
                            mask.shape[:2])
    return mask_iou(sil, mask > 0 if mask.dtype != bool else mask)


# ------------------------------------------------------------------------------------------------ gender

def gender_correct(pred_gender, gt_gender) -> np.ndarray:
    """Per-sample correctness. pred_gender: (B,) Psi output (male where >= 0); gt_gender: (B,) int 0/1/2.

    Returns (B,) float: 1 right, 0 wrong, NaN where the ground truth is neutral (2, unknown).
    """
    pred_idx = (np.asarray(pred_gender, np.float64) >= 0).astype(np.int64)
    gt = np.asarray(gt_gender).astype(np.int64)
    out = (pred_idx == gt).astype(np.float64)
    out[gt > 1] = np.nan
    return out


class MeanMetric:
    """Running mean of per-sample values, NaN skipped."""

    def __init__(self):
        self.total = 0.0
        self.count = 0

    def update(self, values) -> None:
        v = np.asarray(values, np.float64).ravel()
        v = v[~np.isnan(v)]
        self.total += float(v.sum())
        self.count += int(v.size)

    def result(self):
        return self.total / self.count if self.count else None


# ------------------------------------------------------------------------------------------------ ALL_Proc

def all_proc(output_points, input_points, vertices, root):
    """ALL_Proc (paper Sec. 4.5): align SMPLR's output onto its own input JL, apply to the mesh.

    output_points: (B, 41, 3) root-relative points of the SMPL output; input_points: (B, 41, 3) the JL
    given to SMPLR (SHN / DAE output), root-relative; vertices: (B, V, 3) SMPL output mesh; root: (B, 3)
    the SMPL output's pelvis joint. No ground truth is used. The transform is fitted on all 41 points and
    the zero root (42 nodes).
    Returns (aligned_points (B, 41, 3), aligned_vertices (B, V, 3)), root-relative: protocol 1 subtracts the
    root joint, and the aligned body's root is where the transform puts the old one (t), so t is subtracted
    (the result is ``s R x``: the fitted translation only serves the fit). Consequence, used as a test:
    protocol 2 of ALL_Proc equals protocol 2 of ALL (as in the paper's Table 2).
    """
    out = with_root(np.asarray(output_points, np.float64))
    inp = with_root(np.asarray(input_points, np.float64))
    s, r, t = procrustes.similarity_transform(out, inp)
    verts_rel = np.asarray(vertices, np.float64) - np.asarray(root, np.float64)[:, None, :]
    pts = procrustes.apply_transform(out[:, 1:], s, r, t) - t[:, None, :]
    verts = procrustes.apply_transform(verts_rel, s, r, t) - t[:, None, :]
    return pts, verts
