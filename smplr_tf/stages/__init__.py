"""Training stages (one module per family): image stages (shn, shn2d, alexnet), point stages (dae,
smplr_shape, smplr_pose), the end-to-end stage (e2e) and the HMR baseline (hmr). ``get_stage(name)`` returns
the Stage class."""

from __future__ import annotations

import importlib

_STAGES = {
    "shn": ("smplr_tf.stages.image", "ShnStage"),
    "shn2d": ("smplr_tf.stages.image", "Shn2dStage"),
    "alexnet": ("smplr_tf.stages.image", "AlexnetStage"),
    "dae": ("smplr_tf.stages.points", "DaeStage"),
    "smplr_shape": ("smplr_tf.stages.points", "PsiStage"),
    "smplr_pose": ("smplr_tf.stages.points", "OmegaStage"),
    "e2e": ("smplr_tf.stages.e2e", "E2eStage"),
    "hmr": ("smplr_tf.stages.hmr", "HmrStage"),
}


def get_stage(name: str):
    """The Stage class of ``name`` (one of smplr_tf.flags.STAGES)."""
    if name not in _STAGES:
        raise ValueError(f"unknown stage {name!r}; one of {sorted(_STAGES)}")
    module, cls = _STAGES[name]
    return getattr(importlib.import_module(module), cls)
