"""Stacked hourglass network (Newell et al. 2016) with volumetric or 2D heads (paper Sec. 4.1).

Architecture (sizes and the choices below are constructor arguments; defaults: the authors' code):

* Stem, ``stem="code"`` (the authors' code): 2-pixel zero padding -> 6x6 stride-2 conv (features/4, no
  norm or activation after it) -> residual (features/2) -> 2x2 max-pool -> residual (features/2) ->
  residual (features). ``stem="newell"`` (Newell's Torch model): a 7x7 stride-2 "same" conv + BN + ReLU in
  place of the first two. Either maps 256x256 -> 64x64 (input_size / 4).
* Residual module: pre-activation bottleneck BN-ReLU-conv1x1(f/2) -> BN-ReLU-conv3x3(f/2) ->
  BN-ReLU-conv1x1(f), plus the input (a 1x1 conv when the channel count changes).
* Hourglass with ``downsamplings`` max-pool levels (4, the authors' code and Newell's: 64 -> 32 -> 16 -> 8
  -> 4): at each level an upper residual branch and a max-pool -> residual -> (inner hourglass | residual)
  -> residual -> nearest-upsample branch, added.
* Per stack: hourglass -> dropout -> residual -> 1x1 conv + BN + ReLU ("lin") -> head (1x1 conv, logits).
  Intermediate supervision: every stack's head is an output; between stacks the next input is
  ``x + conv1x1(lin) + conv1x1(head)`` (the usual remap of the head back to features).
* Heads: volumetric: 1x1 conv to ``depth_bins * C`` channels reshaped to (S, S, depth_bins, C), C =
  num_points + num_limbs, channel index = depth * C + c. 2D (``depth_bins=0``): 1x1 conv to C channels.
* Batch norms: momentum 0.9, epsilon 1e-5 (the code's), with a learned scale (gamma) only when
  ``bn_scale`` (the code has none). Convolutions: ``init`` kernels ("glorot_normal", the code's Xavier-normal;
  "glorot_uniform"), biases only when ``conv_bias`` and no batch norm follows (the code has none at all).

Output dict: ``heatmaps``: list (one per stack) of logits (B, S, S, D, C) or (B, S, S, C);
``points``: read from the last stack's first ``num_points`` channels: soft-argmax, (B, P, 3) root-relative
metres (x, y, z), for the volumetric model; for the 2D model (B, P, 2) metres (x, y) of the cube plane, by
default from the heatmap peak (:func:`smplr_tf.models.softargmax.peak_2d`, as the 2D model is trained with
MSE) or by soft-argmax (``readout_2d="softmax"``).

Layer names are systematic (``s{stack}_...``) so that :mod:`smplr_tf.models.inference` can build the
folded inference graph (``inference=True``) and move the weights across by name.
"""

from __future__ import annotations

import keras
from keras import layers

from smplr_tf.models.layers import ChannelAffine, Standardize
from smplr_tf.models.network import Network
from smplr_tf.models.softargmax import SoftArgmax

INIT = "glorot_normal"  # Xavier (paper Sec. 4.1); normal in the authors' code
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
STEMS = ("code", "newell")
# The arguments of the network as first built here (Newell's stem, Glorot-uniform, scaled batch norms, conv
# biases, 3 levels); runs trained before these became arguments rebuild with them.
LEGACY_ARGS = dict(stem="newell", bn_scale=True, init="glorot_uniform", conv_bias=True, downsamplings=3)


class _Builder:
    """Holds the build mode. ``inference=True``: no BatchNormalization; convolutions that a BN follows get a
    bias (the folded BN), the pre-activation BNs become :class:`ChannelAffine`."""

    def __init__(self, inference: bool, bn_scale: bool = False, init: str = INIT, conv_bias: bool = False):
        self.inference = inference
        self.bn_scale, self.init, self.conv_bias = bool(bn_scale), init, bool(conv_bias)

    def conv(self, x, filters, k, name, stride=1, bias=True, padding="same"):
        """``bias=False``: a batch norm follows (a bias only in the inference graph, holding the folded norm);
        ``bias=True``: none follows (a bias when ``conv_bias``); ``bias="always"``: a bias in any case."""
        use_bias = True if bias == "always" else (self.conv_bias if bias else self.inference)
        return layers.Conv2D(filters, k, strides=stride, padding=padding, use_bias=use_bias,
                             kernel_initializer=self.init, name=name)(x)

    def bn(self, x, name, after_conv: bool):
        if not self.inference:
            return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=self.bn_scale,
                                             name=name)(x)
        if after_conv:
            return x  # folded into the preceding convolution
        return ChannelAffine(name=name)(x)

    def conv_bn_relu(self, x, filters, k, name, stride=1):
        x = self.conv(x, filters, k, name + "_conv", stride=stride, bias=False)
        x = self.bn(x, name + "_bn", after_conv=True)
        return layers.ReLU(name=name + "_relu")(x)

    def residual(self, x, filters, name):
        """Pre-activation bottleneck residual module (Newell et al.)."""
        half = max(filters // 2, 1)
        y = self.bn(x, name + "_bn1", after_conv=False)
        y = layers.ReLU(name=name + "_relu1")(y)
        y = self.conv(y, half, 1, name + "_conv1", bias=False)
        y = self.bn(y, name + "_bn2", after_conv=True)
        y = layers.ReLU(name=name + "_relu2")(y)
        y = self.conv(y, half, 3, name + "_conv2", bias=False)
        y = self.bn(y, name + "_bn3", after_conv=True)
        y = layers.ReLU(name=name + "_relu3")(y)
        y = self.conv(y, filters, 1, name + "_conv3")
        skip = x if x.shape[-1] == filters else self.conv(x, filters, 1, name + "_skip")
        return layers.Add(name=name + "_add")([skip, y])

    def hourglass(self, x, level, filters, name):
        up1 = self.residual(x, filters, f"{name}_l{level}_up1")
        low = layers.MaxPooling2D(2, name=f"{name}_l{level}_pool")(x)
        low = self.residual(low, filters, f"{name}_l{level}_low1")
        if level > 1:
            low = self.hourglass(low, level - 1, filters, name)
        else:
            low = self.residual(low, filters, f"{name}_l{level}_low2")
        low = self.residual(low, filters, f"{name}_l{level}_low3")
        up2 = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_l{level}_upsample")(low)
        return layers.Add(name=f"{name}_l{level}_add")([up1, up2])


def _check_sizes(input_size, downsamplings):
    s = input_size // 4
    if input_size % 4 or s % (2 ** downsamplings):
        raise ValueError(f"input_size={input_size}: input_size/4 must be divisible by 2**downsamplings "
                         f"(downsamplings={downsamplings})")
    return s


def build_hourglass(num_stacks: int = 5, features: int = 256, input_size: int = 256, num_points: int = 41,
                    depth_bins: int = 16, num_limbs: int = 0, downsamplings: int = 4, dropout: float = 0.1,
                    name: str = "hourglass", inference: bool = False, readout_2d: str = "peak",
                    stem: str = "code", bn_scale: bool = False, init: str = INIT,
                    conv_bias: bool = False) -> keras.Model:
    """Build the stacked hourglass.

    The defaults are the authors' code's network: ``downsamplings=4`` pooling levels per hourglass,
    ``stem="code"``, batch norms without a learned scale (``bn_scale=False``), Xavier-normal kernels
    (``init="glorot_normal"``) and no convolution biases (``conv_bias=False``). ``LEGACY_ARGS`` is the network
    first built here (Newell's 7x7 stem, scaled batch norms, Glorot-uniform, biases, 3 levels).

    Input: image (B, input_size, input_size, 3) float32 RGB in [0, 1], standardised per image by the first
    layer (:class:`~smplr_tf.models.layers.Standardize`). Output dict, see module docstring. Returns a
    :class:`~smplr_tf.models.network.Network` whose ``get_config()`` holds these arguments.
    ``depth_bins=0`` builds the 2D model. ``inference=True`` builds the batch-norm-free inference graph with
    only the last stack's head (see :func:`smplr_tf.models.inference.hourglass_inference_model`, which fills
    its weights from a trained model); call it only through that function. ``readout_2d``: how the 2D
    model's ``points`` are read from its heatmaps: "peak" (default; argmax refined in a 5x5 window, right
    for heatmaps regressed with MSE, where a softmax is nearly uniform) or "softmax" (soft-argmax, for 2D
    heatmaps trained with softmax cross-entropy).
    """
    config = dict(kind="hourglass", **locals())  # every argument: what rebuilds this network
    s = _check_sizes(input_size, downsamplings)
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r}: expected one of {STEMS}")
    b = _Builder(inference, bn_scale=bn_scale, init=init, conv_bias=conv_bias)
    channels = num_points + num_limbs
    head_channels = channels * depth_bins if depth_bins else channels

    image = keras.Input((input_size, input_size, 3), name="image")
    x = Standardize(name="standardize")(image)
    if stem == "code":
        x = layers.ZeroPadding2D(2, name="stem1_pad")(x)
        x = b.conv(x, max(features // 4, 1), 6, "stem1_conv", stride=2, padding="valid")
    else:
        x = b.conv_bn_relu(x, max(features // 4, 1), 7, "stem1", stride=2)
    x = b.residual(x, max(features // 2, 1), "stem_res1")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = b.residual(x, max(features // 2, 1), "stem_res2")
    x = b.residual(x, features, "stem_res3")

    heatmaps = []
    for i in range(num_stacks):
        p = f"s{i}"
        last = i == num_stacks - 1
        hg = b.hourglass(x, downsamplings, features, f"{p}_hg")
        if dropout and not inference:
            hg = layers.Dropout(dropout, name=f"{p}_dropout")(hg)
        ll = b.residual(hg, features, f"{p}_res")
        ll = b.conv_bn_relu(ll, features, 1, f"{p}_lin")
        if inference and not last:
            # lin2(ll) + remap(head(ll)) is linear in ll: one 1x1 conv (weights merged by inference.py).
            x = layers.Add(name=f"{p}_merge_add")([x, b.conv(ll, features, 1, f"{p}_merge", bias="always")])
            continue
        head = b.conv(ll, head_channels, 1, f"{p}_head")
        if depth_bins:
            hm = layers.Reshape((s, s, depth_bins, channels), name=f"{p}_heatmaps")(head)
        else:
            hm = layers.Activation("linear", name=f"{p}_heatmaps")(head)
        heatmaps.append(hm)
        if not last:
            ll2 = b.conv(ll, features, 1, f"{p}_lin2")
            remap = b.conv(head, features, 1, f"{p}_remap")
            x = layers.Add(name=f"{p}_next")([x, ll2, remap])

    mode = "softmax" if depth_bins else readout_2d
    points = SoftArgmax(num_points=num_points, mode=mode, name="points")(heatmaps[-1])
    return Network(config, image, {"heatmaps": heatmaps, "points": points}, name=name)


def hourglass_flops(num_stacks=5, features=256, input_size=256, num_points=41, depth_bins=16, num_limbs=0,
                    downsamplings=4, inference=False, stem="code") -> float:
    """Multiply-adds x 2 of the convolutions for one image (the dominant cost), counted analytically.

    The arguments mean what they mean for :func:`build_hourglass` (biases, norms and pooling not counted)."""
    s = input_size // 4
    total = 0.0

    def conv(hw, cin, cout, k):
        return 2.0 * hw * hw * cin * cout * k * k

    def residual(hw, cin, cout):
        h = max(cout // 2, 1)
        f = conv(hw, cin, h, 1) + conv(hw, h, h, 3) + conv(hw, h, cout, 1)
        return f + (conv(hw, cin, cout, 1) if cin != cout else 0.0)

    f4, f2 = max(features // 4, 1), max(features // 2, 1)
    total += conv(input_size // 2, 3, f4, 6 if stem == "code" else 7) + residual(input_size // 2, f4, f2)
    total += residual(s, f2, f2) + residual(s, f2, features)
    c = (num_points + num_limbs) * (depth_bins or 1)
    for i in range(num_stacks):
        hw = s
        for lvl in range(downsamplings, 0, -1):
            total += residual(hw, features, features)  # up1
            total += 2 * residual(hw // 2, features, features)  # low1, low3
            if lvl == 1:
                total += residual(hw // 2, features, features)  # low2
            hw //= 2
        total += residual(s, features, features) + conv(s, features, features, 1)
        last = i == num_stacks - 1
        if inference and not last:
            total += conv(s, features, features, 1)
        else:
            total += conv(s, features, c, 1)
            if not last:
                total += conv(s, features, features, 1) + conv(s, c, features, 1)
    return total
