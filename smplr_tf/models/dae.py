"""Denoising autoencoder on the 41 (or P) points (paper Sec. 3.3; sizes from the authors' code).

input (B, P, 3) -> flatten (3P) -> dropout(1 - keep_prob) -> 1024 (e1) -> 1024 (e2) -> 512 -> dropout
-> 1024, + e2 -> 1024, + e1 -> 3P linear -> + input (residual: the network predicts the correction).

Hidden layers: Dense (no bias: the batch norm after it would cancel one; the authors' code has it, same
function) + BatchNorm (momentum 0.99, epsilon 1e-3, with gamma, as the code's) + ELU; the skip additions are
taken after the ELU, and the residual adds the input as given (before the input dropout), both as in the code;
so at test time a zero correction returns the input. Glorot-uniform ("Xavier") kernels; the correction's bias
starts ``bias_initializer`` (Glorot-uniform in the code). The same network lifts 2D to 3D when the input depth
is set to 0.
Under a mixed-precision policy only the hidden layers and the correction compute in 16 bits; the input, the
residual addition and the output are float32.
"""

from __future__ import annotations

import keras
from keras import layers

from smplr_tf.models.network import Network

INIT = "glorot_uniform"


def _hidden(x, units, name):
    x = layers.Dense(units, use_bias=False, kernel_initializer=INIT, name=name + "_dense")(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ELU(name=name + "_elu")(x)


def build_dae(num_points: int = 41, hidden: int = 1024, bottleneck: int = 512, keep_prob: float = 0.8,
              name: str = "dae", bias_initializer: str = "glorot_uniform") -> keras.Model:
    """(B, num_points, 3) metres -> (B, num_points, 3) metres, denoised. See the module docstring.

    ``bias_initializer``: of the correction layer ("glorot_uniform" as the authors' code; "zeros" as Keras').
    Returns a :class:`~smplr_tf.models.network.Network` whose ``get_config()`` holds these arguments."""
    config = dict(kind="dae", **locals())  # every argument: what rebuilds this network
    x = keras.Input((num_points, 3), name="points")
    # Input, residual and output stay float32 under a mixed-precision policy: the points (about 1 m) would lose
    # ~4 mm to bfloat16's 8-bit mantissa, while the correction (tens of mm once trained) loses ~0.1 mm.
    flat = layers.Flatten(name="flatten", dtype="float32")(x)
    h = layers.Dropout(1.0 - keep_prob, name="input_dropout")(flat) if keep_prob < 1 else flat
    e1 = _hidden(h, hidden, "enc1")
    e2 = _hidden(e1, hidden, "enc2")
    z = _hidden(e2, bottleneck, "enc3")
    if keep_prob < 1:
        z = layers.Dropout(1.0 - keep_prob, name="code_dropout")(z)
    d = layers.Add(name="dec1_skip")([_hidden(z, hidden, "dec1"), e2])
    d = layers.Add(name="dec2_skip")([_hidden(d, hidden, "dec2"), e1])
    delta = layers.Dense(num_points * 3, kernel_initializer=INIT, bias_initializer=bias_initializer,
                         name="correction")(d)
    out = layers.Add(name="residual", dtype="float32")([flat, delta])
    out = layers.Reshape((num_points, 3), name="denoised", dtype="float32")(out)
    return Network(config, x, out, name=name)
