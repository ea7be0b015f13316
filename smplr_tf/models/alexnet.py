"""AlexNet-style baseline regressing 3D joints directly (paper Sec. 4.4.1, Table 1 row "Alexnet").

Krizhevsky et al.'s layout adapted to a 256x256 crop (valid 11x11 stride-4 conv: 256 -> 62, then the
usual 3x3 stride-2 pools: 30 -> 14 -> 6, so the flattened feature is 6 x 6 x 256 as in the original):

  conv 11x11/4 96 -> pool 3/2 -> conv 5x5 256 -> pool 3/2 -> conv 3x3 384 -> conv 3x3 384 -> conv 3x3 256
  -> pool 3/2 -> FC 4096 -> dropout 0.5 -> FC 4096 -> dropout 0.5 -> FC 3P (linear) -> (B, P, 3) metres

Choices the paper leaves open: batch norm after every conv (in place of local response normalisation;
training from scratch with Adam at lr 0.01 as in the paper is unstable without it), ReLU, Glorot init.
"""

from __future__ import annotations

import keras
from keras import layers

from smplr_tf.models.layers import Standardize
from smplr_tf.models.network import Network

INIT = "glorot_uniform"


def build_alexnet(input_size: int = 256, num_points: int = 23, width: float = 1.0, fc_units: int = 4096,
                  dropout: float = 0.5, batch_norm: bool = True, name: str = "alexnet") -> keras.Model:
    """image (B, input_size, input_size, 3) float RGB in [0, 1] -> root-relative joints (B, num_points, 3) metres.

    The first layer standardises each image (:class:`~smplr_tf.models.layers.Standardize`). Returns a
    :class:`~smplr_tf.models.network.Network` whose ``get_config()`` holds these arguments.

    ``width`` scales every conv's channel count (tests use tiny widths); ``fc_units`` the two FC layers.
    Any input_size >= 11 works (e.g. 64 for quick runs; the last pools then pad).
    """
    config = dict(kind="alexnet", **locals())  # every argument: what rebuilds this network

    def ch(c):
        return max(int(round(c * width)), 1)

    image = keras.Input((input_size, input_size, 3), name="image")
    x = Standardize(name="standardize")(image)
    convs = [(96, 11, 4, "valid", True), (256, 5, 1, "same", True), (384, 3, 1, "same", False),
             (384, 3, 1, "same", False), (256, 3, 1, "same", True)]
    for i, (c, k, s, pad, pool) in enumerate(convs, start=1):
        x = layers.Conv2D(ch(c), k, strides=s, padding=pad, use_bias=not batch_norm,
                          kernel_initializer=INIT, name=f"conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
        if pool:  # 'same' only where a small test input leaves fewer than 3 pixels (full size: all 'valid')
            pad = "valid" if x.shape[1] >= 3 else "same"
            x = layers.MaxPooling2D(3, strides=2, padding=pad, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = layers.Dense(fc_units, activation="relu", kernel_initializer=INIT, name=f"fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = layers.Dense(num_points * 3, kernel_initializer=INIT, name="fc8")(x)
    out = layers.Reshape((num_points, 3), name="joints")(x)
    return Network(config, image, out, name=name)
