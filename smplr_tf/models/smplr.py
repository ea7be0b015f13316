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
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf
from keras import layers

from smplr_tf.body import skeleton

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
    model = keras.Model(x, out, name=name)
    model.smplr_config = dict(kind="psi", num_bones=num_bones, num_betas=num_betas, trunk=tuple(trunk),
                              head_a=tuple(head_a), head_b=tuple(head_b))
    return model


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
    model = keras.Model(x, r, name=name)
    model.smplr_config = dict(kind="omega", num_bones=num_bones, num_joints=num_joints, trunk=tuple(trunk),
                              head_a=tuple(head_a), head_b=tuple(head_b))
    return model


def gender_index_for_layer(sign, genders) -> tf.Tensor:
    """Psi's gender code (B,) -> (B,) int32 index into an SMPL layer's ``genders``: its "male" model where
    code >= 0, its "female" model elsewhere. For the default layer ("female", "male") this is
    ``smplr_tf.body.smpl.gender_index_from_sign``. A layer without both (e.g. neutral only) gets index 0."""
    genders = [str(g) for g in genders]
    sign = tf.convert_to_tensor(sign)
    if "female" in genders and "male" in genders:
        return tf.where(sign >= 0, genders.index("male"), genders.index("female"))
    return tf.zeros(tf.shape(sign), tf.int32)


class SMPLR(keras.Model):
    """Points -> Omega/Psi -> SMPL. ``call(inputs, training=None)``.

    inputs: (B, 41, 3) root-relative points, or a dict with ``points`` and optional ground-truth overrides
    fed to SMPL instead of the predictions (Table 1 rows Psi / Omega): ``rotmats`` (B, 24, 3, 3),
    ``betas`` (B, 10), ``gender_index`` (B,) int (SMPL layer index; default: from Psi's gender code with
    :func:`gender_index_for_layer`: the layer's male model where the code >= 0, else its female model).
    Returns dict: ``rotmats`` (B,24,3,3) and ``betas`` (B,10) and ``gender`` (B,) float code as PREDICTED
    (never the overrides), and from SMPL (with the overrides applied): ``vertices`` (B,V,3), ``joints``
    (B,24,3), ``landmarks`` (B,18,3) metres in the SMPL frame, ``points`` (B,41,3) root-relative, and
    ``gender_index`` (B,) int used. With ``smpl_layer=None`` only the encoder outputs are returned.

    smpl_layer: a :class:`smplr_tf.body.smpl.SMPL` (or anything with its call signature).
    template_lengths: (41,) B*; default ``smplr_tf.body.smpl.template_bone_lengths(smpl_layer)``.
    """

    def __init__(self, smpl_layer=None, template_lengths=None, psi=None, omega=None, num_betas=NUM_BETAS,
                 trunk=TRUNK, head_a=HEAD_A, head_b=HEAD_B, name="smplr", **kw):
        super().__init__(name=name, **kw)
        if template_lengths is None:
            if smpl_layer is None:
                raise ValueError("SMPLR needs template_lengths when no smpl_layer is given")
            from smplr_tf.body.smpl import template_bone_lengths

            template_lengths = template_bone_lengths(smpl_layer)
        self.template_lengths = np.asarray(template_lengths, np.float32).reshape(-1)
        self.num_betas = num_betas
        self.smpl = smpl_layer
        self.psi = psi if psi is not None else build_psi(num_betas=num_betas, trunk=trunk, head_a=head_a,
                                                          head_b=head_b)
        self.omega = omega if omega is not None else build_omega(trunk=trunk, head_a=head_a, head_b=head_b)
        self.smplr_config = dict(kind="smplr", num_betas=num_betas, trunk=tuple(trunk),
                                 head_a=tuple(head_a), head_b=tuple(head_b))

    def with_encoders(self, psi, omega) -> "SMPLR":
        """A new SMPLR sharing the SMPL layer and template, with other Psi / Omega (e.g. folded ones)."""
        return SMPLR(self.smpl, self.template_lengths, psi=psi, omega=omega, num_betas=self.num_betas,
                     name=self.name + "_inference")

    def encode(self, points, training=None):
        """points (B,41,3) -> (rotmats (B,24,3,3), shape (B, num_betas + 1))."""
        n, b = bone_features(points, self.template_lengths)
        return self.omega(n, training=training), self.psi(b, training=training)

    def call(self, inputs, training=None):
        overrides = {}
        if isinstance(inputs, dict):
            overrides = {k: v for k, v in inputs.items() if k != "points" and v is not None}
            points = inputs["points"]
        else:
            points = inputs
        rotmats, shape = self.encode(points, training=training)
        shape = tf.cast(shape, tf.float32)
        betas = shape[:, : self.num_betas]
        gender = shape[:, self.num_betas]
        out = {"rotmats": rotmats, "betas": betas, "gender": gender}
        if self.smpl is None:
            return out
        gidx = overrides.get("gender_index")
        if gidx is None:
            gidx = gender_index_for_layer(gender, getattr(self.smpl, "genders", ("female", "male")))
        gidx = tf.cast(gidx, tf.int32)
        body = self.smpl(tf.cast(overrides.get("betas", betas), tf.float32),
                         tf.cast(overrides.get("rotmats", rotmats), tf.float32), gender=gidx)
        out.update(vertices=body["vertices"], joints=body["joints"], landmarks=body["landmarks"],
                   points=skeleton.points_from_smpl(body["joints"], body["landmarks"]), gender_index=gidx)
        return out


def scaled_sizes(width: int = TRUNK[0]) -> dict:
    """Encoder sizes scaled so that the first trunk layer has ``width`` units (1024 = the paper's sizes)."""
    f = width / TRUNK[0]

    def sc(units):
        return tuple(max(int(round(u * f)), 1) for u in units)

    return dict(trunk=sc(TRUNK), head_a=sc(HEAD_A), head_b=sc(HEAD_B))


def build_smplr(smpl_layer=None, template_lengths=None, width: int | None = None, **kw) -> SMPLR:
    """Convenience constructor: :class:`SMPLR` with the paper's sizes, or all sizes scaled by ``width``
    (units of the first trunk layer; see :func:`scaled_sizes`). Other keywords go to :class:`SMPLR`."""
    if width is not None:
        kw = {**scaled_sizes(width), **kw}
    return SMPLR(smpl_layer, template_lengths, **kw)
