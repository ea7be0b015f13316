"""The whole SMPLR network: image -> hourglass -> DAE -> Psi / Omega -> SMPL (paper Fig. 2, Sec. 4.5).

:class:`SMPLRPipeline` is the one definition of the deployed model: the e2e training stage trains it,
``evaluate`` scores it (Table 1 "ALL"), ``infer`` runs it on an image, ``export`` saves it as a SavedModel and
TFLite, and ``benchmarks/timing.py`` times its parts. Its config (``get_config``) holds the four component
networks' configs and the body model, so ``SMPLRPipeline.from_config(config)`` rebuilds it (weights apart)
without any run directory.

Input: image (B, S, S, 3) float32 RGB in [0, 1] (the hourglass standardises it), S = the hourglass's
``input_size``. Output dict (float32, metres, camera axes x right / y down / z forward):

* ``heatmaps``: the hourglass's list of per-stack logits; ``points`` (B, 41, 3) root-relative (hourglass);
* ``dae_points`` (B, 41, 3) root-relative, the DAE's output (SMPLR's input JL); with ``dae_depth0`` the DAE is
  fed the hourglass's points with their depth set to 0 (a DAE trained with ``--dae_input=depth0`` lifts them);
* ``rotmats`` (B, 24, 3, 3) Omega's matrices (fed raw to SMPL); ``betas`` (B, 10); ``gender`` (B,) Psi's code
  (male model where >= 0); ``gender_index`` (B,) int32 SMPL layer index used (``smpl_gender="neutral"``: the
  layer's neutral model for every sample, Psi's code is then only reported);
* ``vertices`` (B, V, 3), ``joints`` (B, 24, 3), ``landmarks`` (B, 18, 3): SMPL's, in the SMPL frame (not
  root-relative); ``smpl_points`` (B, 41, 3) root-relative points of that mesh.

DAE, Psi and Omega are frozen (``trainable = False``; the paper's end-to-end step fine-tunes only the
hourglass) and always run in inference mode.
"""

from __future__ import annotations

import json

import keras
import tensorflow as tf

from smplr_tf.body import skeleton


def smpl_config(smpl) -> dict:
    """What rebuilds an SMPL layer: {"smpl_dir": official model files or None (the free model), "genders"}."""
    return {"smpl_dir": getattr(smpl, "smpl_dir", None) or None, "genders": [str(g) for g in smpl.genders]}


def build_smpl(config: dict):
    """An SMPL layer from :func:`smpl_config`'s dict."""
    from smplr_tf.body.smpl import SMPL

    return SMPL(smpl_dir=config.get("smpl_dir") or None, genders=tuple(config.get("genders", skeleton.BODY_GENDERS)))


SMPL_GENDERS = ("psi", "neutral")


def smpl_from_points(psi, omega, smpl, points, smpl_gender: str = "psi") -> dict:
    """SMPLR on points: (B, 41, 3) root-relative metres -> Psi's and Omega's outputs and the SMPL body.

    psi / omega: networks of :func:`smplr_tf.models.smplr.build_psi_net` / ``build_omega_net`` (inference
    mode); smpl: an SMPL layer with "female" and "male" models (gender index 0 / 1). smpl_gender: "psi" (the
    model of Psi's gender code) or "neutral" (the layer's neutral model for every sample; the layer needs one).
    Returns the keys ``rotmats``, ``betas``, ``gender``, ``gender_index``, ``vertices``, ``joints``,
    ``landmarks``, ``smpl_points`` described in the module docstring.
    """
    from smplr_tf.body.smpl import gender_index_from_sign

    if smpl_gender not in SMPL_GENDERS:
        raise ValueError(f"smpl_gender must be one of {SMPL_GENDERS}, got {smpl_gender!r}")
    shape = psi(points, training=False)
    rot = omega(points, training=False)["rotmats"]
    if smpl_gender == "neutral":
        gidx = tf.fill(tf.shape(shape["gender"])[:1], neutral_index(smpl))
    else:
        gidx = gender_index_from_sign(shape["gender"])
    body = smpl(tf.cast(shape["betas"], tf.float32), tf.cast(rot, tf.float32), gender=gidx)
    return {"rotmats": rot, "betas": shape["betas"], "gender": shape["gender"], "gender_index": gidx,
            "vertices": body["vertices"], "joints": body["joints"], "landmarks": body["landmarks"],
            "smpl_points": skeleton.points_from_smpl(body["joints"], body["landmarks"])}


def neutral_index(smpl) -> int:
    """Index of the neutral model in an SMPL layer's genders; ValueError when it has none."""
    genders = [str(g) for g in smpl.genders]
    if "neutral" not in genders:
        raise ValueError(f"the neutral gender needs an SMPL layer with a neutral model; this one has {genders}")
    return genders.index("neutral")


@keras.saving.register_keras_serializable(package="smplr_tf")
class SMPLRPipeline(keras.Model):
    """hourglass -> DAE -> (Psi, Omega) -> SMPL. See the module docstring.

    hourglass, dae, psi, omega: the component networks (``build_hourglass`` with 41 points, ``build_dae`` with
    41 points, ``build_psi_net``, ``build_omega_net``); smpl: an SMPL layer. The pipeline keeps the parts'
    configs (:meth:`part_config`) and holds each part as a plain functional model sharing its layers (see
    :func:`_functional_view`). The attribute names (hourglass, dae, psi, omega, smpl) and that class are the
    layout of the weights file; keep them. dae_depth0: feed the DAE the hourglass's points with depth 0 (a DAE
    trained with --dae_input=depth0, the UP-3D recipe); smpl_gender: "psi" or "neutral" (:func:`smpl_from_points`).
    """

    kind = "pipeline"

    def __init__(self, hourglass, dae, psi, omega, smpl, name="smplr_pipeline", dae_depth0: bool = False,
                 smpl_gender: str = "psi", **kw):
        super().__init__(name=name, **kw)
        if smpl_gender not in SMPL_GENDERS:
            raise ValueError(f"smpl_gender must be one of {SMPL_GENDERS}, got {smpl_gender!r}")
        if smpl_gender == "neutral":
            neutral_index(smpl)
        self.dae_depth0, self.smpl_gender = bool(dae_depth0), str(smpl_gender)
        parts = {"hourglass": hourglass, "dae": dae, "psi": psi, "omega": omega}
        configs = {k: (net.get_config() if hasattr(net, "kind") else None) for k, net in parts.items()}
        for key in ("hourglass", "dae"):
            p = (configs[key] or {}).get("num_points")
            if p is not None and int(p) != skeleton.NUM_POINTS:
                raise ValueError(f"the pipeline needs a {skeleton.NUM_POINTS}-point {key}, got {p} points")
        # kept as JSON text (not tracked by Keras); None for a part that has no config (a folded copy)
        self._part_configs_json = json.dumps(configs, sort_keys=True)
        views = {k: _functional_view(net) for k, net in parts.items()}
        for key in ("dae", "psi", "omega"):
            views[key].trainable = False
        self.hourglass, self.dae, self.psi, self.omega, self.smpl = (views["hourglass"], views["dae"], views["psi"],
                                                                     views["omega"], smpl)

    def part_config(self, key: str) -> dict | None:
        """The config of part ``key`` (hourglass, dae, psi, omega) as given; None for one that had none."""
        return json.loads(self._part_configs_json)[key]

    @property
    def input_size(self) -> int:
        """S: the side of the (B, S, S, 3) images the pipeline takes."""
        return int(self.hourglass.input_shape[1])

    def call(self, image, training=False):
        hg = self.hourglass(image, training=training)
        pts = tf.cast(hg["points"], tf.float32)
        dae_in = tf.concat([pts[..., :2], tf.zeros_like(pts[..., 2:])], -1) if self.dae_depth0 else pts
        dae_pts = tf.cast(self.dae(dae_in, training=False), tf.float32)
        out = {"heatmaps": hg["heatmaps"], "points": pts, "dae_points": dae_pts}
        out.update(smpl_from_points(self.psi, self.omega, self.smpl, dae_pts, self.smpl_gender))
        return out

    def build_variables(self) -> None:
        """Create every variable (call once on zeros) so that weights can be loaded before a first real call."""
        if not self.built:
            s = self.input_size
            self(tf.zeros([1, s, s, 3]), training=False)

    def get_config(self) -> dict:
        parts = {k: self.part_config(k) for k in ("hourglass", "dae", "psi", "omega")}
        missing = [k for k, v in parts.items() if v is None]
        if missing:
            raise TypeError(f"pipeline {self.name!r}: its {', '.join(missing)} carry no config (an inference copy "
                            "made by folding cannot be rebuilt from a config)")
        return {"kind": "pipeline", "name": self.name, **parts, "smpl": smpl_config(self.smpl),
                "dae_depth0": self.dae_depth0, "smpl_gender": self.smpl_gender}

    @classmethod
    def from_config(cls, config, custom_objects=None, smpl_layer=None):
        """Rebuild (untrained weights) from :meth:`get_config`'s dict; ``smpl_layer`` replaces the body model."""
        from smplr_tf.models.registry import build_network

        parts = {k: build_network(config[k]) for k in ("hourglass", "dae", "psi", "omega")}
        smpl = smpl_layer if smpl_layer is not None else build_smpl(config["smpl"])
        return cls(smpl=smpl, name=config.get("name", "smplr_pipeline"), dae_depth0=bool(config.get("dae_depth0")),
                   smpl_gender=str(config.get("smpl_gender", "psi")), **parts)


def _functional_view(net):
    """``net`` as a plain functional model sharing its layers and weights.

    Keras names the weights of the nested models that it reaches through a model's layer list by their class
    (``functional``, ``functional_1``, ...); the pipeline's weight files (e2e runs) were written with plain
    functional parts, so the parts stay plain functional models whatever class their builder returns."""
    if type(net).__name__ == "Functional":
        return net
    return keras.Model(net.input, net.output, name=net.name)
