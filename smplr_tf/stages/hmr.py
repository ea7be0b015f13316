"""hmr: the HMR baseline (Kanazawa et al. 2018) trained on the same records as the SMPLR stages.

Network: :func:`smplr_tf.models.hmr.build_hmr` (image -> backbone -> iterative regression of 6D rotations,
betas and a weak-perspective camera -> SMPL), built from the flags by
``smplr_tf.models.registry.config_from_flags``. It is what the run saves, evaluates, serves and exports.

Data: ``smplr_tf.data.pipeline.hourglass_dataset`` without heatmaps (``targets_on_device``, no depth cube) and
with the records' SMPL parameters: (image (B, S, S, 3) RGB in [0, 1], targets ``points`` (B, 41, 3)
root-relative metres, ``points2d`` (B, 41, 2) crop pixels, ``mask_valid`` (B, 41) (known and inside the crop),
``has_3d``, ``pose`` (B, 72), ``betas`` (B, 10), ``has_smpl``). Training batches also carry unpaired real
parameters for the discriminator, ``real_pose`` (B, 72) and ``real_betas`` (B, 10): from our pose sampler
(``--hmr_real_params=sampled``) or the training records' own, reshuffled (``records``).

Losses (all means over the batch; weights are flags):

* ``l3d``: squared error (m^2) on the 41 root-relative points of records with 3D (landmarks where known);
* ``l2d``: L1 on the 41 points projected into the crop, coordinates scaled to [-1, 1] (the points inside
  the crop);
* ``lparams``: squared error on the 24 rotation matrices and the betas of records with SMPL parameters;
* ``adv``: the regressor's least-squares adversarial term mean((D(theta) - 1)^2) over the discriminator's
  23 + 2 outputs; ``disc``: the discriminator's own loss mean((D(real) - 1)^2) + mean(D(theta)^2), minimised
  by a second Adam (``--disc_lr``) on the discriminator's weights only (validation: its loss on the
  predictions alone, mean(D(theta)^2)).

Validation metric: MPJPE (mm) of the SMPL points against the records' 41 points.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from smplr_tf import losses
from smplr_tf.stages.base import StageTrainer, mpjpe_mm, _replicas
from smplr_tf.stages.image import ImageStage


def real_params_dataset(batch_size: int, source: str, data_dir: str = "", split: str = "train", seed=None):
    """Endless batches of (pose (B, 72) axis-angle, betas (B, 10)) float32, unpaired with the images:
    our pose sampler's (``source="sampled"``) or the records' with SMPL parameters (``"records"``)."""
    from smplr_tf.data import points as points_lib
    from smplr_tf.data import records, schema

    base = 0 if seed is None else int(seed)
    if source == "sampled":
        ds = tf.data.Dataset.range(1 << 62)

        def sample(b):
            pose, betas, _ = points_lib.sample_params(tf.stack([tf.constant(base + 7919, tf.int64), b]), batch_size)
            return pose, betas

        return ds.map(sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if source != "records":
        raise ValueError(f"real parameters: 'sampled' or 'records', got {source!r}")
    ds = records.read_records(schema.split_files(data_dir, split), shuffle_files=True, seed=base + 7919)

    def parse(f, i, r):
        ex = records.parse_record(f, i, r)
        return ex["pose"], ex["betas"], ex["has_smpl"]

    ds = ds.map(parse).filter(lambda p, b, h: h > 0).map(lambda p, b, h: (p, b))
    return ds.shuffle(1024, seed=base + 7919).repeat().batch(batch_size, drop_remainder=True)


def adversarial_terms(disc, fake_rotmats, fake_betas, real_rotmats=None, real_betas=None, training=True):
    """Least-squares GAN terms. fake_*: the regressor's (B, 24, 3, 3) rotations and (B, 10) betas (the root is
    dropped: the prior is on the body pose); real_*: the same from real parameters (None: no real half).
    Returns (adv = mean((D(fake) - 1)^2), with gradients into fake_*; disc = mean((D(real) - 1)^2) +
    mean(D(fake)^2), fake_* held constant)."""
    d_fake = tf.cast(disc([fake_rotmats[:, 1:], fake_betas], training=training), tf.float32)
    adv = tf.reduce_mean(tf.square(d_fake - 1.0))
    d_fake_c = tf.cast(disc([tf.stop_gradient(fake_rotmats[:, 1:]), tf.stop_gradient(fake_betas)],
                            training=training), tf.float32)
    disc_loss = tf.reduce_mean(tf.square(d_fake_c))
    if real_rotmats is not None:
        d_real = tf.cast(disc([real_rotmats[:, 1:], real_betas], training=training), tf.float32)
        disc_loss = disc_loss + tf.reduce_mean(tf.square(d_real - 1.0))
    return adv, disc_loss


class HmrTrainer(StageTrainer):
    """:class:`StageTrainer` plus HMR's discriminator: each train step takes one Adam step of the regressor on
    its loss (+ ``adv_weight`` x the adversarial term) and one of the discriminator (``disc_optimizer``) on
    its own loss. ``disc`` and ``disc_optimizer`` are attributes, so Keras' backups save and restore them."""

    def __init__(self, net, disc, disc_optimizer, adv_weight: float, loss_fn, metric_fn, loss_names, metric_names,
                 **kw):
        super().__init__(net, loss_fn, metric_fn, loss_names, metric_names, **kw)
        self.disc = disc
        self.disc_optimizer = disc_optimizer
        self.adv_weight = float(adv_weight)
        self.disc_optimizer.build(self.disc.trainable_variables)

    def _adv(self, y, pred, training):
        from smplr_tf.body.smpl import pose_to_rotmats

        real_rot = pose_to_rotmats(y["real_pose"]) if "real_pose" in y else None
        return adversarial_terms(self.disc, pred["rotmats"], pred["betas"], real_rot, y.get("real_betas"),
                                 training=training)

    def train_step(self, data):
        x, y = data
        self._log_examples(y)
        net_vars = self.net.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            pred = self(x, training=True)
            terms = dict(self._loss_fn(x, y, pred, True))
            total = tf.cast(terms["loss"], tf.float32)
            if self.net.losses:
                total = total + tf.add_n([tf.cast(v, tf.float32) for v in self.net.losses])
            adv, disc_loss = self._adv(y, pred, True)
            total = total + self.adv_weight * adv
            terms.update(loss=total, adv=adv, disc=disc_loss)
            scaled = self.optimizer.scale_loss(total / _replicas())
            d_scaled = disc_loss / _replicas()
        grads = tape.gradient(scaled, net_vars)
        d_vars = self.disc.trainable_variables
        d_grads = tape.gradient(d_scaled, d_vars)
        del tape
        self.optimizer.apply_gradients(zip(grads, net_vars))
        self.disc_optimizer.apply_gradients(zip(d_grads, d_vars))
        self._update(terms, {})
        return self._logs(with_metrics=False)

    def test_step(self, data):
        x, y = data
        pred = self(x, training=False)
        terms = dict(self._loss_fn(x, y, pred, False))
        adv, disc_loss = self._adv({}, pred, False)
        terms.update(loss=terms["loss"] + self.adv_weight * adv, adv=adv, disc=disc_loss)
        self._update(terms, self._metric_fn(x, y, pred))
        return self._logs(with_metrics=True)


class HmrStage(ImageStage):
    """HMR: direct regression of SMPL parameters and a camera from the image (see the module docstring)."""

    name = "hmr"
    depth_bins_override = 0  # no heatmaps: the 2D validity of the points decides mask_valid

    @property
    def num_points(self) -> int:
        from smplr_tf.body import skeleton

        return skeleton.NUM_POINTS

    @property
    def adversarial(self) -> bool:
        return float(self.cfg.hmr_adv_weight) > 0

    def build_network(self):
        from smplr_tf.models import registry

        return registry.build_network(registry.config_from_flags(self.cfg, self.name))

    def build_discriminator(self):
        from smplr_tf.models import registry

        return registry.build_network(registry.discriminator_config_from_flags(self.cfg))

    def make_trainer(self, net, **kw):
        if not self.adversarial:
            return super().make_trainer(net, **kw)
        opt = keras.optimizers.Adam(learning_rate=float(self.cfg.disc_lr))
        return HmrTrainer(net, self.build_discriminator(), opt, float(self.cfg.hmr_adv_weight), self.loss_fn,
                          self.metric_fn, self.loss_names(), self.metric_names(), **kw)

    def make_dataset(self, split, train: bool, num_shards: int = 1, shard_index: int = 0, batch_size=None):
        from smplr_tf.data.pipeline import hourglass_dataset
        from smplr_tf.stages.image import _manifest_count

        cfg = self.cfg
        if not cfg.data_dir:
            raise ValueError("--stage=hmr needs --data_dir (records from tfrecords_tools/make_synthetic.py or a "
                             "convert_* tool)")
        bs = int(batch_size or (cfg.batch_size if train else (cfg.val_batch_size or cfg.batch_size)))
        seed = None if cfg.seed is None or cfg.seed < 0 else int(cfg.seed) + (0 if train else 1000)
        ds = hourglass_dataset(
            cfg.data_dir, split, bs, input_size=int(cfg.input_size), heatmap_size=1, depth_bins=0,
            num_points=self.num_points, limbs=False, augment=bool(cfg.augment) and train, shuffle=train,
            repeat=True, seed=seed, background_dir=cfg.background_dir or None,
            occluder_dir=cfg.occluder_dir or None, drop_remainder=True, num_shards=num_shards,
            shard_index=shard_index, cache=bool(cfg.cache_images) and train and not bool(cfg.augment),
            targets_on_device=True, smpl_params=True)
        n = _manifest_count(cfg.data_dir, split)
        if n < bs:
            raise ValueError(f"{cfg.data_dir}: split '{split}' has {n} examples, fewer than one batch of {bs}")
        ds = ds.map(self._add_point_mask)
        if train and self.adversarial:
            real = real_params_dataset(bs, cfg.hmr_real_params, cfg.data_dir, cfg.train_split, seed)
            ds = tf.data.Dataset.zip(ds, real).map(
                lambda xy, pb: (xy[0], dict(xy[1], real_pose=pb[0], real_betas=pb[1])))
        return ds, n

    def loss_names(self):
        return ("loss", "l3d", "l2d", "lparams") + (("adv", "disc") if self.adversarial else ())

    def loss_fn(self, x, y, pred, training):
        from smplr_tf.body.smpl import pose_to_rotmats

        cfg = self.cfg
        m = y.get("mask_valid_points")
        m = tf.ones(tf.shape(y["points"])[:2]) if m is None else tf.cast(m, tf.float32)
        m3 = m * tf.cast(y["has_3d"], tf.float32)[:, None] if "has_3d" in y else m
        l3d = losses.l2_loss(y["points"], pred["points"], m3)
        s = float(cfg.input_size)
        l2d = losses.l1_loss(tf.cast(y["points2d"], tf.float32) * (2.0 / s), tf.cast(pred["points2d"], tf.float32)
                             * (2.0 / s), m)  # (-1 on both sides cancels)
        if "pose" in y:
            w = tf.cast(y["has_smpl"], tf.float32)
            rot = pose_to_rotmats(y["pose"])
            b = tf.shape(rot)[0]
            gt = tf.concat([tf.reshape(rot, [b, -1]), tf.cast(y["betas"], tf.float32)], -1)
            pr = tf.concat([tf.reshape(tf.cast(pred["rotmats"], tf.float32), [b, -1]),
                            tf.cast(pred["betas"], tf.float32)], -1)
            lparams = losses.l2_loss(gt, pr, w)
        else:
            lparams = tf.constant(0.0)
        total = (float(cfg.hmr_3d_weight) * l3d + float(cfg.hmr_2d_weight) * l2d
                 + float(cfg.hmr_param_weight) * lparams)
        return {"loss": total, "l3d": l3d, "l2d": l2d, "lparams": lparams}

    def metric_fn(self, x, y, pred):
        return {"mpjpe_mm": mpjpe_mm(pred["points"], y["points"], y.get("mask_valid_points"))}
