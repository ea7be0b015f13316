"""Small shared layers: per-image standardisation (the image networks' first layer) and a per-channel affine
(inference form of a batch norm that cannot be folded)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="smplr_tf")
class ChannelAffine(keras.layers.Layer):
    """y = x * scale + shift over the last axis. What a BatchNormalization computes at inference, in two ops.

    Used by :mod:`smplr_tf.models.inference` for the batch norms that do not follow a convolution (the
    pre-activation norms of the residual modules, which follow an addition). Weights: scale (C,), shift (C,).
    """

    def build(self, input_shape):
        c = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(c,), initializer="ones")
        self.shift = self.add_weight(name="shift", shape=(c,), initializer="zeros")

    def call(self, x, training=None, mask=None):
        return x * keras.ops.cast(self.scale, x.dtype) + keras.ops.cast(self.shift, x.dtype)


@keras.saving.register_keras_serializable(package="smplr_tf")
class Folded(keras.layers.Layer):
    """Identity that stands where a batch norm was folded into the preceding layer (accepts BN's call args)."""

    def call(self, x, training=None, mask=None):
        return x

    def compute_output_shape(self, shape):
        return shape


@keras.saving.register_keras_serializable(package="smplr_tf")
class Standardize(keras.layers.Layer):
    """Per-image standardisation, the first layer of the image networks (no weights).

    image (B, H, W, 3) float RGB in [0, 1] -> (image - mean) / max(std, 1 / sqrt(H W 3)), mean and std over
    each image's pixels and channels: ``tf.image.per_image_standardization``, computed in float32. The
    preprocessing is part of the network, so the training pipeline, evaluation, infer, the SavedModel and
    TFLite all feed the same [0, 1] images.
    """

    def __init__(self, **kw):
        kw.setdefault("dtype", "float32")
        super().__init__(**kw)

    def call(self, image):
        return tf.image.per_image_standardization(tf.cast(image, tf.float32))

    def compute_output_shape(self, shape):
        return shape
