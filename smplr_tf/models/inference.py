"""Inference-time graph rewrites: fold batch norms, merge the hourglass's intermediate heads.

* :func:`fold_batch_norm` (any functional model, nested functional models): every
  ``BatchNormalization`` that directly follows a ``Conv2D`` / ``Dense`` without activation whose output
  nothing else reads is folded into that layer (``W' = W * s``, ``b' = (b - mean) * s + beta``,
  ``s = gamma / sqrt(var + eps)``) and replaced by an identity (:class:`Folded`); every other batch norm
  (e.g. the pre-activation norms of the hourglass's residual modules, which follow an addition) becomes a
  two-op :class:`ChannelAffine`. Outputs are the
  same as the original model's in inference mode (up to float rounding).
* :func:`hourglass_inference_model`: the folded hourglass plus one more exact rewrite: at inference the
  intermediate heads are not needed, and ``lin2(ll) + remap(head(ll))`` is linear in ``ll``, so each
  intermediate stack's head, remap and lin2 become ONE 1x1 convolution (features x features). For the
  full-size volumetric model this removes 4 x (256x656 + 656x256) 1x1 convolutions at 64x64: 47.8 ->
  36.8 GFLOPs. Its output dict has ``heatmaps`` = [last stack only] and the same ``points``.
* :func:`inference_model`: picks the right one for a model (for a :class:`~smplr_tf.models.pipeline.SMPLRPipeline`:
  each component's).

``benchmarks/inference_speed.py`` times the variants.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers

from smplr_tf.models.layers import ChannelAffine, Folded

_FOLDABLE = (layers.Conv2D, layers.Dense)


def _model_nodes(model):
    return {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}


def _producer(node):
    """The operation that produced the single input of ``node`` (None when it has several inputs)."""
    ins = node.input_tensors
    if len(ins) != 1:
        return None
    return ins[0]._keras_history.operation


def find_foldable(model) -> dict:
    """{id(conv_or_dense_layer): bn_layer} for the batch norms of ``model`` that can be folded."""
    nodes = _model_nodes(model)
    out = {}
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        bn_nodes = [n for n in layer._inbound_nodes if id(n) in nodes]
        if len(bn_nodes) != 1 or layer.axis not in (-1, len(bn_nodes[0].input_tensors[0].shape) - 1):
            continue
        prod = _producer(bn_nodes[0])
        if not isinstance(prod, _FOLDABLE) or getattr(prod, "activation", None) not in (
                None, keras.activations.linear):
            continue  # only a purely linear layer can absorb the norm
        prod_nodes = [n for n in prod._inbound_nodes if id(n) in nodes]
        consumers = [n for n in prod._outbound_nodes if id(n) in nodes]
        if len(prod_nodes) == 1 and len(consumers) == 1:
            out[id(prod)] = layer
    return out


def bn_scale_shift(bn) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode batch norm as y = x * scale + shift: (C,) float32 each."""
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else 1.0
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else 0.0
    s = gamma / np.sqrt(var + bn.epsilon)
    return (s * np.ones_like(mean)).astype(np.float32), (beta - mean * s).astype(np.float32)


def folded_kernel_bias(layer, bn=None) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a Conv2D/Dense with the following batch norm ``bn`` (or None) folded in."""
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    cout = kernel.shape[-1]
    bias = (keras.ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias
            else np.zeros(cout))
    if bn is not None:
        s, t = bn_scale_shift(bn)
        kernel = kernel * s
        bias = bias * s + t
    return kernel.astype(np.float32), bias.astype(np.float32)


def fold_batch_norm(model) -> keras.Model:
    """An inference-only copy of ``model`` with its batch norms folded (see module docstring).

    Works on functional models (nested functional models are folded recursively). The copy is a plain
    functional model (not a :class:`~smplr_tf.models.network.Network`: its graph is not what the builder
    makes). The copy owns new weights, except that layers without weights, and custom layers whose config cannot
    rebuild them, are shared with the original; training-only layers (dropout) are kept (identities at
    inference).
    """
    if not hasattr(model, "_nodes_by_depth"):
        raise TypeError(f"fold_batch_norm needs a functional Keras model, got {type(model).__name__}")

    fold = find_foldable(model)
    folded_bns = {id(bn) for bn in fold.values()}
    pending = []  # (new_layer, weights)

    def clone(op):
        if not isinstance(op, layers.Layer):
            return op  # a stateless keras.ops operation
        if isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth"):
            return fold_batch_norm(op)
        if isinstance(op, layers.BatchNormalization):
            if id(op) in folded_bns:
                return Folded(name=op.name)
            new = ChannelAffine(name=op.name, dtype=op.dtype_policy)
            pending.append((new, list(bn_scale_shift(op))))
            return new
        if not op.weights:
            return op  # stateless (activations, reshapes, dropout, Lambda): shared, nothing to copy
        if id(op) in fold:
            cfg = op.get_config()
            cfg["use_bias"] = True
            new = op.__class__.from_config(cfg)
            pending.append((new, list(folded_kernel_bias(op, fold[id(op)]))))
            return new
        try:
            new = op.__class__.from_config(op.get_config())
        except (NotImplementedError, TypeError, ValueError):
            return op  # a custom layer without a usable config: share it (same weights, same maths)
        pending.append((new, op.get_weights()))
        return new

    new_model = keras.models.clone_model(model, clone_function=clone)
    for layer, weights in pending:
        if weights:
            layer.set_weights(weights)
    return new_model


def hourglass_inference_model(model, dtype_policy: str | None = None, config: dict | None = None) -> keras.Model:
    """Folded + head-merged inference graph of a model built by ``build_hourglass`` (see module doc).

    Returns a model image -> {"heatmaps": [last stack logits], "points": same as the original}.
    dtype_policy: None = the global policy (float32: exact up to rounding); "mixed_bfloat16" computes the
    convolutions in bfloat16 (~1.6x less CPU time on AVX512_BF16 CPUs; NOT exact, check the accuracy of a
    trained model with it before use). Points are always computed in float32.
    config: the hourglass's builder config when ``model`` does not carry it (a pipeline's part).
    """
    from smplr_tf.models.hourglass import build_hourglass

    if config is None and getattr(model, "kind", None) == "hourglass":
        config = model.get_config()
    cfg = dict(config or {})
    if cfg.pop("kind", None) != "hourglass":
        raise ValueError("hourglass_inference_model needs a model made by build_hourglass")
    cfg.pop("inference", None)
    if dtype_policy is None:
        new = build_hourglass(**cfg, inference=True)
    else:
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(dtype_policy)
        try:
            new = build_hourglass(**cfg, inference=True)
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
    fold = find_foldable(model)
    for layer in new.layers:
        if not layer.weights:
            continue
        name = layer.name
        if isinstance(layer, ChannelAffine):
            layer.set_weights(list(bn_scale_shift(model.get_layer(name))))
        elif name.endswith("_merge"):
            p = name[: -len("_merge")]
            k_ll, b_ll = folded_kernel_bias(model.get_layer(p + "_lin2"))
            k_h, b_h = folded_kernel_bias(model.get_layer(p + "_head"))
            k_r, b_r = folded_kernel_bias(model.get_layer(p + "_remap"))
            k = k_ll[0, 0].astype(np.float64) + k_h[0, 0].astype(np.float64) @ k_r[0, 0]
            b = b_ll.astype(np.float64) + b_h.astype(np.float64) @ k_r[0, 0] + b_r
            layer.set_weights([k[None, None].astype(np.float32), b.astype(np.float32)])
        else:
            orig = model.get_layer(name)
            if isinstance(orig, _FOLDABLE):
                kernel, bias = folded_kernel_bias(orig, fold.get(id(orig)))
                layer.set_weights([kernel, bias] if layer.use_bias else [kernel])
            else:
                layer.set_weights(orig.get_weights())
    return new


def inference_model(model) -> keras.Model:
    """The fastest exact inference form of one of our models: the hourglass folded and head-merged, a pipeline
    with each component in its inference form (same SMPL layer), any other functional model folded."""
    from smplr_tf.models.pipeline import SMPLRPipeline

    if isinstance(model, SMPLRPipeline):
        hg = hourglass_inference_model(model.hourglass, config=model.part_config("hourglass"))
        return SMPLRPipeline(hg, fold_batch_norm(model.dae),
                             fold_batch_norm(model.psi), fold_batch_norm(model.omega), model.smpl,
                             name=model.name + "_inference", dae_depth0=model.dae_depth0,
                             smpl_gender=model.smpl_gender)
    if getattr(model, "kind", None) == "hourglass":
        return hourglass_inference_model(model)
    return fold_batch_norm(model)


def randomize_batch_norms(model, seed: int = 0) -> None:
    """Give every BatchNormalization (recursively) random gamma/beta/moving statistics (tests, benchmarks),
    so that folding is exercised with non-trivial statistics."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            vals = {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.2, c),
                    "moving_mean": rng.normal(0, 0.2, c), "moving_variance": rng.uniform(0.5, 2.0, c)}
            for attr, v in vals.items():
                var = getattr(layer, attr, None)
                if var is not None:
                    var.assign(v.astype(np.float32))


def _all_layers(model):
    for layer in model.layers if hasattr(model, "layers") else []:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
