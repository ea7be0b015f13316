"""Batched SMPL fitting to target 3D points, in TensorFlow.

The fitted body is one gender of an SMPL-layout model (:class:`~smplr_tf.body.model_io.BodyModelData`: the
free model or official files). Its *points* are the 24 SMPL joints followed by a few surface vertices (by
default the model's 18 landmarks): ``(B, 24 + L, 3)`` metres. Targets are given on any skeleton through a
:class:`JointMap`: each of the Q target joints is a weighted sum of body points (usually one point), with a
per-joint weight in the data term (0 = ignored), so a subset of the 24 joints / 18 landmarks and a foreign
skeleton (Human3.6M's 32 mocap joints, ...) are the same case.

Objective, per frame b (all lengths in metres, angles in radians)::

    E_b = sum_q w_q |M_q . P_b(pose, betas) + trans - T_bq|^2 / sum_q w_q          (mean squared error, m^2)
        + betas_weight * |betas|^2
        + back_weight * sum_{spine joints, 3 axes} relu(|theta| - back_limit)^2   (the paper's back-bend range)
        + angle_weight * sum_{joints 1..23} relu(|r_k| - angle_limit)^2           (joint-angle sanity)
        + pose_weight * |body pose|^2

optimised over axis-angle pose (B, 72), translation (B, 3) and betas (B, 10), one shared (1, 10) for the batch
(``shared_betas``), or held fixed (``fixed_betas``), with a Keras optimiser (Adam, cosine-decayed step) in a
``tf.function`` (XLA by default). The global rotation and translation start from a weighted Kabsch alignment
of the initial body to the targets, so a zero / mean / predicted initial pose needs no global orientation.
:class:`GaussNewtonFitter` solves the same problem without the pose priors by damped Gauss-Newton steps on an
analytic Jacobian: a few iterations instead of hundreds of Adam steps.

3D points -> SMPL (:func:`points_to_smpl`): SMPLR's Psi / Omega (:func:`psi_omega_start`, the points first
turned into the upright frame the networks learnt, :func:`canonical_rotation`), optionally refined by fitting.

Only the points are computed (the 24 joints by the kinematic chain, the L vertices by their own blend shapes
and skinning), never the full mesh, so a step costs O(B * (24 + L)) and thousands of frames fit per second on
a CPU.
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np
import tensorflow as tf
from scipy.spatial.transform import Rotation

from smplr_tf import procrustes
from smplr_tf.body import skeleton
from smplr_tf.body.model_io import NUM_BETAS, NUM_POSE_BASIS, BodyModelData
from smplr_tf.body.smpl import kinematic_chain, rodrigues, skin_vertices

NUM_JOINTS = skeleton.NUM_JOINTS
SPINE_JOINTS = (3, 6, 9)  # spine1, spine2, spine3: the back whose bend the paper bounds


# ------------------------------------------------------------------------------------------ point model


class PointModel:
    """SMPL restricted to its 24 joints and the vertices ``vertex_ids`` (default: the model's landmarks).

    ``model(betas (B, 10), rotmats (B, 24, 3, 3))`` -> points (B, 24 + L, 3) float32, metres, SMPL frame (global
    rotation about the rest pelvis joint, no translation); equal to the full layer's joints and vertices.
    """

    def __init__(self, data: BodyModelData, vertex_ids=None):
        ids = np.asarray(data.landmark_ids if vertex_ids is None else vertex_ids, np.int64).reshape(-1)
        self.data = data
        self.vertex_ids = ids
        self.num_points = NUM_JOINTS + len(ids)
        self.parents = data.parents
        jr = data.J_regressor.astype(np.float64)
        # rest joints = [1, betas] @ joint_basis, (11, 72)
        self._joint_basis = tf.constant(np.concatenate([
            (jr @ data.v_template).reshape(1, NUM_JOINTS * 3),
            np.einsum("jv,vcs->sjc", jr, data.shapedirs[..., :NUM_BETAS]).reshape(NUM_BETAS, NUM_JOINTS * 3)]),
            tf.float32)
        L = len(ids)
        self._vert_shape = tf.constant(np.concatenate([
            data.v_template[ids].reshape(1, 3 * L),
            data.shapedirs[ids][..., :NUM_BETAS].transpose(2, 0, 1).reshape(NUM_BETAS, 3 * L)]), tf.float32)
        self._pose_blend = bool(np.any(data.posedirs[ids]))
        self._vert_pose = tf.constant(data.posedirs[ids].transpose(2, 0, 1).reshape(NUM_POSE_BASIS, 3 * L),
                                      tf.float32)
        self._weights = tf.constant(data.weights[ids], tf.float32)  # (L, 24)

    def rest_joints(self, betas: tf.Tensor) -> tf.Tensor:
        """betas (B, 10) -> rest-pose joints (B, 24, 3), metres."""
        b = tf.shape(betas)[0]
        coeffs = tf.concat([tf.ones([b, 1]), betas], axis=1)
        return tf.reshape(tf.matmul(coeffs, self._joint_basis), [b, NUM_JOINTS, 3])

    def __call__(self, betas: tf.Tensor, rotmats: tf.Tensor) -> tf.Tensor:
        betas = tf.cast(betas, tf.float32)
        b = tf.shape(betas)[0]
        rest = self.rest_joints(betas)
        joints, skin_rot, skin_trans = kinematic_chain(rotmats, rest, self.parents)
        if len(self.vertex_ids) == 0:
            return joints
        coeffs = tf.concat([tf.ones([b, 1]), betas], axis=1)
        v = tf.matmul(coeffs, self._vert_shape)
        if self._pose_blend:
            feat = tf.reshape(rotmats[:, 1:] - tf.eye(3), [b, NUM_POSE_BASIS])
            v += tf.matmul(feat, self._vert_pose)
        v = tf.reshape(v, [b, -1, 3])
        verts = skin_vertices(self._weights, skin_rot, skin_trans, v)
        return tf.concat([joints, verts], axis=1)


# -------------------------------------------------------------------------------------------- joint map


@dataclasses.dataclass
class JointMap:
    """Q target joints as weighted sums of the body's P = 24 + L points.

    matrix: (Q, P) float, row q = the body point(s) that target joint q stands for (rows of one-hot for a
    direct correspondence); weights: (Q,) float, the joint's weight in the data term (0: not fitted).
    """

    matrix: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_pairs(cls, num_targets: int, pairs: dict, weights=None, num_points: int = skeleton.NUM_NODES):
        """pairs {target index: body point index (0..23 joints, 24.. vertices)}; weights {target: w} (default 1
        for every paired target, 0 for the others)."""
        m = np.zeros((num_targets, num_points), np.float32)
        w = np.zeros(num_targets, np.float32)
        for q, p in pairs.items():
            m[q, p] = 1.0
            w[q] = 1.0
        for q, v in (weights or {}).items():
            w[q] = float(v)
        return cls(m, w)

    @classmethod
    def smpl_points(cls, indices=None, num_points: int = skeleton.NUM_NODES):
        """Targets = the body points ``indices`` themselves (default all: 24 joints then the landmarks)."""
        idx = np.arange(num_points) if indices is None else np.asarray(indices).reshape(-1)
        return cls.from_pairs(len(idx), {q: int(p) for q, p in enumerate(idx)}, num_points=num_points)

    @property
    def pairs(self):
        """(target index, body point index) of every one-hot row with a positive weight."""
        out = []
        for q in range(len(self.weights)):
            nz = np.flatnonzero(self.matrix[q])
            if self.weights[q] > 0 and len(nz) == 1 and self.matrix[q, nz[0]] == 1.0:
                out.append((q, int(nz[0])))
        return out


# ---------------------------------------------------------------------------------------------- priors


@dataclasses.dataclass
class Priors:
    """Weights of the prior terms (see the module docstring; the data term is a mean squared error in m^2)."""

    betas_weight: float = 1e-5
    pose_weight: float = 1e-6
    back_limit: float = 0.5  # radians, per axis-angle component of spine1..3
    back_weight: float = 1.0
    angle_limit: float = 2.6  # radians, rotation angle of any body joint
    angle_weight: float = 1.0


def back_bend_excess(pose: tf.Tensor, limit: float) -> tf.Tensor:
    """pose (B, 72) axis-angle -> (B, 3, 3) radians by which each spine joint's components leave [-limit, limit]."""
    spine = tf.gather(tf.reshape(pose, [-1, NUM_JOINTS, 3]), SPINE_JOINTS, axis=1)
    return tf.nn.relu(tf.abs(spine) - limit)


def prior_terms(pose: tf.Tensor, betas: tf.Tensor, priors: Priors) -> tf.Tensor:
    """(B,) sum of the prior terms; pose (B, 72) axis-angle, betas (B, 10) or (1, 10)."""
    body = tf.reshape(pose, [-1, NUM_JOINTS, 3])[:, 1:]
    angle = tf.sqrt(tf.reduce_sum(tf.square(body), -1) + 1e-12)
    e = priors.pose_weight * tf.reduce_sum(tf.square(body), [1, 2])
    e += priors.angle_weight * tf.reduce_sum(tf.square(tf.nn.relu(angle - priors.angle_limit)), 1)
    e += priors.back_weight * tf.reduce_sum(tf.square(back_bend_excess(pose, priors.back_limit)), [1, 2])
    return e + priors.betas_weight * tf.reduce_sum(tf.square(betas), 1)


# --------------------------------------------------------------------------------------------- fitter


class Fitter:
    """Fits batches of frames; compiled once per (batch size, options), reused for every batch.

    Args:
      data: the body model (one gender). vertex_ids: the surface points besides the joints (default: the
        landmarks, none when ``joint_map`` has 24 columns).
      joint_map: how the targets relate to the body points (default: the 24 joints then the L vertices).
      batch_size: frames per compiled step (the last chunk is padded). steps: optimiser steps per batch.
      learning_rate: Adam's initial step, cosine-decayed to 1% over ``steps``. priors: :class:`Priors`.
      xla: compile the step with XLA.
    """

    def __init__(self, data: BodyModelData, joint_map: JointMap | None = None, vertex_ids=None,
                 batch_size: int = 1024, steps: int = 150, learning_rate: float = 0.05,
                 priors: Priors | None = None, xla: bool = True):
        if vertex_ids is None and joint_map is not None and joint_map.matrix.shape[1] == NUM_JOINTS:
            vertex_ids = []  # a map onto the joints alone: no vertex computed
        self.model = PointModel(data, vertex_ids)
        self.joint_map = joint_map or JointMap.smpl_points(num_points=self.model.num_points)
        if self.joint_map.matrix.shape[1] != self.model.num_points:
            raise ValueError(f"joint map has {self.joint_map.matrix.shape[1]} body points, the model "
                             f"{self.model.num_points}")
        self.batch_size, self.steps, self.priors = int(batch_size), int(steps), priors or Priors()
        q = self.joint_map.matrix.shape[0]
        self._map = tf.constant(self.joint_map.matrix, tf.float32)
        B = self.batch_size
        self.pose = keras.Variable(np.zeros((B, 72), np.float32), name="pose")
        self.trans = keras.Variable(np.zeros((B, 3), np.float32), name="trans")
        self.betas = keras.Variable(np.zeros((B, NUM_BETAS), np.float32), name="betas")
        self.shared = keras.Variable(np.zeros((1, NUM_BETAS), np.float32), name="shared_betas")
        self._target = tf.Variable(np.zeros((B, q, 3), np.float32), trainable=False)
        self._w = tf.Variable(np.zeros((B, q), np.float32), trainable=False)
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(self.steps, 1), alpha=0.01)
        self._optimizers = {}
        self._schedule = schedule
        self._xla = xla
        self._steps = {}

    # --------------------------------------------------------------------------------------- internals
    def _points(self, pose, betas, trans):
        pts = self.model(betas, rodrigues(tf.reshape(pose, [-1, NUM_JOINTS, 3])))
        return tf.einsum("qp,bpc->bqc", self._map, pts) + trans[:, None]

    def _betas_of(self, mode):
        return {"free": self.betas, "shared": tf.broadcast_to(self.shared, [self.batch_size, NUM_BETAS]),
                "fixed": self.betas}[mode]

    def _loss(self, mode):
        betas = self._betas_of(mode)
        pred = self._points(self.pose, betas, self.trans)
        sq = tf.reduce_sum(tf.square(pred - self._target), -1)
        data = tf.reduce_sum(self._w * sq, 1) / tf.maximum(tf.reduce_sum(self._w, 1), 1e-9)
        valid = tf.cast(tf.reduce_sum(self._w, 1) > 0, tf.float32)  # padded frames add nothing
        return tf.reduce_sum(valid * (data + prior_terms(self.pose, betas, self.priors)))

    def _train_vars(self, mode):
        return [self.pose, self.trans] + {"free": [self.betas], "shared": [self.shared], "fixed": []}[mode]

    def _step_fn(self, mode):
        if mode not in self._steps:
            opt = keras.optimizers.Adam(self._schedule)
            variables = self._train_vars(mode)
            opt.build(variables)
            self._optimizers[mode] = opt

            def step():
                with tf.GradientTape() as tape:
                    loss = self._loss(mode)
                grads = tape.gradient(loss, variables)
                opt.apply_gradients(zip(grads, variables))
                return loss

            self._steps[mode] = tf.function(step, jit_compile=self._xla)
        return self._steps[mode], self._optimizers[mode]

    # --------------------------------------------------------------------------------------------- API
    def fit(self, target, weights=None, init_pose=None, init_betas=None, fixed_betas=None,
            shared_betas: bool = False, align: bool = True) -> dict:
        """Fit N frames.

        target: (N, Q, 3) metres (any frame); weights: None (the joint map's), (Q,) or (N, Q) (0 = missing);
        init_pose: (N, 72) or (72,) axis-angle, default zero (its global rotation is replaced by the alignment
        when ``align``); init_betas: (N, 10) or (10,), default 0; fixed_betas: (N, 10) or (10,) held fixed;
        shared_betas: one shape fitted for all N frames (N <= batch_size); align: start from the Kabsch
        alignment (else from ``init_pose``'s own global rotation, translated onto the targets' centroid).
        Returns numpy float32: pose (N, 72), betas (N, 10), trans (N, 3), points (N, P, 3) body points (metres,
        same frame as the targets), fitted (N, Q, 3), error (N,) weighted RMS distance to the targets (metres).
        """
        target = np.asarray(target, np.float32)
        n, q = target.shape[:2]
        w = self.joint_map.weights if weights is None else np.asarray(weights, np.float32)
        w = np.broadcast_to(w, (n, q)).astype(np.float32)
        pose0 = np.broadcast_to(np.zeros(72, np.float32) if init_pose is None else np.asarray(init_pose, np.float32),
                                (n, 72)).copy()
        src_b = init_betas if fixed_betas is None else fixed_betas
        betas0 = np.broadcast_to(np.zeros(NUM_BETAS, np.float32) if src_b is None else
                                 np.asarray(src_b, np.float32)[..., :NUM_BETAS], (n, NUM_BETAS)).copy()
        mode = "fixed" if fixed_betas is not None else ("shared" if shared_betas else "free")
        if mode == "shared" and n > self.batch_size:
            raise ValueError(f"shared_betas fits one batch: {n} frames > batch_size {self.batch_size}")
        out = {k: [] for k in ("pose", "betas", "trans", "points", "fitted", "error")}
        B = self.batch_size
        for s in range(0, n, B):
            e = min(s + B, n)
            res = self._fit_chunk(target[s:e], w[s:e], pose0[s:e], betas0[s:e], mode, align)
            for k in out:
                out[k].append(res[k])
        return {k: np.concatenate(v) for k, v in out.items()}

    def _fit_chunk(self, target, w, pose0, betas0, mode, align):
        m, B = len(target), self.batch_size
        pad = B - m

        def padded(a):
            return np.concatenate([a, np.repeat(a[:1], pad, 0)]) if pad else a

        target, pose0, betas0 = padded(target), padded(pose0), padded(betas0)
        w = np.concatenate([w, np.zeros((pad,) + w.shape[1:], np.float32)]) if pad else w
        if mode == "shared":
            betas0 = np.broadcast_to(betas0[:1], betas0.shape).copy()
        if align:
            pose0, trans0 = self._align(target, w, pose0, betas0)
        else:  # keep the initial rotation; translate the weighted centroid of the mapped points onto the targets'
            src = np.einsum("qp,bpc->bqc", self.joint_map.matrix,
                            self._body_points(pose0, betas0))
            wn = w / np.maximum(w.sum(1, keepdims=True), 1e-9)
            trans0 = np.einsum("bq,bqc->bc", wn, target - src).astype(np.float32)
        pose, betas, trans = self._optimise(mode, target, w, pose0, betas0, trans0)
        return self._result(pose, betas, trans, target, w, m)

    def _optimise(self, mode, target, w, pose0, betas0, trans0):
        """Adam from the start; (B, ...) numpy in and out: (pose (B, 72), betas (B, 10), trans (B, 3))."""
        B = self.batch_size
        self.pose.assign(pose0)
        self.trans.assign(trans0)
        self.betas.assign(betas0)
        self.shared.assign(betas0[:1])
        self._target.assign(target)
        self._w.assign(w)
        step, opt = self._step_fn(mode)
        for v in opt.variables:
            v.assign(tf.zeros_like(v))
        for _ in range(self.steps):
            step()
        betas = self._betas_of(mode).numpy() if mode != "shared" else np.repeat(self.shared.numpy(), B, 0)
        return self.pose.numpy(), betas, self.trans.numpy()

    def _body_points(self, pose, betas) -> np.ndarray:
        """pose (B, 72), betas (B, 10) numpy -> the body points (B, P, 3) float32 numpy (compiled once)."""
        if getattr(self, "_points_fn", None) is None:
            self._points_fn = tf.function(
                lambda p, b: self.model(b, rodrigues(tf.reshape(p, [-1, NUM_JOINTS, 3]))), jit_compile=self._xla,
                autograph=False)
        return self._points_fn(tf.constant(pose, tf.float32), tf.constant(betas, tf.float32)).numpy()

    def _result(self, pose, betas, trans, target, w, m):
        """The fit's outputs (see :meth:`fit`) for the first m of the padded batch."""
        pts = self._body_points(pose, betas) + trans[:, None]
        fitted = np.einsum("qp,bpc->bqc", self.joint_map.matrix, pts)
        sq = np.sum((fitted - target) ** 2, -1)
        err = np.sqrt(np.sum(w * sq, 1) / np.maximum(w.sum(1), 1e-9))
        return {"pose": pose[:m], "betas": betas[:m], "trans": trans[:m], "points": pts[:m], "fitted": fitted[:m],
                "error": err[:m].astype(np.float32)}

    def _align(self, target, w, pose0, betas0):
        """Global rotation and translation of the initial body (its own global rotation dropped) by Kabsch."""
        body_pose = pose0.copy()
        body_pose[:, :3] = 0.0
        pts = self._body_points(body_pose, betas0)
        src = np.einsum("qp,bpc->bqc", self.joint_map.matrix, pts)
        R, t = procrustes.kabsch(src.astype(np.float64), target.astype(np.float64),
                                 np.maximum(w, 0).astype(np.float64) + 1e-9)
        pelvis = pts[:, 0].astype(np.float64)
        # SMPL with global rotation R turns about the rest pelvis J0: x -> R (x - J0) + J0 + trans = R x + t.
        trans = t - pelvis + np.einsum("bij,bj->bi", R, pelvis)
        body_pose[:, :3] = Rotation.from_matrix(R).as_rotvec()
        return body_pose.astype(np.float32), trans.astype(np.float32)


class GaussNewtonFitter(Fitter):
    """:class:`Fitter`'s problem solved by damped Gauss-Newton (Levenberg-Marquardt) steps: a few iterations
    where Adam needs hundreds of steps.

    Objective per frame: the data term of :class:`Fitter` (weighted mean squared distance, m^2) +
    ``priors.betas_weight * |betas|^2``; the other priors are left out (the damping keeps the parameters the
    points do not determine, e.g. a hand's twist, at their start). Each iteration linearises the points in
    85 parameters per frame: a small rotation w_k (radians, world axes) of every joint's subtree about the
    joint (root included), betas and translation. The 3x85 Jacobian block of every point is exact:
    d p / d w_k = w_k x (p - J_k) summed over the skinning joints below k, plus the pose blend shapes'
    change, with the betas' columns from the rest joints' and vertices' shape directions carried down the
    chain. The step solves
    (H + lambda diag(H) + mu I) d = -g per frame (H = J^T W J); a frame whose objective does not decrease keeps
    its parameters and raises its lambda 4x, else lambda / 3.

    Args (besides :class:`Fitter`'s, whose ``steps`` is here the number of iterations, default 6):
      damping: the initial lambda. min_damping: mu (m^2 per rad^2), the floor that keeps undetermined
        parameters still.
    ``shared_betas`` is not supported (use :class:`Fitter`).
    """

    def __init__(self, data: BodyModelData, joint_map: JointMap | None = None, vertex_ids=None,
                 batch_size: int = 1024, steps: int = 6, priors: Priors | None = None, xla: bool = True,
                 damping: float = 1e-3, min_damping: float = 1e-6):
        super().__init__(data, joint_map, vertex_ids, batch_size=batch_size, steps=steps, priors=priors, xla=xla)
        self.damping, self.min_damping = float(damping), float(min_damping)
        parents = [int(p) for p in self.model.parents]
        sub = np.zeros((NUM_JOINTS, NUM_JOINTS), np.float32)  # sub[k, j] = 1: j in k's subtree (k included)
        for j in range(NUM_JOINTS):
            k = j
            while k >= 0:
                sub[k, j] = 1.0
                k = parents[k]
        self._parents = parents
        self._strict_anc = tf.constant(sub - np.eye(NUM_JOINTS, dtype=np.float32))  # [k, j]: k above j
        self._anc_self_t = tf.constant(sub.T)  # [j, i]: i on j's chain (j included)
        m = self.model
        L = len(m.vertex_ids)
        data = m.data
        jr = data.J_regressor.astype(np.float64)
        sj = np.einsum("jv,vcs->jcs", jr, data.shapedirs[..., :NUM_BETAS])  # (24, 3, 10) rest-joint directions
        self._sj = tf.constant(sj, tf.float32)
        self._sj_rel = tf.constant(sj - np.concatenate([np.zeros_like(sj[:1]), sj[[max(p, 0) for p in
                                                                                   parents[1:]]]]), tf.float32)
        self._sv = tf.constant(data.shapedirs[m.vertex_ids][..., :NUM_BETAS], tf.float32)  # (L, 3, 10)
        self._posedirs5 = tf.constant(data.posedirs[m.vertex_ids].reshape(L, 3, NUM_JOINTS - 1, 3, 3),
                                      tf.float32)  # (L, 3, k - 1, a, b)
        w = data.weights[m.vertex_ids].astype(np.float32)  # (L, 24)
        self._wv = tf.constant(w)
        self._w_sub = tf.constant(np.einsum("lj,kj->lkj", w, sub))  # (L, k, j): w_lj if j in k's subtree
        self._w_sub_sum = tf.constant(w @ sub.T)  # (L, k)
        self._num_vertices = L
        self._gn_step = None

    def _forward(self, rotmats, betas, trans):
        """Points (B, P, 3) and what the Jacobian needs: joints (B, 24, 3), skin_rot (B, 24, 3, 3), the
        vertices skinned by each joint u (B, L, 24, 3)."""
        m = self.model
        b = tf.shape(betas)[0]
        rest = m.rest_joints(betas)
        joints, g_rot, g_trans = kinematic_chain(rotmats, rest, self._parents)
        if self._num_vertices == 0:
            return joints + trans[:, None], joints, g_rot, None
        coeffs = tf.concat([tf.ones([b, 1]), betas], axis=1)
        v = tf.matmul(coeffs, m._vert_shape)
        if m._pose_blend:
            v += tf.matmul(tf.reshape(rotmats[:, 1:] - tf.eye(3), [b, NUM_POSE_BASIS]), m._vert_pose)
        v = tf.reshape(v, [b, -1, 3])
        u = tf.einsum("bjcd,bld->bljc", g_rot, v) + g_trans[:, None]  # (B, L, 24, 3)
        verts = tf.einsum("lj,bljc->blc", self._wv, u)
        return tf.concat([joints, verts], 1) + trans[:, None], joints, g_rot, u

    def _objective(self, pts, betas):
        fitted = tf.einsum("qp,bpc->bqc", self._map, pts)
        r = fitted - self._target
        wn = self._w / tf.maximum(tf.reduce_sum(self._w, 1, keepdims=True), 1e-9)
        e = tf.reduce_sum(wn * tf.reduce_sum(tf.square(r), -1), 1)
        return e + self.priors.betas_weight * tf.reduce_sum(tf.square(betas), 1), r, wn

    def _jacobian(self, joints, g_rot, u, rotmats):
        """(B, P, 3, 85) d points / d (w (72), betas (10), trans (3))."""
        b = tf.shape(joints)[0]
        # arms a_pk: d p / d w_k = w_k x a_pk
        arm_j = (joints[:, None, :, :] - joints[:, :, None, :]) * self._strict_anc[None, :, :, None]  # (B,k,j,3)
        arms = tf.transpose(arm_j, [0, 2, 1, 3])  # (B, j, k, 3)
        if u is not None:
            arm_v = (tf.einsum("lkj,bljc->blkc", self._w_sub, u)
                     - self._w_sub_sum[None, :, :, None] * joints[:, None, :, :])  # (B, L, k, 3)
            arms = tf.concat([arms, arm_v], 1)
        ax, ay, az = tf.unstack(arms, axis=-1)
        zero = tf.zeros_like(ax)
        # w x a = -[a]x w: rows c, columns d
        jp = tf.stack([tf.stack([zero, az, -ay], -1), tf.stack([-az, zero, ax], -1),
                       tf.stack([ay, -ax, zero], -1)], -2)  # (B, P, k, c, d)
        jp = tf.reshape(tf.transpose(jp, [0, 1, 3, 2, 4]), [b, -1, 3, 3 * NUM_JOINTS])
        if u is not None and self.model._pose_blend:
            # pose blend shapes: w_k turns R_k into exp([G_parent^T w_k]x) R_k, moving the rest vertex by
            # sum_ab posedirs[.., k, a, b] d R_k[a, b], then skinned by sum_j w_j G_j
            n = tf.gather(g_rot, self._parents[1:], axis=1)  # (B, 23, 3, 3): row d = G_parent^T e_d
            nx, ny, nz = tf.unstack(n, axis=-1)
            zero = tf.zeros_like(nx)
            skew = tf.stack([tf.stack([zero, -nz, ny], -1), tf.stack([nz, zero, -nx], -1),
                             tf.stack([-ny, nx, zero], -1)], -2)  # (B, 23, d, 3, 3)
            d_rot = tf.matmul(skew, rotmats[:, 1:, None])  # (B, 23, d, 3, 3)
            d_rest = tf.einsum("lekst,bkdst->blekd", self._posedirs5, d_rot)
            blend = tf.einsum("lj,bjce->blce", self._wv, g_rot)
            extra = tf.reshape(tf.einsum("blce,blekd->blckd", blend, d_rest), [b, -1, 3, 3 * (NUM_JOINTS - 1)])
            extra = tf.concat([tf.zeros_like(extra[..., :3]), extra], -1)
            jp = tf.concat([jp[:, :NUM_JOINTS], jp[:, NUM_JOINTS:] + extra], 1)
        # betas: joints D_j = sum over j's chain of G_parent(i) (S_i - S_parent(i))
        g_par = tf.concat([tf.eye(3, batch_shape=[b])[:, None], tf.gather(g_rot, self._parents[1:], axis=1)], 1)
        e = tf.einsum("bicd,ids->bics", g_par, self._sj_rel)
        d_j = tf.einsum("ji,bics->bjcs", self._anc_self_t, e)  # (B, 24, 3, 10)
        jb = d_j
        if u is not None:
            d_v = (tf.einsum("lj,bjcd,lds->blcs", self._wv, g_rot, self._sv)
                   - tf.einsum("lj,bjcd,jds->blcs", self._wv, g_rot, self._sj)
                   + tf.einsum("lj,bjcs->blcs", self._wv, d_j))
            jb = tf.concat([jb, d_v], 1)
        jt = tf.broadcast_to(tf.eye(3), tf.shape(jp[..., :3]))
        return tf.concat([jp, jb, jt], -1)

    def _make_step(self, fixed: bool):
        n = 3 * NUM_JOINTS + NUM_BETAS + 3
        keep = np.ones(n, np.float32)
        if fixed:
            keep[3 * NUM_JOINTS:3 * NUM_JOINTS + NUM_BETAS] = 0.0
        keep = tf.constant(keep)
        prior = np.zeros(n, np.float32)
        prior[3 * NUM_JOINTS:3 * NUM_JOINTS + NUM_BETAS] = self.priors.betas_weight
        prior = tf.constant(prior)

        def linearise(rotmats, betas, trans, lam):
            """-> the damped normal equations (B, 85, 85), (B, 85), the objective (B,), skin_rot (B, 24, 3, 3)."""
            pts, joints, g_rot, u = self._forward(rotmats, betas, trans)
            obj, r, wn = self._objective(pts, betas)
            jac = tf.einsum("qp,bpcn->bqcn", self._map, self._jacobian(joints, g_rot, u, rotmats))
            sw = tf.sqrt(wn)[:, :, None]
            jw = tf.reshape(sw[..., None] * jac, [tf.shape(jac)[0], -1, n])  # (B, 3Q, 85)
            h = tf.matmul(jw, jw, transpose_a=True)
            g = tf.linalg.matvec(jw, tf.reshape(sw * r, [tf.shape(r)[0], -1]), transpose_a=True)
            x = tf.concat([tf.zeros([tf.shape(betas)[0], 3 * NUM_JOINTS]), betas, trans], 1)
            g = (g + prior * x) * keep
            h = (h + tf.linalg.diag(prior)) * keep[:, None] * keep[None, :]
            h += tf.linalg.diag(lam[:, None] * tf.linalg.diag_part(h) + self.min_damping + (1.0 - keep))
            return h, g, obj, g_rot

        def update(rotmats, betas, trans, lam, d, obj, g_rot):
            """Apply the step d (B, 85) where it lowers the objective; adapt lambda."""
            w = tf.reshape(d[:, :3 * NUM_JOINTS], [-1, NUM_JOINTS, 3])
            g_par = tf.concat([tf.eye(3, batch_shape=[tf.shape(w)[0]])[:, None],
                               tf.gather(g_rot, self._parents[1:], axis=1)], 1)
            local = tf.einsum("bkdc,bkd->bkc", g_par, w)  # G_parent^T w: the change in the joint's own frame
            new_rot = tf.matmul(rodrigues(local), rotmats)
            new_betas = betas + d[:, 3 * NUM_JOINTS:3 * NUM_JOINTS + NUM_BETAS]
            new_trans = trans + d[:, -3:]
            new_obj, _, _ = self._objective(self._forward(new_rot, new_betas, new_trans)[0], new_betas)
            better = new_obj < obj
            rotmats = tf.where(better[:, None, None, None], new_rot, rotmats)
            betas = tf.where(better[:, None], new_betas, betas)
            trans = tf.where(better[:, None], new_trans, trans)
            lam = tf.where(better, lam / 3.0, lam * 4.0)
            return rotmats, betas, trans, lam

        linearise = tf.function(linearise, jit_compile=self._xla, autograph=False)
        update = tf.function(update, jit_compile=self._xla, autograph=False)

        def step(rotmats, betas, trans, lam):
            h, g, obj, g_rot = linearise(rotmats, betas, trans, lam)
            # the solve outside XLA: XLA's CPU Cholesky is ~100x slower than TensorFlow's kernel
            d = tf.linalg.cholesky_solve(tf.linalg.cholesky(tf.cast(h, tf.float64)), tf.cast(g, tf.float64)[..., None])
            return update(rotmats, betas, trans, lam, -tf.cast(d[..., 0], tf.float32), obj, g_rot)

        return tf.function(step, autograph=False)

    def _optimise(self, mode, target, w, pose0, betas0, trans0):
        if mode == "shared":
            raise ValueError("GaussNewtonFitter fits one shape per frame or a fixed one, not a shared one")
        if self._gn_step is None:
            self._gn_step = {}
        if mode not in self._gn_step:
            self._gn_step[mode] = self._make_step(mode == "fixed")
        step = self._gn_step[mode]
        self._target.assign(target)
        self._w.assign(w)
        rotmats = rodrigues(tf.reshape(tf.constant(pose0), [-1, NUM_JOINTS, 3]))
        betas, trans = tf.constant(betas0), tf.constant(trans0)
        lam = tf.fill([self.batch_size], self.damping)
        for _ in range(self.steps):
            rotmats, betas, trans, lam = step(rotmats, betas, trans, lam)
        return rotmats_to_axis_angle(rotmats.numpy()), betas.numpy(), trans.numpy()


# ------------------------------------------------------------------------------------- shape from bones


def rigid_bones(pairs) -> list[tuple[int, int, int, int]]:
    """(target a, target b, body joint a, body joint b) for every mapped pair of SMPL joints that are parent and
    child in SMPL's tree: their distance is a rest-pose length, the same in every frame."""
    body_of = {p: q for q, p in pairs if p < NUM_JOINTS}
    out = []
    for j in range(1, NUM_JOINTS):
        p = int(skeleton.JOINT_PARENTS[j])
        if j in body_of and p in body_of:
            out.append((body_of[p], body_of[j], p, j))
    return out


def betas_from_bone_lengths(data: BodyModelData, targets, joint_map: JointMap, steps: int = 500,
                            betas_weight: float = 1e-5) -> tuple[np.ndarray, dict]:
    """One shape for a subject from its frames: the median length over frames of every rigid bone (see
    :func:`rigid_bones`) of ``targets`` (N, Q, 3) metres, matched by the rest-pose SMPL bones (Adam on betas).
    Returns (betas (10,) float32, {"bones": [(a, b)...], "target_mm": ..., "fitted_mm": ...})."""
    bones = rigid_bones(joint_map.pairs)
    if not bones:
        raise ValueError("the joint map has no pair of mapped SMPL parent / child joints: no bone length to fit")
    targets = np.asarray(targets, np.float64)
    lengths = np.median(np.linalg.norm(targets[:, [b[1] for b in bones]] - targets[:, [b[0] for b in bones]],
                                       axis=-1), axis=0).astype(np.float32)
    model = PointModel(data, vertex_ids=[])
    betas = keras.Variable(np.zeros((1, NUM_BETAS), np.float32))
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.1, steps, alpha=0.01))
    ja, jb = [b[2] for b in bones], [b[3] for b in bones]

    def bone_lengths():
        rest = model.rest_joints(betas)[0]
        return tf.norm(tf.gather(rest, jb) - tf.gather(rest, ja), axis=-1)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(bone_lengths() - lengths)) + betas_weight * tf.reduce_sum(
                tf.square(betas))
        opt.apply_gradients([(tape.gradient(loss, betas), betas)])

    for _ in range(steps):
        step()
    return betas.numpy()[0], {"bones": [(int(a), int(b)) for a, b in zip(ja, jb)],
                              "target_mm": (lengths * 1000).round(1).tolist(),
                              "fitted_mm": (bone_lengths().numpy() * 1000).round(1).tolist()}


# ------------------------------------------------------------------------------------- points -> SMPL


def rotmats_to_axis_angle(rotmats) -> np.ndarray:
    """(B, 24, 3, 3) matrices, not necessarily orthonormal (Omega's output) -> (B, 72) axis-angle of the nearest
    rotations (SVD projection, determinant +1)."""
    m = np.asarray(rotmats, np.float64)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return Rotation.from_matrix((u @ vt).reshape(-1, 3, 3)).as_rotvec().reshape(len(m), 72).astype(np.float32)


#: The body frame Psi / Omega's inputs are turned to (columns: the body's left, up and forward directions in the
#: points' frame): a person upright in the camera frame (y down, z away from the camera) facing the camera, the
#: synthetic generator's person at zero yaw, pitch and roll, which Psi / Omega learnt from.
CANONICAL_FRAME = np.diag([1.0, -1.0, -1.0])
_TORSO_TOP = (12, 16, 17)  # neck, left / right shoulder: SMPL joint indices
_TORSO_BOTTOM = (1, 2)  # left / right hip
_LEFT_RIGHT = ((1, 2), (16, 17))  # (left, right) hips and shoulders


def _joint_positions(points: np.ndarray) -> np.ndarray:
    """(B, 41 | 24 | 23, 3) points (see :func:`points_to_smpl`) -> (B, 24, 3) the 24 SMPL joints among them
    (a zero pelvis for the root-relative 41 / 23 forms)."""
    p = points.shape[1]
    if p == NUM_JOINTS:
        return points
    if p in (skeleton.NUM_POINTS, NUM_JOINTS - 1):
        return np.concatenate([np.zeros_like(points[:, :1]), points[:, :NUM_JOINTS - 1]], axis=1)
    raise ValueError(f"points: expected (B, 41 | 24 | 23, 3), got {points.shape}")


def body_frame(points) -> np.ndarray:
    """Each body's own frame from its joints: (B, 3, 3) float64 rotations whose columns are the body's left,
    up and forward directions.

    points: (B, 41 | 24 | 23, 3) metres, any frame and origin. up = mean of the neck and shoulders minus mean of
    the hips; left = (left hip - right hip) + (left shoulder - right shoulder), made orthogonal to up;
    forward = left x up (SMPL's axes x, y, z at rest).
    """
    J = _joint_positions(np.asarray(points, np.float64))
    up = J[:, _TORSO_TOP].mean(1) - J[:, _TORSO_BOTTOM].mean(1)
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    left = sum(J[:, a] - J[:, b] for a, b in _LEFT_RIGHT)
    left -= np.sum(left * up, -1, keepdims=True) * up
    left /= np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-12)
    return np.stack([left, up, np.cross(left, up)], axis=-1)


def canonical_rotation(points, frame=CANONICAL_FRAME) -> np.ndarray:
    """(B, 41 | 24 | 23, 3) points -> R (B, 3, 3) float64: the rotation taking each body's frame
    (:func:`body_frame`) onto ``frame`` (3, 3) (default :data:`CANONICAL_FRAME`), so the points ``R[b] @ p``
    are upright and face the camera. Rotating the input by Q gives R Q^T: the turned points do not change."""
    return np.einsum("ij,bkj->bik", np.asarray(frame, np.float64), body_frame(points))


_PREDICT_FNS = weakref.WeakKeyDictionary()  # model -> its compiled call; gone with the model


def _predict(model, x: np.ndarray):
    """``model(x, training=False)``; for a Keras model through a ``tf.function`` made once per model (shapes
    relaxed, so a new batch size does not retrace): an eager Keras call of a small network costs more than the
    network itself (Psi + Omega at batch 1: ~20 ms eager, ~3 ms compiled). Other callables are called as they
    are."""
    if not isinstance(model, keras.Model):
        return model(x, training=False)
    fn = _PREDICT_FNS.get(model)
    if fn is None:
        ref = weakref.ref(model)  # the function must not hold the model, or the weak key never goes
        fn = _PREDICT_FNS[model] = tf.function(lambda t: ref()(t, training=False), reduce_retracing=True)
    return fn(tf.constant(x))


def psi_omega_start(points, psi, omega, canonical: bool = True) -> dict:
    """Psi / Omega's answer for SMPLR's 41 points.

    points: (B, 41, 3) metres, root-relative (joints 1..23, then the 18 landmarks); psi, omega: trained Keras
    models (``runs.load_model_from_run``). With ``canonical`` the points are first turned by
    :func:`canonical_rotation` (Psi / Omega learnt upright people: a body lying or upside down is far outside
    what they saw), and Omega's global rotation G' for the turned points is turned back, G = R^T G' (betas,
    gender and the body pose do not depend on the frame): a rotated copy of the points then gives the same
    betas and body pose and the rotated global rotation.
    Returns numpy: betas (B, 10) float32, gender_code (B,) float32 (Psi's sign: < 0 female, >= 0 male),
    pose (B, 72) float32 axis-angle (the nearest rotations of Omega's matrices).
    """
    points = np.asarray(points, np.float32)
    if points.ndim != 3 or points.shape[1:] != (skeleton.NUM_POINTS, 3):
        raise ValueError(f"Psi / Omega take the 41 points (B, 41, 3), got {points.shape}")
    R = canonical_rotation(points) if canonical else None
    x = points if R is None else np.einsum("bij,bpj->bpi", R, points).astype(np.float32)
    shape_out = _predict(psi, x)
    pose = rotmats_to_axis_angle(_predict(omega, x)["rotmats"])
    if R is not None:
        G = np.einsum("bji,bjk->bik", R, Rotation.from_rotvec(pose[:, :3].astype(np.float64)).as_matrix())
        pose[:, :3] = Rotation.from_matrix(G).as_rotvec()
    return {"betas": np.asarray(shape_out["betas"], np.float32),
            "gender_code": np.asarray(shape_out["gender"], np.float32).reshape(-1), "pose": pose}


def _targets_of(points: np.ndarray):
    """(B, 41 | 24 | 23, 3) -> (targets (B, Q, 3), JointMap onto the 42 body points)."""
    p = points.shape[1]
    if p == skeleton.NUM_POINTS:  # SMPLR's 41: joints 1..23, then the 18 landmarks
        idx = list(range(1, NUM_JOINTS)) + list(range(NUM_JOINTS, skeleton.NUM_NODES))
        return points, JointMap.smpl_points(idx)
    if p == NUM_JOINTS - 1:  # joints 1..23 relative to the pelvis: the pelvis is the origin
        points = np.concatenate([np.zeros_like(points[:, :1]), points], axis=1)
    elif p != NUM_JOINTS:
        raise ValueError(f"points: expected (B, 41 | 24 | 23, 3), got {points.shape}")
    return points, JointMap.smpl_points(np.arange(NUM_JOINTS))


def points_to_smpl(points, psi=None, omega=None, gender="neutral", smpl_dir=None, steps: int = 0,
                   learning_rate: float = 0.02, batch_size: int = 256, priors: Priors | None = None,
                   vertices: bool = True, xla: bool = True, canonical: bool = True,
                   solver: str = "gauss_newton") -> dict:
    """3D points -> SMPL parameters and body: SMPLR's reverse mapping (Psi, Omega), optionally refined by fitting.

    points: (B, 41, 3) SMPLR points (joints 1..23 then the 18 landmarks), (B, 24, 3) SMPL joints or (B, 23, 3)
      joints 1..23 with the pelvis at the origin; metres, any frame (Psi / Omega need the 41 points root-relative;
      with ``canonical`` any rotation).
    psi, omega: trained Psi / Omega Keras models (``runs.load_model_from_run``), both or neither; they take the
      41 points. Without them the body is fitted from the zero pose (``steps`` 0 -> 6 Gauss-Newton iterations
      or 300 Adam steps).
    gender: used without Psi ("female" | "male" | "neutral"); with Psi its sign decides female / male.
    canonical: turn the points upright, facing the camera, before Psi / Omega (:func:`psi_omega_start`; they
      learnt upright people).
    smpl_dir: official SMPL files, None = the free model. steps: fitting iterations / steps after Psi / Omega
      (0: none, their answer as it is); a refinement starts from the Kabsch alignment of their body.
    solver: "gauss_newton" (:class:`GaussNewtonFitter`, ``steps`` iterations; 2 refine Psi / Omega) or "adam"
      (:class:`Fitter`, ``steps`` Adam steps). learning_rate: Adam's initial step when refining Psi / Omega
      (fitting from the zero pose uses 0.1).
    Returns numpy: pose (B, 72) axis-angle, betas (B, 10), trans (B, 3) metres, gender (B,) names,
      joints (B, 24, 3), landmarks (B, 18, 3), vertices (B, V, 3) (if ``vertices``) in the points' frame,
      error (B,) RMS distance to the points (metres), faces (F, 3).
    """
    from smplr_tf.body.model_io import find_model_files, load_model_file
    from smplr_tf.body.smpl import SMPL, gender_index_from_sign

    points = np.asarray(points, np.float32)
    targets, jmap = _targets_of(points)
    n = len(points)
    if solver not in ("gauss_newton", "adam"):
        raise ValueError(f"points_to_smpl: solver={solver!r}, expected 'gauss_newton' or 'adam'")
    if (psi is None) != (omega is None):
        raise ValueError("points_to_smpl: pass both psi and omega, or neither")
    if psi is not None:
        start = psi_omega_start(points, psi, omega, canonical=canonical)
        betas0, pose0 = start["betas"], start["pose"]
        genders = np.array(skeleton.GENDERS)[gender_index_from_sign(start["gender_code"])]
    else:
        betas0, pose0 = np.zeros((n, NUM_BETAS), np.float32), np.zeros((n, 72), np.float32)
        genders = np.full(n, str(gender))
        steps = steps or (6 if solver == "gauss_newton" else 300)
    files = find_model_files(smpl_dir)
    out = {"pose": pose0.copy(), "betas": betas0.copy(), "trans": np.zeros((n, 3), np.float32),
           "gender": genders, "error": np.zeros(n, np.float32)}
    for g in sorted(set(genders.tolist())):
        if g not in files:
            raise ValueError(f"points_to_smpl: no '{g}' model in {smpl_dir or 'the free model'}")
        rows = np.flatnonzero(genders == g)
        data = load_model_file(files[g], gender=g)
        if solver == "gauss_newton":
            fitter = GaussNewtonFitter(data, jmap, batch_size=min(batch_size, len(rows)), steps=steps,
                                       priors=priors, xla=xla)
        else:
            fitter = Fitter(data, jmap, batch_size=min(batch_size, len(rows)), steps=steps,
                            learning_rate=learning_rate if psi is not None else 0.1, priors=priors, xla=xla)
        # steps 0: Psi / Omega's answer, only translated onto the points' centroid
        res = fitter.fit(targets[rows], init_pose=pose0[rows], init_betas=betas0[rows], align=steps > 0)
        for k in ("pose", "betas", "trans", "error"):
            out[k][rows] = res[k]
    layers = {g: SMPL(smpl_dir, genders=(g,)) for g in sorted(set(genders.tolist()))}
    out["joints"] = np.zeros((n, NUM_JOINTS, 3), np.float32)
    out["landmarks"] = np.zeros((n, skeleton.NUM_LANDMARKS, 3), np.float32)
    for g, layer in layers.items():
        rows = np.flatnonzero(genders == g)
        body = layer(out["betas"][rows], out["pose"][rows])
        keys = ("joints", "landmarks") + (("vertices",) if vertices else ())
        for k in keys:
            if k not in out:
                out[k] = np.zeros((n,) + tuple(body[k].shape[1:]), np.float32)
            out[k][rows] = body[k].numpy() + out["trans"][rows][:, None]
        out["faces"] = layer.faces
    return out


class OutputRefiner:
    """ALL_Fit: SMPLR's SMPL output refined by fitting it to its own input points (the DAE output, JL_dae); no
    ground truth is used.

    smpl: the pipeline's :class:`~smplr_tf.body.smpl.SMPL` layer (one fitter per gender, built on first use);
    steps: fitting steps from SMPLR's pose and betas (its global rotation kept, see :meth:`Fitter.fit`);
    batch_size: frames per compiled step.
    ``refine(points (B, 41, 3), rotmats (B, 24, 3, 3) | pose (B, 72), betas (B, 10), gender_index (B,))`` ->
    (pose (B, 72) axis-angle, betas (B, 10)); the body SMPL(betas, pose) is then the refined output.
    """

    def __init__(self, smpl, steps: int = 100, batch_size: int = 16, learning_rate: float = 0.02,
                 xla: bool = True):
        self.smpl, self.steps, self.batch_size = smpl, int(steps), int(batch_size)
        self.lr, self.xla = learning_rate, xla
        self._fitters = {}
        _, self._map = _targets_of(np.zeros((1, skeleton.NUM_POINTS, 3), np.float32))  # the 41 points' map

    def refine(self, points, rotmats_or_pose, betas, gender_index):
        points = np.asarray(points, np.float32)
        p = np.asarray(rotmats_or_pose, np.float32)
        pose = rotmats_to_axis_angle(p) if p.ndim == 4 else p.reshape(len(points), 72)
        betas = np.asarray(betas, np.float32).copy()
        g = np.minimum(np.asarray(gender_index, np.int64).reshape(-1), self.smpl.num_genders - 1)
        out_pose = pose.copy()
        for gi in np.unique(g):
            rows = np.flatnonzero(g == gi)
            if gi not in self._fitters:
                self._fitters[gi] = Fitter(self.smpl.model_data[gi], self._map, batch_size=self.batch_size,
                                           steps=self.steps, learning_rate=self.lr, xla=self.xla)
            res = self._fitters[gi].fit(points[rows], init_pose=pose[rows], init_betas=betas[rows], align=False)
            out_pose[rows], betas[rows] = res["pose"], res["betas"]
        return out_pose, betas


# ------------------------------------------------------------------------------------------- scan shape


def fit_scan(data: BodyModelData, scan, steps: int = 300, learning_rate: float = 0.05, init_betas=None,
             max_scan_points: int = 4000, betas_weight: float = 1e-5, seed: int = 0) -> dict:
    """Shape (and pose, translation) of one body scan: the SMPL mesh fitted to the scan's points by a
    symmetric nearest-point (chamfer) loss, Adam on pose, betas and translation.

    scan: (M, 3) metres, SMPL's axes (y up, the body facing +z; a scan in another frame must be rotated first),
    any translation; at most ``max_scan_points`` of them are used (a random subset). The fit starts from the
    zero pose and ``init_betas`` (default 0), translated onto the scan's centroid.
    Returns numpy: betas (10,), pose (72,), trans (3,), vertices (V, 3) in the scan's frame, and
    scan_to_mesh_mm: the mean distance of the scan points to their nearest fitted vertex.
    """
    from smplr_tf.body.smpl import SMPL

    scan = np.asarray(scan, np.float32).reshape(-1, 3)
    if len(scan) > max_scan_points:
        scan = scan[np.random.default_rng(seed).choice(len(scan), max_scan_points, replace=False)]
    layer = SMPL(genders=(data.gender,), models={data.gender: data})
    betas = keras.Variable(np.asarray(np.zeros(NUM_BETAS) if init_betas is None else init_betas,
                                      np.float32).reshape(1, NUM_BETAS))
    pose = keras.Variable(np.zeros((1, 72), np.float32))
    rest = layer(betas, pose)["vertices"].numpy()[0]
    trans = keras.Variable((scan.mean(0) - rest.mean(0)).reshape(1, 3).astype(np.float32))
    target = tf.constant(scan)
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01))
    variables = [pose, betas, trans]

    def nearest(a, b):  # mean over a of the squared distance to the nearest point of b
        d = (tf.reduce_sum(tf.square(a), 1)[:, None] - 2.0 * tf.matmul(a, b, transpose_b=True)
             + tf.reduce_sum(tf.square(b), 1)[None, :])
        return tf.reduce_mean(tf.maximum(tf.reduce_min(d, 1), 0.0))

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            v = layer(betas, pose)["vertices"][0] + trans[0]
            loss = nearest(target, v) + nearest(v, target) + betas_weight * tf.reduce_sum(tf.square(betas))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    for _ in range(steps):
        step()
    verts = layer(betas, pose)["vertices"].numpy()[0] + trans.numpy()[0]
    d = np.sqrt(np.maximum(((scan[:, None] - verts[None]) ** 2).sum(-1).min(1), 0))
    return {"betas": betas.numpy()[0], "pose": pose.numpy()[0], "trans": trans.numpy()[0], "vertices": verts,
            "scan_to_mesh_mm": float(d.mean() * 1000)}
