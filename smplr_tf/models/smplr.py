"""SMPL reverse (paper Sec. 3.2): Omega (pose) and Psi (shape) encoders with our SMPL layer as decoder.

Inputs of the encoders are built from the 41 root-relative points JL by :func:`bone_features`:
N (unit bone vectors, eq. 1) for Omega and B (bone length minus template bone length, eqs. 2-3) for Psi.

Encoder architecture (the authors' code); every hidden layer is Dense + BatchNorm (momentum 0.99, epsilon
1e-3, with gamma: Keras' defaults and TF1's) + ELU, Glorot-uniform kernels; the linear output layers' biases
start Glorot-uniform like the code's (``bias_initializer``; "zeros" is Keras' usual). The hidden Dense layers
have no bias: the batch norm after each would cancel it (the code has one; same function, fewer weights):

* trunk: in -> 1024 -> 1024 -> 512 -> 512 -> 512 = t
* head A: t -> 256 -> 256 -> out (linear); head B: t -> 256 -> out (linear); concat (2 out) -> out (linear)
* Psi: in = B (41) ; out = 11 = 10 betas + gender coded in {-1, +1} (male model where gender >= 0)
* Omega: in = N (41 x 3 = 123) ; out = 216 with tanh -> (24, 3, 3) rotation matrices fed raw to SMPL.

The networks that are trained, saved and deployed are :func:`build_psi_net` and :func:`build_omega_net`:
points (B, 41, 3) -> :class:`BoneFeatures` (template bone lengths stored as a weight) -> the encoder
(:func:`build_psi` / :func:`build_omega`, nested as "psi" / "omega") -> named outputs. Both are
:class:`~smplr_tf.models.network.Network` s (they return their builder arguments from ``get_config``).
SMPL is appended by :class:`smplr_tf.models.pipeline.SMPLRPipeline`.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf
from keras import layers

from smplr_tf.body import skeleton
from smplr_tf.models.network import Network

INIT = "glorot_uniform"
TRUNK = (1024, 1024, 512, 512, 512)
HEAD_A = (256, 256)
HEAD_B = (256,)
NUM_BETAS = skeleton.NUM_BETAS
NORM_EPS = 1e-8  # metres; safe norm sqrt(|v|^2 + eps^2)


def bone_features(points, template_lengths, eps: float = NORM_EPS):
    """Inputs of Omega and Psi from the 41 points (paper eqs. 1-3).

    points: (B, 41, 3) root-relative metres. template_lengths: (41,) metres, B* of eq. 2 (numpy array,
    tensor or variable).
    Returns (N (B, 41, 3) unit bone vectors, B (B, 41) bone length minus template length, metres), float32.
    The norm is sqrt(|v|^2 + eps^2): finite with a zero gradient for a zero-length bone (N = 0 there).
    """
    v = skeleton.bone_vectors(tf.cast(points, tf.float32))
    length = tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1) + eps * eps)
    n = v / length[..., None]
    if isinstance(template_lengths, (np.ndarray, list, tuple)):
        template = tf.constant(np.asarray(template_lengths, np.float32))
    else:  # a tensor or a (Keras) variable: read at run time, also inside tf.function
        template = tf.cast(template_lengths, tf.float32)
    return n, length - template


def _hidden(x, units, name):
    x = layers.Dense(units, use_bias=False, kernel_initializer=INIT, name=name + "_dense")(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ELU(name=name + "_elu")(x)


def _encoder(flat, out_dim, trunk, head_a, head_b, bias_initializer="glorot_uniform"):
    t = flat
    for i, u in enumerate(trunk):
        t = _hidden(t, u, f"trunk{i}")
    a = t
    for i, u in enumerate(head_a):
        a = _hidden(a, u, f"headA{i}")
    a = layers.Dense(out_dim, kernel_initializer=INIT, bias_initializer=bias_initializer, name="headA_out")(a)
    b = t
    for i, u in enumerate(head_b):
        b = _hidden(b, u, f"headB{i}")
    b = layers.Dense(out_dim, kernel_initializer=INIT, bias_initializer=bias_initializer, name="headB_out")(b)
    return layers.Concatenate(name="heads")([a, b])


def build_psi(num_bones: int = skeleton.NUM_BONES, num_betas: int = NUM_BETAS, trunk=TRUNK, head_a=HEAD_A,
              head_b=HEAD_B, name: str = "psi", bias_initializer: str = "glorot_uniform") -> keras.Model:
    """Psi: B (B, num_bones) metres -> (B, num_betas + 1) = betas then the gender code (~ -1 female, +1 male)."""
    x = keras.Input((num_bones,), name="bone_length_offsets")
    h = _encoder(x, num_betas + 1, trunk, head_a, head_b, bias_initializer)
    out = layers.Dense(num_betas + 1, kernel_initializer=INIT, bias_initializer=bias_initializer, name="shape")(h)
    return keras.Model(x, out, name=name)


def build_omega(num_bones: int = skeleton.NUM_BONES, num_joints: int = skeleton.NUM_JOINTS, trunk=TRUNK,
                head_a=HEAD_A, head_b=HEAD_B, name: str = "omega",
                bias_initializer: str = "glorot_uniform") -> keras.Model:
    """Omega: N (B, num_bones, 3) unit vectors -> (B, num_joints, 3, 3) tanh-bounded rotation matrices."""
    x = keras.Input((num_bones, 3), name="bone_directions")
    flat = layers.Flatten(name="flatten")(x)
    out_dim = num_joints * 9
    h = _encoder(flat, out_dim, trunk, head_a, head_b, bias_initializer)
    r = layers.Dense(out_dim, activation="tanh", kernel_initializer=INIT, bias_initializer=bias_initializer,
                     name="rot")(h)
    r = layers.Reshape((num_joints, 3, 3), name="rotmats")(r)
    return keras.Model(x, r, name=name)


@keras.saving.register_keras_serializable(package="smplr_tf")
class BoneFeatures(keras.layers.Layer):
    """points (B, 41, 3) metres -> (N (B, 41, 3) unit bone vectors, B (B, 41) bone length minus template,
    metres), paper eqs. 1-3 (:func:`bone_features`).

    The template lengths B* (41,) metres are a non-trainable weight, saved with the network; None starts
    them at zero (a network rebuilt to load trained weights into)."""

    def __init__(self, template_lengths=None, **kw):
        kw.setdefault("dtype", "float32")
        super().__init__(**kw)
        init = np.zeros(skeleton.NUM_BONES, np.float32) if template_lengths is None else np.asarray(
            template_lengths, np.float32)
        self.template = self.add_weight(name="template_lengths", shape=(skeleton.NUM_BONES,),
                                        initializer=keras.initializers.Constant(init), trainable=False)

    def call(self, points):
        return bone_features(points, self.template)

    def compute_output_spec(self, points):
        b = points.shape[0]
        return (keras.KerasTensor((b, skeleton.NUM_BONES, 3), "float32"),
                keras.KerasTensor((b, skeleton.NUM_BONES), "float32"))


def build_psi_net(trunk=TRUNK, head_a=HEAD_A, head_b=HEAD_B, num_betas: int = NUM_BETAS, template_lengths=None,
                  name: str = "psi_net", bias_initializer: str = "glorot_uniform") -> Network:
    """Psi with its input features: points (B, 41, 3) root-relative metres -> {"betas": (B, num_betas),
    "gender": (B,) code, male model where >= 0}.

    trunk / head_a / head_b: hidden widths (see the module docstring); template_lengths: (41,) metres, B* of
    eq. 2 (e.g. ``smplr_tf.body.smpl.template_bone_lengths(smpl)``), stored as a weight; None = zeros, to be
    loaded from trained weights. The inner encoder is the nested model "psi" (:func:`build_psi`).
    bias_initializer: of the linear output layers ("glorot_uniform" as the authors' code; "zeros" as Keras').
    """
    trunk, head_a, head_b = (tuple(int(u) for u in v) for v in (trunk, head_a, head_b))
    pts = keras.Input((skeleton.NUM_POINTS, 3), name="points")
    _, b = BoneFeatures(template_lengths, name="bone_features")(pts)
    shape = build_psi(num_betas=num_betas, trunk=trunk, head_a=head_a, head_b=head_b,
                      bias_initializer=bias_initializer)(b)
    betas = layers.Lambda(lambda s: s[:, :num_betas], name="betas")(shape)
    gender = layers.Lambda(lambda s: s[:, num_betas], name="gender")(shape)
    config = dict(kind="psi_net", trunk=trunk, head_a=head_a, head_b=head_b, num_betas=int(num_betas), name=name,
                  bias_initializer=bias_initializer)
    return Network(config, pts, {"betas": betas, "gender": gender}, name=name)


def build_omega_net(trunk=TRUNK, head_a=HEAD_A, head_b=HEAD_B, template_lengths=None,
                    name: str = "omega_net", bias_initializer: str = "glorot_uniform") -> Network:
    """Omega with its input features: points (B, 41, 3) root-relative metres -> {"rotmats": (B, 24, 3, 3)},
    tanh-bounded matrices fed raw to SMPL. Sizes and template_lengths as :func:`build_psi_net`; the inner
    encoder is the nested model "omega" (:func:`build_omega`)."""
    trunk, head_a, head_b = (tuple(int(u) for u in v) for v in (trunk, head_a, head_b))
    pts = keras.Input((skeleton.NUM_POINTS, 3), name="points")
    n, _ = BoneFeatures(template_lengths, name="bone_features")(pts)
    rot = build_omega(trunk=trunk, head_a=head_a, head_b=head_b, bias_initializer=bias_initializer)(n)
    rot = layers.Identity(name="rotmats")(rot)
    config = dict(kind="omega_net", trunk=trunk, head_a=head_a, head_b=head_b, name=name,
                  bias_initializer=bias_initializer)
    return Network(config, pts, {"rotmats": rot}, name=name)


def head_sizes(head: int) -> dict:
    """The two heads' widths from one width (the ``--smplr_head`` flag): head A (h, h), head B (h,)."""
    return dict(head_a=(int(head), int(head)), head_b=(int(head),))
