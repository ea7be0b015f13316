"""HMR baseline (Kanazawa et al. 2018): image -> backbone -> pooled features -> iterative error feedback -> SMPL.

The direct-regression approach SMPLR's Table 2 compares against, rebuilt on our layers so that both are trained
on the same records and scored by the same metrics:

* backbone: ``keras.applications.ResNet50`` without its top (``backbone="resnet50"``, weights ``none``,
  ``imagenet`` or a weights file), or a small strided CNN (``backbone="tiny"``, tests and quick runs); global
  average pooling -> feature f (B, F).
* regressor (iterative error feedback): theta_0 = the mean parameters (a trained weight), then for
  t = 1..iterations: theta_t = theta_{t-1} + MLP([f, theta_{t-1}]) with one MLP shared by the iterations
  (HMR: 2 x 1024 units, dropout 0.5, a small-gain last layer).
* theta (B, 157) = 24 rotations in the continuous 6D form (the first two columns of each matrix, Zhou et al.
  2019; Gram-Schmidt gives the matrix) + 10 betas + a weak-perspective camera (s, tx, ty).
* our SMPL layer (one body model, ``body_gender``; HMR uses a gender-neutral model) -> vertices, joints,
  landmarks and the 41 root-relative points; the camera projects those points into the crop.

Output dict (float32; metres, camera axes x right / y down / z forward):

* ``points`` (B, 41, 3) root-relative (joints 1..23 then landmarks), what the metrics score;
* ``points2d`` (B, 41, 2) crop pixels of the ``input_size`` crop: ((s * X + t) + 1) * S / 2 (x, y of the
  root-relative points: a weak-perspective camera centred on the pelvis);
* ``rotmats`` (B, 24, 3, 3), ``betas`` (B, 10), ``camera`` (B, 3) = (s in 1/metres of the [-1, 1] crop, tx, ty);
* ``vertices`` (B, V, 3), ``joints`` (B, 24, 3), ``landmarks`` (B, 18, 3): SMPL's, in the SMPL frame;
* ``iter_params`` (B, T, 157): theta after each iteration (T = ``iterations``; the last equals the outputs).

The adversarial prior's discriminator is its own network (:func:`build_hmr_discriminator`): it is trained with
the regressor but is not part of what is saved as the run's network.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from smplr_tf.body import skeleton
from smplr_tf.models.layers import Standardize
from smplr_tf.models.network import Network

NUM_ROT = skeleton.NUM_JOINTS  # 24 rotations (the root included)
ROT_DIM = 6
CAM_DIM = 3
PARAM_DIM = NUM_ROT * ROT_DIM + skeleton.NUM_BETAS + CAM_DIM  # 157
BACKBONES = ("resnet50", "tiny")


def split_params(theta):
    """theta (..., 157) -> (rot6d (..., 24, 6), betas (..., 10), camera (..., 3))."""
    r = NUM_ROT * ROT_DIM
    rot = tf.reshape(theta[..., :r], tf.concat([tf.shape(theta)[:-1], [NUM_ROT, ROT_DIM]], 0))
    return rot, theta[..., r:r + skeleton.NUM_BETAS], theta[..., r + skeleton.NUM_BETAS:]


def rot6d_to_matrix(x):
    """(..., 6) = two 3-vectors a1, a2 -> (..., 3, 3) rotation matrices with columns b1, b2, b1 x b2 (Gram-Schmidt:
    b1 = a1 / |a1|, b2 = the unit part of a2 orthogonal to b1). Continuous, defined for any non-degenerate input."""
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = tf.math.l2_normalize(a1, axis=-1, epsilon=1e-12)
    b2 = tf.math.l2_normalize(a2 - tf.reduce_sum(b1 * a2, axis=-1, keepdims=True) * b1, axis=-1, epsilon=1e-12)
    b3 = tf.linalg.cross(b1, b2)
    return tf.stack([b1, b2, b3], axis=-1)


def matrix_to_rot6d(r):
    """(..., 3, 3) -> (..., 6): the first two columns (the inverse of :func:`rot6d_to_matrix` on rotations)."""
    return tf.concat([r[..., :, 0], r[..., :, 1]], axis=-1)


def mean_params(camera_scale: float = 1.0) -> np.ndarray:
    """(157,) float32 theta_0: identity body rotations, the root turned by pi about x (SMPL's y-up body upright
    in the camera frame, facing the camera), zero betas, camera (camera_scale, 0, 0)."""
    rot = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (NUM_ROT, 1))
    rot[0] = [1, 0, 0, 0, -1, 0]  # diag(1, -1, -1)
    return np.concatenate([rot.reshape(-1), np.zeros(skeleton.NUM_BETAS, np.float32),
                           np.array([camera_scale, 0, 0], np.float32)]).astype(np.float32)


@keras.saving.register_keras_serializable(package="smplr_tf")
class MeanParams(keras.layers.Layer):
    """features (B, F) -> (B, D): the trained starting parameters theta_0 (one (D,) weight, initialised to
    ``init``) repeated over the batch."""

    def __init__(self, init, **kw):
        super().__init__(**kw)
        self.init = [float(v) for v in np.asarray(init).reshape(-1)]

    def build(self, input_shape):
        self.theta = self.add_weight(name="theta", shape=(len(self.init),),
                                     initializer=keras.initializers.Constant(self.init))

    def call(self, features):
        return tf.tile(tf.cast(self.theta, features.dtype)[None], [tf.shape(features)[0], 1])

    def compute_output_shape(self, shape):
        return (shape[0], len(self.init))

    def get_config(self):
        return dict(super().get_config(), init=self.init)


@keras.saving.register_keras_serializable(package="smplr_tf")
class ParamsToBody(keras.layers.Layer):
    """theta (B, 157) -> (rotmats (B, 24, 3, 3), betas (B, 10), camera (B, 3)) float32."""

    def __init__(self, **kw):
        kw.setdefault("dtype", "float32")
        super().__init__(**kw)

    def call(self, theta):
        rot, betas, cam = split_params(tf.cast(theta, tf.float32))
        return rot6d_to_matrix(rot), betas, cam

    def compute_output_shape(self, shape):
        return (shape[0], NUM_ROT, 3, 3), (shape[0], skeleton.NUM_BETAS), (shape[0], CAM_DIM)


@keras.saving.register_keras_serializable(package="smplr_tf")
class PointsAndProjection(keras.layers.Layer):
    """(joints (B, 24, 3), landmarks (B, 18, 3), camera (B, 3)) -> (points (B, 41, 3) root-relative metres,
    points2d (B, 41, 2) pixels of an ``input_size`` crop: ((s * xy + t) + 1) * input_size / 2)."""

    def __init__(self, input_size: int, **kw):
        kw.setdefault("dtype", "float32")
        super().__init__(**kw)
        self.input_size = int(input_size)

    def call(self, joints, landmarks, camera):
        pts = skeleton.points_from_smpl(tf.cast(joints, tf.float32), tf.cast(landmarks, tf.float32))
        return pts, project(pts, camera, self.input_size)

    def compute_output_shape(self, joints_shape, landmarks_shape, camera_shape):
        b = joints_shape[0]
        return (b, skeleton.NUM_POINTS, 3), (b, skeleton.NUM_POINTS, 2)

    def get_config(self):
        return dict(super().get_config(), input_size=self.input_size)


def project(points, camera, input_size: int):
    """Weak perspective. points (B, P, 3) metres (root-relative, camera axes), camera (B, 3) = (s, tx, ty) ->
    (B, P, 2) pixels of the input_size crop: ((s * (x, y) + (tx, ty)) + 1) * input_size / 2."""
    camera = tf.cast(camera, tf.float32)
    uv = camera[:, None, :1] * tf.cast(points, tf.float32)[..., :2] + camera[:, None, 1:]
    return (uv + 1.0) * (0.5 * float(input_size))


def _tiny_backbone(x, width: int):
    for i, c in enumerate((width, 2 * width, 4 * width, 8 * width)):
        x = layers.Conv2D(c, 3, strides=2, padding="same", use_bias=False, name=f"tiny_conv{i}")(x)
        x = layers.BatchNormalization(name=f"tiny_bn{i}")(x)
        x = layers.ReLU(name=f"tiny_relu{i}")(x)
    return x


def build_hmr(input_size: int = 224, backbone: str = "resnet50", backbone_weights: str = "none",
              backbone_width: int = 16, iterations: int = 3, regressor_units: int = 1024, dropout: float = 0.5,
              camera_scale: float = 1.0, smpl_dir: str | None = None, body_gender: str = "neutral",
              name: str = "hmr") -> keras.Model:
    """image (B, input_size, input_size, 3) float32 RGB in [0, 1] -> the dict of the module docstring.

    backbone: "resnet50" (``keras.applications.ResNet50``, include_top False; ``backbone_weights`` "none",
    "imagenet" (Keras downloads them) or a path to a weights file of that backbone) or "tiny" (four strided
    3x3 conv + BN + ReLU blocks of ``backbone_width`` x (1, 2, 4, 8) channels). The first layer standardises
    each image (with ImageNet weights, ResNet-50's first batch norm adapts to that input scale in training).
    iterations: IEF steps; regressor_units / dropout: the shared MLP's two hidden layers.
    camera_scale: s of the starting camera (1/metres in the [-1, 1] crop). smpl_dir / body_gender: the body
    model (None: the package's free model). Returns a :class:`~smplr_tf.models.network.Network`.
    """
    config = dict(kind="hmr", **locals())
    from smplr_tf.body.smpl import SMPL

    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    image = keras.Input((input_size, input_size, 3), name="image")
    x = Standardize(name="standardize")(image)
    if backbone == "resnet50":
        weights = None if backbone_weights in ("", "none", None) else backbone_weights
        net = keras.applications.ResNet50(include_top=False, weights=weights,
                                          input_shape=(input_size, input_size, 3))
        x = net(x)
    else:
        if backbone_weights not in ("", "none", None):
            raise ValueError("backbone_weights applies to the resnet50 backbone only")
        x = _tiny_backbone(x, int(backbone_width))
    feat = layers.GlobalAveragePooling2D(name="avg_pool")(x)

    fc1 = layers.Dense(regressor_units, activation="relu", name="ief_fc1")
    fc2 = layers.Dense(regressor_units, activation="relu", name="ief_fc2")
    drop1 = layers.Dropout(dropout, name="ief_drop1") if dropout else None
    drop2 = layers.Dropout(dropout, name="ief_drop2") if dropout else None
    out = layers.Dense(PARAM_DIM, kernel_initializer=keras.initializers.VarianceScaling(0.01 ** 2, "fan_avg",
                                                                                        "uniform"),
                       name="ief_delta")
    theta = MeanParams(mean_params(camera_scale), name="mean_params")(feat)
    thetas = []
    for t in range(iterations):
        h = layers.Concatenate(name=f"ief_in{t}")([feat, theta])
        h = fc1(h)
        h = drop1(h) if drop1 else h
        h = fc2(h)
        h = drop2(h) if drop2 else h
        theta = layers.Add(name=f"ief_theta{t}")([theta, out(h)])
        thetas.append(layers.Reshape((1, PARAM_DIM), name=f"ief_keep{t}")(theta))
    iter_params = thetas[0] if iterations == 1 else layers.Concatenate(axis=1, name="iter_params")(thetas)
    rotmats, betas, camera = ParamsToBody(name="params_to_body")(theta)
    smpl = SMPL(smpl_dir=smpl_dir, genders=(body_gender,), name="smpl")
    body = smpl(betas, rotmats)
    points, points2d = PointsAndProjection(input_size, name="project")(body["joints"], body["landmarks"], camera)
    outputs = {"points": points, "points2d": points2d, "rotmats": rotmats, "betas": betas, "camera": camera,
               "vertices": body["vertices"], "joints": body["joints"], "landmarks": body["landmarks"],
               "iter_params": iter_params}
    return Network(config, image, outputs, name=name)


def hmr_faces(model) -> np.ndarray:
    """(F, 3) int32 faces of an HMR network's body model."""
    return np.asarray(model.get_layer("smpl").faces)


# -------------------------------------------------------------------------------------- discriminator
@keras.saving.register_keras_serializable(package="smplr_tf")
class PerJointLinear(keras.layers.Layer):
    """(B, J, C) -> (B, J): a separate linear map C -> 1 per joint (weights (J, C), bias (J,))."""

    def build(self, shape):
        self.kernel = self.add_weight(name="kernel", shape=(shape[1], shape[2]), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(shape[1],), initializer="zeros")

    def call(self, x):
        return tf.reduce_sum(x * self.kernel[None], axis=-1) + self.bias

    def compute_output_shape(self, shape):
        return (shape[0], shape[1])


def build_hmr_discriminator(num_joints: int = skeleton.NUM_JOINTS - 1, joint_units: int = 32,
                            pose_units: int = 1024, shape_units=(10, 5), name: str = "hmr_discriminator"):
    """HMR's adversarial prior: (rotmats (B, num_joints, 3, 3) of the body joints (no root), betas (B, 10)) ->
    logits (B, num_joints + 2): one per joint rotation, one on the whole pose, one on the shape (HMR's
    layout: two shared 1x1 "conv" layers of ``joint_units`` over each joint's 9 entries, a separate linear
    output per joint; the whole pose from the joints' features through two ``pose_units`` layers; the shape
    through ``shape_units``). Real parameters should score 1, the regressor's 0 (least squares GAN).
    Returns a :class:`~smplr_tf.models.network.Network`."""
    config = dict(kind="hmr_discriminator", **locals())
    rot = keras.Input((num_joints, 3, 3), name="rotmats")
    betas = keras.Input((skeleton.NUM_BETAS,), name="betas")
    j = layers.Reshape((num_joints, 9), name="flat_rot")(rot)
    j = layers.Dense(joint_units, activation="relu", name="joint_fc1")(j)
    j = layers.Dense(joint_units, activation="relu", name="joint_fc2")(j)
    per_joint = PerJointLinear(name="joint_out")(j)
    p = layers.Flatten(name="pose_flat")(j)
    for i in range(2):
        p = layers.Dense(pose_units, activation="relu", name=f"pose_fc{i + 1}")(p)
    p = layers.Dense(1, name="pose_out")(p)
    s = betas
    for i, u in enumerate(shape_units):
        s = layers.Dense(int(u), activation="relu", name=f"shape_fc{i + 1}")(s)
    s = layers.Dense(1, name="shape_out")(s)
    logits = layers.Concatenate(name="logits")([per_joint, p, s])
    return Network(config, [rot, betas], logits, name=name)
