"""``Network``: a functional Keras model that knows what builds it.

Every network with weights (hourglass, AlexNet, DAE, Psi net, Omega net) is returned by its builder as a
:class:`Network`: the same functional graph as a plain ``keras.Model`` (same layers, names and weight file
layout), plus the builder's name (``kind``) and keyword arguments. ``get_config()`` returns them as a plain,
JSON-ready dict ``{"kind": ..., **arguments}``; ``Network.from_config(config)`` (and
:func:`smplr_tf.models.registry.build_network`) calls the builder again. This is what a run directory's
``network.json`` holds, so a trained network is rebuilt without the flags or the training code.
"""

from __future__ import annotations

import json

import keras


def _plain(value):
    """Tuples -> lists, recursively (the config is stored and compared as JSON)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@keras.saving.register_keras_serializable(package="smplr_tf")
class Network(keras.Model):
    """``Network(config, inputs, outputs, name)``: a functional model plus ``config`` = {"kind", builder args}.

    The argument order differs from ``keras.Model(inputs, outputs)`` on purpose: ``keras.models.clone_model``
    (used to fold batch norms) then makes a plain functional copy, which does not claim to be what the
    builder would make.
    """

    def __init__(self, config: dict, inputs, outputs, name=None, **kw):
        if "kind" not in config:
            raise ValueError("Network config needs a 'kind' (the builder's name in smplr_tf.models.registry)")
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kw)
        # kept as JSON text: a plain string is not wrapped by Keras's attribute tracking
        self._network_config_json = json.dumps(_plain(dict(config)), sort_keys=True)

    @property
    def kind(self) -> str:
        return self.get_config()["kind"]

    def get_config(self) -> dict:
        return json.loads(self._network_config_json)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from smplr_tf.models.registry import build_network

        return build_network(config)
