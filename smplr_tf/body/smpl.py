"""TF-native SMPL: pure functions (Rodrigues, kinematic chain, skinning) and the :class:`SMPL` Keras layer.

SMPL (Loper et al. 2015), standard maths:

1. shaped template      ``v_shaped = v_template + shapedirs . betas``                      (V, 3)
2. rest joints          ``J = J_regressor @ v_shaped``                                      (24, 3)
3. pose blend shapes    ``v_posed = v_shaped + posedirs . vec(R_1..23 - I)``                (V, 3)
4. kinematic chain      ``G_k = G_parent(k) [R_k | J_k - J_parent(k)]``, posed joints = translation of G_k
5. skinning (LBS)       ``v = sum_k w_vk (G_k [I | -J_k]) v_posed``

Everything is batch first and float32, metres, SMPL's model frame; the global rotation (joint 0) turns the body
about the pelvis joint, with no translation.

Several genders in one layer: steps 1-3 are one linear map of the coefficient vector ``c = [1, betas,
vec(R - I)]`` (218 entries) per gender, ``v_posed = c @ basis_g`` with ``basis_g`` (218, 3*V), its columns
component-major (all x, then all y, then all z: skinning then runs on whole rows, see :func:`skin_vertices_cm`).
A batch that holds one gender only (inference, single-gender data) runs that gender's product alone (nested
boolean ``tf.cond``, which the TFLite converter accepts, unlike ``tf.switch_case`` inside a cond); a mixed
batch computes ``sum_g (onehot_g * c) @ basis_g``, i.e. each sample's coefficients masked into its gender's
product. Nothing of size V is ever gathered per sample, so memory per sample does not grow with the number of
genders (gathering posedirs per sample would cost V*3*207*4 = 17 MB per sample); the price of a mixed batch is
G times the multiply-adds of that product. Skinning weights and landmark ids that are equal across genders
(official SMPL, our free model) are stored once.

The joints never need the vertices (step 2 is linear in betas: a precomputed (G * 11, 72) joint basis), so the
joints and the 18 landmarks alone (``SMPL.points``) run steps 3-5 on the landmark vertices only: the same
functions on the landmark columns of the blend basis and of the skinning weights.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.body.model_io import NUM_BETAS, NUM_POSE_BASIS, BodyModelData, find_model_files, load_model_file

NUM_JOINTS = skeleton.NUM_JOINTS
_SMALL_ANGLE_SQ = 1e-6  # below this theta^2 (theta < 1 mrad) the Taylor series are exact to float32 precision


# ------------------------------------------------------------------------------------------ pure functions


def rodrigues(axis_angle: tf.Tensor) -> tf.Tensor:
    """Axis-angle vectors -> rotation matrices, with finite gradients everywhere (zero angle included).

    axis_angle: (..., 3) float, direction = axis, norm = angle (radians). Returns (..., 3, 3).
    ``R = I + a K + b K^2`` with ``K = [r]_x`` (unnormalised), ``a = sin(t)/t``, ``b = (1 - cos t)/t^2``; for
    t^2 < 1e-6, a and b come from their Taylor series, and the division is fed a safe theta (double-where) so
    that neither branch yields NaN gradients. (tensorflow-graphics' ``rotation_matrix_3d.from_axis_angle`` needs
    a unit axis; normalising r at t = 0 gives NaN gradients, hence this function.)
    """
    r = tf.convert_to_tensor(axis_angle)
    theta_sq = tf.reduce_sum(tf.square(r), axis=-1, keepdims=True)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = tf.where(small, tf.ones_like(theta_sq), theta_sq)
    safe_t = tf.sqrt(safe_sq)
    a = tf.where(small, 1.0 - theta_sq / 6.0, tf.sin(safe_t) / safe_t)
    b = tf.where(small, 0.5 - theta_sq / 24.0, (1.0 - tf.cos(safe_t)) / safe_sq)
    x, y, z = tf.unstack(r, axis=-1)
    zero = tf.zeros_like(x)
    k = tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1)
    k = tf.reshape(k, tf.concat([tf.shape(x), [3, 3]], axis=0))
    eye = tf.eye(3, dtype=r.dtype)
    return eye + a[..., None] * k + b[..., None] * tf.matmul(k, k)


def kinematic_chain(rotmats: tf.Tensor, rest_joints: tf.Tensor, parents=skeleton.JOINT_PARENTS):
    """Pose the skeleton.

    rotmats: (B, J, 3, 3) local rotations (used as given, need not be orthonormal); rest_joints: (B, J, 3)
    metres; parents: (J,) ints, parents before children, -1 for the root.
    Returns (posed_joints (B, J, 3), skin_rot (B, J, 3, 3), skin_trans (B, J, 3)) where vertex v of joint k's
    rigid part moves to ``skin_rot[k] @ v + skin_trans[k]``.
    """
    parents = [int(p) for p in np.asarray(parents)]
    rel = rest_joints - tf.gather(rest_joints, [max(p, 0) for p in parents], axis=1)
    rel = tf.concat([rest_joints[:, :1], rel[:, 1:]], axis=1)  # the root keeps its rest position
    g_rot, g_trans = [rotmats[:, 0]], [rel[:, 0]]
    for k in range(1, len(parents)):
        p = parents[k]
        g_rot.append(tf.matmul(g_rot[p], rotmats[:, k]))
        g_trans.append(tf.linalg.matvec(g_rot[p], rel[:, k]) + g_trans[p])
    g_rot = tf.stack(g_rot, axis=1)
    posed = tf.stack(g_trans, axis=1)
    skin_trans = posed - tf.linalg.matvec(g_rot, rest_joints)
    return posed, g_rot, skin_trans


def skin_vertices_cm(weights_t: tf.Tensor, skin_rot: tf.Tensor, skin_trans: tf.Tensor,
                     v_posed_t: tf.Tensor) -> tf.Tensor:
    """Linear blend skinning, component-major (the layer's own layout).

    weights_t: (K, V) (columns sum to 1); skin_rot: (B, K, 3, 3); skin_trans: (B, K, 3); v_posed_t: (B, 3, V).
    Returns (B, 3, V) = sum_k w_vk (skin_rot_k v + skin_trans_k).
    The per-joint 3x4 transforms are blended by one matmul (B*12, K) @ (K, V) whose rows are whole vertex
    rows, so the per-vertex 3x4 product below is 12 contiguous multiply-adds over V. Measured against the
    vertex-major form ``(V, K) @ (K, B*12)`` with a reduce over the last axis of 4 (same arithmetic, bit-equal
    results): 2x faster under XLA at B = 64, 3-4x faster at B = 1 in TFLite (XNNPACK); see BUILD_NOTES.
    """
    b = tf.shape(skin_rot)[0]
    k = tf.shape(skin_rot)[1]
    per_joint = tf.concat([skin_rot, skin_trans[..., None]], axis=-1)  # (B, K, 3, 4)
    per_joint = tf.reshape(tf.transpose(tf.reshape(per_joint, [b, k, 12]), [0, 2, 1]), [b * 12, k])  # (B*12, K)
    blended = tf.reshape(tf.matmul(per_joint, weights_t), [b, 3, 4, -1])  # (B, 3, 4, V)
    x, y, z = v_posed_t[:, 0:1], v_posed_t[:, 1:2], v_posed_t[:, 2:3]  # (B, 1, V) each
    return blended[:, :, 0] * x + blended[:, :, 1] * y + blended[:, :, 2] * z + blended[:, :, 3]


def skin_vertices(weights: tf.Tensor, skin_rot: tf.Tensor, skin_trans: tf.Tensor, v_posed: tf.Tensor) -> tf.Tensor:
    """Linear blend skinning, vertex-major interface.

    weights: (V, K) (rows sum to 1); skin_rot: (B, K, 3, 3); skin_trans: (B, K, 3); v_posed: (B, V, 3).
    Returns (B, V, 3) = sum_k w_vk (skin_rot_k v + skin_trans_k). Computed by :func:`skin_vertices_cm`.
    """
    out = skin_vertices_cm(tf.transpose(weights), skin_rot, skin_trans, tf.transpose(v_posed, [0, 2, 1]))
    return tf.transpose(out, [0, 2, 1])


def pose_to_rotmats(pose: tf.Tensor) -> tf.Tensor:
    """pose (B, 72) axis-angle or (B, 24, 3) or (B, 24, 3, 3) matrices (returned as given) -> (B, 24, 3, 3)."""
    pose = tf.convert_to_tensor(pose)
    if pose.shape.rank == 4:
        return pose
    if pose.shape.rank == 2 or pose.shape.rank == 3:
        return rodrigues(tf.reshape(pose, [-1, NUM_JOINTS, 3]))
    raise ValueError(f"pose must be (B, 72) axis-angle or (B, 24, 3, 3) matrices, got shape {pose.shape}")


def gender_index_from_sign(g):
    """Psi's gender output in {-1, +1} (any real) -> int32 gender index: 1 (male) where g >= 0, else 0 (female)."""
    if isinstance(g, (np.ndarray, float, int, np.floating)):
        return (np.asarray(g) >= 0).astype(np.int32)
    return tf.cast(tf.convert_to_tensor(g) >= 0, tf.int32)


# ------------------------------------------------------------------------------------------------- layer


def _all_equal(arrays) -> bool:
    return all(np.array_equal(arrays[0], a) for a in arrays[1:])


@keras.saving.register_keras_serializable(package="smplr_tf")
class SMPL(keras.layers.Layer):
    """SMPL body model as a Keras layer (always computes in float32, see below).

    Args:
      smpl_dir: directory with official SMPL files (see ``model_io.find_model_files``); None = the free model.
      genders: gender names; the gender index of a sample is its position here. Default ("female", "male"):
        0 = female, 1 = male, as in the TFRecord schema. Add "neutral" for schema index 2.
      model_files: optional {gender: path} overriding smpl_dir (e.g. one official file).
      models: optional {gender: BodyModelData} (already loaded arrays), overriding both.

    call(betas (B, 10), pose (B, 72) axis-angle | (B, 24, 3, 3) raw matrices, gender (B,) int index or None = 0)
    -> dict ``vertices (B, V, 3)``, ``joints (B, 24, 3)``, ``landmarks (B, 18, 3)``, metres, SMPL frame.
    ``joints_and_landmarks`` (same arguments) returns the joints and landmarks alone, without computing the rest
    of the mesh, and ``points`` the 41 root-relative points from them (what the point losses need).

    Mixed precision: the layer's dtype policy defaults to float32 whatever the global policy is (pass-through of
    a ``mixed_float16`` policy would put 1e-3 relative error on vertices), inputs are cast to float32 and the
    outputs are float32; a following float16 layer casts them itself.

    The model constants are non-trainable ``tf.Variable`` s kept out of ``layer.weights``: they come from the
    model files, not from training, so checkpoints neither carry ~40 MB of constants nor pin a model size.
    """

    def __init__(self, smpl_dir=None, genders=skeleton.BODY_GENDERS, model_files=None, models=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.smpl_dir = None if smpl_dir is None else str(smpl_dir)
        self.genders = tuple(str(g).lower() for g in genders)
        if not self.genders:
            raise ValueError("SMPL needs at least one gender")
        self._model_files = None if model_files is None else {str(k): str(v) for k, v in model_files.items()}
        if models is None:
            files = self._model_files if self._model_files is not None else find_model_files(self.smpl_dir)
            missing = [g for g in self.genders if g not in files]
            if missing:
                where = "the free model" if self.smpl_dir is None and self._model_files is None else (
                    self.smpl_dir or "model_files")
                raise FileNotFoundError(f"SMPL: no model file for gender(s) {missing} in {where} "
                                        f"(found: {sorted(files)})")
            models = {g: load_model_file(files[g], gender=g) for g in self.genders}
        self.model_data = [models[g] for g in self.genders]
        self._set_constants(self.model_data)
        self.built = True

    # ---------------------------------------------------------------------------------------- constants
    def _set_constants(self, data: list[BodyModelData]) -> None:
        V = data[0].num_vertices
        for d in data[1:]:
            if d.num_vertices != V or not np.array_equal(d.f, data[0].f):
                raise ValueError(f"SMPL: all genders must share one mesh; {d.path} differs from {data[0].path}")
        self.num_vertices = V
        self.num_genders = len(data)
        self.faces = data[0].f.astype(np.int32)
        # Blend basis per gender: rows [template; shapedirs^T; posedirs^T] -> (218, 3 * V), columns component-major
        # (x of every vertex, then y, then z). Models without pose correctives (posedirs all zero, e.g. our free
        # model) drop the 207 posedirs rows: same result, 20x fewer multiply-adds in the blend.
        self.pose_blend = any(np.any(d.posedirs) for d in data)
        bases = [np.concatenate([
            d.v_template.T.reshape(1, 3 * V),
            d.shapedirs.transpose(2, 1, 0).reshape(NUM_BETAS, 3 * V)] + (
            [d.posedirs.transpose(2, 1, 0).reshape(NUM_POSE_BASIS, 3 * V)] if self.pose_blend else []), axis=0)
            for d in data]
        # Joints are linear in the shaped template: J = J_regressor @ (v_template + shapedirs . betas).
        joint_basis = np.concatenate([np.concatenate([
            (d.J_regressor.astype(np.float64) @ d.v_template).reshape(1, NUM_JOINTS * 3),
            np.einsum("jv,vcs->jcs", d.J_regressor.astype(np.float64), d.shapedirs).reshape(
                NUM_JOINTS * 3, NUM_BETAS).T], axis=0) for d in data], axis=0)
        self._shared_weights = _all_equal([d.weights for d in data])
        # Skinning weights transposed, (K, V) or (G * K, V) when they differ per gender (see skin_vertices_cm).
        weights = data[0].weights.T if self._shared_weights else np.concatenate([d.weights.T for d in data], axis=0)
        self._shared_landmarks = _all_equal([d.landmark_ids for d in data])
        lm = data[0].landmark_ids if self._shared_landmarks else np.concatenate([d.landmark_ids for d in data])
        self.landmark_ids = lm.astype(np.int32)
        self.parents = skeleton.JOINT_PARENTS.copy()

        def const(name, value):
            return tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)

        self._bases = [const(f"blend_basis_{g}", b) for g, b in zip(self.genders, bases)]
        self._joint_basis = const("joint_basis", joint_basis)
        self._weights_t = const("skin_weights_t", weights)
        # The same constants restricted to the landmark vertices (L = 18, or G * 18 when the ids differ per
        # gender), for :meth:`joints_and_landmarks`: blend-basis columns c * V + id (still component-major) and
        # skinning-weight columns of those vertices.
        cols = (np.arange(3)[:, None] * V + self.landmark_ids[None, :]).reshape(-1)
        self._landmark_bases = [const(f"landmark_blend_basis_{g}", b[:, cols]) for g, b in zip(self.genders, bases)]
        self._landmark_weights_t = const("landmark_skin_weights_t", weights[:, self.landmark_ids])

    # --------------------------------------------------------------------------------------------- call
    def call(self, betas, pose, gender=None):
        return self._forward(betas, pose, gender, landmarks_only=False)

    def joints_and_landmarks(self, betas, pose, gender=None):
        """The 24 joints and the 18 landmarks of SMPL(betas, pose, gender) without the rest of the mesh.

        Same arguments as ``call``; returns dict ``joints (B, 24, 3)``, ``landmarks (B, 18, 3)``, float32,
        metres, SMPL frame, equal to ``call``'s (same maths, same functions): the rest joints come from the
        precomputed joint basis as in ``call`` (they never need the vertices), and only the landmark vertices
        are blended (shape and pose blend shapes) and skinned. Cost per sample: a (218, 3 * 18) blend and an
        18-vertex skinning instead of 3 * 6890 columns; gradients flow to betas and pose as through ``call``.
        """
        return self._forward(betas, pose, gender, landmarks_only=True)

    def points(self, betas, pose, gender=None):
        """(B, 41, 3) float32 root-relative points (metres; joints 1..23 then the 18 landmarks, as
        ``skeleton.points_from_smpl``) of SMPL(betas, pose, gender), computed by :meth:`joints_and_landmarks`."""
        out = self.joints_and_landmarks(betas, pose, gender)
        return skeleton.points_from_smpl(out["joints"], out["landmarks"])

    def _forward(self, betas, pose, gender, landmarks_only: bool):
        """``call``'s maths; ``landmarks_only`` blends and skins the landmark vertices alone (no ``vertices``)."""
        betas = tf.cast(betas, tf.float32)
        rotmats = pose_to_rotmats(tf.cast(pose, tf.float32))  # (B, 24, 3, 3)
        batch = tf.shape(betas)[0]
        G, V = self.num_genders, self.num_vertices
        eye = tf.eye(3, dtype=tf.float32)
        pose_feat = tf.reshape(rotmats[:, 1:] - eye, [batch, NUM_POSE_BASIS])
        ones = tf.ones([batch, 1], tf.float32)
        gidx = None
        if G == 1:
            onehot = ones
        else:
            gidx = tf.zeros([batch], tf.int32) if gender is None else tf.cast(tf.reshape(gender, [-1]), tf.int32)
            onehot = tf.one_hot(gidx, G, dtype=tf.float32)  # (B, G)

        def spread(coeffs):  # (B, C) -> (B, G * C): the coefficients moved into the sample's gender slot
            if G == 1:
                return coeffs
            return tf.reshape(onehot[:, :, None] * coeffs[:, None, :], [batch, -1])

        shape_coeffs = tf.concat([ones, betas], axis=1)  # (B, 11)
        rest_joints = tf.reshape(tf.matmul(spread(shape_coeffs), self._joint_basis), [batch, NUM_JOINTS, 3])
        coeffs = tf.concat([shape_coeffs, pose_feat], axis=1) if self.pose_blend else shape_coeffs  # (B, 218|11)
        if landmarks_only:  # the landmark vertices only: L columns of every constant
            bases, weights_t, n = self._landmark_bases, self._landmark_weights_t, len(self.landmark_ids)
        else:
            bases, weights_t, n = self._bases, self._weights_t, V
        v_posed_t = tf.reshape(self._blend(coeffs, onehot, gidx if G > 1 else None, bases), [batch, 3, n])
        joints, skin_rot, skin_trans = kinematic_chain(rotmats, rest_joints, self.parents)
        if not self._shared_weights:  # stacked (G * 24, n) weights against per-gender-slot transforms
            skin_rot = tf.reshape(onehot[:, :, None, None, None] * skin_rot[:, None], [batch, G * NUM_JOINTS, 3, 3])
            skin_trans = tf.reshape(onehot[:, :, None, None] * skin_trans[:, None], [batch, G * NUM_JOINTS, 3])
        skinned = tf.transpose(skin_vertices_cm(weights_t, skin_rot, skin_trans, v_posed_t), [0, 2, 1])  # (B, n, 3)
        landmarks = skinned if landmarks_only else tf.gather(skinned, self.landmark_ids, axis=1)
        if not self._shared_landmarks:
            landmarks = tf.reduce_sum(
                tf.reshape(landmarks, [batch, G, skeleton.NUM_LANDMARKS, 3]) * onehot[:, :, None, None], axis=1)
        out = {"joints": joints, "landmarks": landmarks}
        if not landmarks_only:
            out["vertices"] = skinned
        return out

    def _blend(self, coeffs, onehot, gidx, bases):
        """(B, 218) coefficients ((B, 11) without pose correctives) -> (B, 3 * n) shaped, pose-corrected vertices,
        component-major; bases: one (218 | 11, 3 * n) basis per gender (all V vertices, or the landmarks').

        See the module docstring: one gender's product for a single-gender batch, else the masked sum.
        """
        if gidx is None:
            return tf.matmul(coeffs, bases[0])

        def mixed():
            out = tf.matmul(coeffs * onehot[:, :1], bases[0])
            for g in range(1, self.num_genders):
                out += tf.matmul(coeffs * onehot[:, g:g + 1], bases[g])
            return out

        def single():
            first = tf.clip_by_value(tf.reduce_min(gidx), 0, self.num_genders - 1)

            def product(g):  # nested boolean conds: only the selected gender's product runs
                if g == self.num_genders - 1:
                    return tf.matmul(coeffs, bases[g])
                return tf.cond(tf.equal(first, g), lambda: tf.matmul(coeffs, bases[g]), lambda: product(g + 1))

            return product(0)

        # An empty batch has min > max and takes the mixed branch.
        return tf.cond(tf.reduce_min(gidx) == tf.reduce_max(gidx), single, mixed)

    def compute_output_spec(self, betas, pose, gender=None):
        b = betas.shape[0]
        return {"vertices": keras.KerasTensor((b, self.num_vertices, 3), "float32"),
                "joints": keras.KerasTensor((b, NUM_JOINTS, 3), "float32"),
                "landmarks": keras.KerasTensor((b, skeleton.NUM_LANDMARKS, 3), "float32")}

    def get_config(self):
        config = super().get_config()
        config.update(smpl_dir=self.smpl_dir, genders=list(self.genders), model_files=self._model_files)
        return config

    # ------------------------------------------------------------------------------------------ helpers
    def template_points(self, gender_index: int) -> np.ndarray:
        """(41, 3) float32 root-relative rest-pose points (zero pose, zero betas) of gender ``gender_index``."""
        pts = self.points(tf.zeros([1, NUM_BETAS]), tf.zeros([1, NUM_JOINTS * 3]), tf.constant([int(gender_index)]))
        return pts.numpy()[0].astype(np.float32)


def template_bone_lengths(smpl_layer: SMPL) -> np.ndarray:
    """B* of paper eq. 2: (41,) float32 bone lengths (metres) of the 42-node tree on the rest template.

    Uses the neutral template if the layer has one, else the mean of the female and male template points
    (else of all its genders).
    """
    genders = list(smpl_layer.genders)
    if "neutral" in genders:
        pts = smpl_layer.template_points(genders.index("neutral"))
    else:
        use = [i for i, g in enumerate(genders) if g in ("female", "male")] or list(range(len(genders)))
        pts = np.mean([smpl_layer.template_points(i) for i in use], axis=0)
    return np.linalg.norm(skeleton.bone_vectors(pts), axis=-1).astype(np.float32)
