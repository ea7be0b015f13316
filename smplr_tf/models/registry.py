"""Network configs: which builder makes a network, and how a run's training flags map to its config.

A config is a JSON-ready dict ``{"kind": <builder>, **arguments}``, what every network's ``get_config()``
returns (:class:`~smplr_tf.models.network.Network`, :class:`~smplr_tf.models.pipeline.SMPLRPipeline`) and what
a run directory's ``network.json`` holds. Kinds:

* ``hourglass``: :func:`smplr_tf.models.hourglass.build_hourglass` (stages shn, shn2d: ``depth_bins`` 0)
* ``alexnet``: :func:`smplr_tf.models.alexnet.build_alexnet`
* ``dae``: :func:`smplr_tf.models.dae.build_dae`
* ``psi_net`` / ``omega_net``: :func:`smplr_tf.models.smplr.build_psi_net` / ``build_omega_net``
* ``hmr`` / ``hmr_discriminator``: :func:`smplr_tf.models.hmr.build_hmr` / ``build_hmr_discriminator`` (the
  HMR baseline, stage hmr; the discriminator is trained beside it, not saved as the run's network)
* ``pipeline``: :class:`smplr_tf.models.pipeline.SMPLRPipeline` (the four component configs + the body model)

:func:`config_from_flags` is the one mapping from training flags to a config: training uses it to build a
stage's network, and reloading uses it for runs saved before ``network.json`` existed. Nothing here imports
the training stages or the flag definitions: a flags object is read by attribute or key.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from smplr_tf.body import skeleton

_BUILDERS = {
    "hourglass": ("smplr_tf.models.hourglass", "build_hourglass"),
    "alexnet": ("smplr_tf.models.alexnet", "build_alexnet"),
    "dae": ("smplr_tf.models.dae", "build_dae"),
    "psi_net": ("smplr_tf.models.smplr", "build_psi_net"),
    "omega_net": ("smplr_tf.models.smplr", "build_omega_net"),
    "hmr": ("smplr_tf.models.hmr", "build_hmr"),
    "hmr_discriminator": ("smplr_tf.models.hmr", "build_hmr_discriminator"),
}
KINDS = tuple(_BUILDERS) + ("pipeline",)
IMAGE_KINDS = ("hourglass", "alexnet", "pipeline", "hmr")

# What each kind takes (recorded in network.json beside the config).
IMAGE_INPUT = ("image (B, S, S, 3) float32 RGB in [0, 1], S = input_size; the network standardises each image "
               "itself (first layer 'standardize')")
POINTS_INPUT = "points (B, P, 3) float32 metres, root-relative, camera axes (x right, y down, z forward)"


def build_network(config: Mapping, **build_kw):
    """A new (untrained) network from its config. ``build_kw``: builder arguments that are not part of the
    config (``template_lengths`` of psi_net / omega_net; ``smpl_layer`` of a pipeline)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "pipeline":
        from smplr_tf.models.pipeline import SMPLRPipeline

        return SMPLRPipeline.from_config(dict(config, kind=kind), **build_kw)
    if kind not in _BUILDERS:
        raise ValueError(f"unknown network kind {kind!r}; one of {list(KINDS)}")
    module, fn = _BUILDERS[kind]
    return getattr(importlib.import_module(module), fn)(**config, **build_kw)


def network_config(model) -> dict:
    """The config of a network made by a smplr_tf.models builder (``model.get_config()`` with its kind)."""
    if not hasattr(model, "kind"):
        raise TypeError(f"{type(model).__name__} {getattr(model, 'name', '')!r} carries no network config: "
                        "build it with a smplr_tf.models builder")
    return model.get_config()


def input_convention(config: Mapping) -> str:
    """One line saying what a network of this config takes."""
    return IMAGE_INPUT if config.get("kind") in IMAGE_KINDS else POINTS_INPUT


def input_size_of(model) -> int:
    """S of an image network's (B, S, S, 3) input (hourglass, AlexNet, pipeline)."""
    cfg = network_config(model)
    if cfg["kind"] == "pipeline":
        cfg = cfg["hourglass"]
    if "input_size" not in cfg:
        raise ValueError(f"a '{cfg['kind']}' network takes no image")
    return int(cfg["input_size"])


# ------------------------------------------------------------------------------------------ from flags
def _get(fl, name):
    if isinstance(fl, Mapping):
        return fl[name]
    return getattr(fl, name)


def config_from_flags(fl, stage: str | None = None) -> dict:
    """The network config of a run trained with flags ``fl`` (a FlagValues, or a dict name -> value as
    ``smplr_tf.runs.flags_dict`` gives). Stage e2e has no config of its own: its network is the pipeline of
    its four component runs (``smplr_tf.runs.pipeline_from_runs``)."""
    stage = stage or _get(fl, "stage")
    if stage in ("shn", "shn2d"):
        return dict(kind="hourglass", num_stacks=int(_get(fl, "hg_stacks")), features=int(_get(fl, "hg_features")),
                    input_size=int(_get(fl, "input_size")), num_points=int(_get(fl, "num_points")),
                    depth_bins=0 if stage == "shn2d" else int(_get(fl, "depth_bins")),
                    num_limbs=skeleton.NUM_LIMBS if _get(fl, "limbs") else 0,
                    downsamplings=int(_get(fl, "hg_downsamplings")), dropout=float(_get(fl, "hg_dropout")),
                    name="hourglass", readout_2d="peak", inference=False, stem=str(_get(fl, "hg_stem")),
                    bn_scale=bool(_get(fl, "hg_bn_scale")), init=str(_get(fl, "hg_init")),
                    conv_bias=bool(_get(fl, "hg_conv_bias")))
    if stage == "alexnet":
        return dict(kind="alexnet", input_size=int(_get(fl, "input_size")), num_points=int(_get(fl, "num_points")),
                    width=float(_get(fl, "alexnet_width")), fc_units=int(_get(fl, "alexnet_fc")),
                    dropout=float(_get(fl, "alexnet_dropout")), batch_norm=True, name="alexnet")
    if stage == "dae":
        return dict(kind="dae", num_points=int(_get(fl, "num_points")), hidden=int(_get(fl, "dae_hidden")),
                    bottleneck=int(_get(fl, "dae_bottleneck")), keep_prob=float(_get(fl, "dae_keep_prob")),
                    name="dae", bias_initializer=str(_get(fl, "mlp_bias_init")))
    if stage in ("smplr_shape", "smplr_pose"):
        from smplr_tf.models.smplr import head_sizes

        sizes = dict(trunk=[int(t) for t in _get(fl, "smplr_trunk")], **head_sizes(int(_get(fl, "smplr_head"))))
        sizes = {k: list(v) for k, v in sizes.items()}
        bias = str(_get(fl, "mlp_bias_init"))
        if stage == "smplr_shape":
            return dict(kind="psi_net", num_betas=skeleton.NUM_BETAS, name="psi_net", bias_initializer=bias, **sizes)
        return dict(kind="omega_net", name="omega_net", bias_initializer=bias, **sizes)
    if stage == "hmr":
        return dict(kind="hmr", input_size=int(_get(fl, "input_size")), backbone=str(_get(fl, "backbone")),
                    backbone_weights=str(_get(fl, "backbone_weights")), backbone_width=int(_get(fl, "backbone_width")),
                    iterations=int(_get(fl, "hmr_iterations")), regressor_units=int(_get(fl, "hmr_units")),
                    dropout=float(_get(fl, "hmr_dropout")), camera_scale=float(_get(fl, "hmr_camera_scale")),
                    smpl_dir=_get(fl, "smpl_dir") or None, body_gender=str(_get(fl, "hmr_gender")), name="hmr")
    if stage == "e2e":
        raise ValueError("an e2e network is the pipeline of its component runs (--shn_run --dae_run --psi_run "
                         "--omega_run): use smplr_tf.runs.pipeline_from_runs")
    raise ValueError(f"unknown stage {stage!r}")


def discriminator_config_from_flags(fl) -> dict:
    """The config of stage hmr's discriminator (:func:`smplr_tf.models.hmr.build_hmr_discriminator`)."""
    return dict(kind="hmr_discriminator", num_joints=skeleton.NUM_JOINTS - 1,
                joint_units=int(_get(fl, "disc_joint_units")), pose_units=int(_get(fl, "disc_pose_units")),
                shape_units=[10, 5], name="hmr_discriminator")


def smpl_config_from_flags(fl) -> dict:
    """The body model of a run's flags (--smpl_dir empty: the package's free body model; --genders)."""
    return {"smpl_dir": _get(fl, "smpl_dir") or None, "genders": [str(g) for g in _get(fl, "genders")]}


def pipeline_config(hourglass: Mapping, dae: Mapping, psi: Mapping, omega: Mapping, smpl: Mapping,
                    name: str = "smplr_pipeline", dae_depth0: bool = False, smpl_gender: str = "psi") -> dict:
    """The config of a :class:`~smplr_tf.models.pipeline.SMPLRPipeline` from its parts' configs (dae_depth0,
    smpl_gender: see the pipeline)."""
    return {"kind": "pipeline", "name": name, "hourglass": dict(hourglass), "dae": dict(dae), "psi": dict(psi),
            "omega": dict(omega), "smpl": dict(smpl), "dae_depth0": bool(dae_depth0),
            "smpl_gender": str(smpl_gender)}
