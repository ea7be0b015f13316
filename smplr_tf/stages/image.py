"""Image stages: shn (volumetric stacked hourglass), shn2d (2D hourglass), alexnet (direct 3D regression).

Networks: built by smplr_tf.models from the flags (``smplr_tf.models.registry.config_from_flags``); each
standardises its [0, 1] input image itself.

Data: ``smplr_tf.data.pipeline.hourglass_dataset`` -> (image (B,S,S,3) RGB in [0, 1], targets dict with
``heatmaps`` (B,h,h,D,C) or (B,h,h,C), ``points`` (B,P,3) root-relative metres, ``mask_valid``).
Training may mix a second records directory into the input (--mix_data_dir, --mix_fraction; the UP-3D recipe)
and train on SMPL fits as 3D truth (--fits_as_3d); validation reads --data_dir alone.

Losses (paper Sec. 4.1, 4.4.1): shn: the heatmap loss of every stack (intermediate supervision, summed),
softmax cross-entropy over each channel's volume (paper; --heatmap_loss=sigmoid is the authors' code);
shn2d: heatmap MSE (Newell et al.); alexnet: L2 on the joints. Validation metric: MPJPE (mm) of the
soft-argmax points (shn, alexnet), 2D error in mm of the cube plane at the root depth (shn2d).
"""

from __future__ import annotations

import tensorflow as tf

from smplr_tf import losses
from smplr_tf.stages.base import Stage, mpjpe_mm


def _manifest_count(data_dir: str, split: str) -> int:
    from smplr_tf.data import schema

    man = schema.read_manifest(data_dir)
    if split not in man.get("splits", {}):
        raise ValueError(f"{data_dir}: no split '{split}' (has {sorted(man.get('splits', {}))})")
    return int(man["splits"][split]["num_examples"])


def _point_mask(targets, num_points):
    """(B, P) float validity of each target point, or None."""
    m = targets.get("mask_valid")
    if m is None:
        return None
    m = tf.cast(m, tf.float32)
    if len(m.shape) == 1:
        return tf.broadcast_to(m[:, None], [tf.shape(m)[0], num_points])
    return m[:, :num_points]


class ImageStage(Stage):
    image_input = True
    depth_bins_override = None  # 0 for the 2D hourglass

    @property
    def num_points(self) -> int:
        return int(self.cfg.num_points)

    @property
    def depth_bins(self) -> int:
        return int(self.cfg.depth_bins if self.depth_bins_override is None else self.depth_bins_override)

    @property
    def target_form(self) -> str:
        """Volumetric heatmap targets (smplr_tf.data.targets): --heatmap_targets, auto = the loss's pairing."""
        from smplr_tf.data.targets import target_form_for_loss

        if self.depth_bins == 0 or not hasattr(self, "_kind"):
            return "gaussian"
        return target_form_for_loss(self._kind(), self._heatmap_flags().heatmap_targets)

    def _heatmap_flags(self):
        """The flags that define the input and heatmap sizes and targets (input_size, heatmap_size, limbs,
        heatmap_targets): the run's own; e2e: its hourglass run's."""
        return self.cfg

    def make_dataset(self, split, train: bool, num_shards: int = 1, shard_index: int = 0, batch_size=None):
        from smplr_tf.data.pipeline import hourglass_dataset

        cfg = self.cfg
        if not cfg.data_dir:
            raise ValueError(f"--stage={cfg.stage} needs --data_dir (records from tfrecords_tools/make_synthetic.py "
                             "or a convert_* tool)")
        bs = int(batch_size or (cfg.batch_size if train else (cfg.val_batch_size or cfg.batch_size)))
        seed = None if cfg.seed is None or cfg.seed < 0 else int(cfg.seed) + (0 if train else 1000)
        sizes = self._heatmap_flags()
        scale = float(getattr(cfg, "aug_scale", 0.0) or 0.0)
        if scale > 0 and not cfg.augment:
            raise ValueError("--aug_scale is part of the augmentation: give --augment with it")
        from smplr_tf.data.augment import AugmentConfig

        ds = hourglass_dataset(
            cfg.data_dir, split, bs, input_size=int(sizes.input_size), heatmap_size=int(sizes.heatmap_size),
            depth_bins=self.depth_bins, num_points=self.num_points, limbs=bool(sizes.limbs),
            augment=bool(cfg.augment) and train, shuffle=train, repeat=True, seed=seed,
            background_dir=cfg.background_dir or None, occluder_dir=cfg.occluder_dir or None,
            drop_remainder=True, num_shards=num_shards, shard_index=shard_index,
            augment_config=AugmentConfig(scale=scale),
            cache=bool(cfg.cache_images) and train and not bool(cfg.augment),
            target_form=self.target_form, fits_as_3d=bool(getattr(cfg, "fits_as_3d", False)),
            **self._mix_args(split, train))
        n = _manifest_count(cfg.data_dir, split)
        if n < bs:
            raise ValueError(f"{cfg.data_dir}: split '{split}' has {n} examples, fewer than one batch of {bs}")
        mix = self._mix_args(split, train)
        if mix:  # one epoch: one pass over --data_dir's share of the mixed stream
            from smplr_tf.data.pipeline import mix_weights

            _manifest_count(mix["mix_data_dir"], split)  # names a missing split
            n = int(round(n / mix_weights(cfg.data_dir, mix["mix_data_dir"], split, mix["mix_fraction"])[0]))
        return ds.map(self._add_point_mask), n

    def _mix_args(self, split, train: bool) -> dict:
        """hourglass_dataset's mixing arguments: --mix_data_dir / --mix_fraction, for training only."""
        mix_dir = getattr(self.cfg, "mix_data_dir", "") or ""
        if not (train and mix_dir):
            return {}
        return {"mix_data_dir": mix_dir, "mix_fraction": float(self.cfg.mix_fraction)}

    def _add_point_mask(self, image, targets):
        targets = dict(targets)
        m = _point_mask(targets, self.num_points)
        if m is not None:
            targets["mask_valid_points"] = m
        return image, targets


class ShnStage(ImageStage):
    """Volumetric stacked hourglass (SHN, SHN_nL with --num_points=23, SHN^final with --limbs --augment)."""

    name = "shn"

    def build_network(self):
        from smplr_tf.models import registry

        return registry.build_network(registry.config_from_flags(self.cfg, self.name))

    def _kind(self):
        return "mse" if self.depth_bins == 0 else self.cfg.heatmap_loss

    def _channel_weights(self, y):
        """(B, C) validity of each heatmap channel (points, then limbs), from the pipeline's mask_valid."""
        m = y.get("mask_valid")
        if m is None:
            return None
        m = tf.cast(m, tf.float32)
        return m if len(m.shape) == 2 else m[:, None] * tf.ones_like(y["heatmaps"][:, 0, 0, 0] if len(
            y["heatmaps"].shape) == 5 else y["heatmaps"][:, 0, 0])

    def loss_names(self):
        return ("loss", "heatmap_loss") + (("points_l1",) if self.cfg.points_loss_weight > 0 else ())

    def loss_fn(self, x, y, pred, training):
        hl = losses.hourglass_loss(y["heatmaps"], pred["heatmaps"], kind=self._kind(),
                                   weights=self._channel_weights(y))
        terms = {"loss": hl, "heatmap_loss": hl}
        if self.cfg.points_loss_weight > 0:
            pl = losses.l1_loss(y["points"][..., : pred["points"].shape[-1]], pred["points"],
                                y.get("mask_valid_points"))
            terms["points_l1"] = pl
            terms["loss"] = hl + float(self.cfg.points_loss_weight) * pl
        return terms

    def metric_fn(self, x, y, pred):
        return {"mpjpe_mm": mpjpe_mm(pred["points"], y["points"], y.get("mask_valid_points"))}


class Shn2dStage(ShnStage):
    """2D stacked hourglass (Table 5's 2D SHN): heatmap MSE; error in mm of the cube plane of the network's
    ``points``, read from the last heatmaps by :func:`smplr_tf.models.softargmax.peak_2d` (the read-out
    evaluate scores too)."""

    name = "shn2d"
    depth_bins_override = 0
    report_dims = 2

    def metric_names(self):
        return ("err2d_mm",)

    def metric_fn(self, x, y, pred):
        return {"err2d_mm": mpjpe_mm(pred["points"], y["points"], y.get("mask_valid_points"))}


class AlexnetStage(ImageStage):
    """AlexNet regressing the 23 joints directly with L2 (Table 1 baseline)."""

    name = "alexnet"

    def build_network(self):
        from smplr_tf.models import registry

        return registry.build_network(registry.config_from_flags(self.cfg, self.name))

    def loss_names(self):
        return ("loss", "l2")

    def loss_fn(self, x, y, pred, training):
        l2 = losses.l2_loss(y["points"], pred, y.get("mask_valid_points"))
        return {"loss": l2, "l2": l2}

    def metric_fn(self, x, y, pred):
        return {"mpjpe_mm": mpjpe_mm(pred, y["points"], y.get("mask_valid_points"))}
