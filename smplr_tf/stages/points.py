"""Point stages: dae (denoising autoencoder), smplr_shape (Psi), smplr_pose (Omega).

Data: ``smplr_tf.data.pipeline.points_dataset`` -- ground-truth root-relative points computed by our SMPL
layer from the records' SMPL parameters (or from sampled parameters when --data_dir is empty) -- with the
input chosen by --dae_input:

* ``noise``: ground truth + uniform noise (the authors' per-point, per-coordinate bounds, smplr_tf.data.noise;
  drawn afresh for every batch, in training and, unless --noval_noise, at validation: the authors' code does
  both, for the DAE, Psi, Omega and their fine-tune);
* ``gt``: ground truth;
* ``depth0``: ground truth + noise with depth set to 0 (2D lifting);
* ``run``: the predictions of the trained hourglass / AlexNet run --input_run on the records (precomputed
  once into ``<run_dir>/inputs/<split>.npz``; --input_depth0 sets their depth to 0 for DAE^2d).

Losses (paper Sec. 3.2-3.3, the authors' code): DAE L1 on the points (+ --dae_bone_loss * L1 on bone lengths);
Psi L_beta = L1 on (betas, gender code +-1) + beta_reg * |beta| (or |all 11 outputs|, --beta_reg_outputs);
Omega L_R = L1 on the 24 rotation matrices; --smpl_loss adds L_SMPL = L1 on SMPL's 41 root-relative points
(joints + landmarks), SMPL fed with the prediction and the ground truth of the other factor (pose for Psi,
shape + gender for Omega).

Networks saved by these stages (what runs.load_model_from_run returns):
dae: points (B,P,3) -> (B,P,3); smplr_shape: points (B,41,3) -> {"betas" (B,10), "gender" (B,)};
smplr_pose: points (B,41,3) -> {"rotmats" (B,24,3,3)}, built by smplr_tf.models (dae, smplr); the bone features
(eqs. 1-3) are computed inside, with the template bone lengths B* stored as a (non-trainable) weight.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from smplr_tf import losses
from smplr_tf.body import skeleton
from smplr_tf.stages.base import Stage, mpjpe_mm

NUM_BETAS = skeleton.NUM_BETAS


def gender_code(gender_index):
    """SMPL layer gender index (0 female, 1 male) -> Psi's code (-1, +1)."""
    return 2.0 * tf.cast(gender_index, tf.float32) - 1.0


class PointStage(Stage):
    """Shared data handling of the point stages."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self._smpl = None

    @property
    def smpl(self):
        if self._smpl is None:
            from smplr_tf.models import registry
            from smplr_tf.models.pipeline import build_smpl

            self._smpl = build_smpl(registry.smpl_config_from_flags(self.cfg))
        return self._smpl

    def _network(self, **build_kw):
        from smplr_tf.models import registry

        return registry.build_network(registry.config_from_flags(self.cfg, self.name), **build_kw)

    @property
    def num_points(self) -> int:
        return int(self.cfg.num_points)

    def _noise_mode(self, train: bool = True):
        """The noise of the stage's input points: --dae_input noise / depth0 draw the authors' uniform noise
        (--noise_table, times --noise_scale) in training, and at validation unless --noval_noise."""
        if not train and not self.cfg.val_noise:
            return "depth0_clean" if self.cfg.dae_input == "depth0" else "none"
        return {"noise": "uniform", "gt": "none", "depth0": "depth0"}[self.cfg.dae_input]

    def make_dataset(self, split, train: bool, num_shards: int = 1, shard_index: int = 0, batch_size=None):
        cfg = self.cfg
        bs = int(batch_size or (cfg.batch_size if train else (cfg.val_batch_size or cfg.batch_size)))
        seed = None if cfg.seed is None or cfg.seed < 0 else int(cfg.seed) + (0 if train else 1000)
        if cfg.dae_input == "run":
            return self._dataset_from_run(split, train, bs, seed, num_shards, shard_index)
        from smplr_tf.data.pipeline import dataset_size, points_dataset

        n = int(cfg.num_train_samples if train else cfg.num_val_samples)
        data_dir = cfg.data_dir if cfg.point_data == "records" else ""
        if data_dir:
            n = dataset_size(data_dir, split)
        if n < bs:
            raise ValueError(f"split '{split}' has {n} examples, fewer than one batch of {bs}")
        # Clean points from the pipeline; the noise is drawn here, afresh for every batch (both paths).
        keys = ("points", "rotmats", "betas", "gender")
        if cfg.cache_points:
            # Clean points computed once by SMPL (the costly part), cached in memory, reshuffled every epoch.
            ds = points_dataset(data_dir or None, split, bs, smpl_layer=self.smpl, noise="none", seed=seed,
                                num_points=self.num_points, shuffle=False, repeat=False,
                                num_samples=None if data_dir else n, drop_remainder=True,
                                num_shards=num_shards, shard_index=shard_index)
            ds = ds.map(lambda b: {k: b[k] for k in keys}).cache()
            if train:
                ds = ds.unbatch().shuffle(min(n, 200000), seed=seed, reshuffle_each_iteration=True).batch(
                    bs, drop_remainder=True)
            ds = ds.repeat()
        else:
            ds = points_dataset(data_dir or None, split, bs, smpl_layer=self.smpl, noise="none",
                                seed=seed, num_points=self.num_points, shuffle=train, repeat=True,
                                num_samples=None if data_dir else n, drop_remainder=True,
                                num_shards=num_shards, shard_index=shard_index)
            ds = ds.map(lambda b: {k: b[k] for k in keys})
        mode = self._noise_mode(train)
        ds = ds.map(lambda b: self._add_noise(b, mode), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.map(self._to_xy, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE), n

    def _add_noise(self, batch, mode):
        from smplr_tf.data.noise import apply_noise

        if mode == "depth0_clean":
            p = batch["points"]
            return dict(batch, noisy=tf.concat([p[..., :2], tf.zeros_like(p[..., 2:])], axis=-1))
        return dict(batch, noisy=apply_noise(batch["points"], mode, scale=float(self.cfg.noise_scale),
                                             table=self.cfg.noise_table))

    def _to_xy(self, batch):
        y = {k: batch[k] for k in ("points", "rotmats", "betas", "gender") if k in batch}
        return batch["noisy"], y

    def _run_inputs(self, split):
        """(pred, gt) arrays of the --input_run predictions on ``split`` (cached in the run directory)."""
        from smplr_tf.runs import resolve_run_dir

        cfg = self.cfg
        if not cfg.input_run:
            raise ValueError("--dae_input=run needs --input_run=<run_dir of a trained shn or alexnet run>")
        if not cfg.data_dir:
            raise ValueError("--dae_input=run needs --data_dir (the records the input run predicts on)")
        cache = os.path.join(resolve_run_dir(cfg), "inputs", f"{split}.npz")
        if not os.path.exists(cache):
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            pred, gt = predict_points_of_run(cfg.input_run, cfg.data_dir, split, self.num_points)
            np.savez(cache + ".tmp.npz", pred=pred, gt=gt)
            os.replace(cache + ".tmp.npz", cache)
        with np.load(cache) as z:
            pred, gt = z["pred"], z["gt"]
        if cfg.input_depth0:
            pred = pred.copy()
            pred[..., 2] = 0.0
        return pred, gt

    def _dataset_from_run(self, split, train, bs, seed, num_shards, shard_index):
        if self.name != "dae":
            raise ValueError(f"--dae_input=run is supported for the dae stage only (the {self.name} targets need "
                             "SMPL parameters aligned with the predictions)")
        pred, gt = self._run_inputs(split)
        n = len(pred)
        if n // max(num_shards, 1) < bs:
            raise ValueError(f"--input_run predictions of split '{split}': {n} examples, fewer than one batch of {bs}")
        if num_shards > 1:
            pred, gt = pred[shard_index::num_shards], gt[shard_index::num_shards]
        ds = tf.data.Dataset.from_tensor_slices((pred, {"points": gt}))
        if train:
            ds = ds.shuffle(len(pred), seed=seed)
        return ds.repeat().batch(bs, drop_remainder=True).prefetch(tf.data.AUTOTUNE), n

    def smpl_points(self, betas, rotmats, gender_index):
        """(B, 41, 3) float32 root-relative points (metres) of SMPL(betas (B, 10), rotmats (B, 24, 3, 3),
        gender_index (B,)): the joints and the 18 landmarks only, not the mesh (``SMPL.points``)."""
        return self.smpl.points(tf.cast(betas, tf.float32), tf.cast(rotmats, tf.float32), gender=gender_index)

    def template_lengths(self):
        from smplr_tf.body.smpl import template_bone_lengths

        return template_bone_lengths(self.smpl)


def predict_points_of_run(run_dir: str, data_dir: str, split: str, num_points: int, batch_size: int = 16):
    """Predictions (N, P, 3) of a trained shn / alexnet run on ``split`` of ``data_dir`` and the ground truth
    (N, P, 3), root-relative metres, in record order (no augmentation)."""
    from tqdm import tqdm

    from smplr_tf import runs
    from smplr_tf.data.pipeline import hourglass_dataset

    stage, net, fl = runs.load_model_from_run(run_dir)
    if stage not in ("shn", "alexnet", "e2e"):
        raise ValueError(f"--input_run {run_dir} is a '{stage}' run; expected shn or alexnet")
    p = int(fl["num_points"])
    if p != num_points:
        raise ValueError(f"--input_run {run_dir} predicts {p} points but this stage has --num_points={num_points}")
    ds = hourglass_dataset(data_dir, split, batch_size, input_size=int(fl["input_size"]),
                           heatmap_size=int(fl["heatmap_size"]), depth_bins=int(fl["depth_bins"]) or 1,
                           num_points=p, limbs=False, augment=False, shuffle=False, repeat=False)
    preds, gts = [], []
    for image, targets in tqdm(ds, desc=f"predicting {split} with {run_dir}", unit="batch"):
        out = net(image, training=False)
        preds.append(np.asarray(out["points"] if isinstance(out, dict) else out, np.float32))
        gts.append(np.asarray(targets["points"], np.float32))
    return np.concatenate(preds), np.concatenate(gts)


# ------------------------------------------------------------------------------------------------ dae
class DaeStage(PointStage):
    name = "dae"

    def build_network(self):
        net = self._network()
        if self.cfg.dae_zero_init:
            # Start as the identity (zero correction), so that training only ever improves on the input.
            layer = net.get_layer("correction")
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        return net

    def loss_names(self):
        return ("loss", "l1_points") + (("l1_bones",) if self.cfg.dae_bone_loss > 0 else ())

    def metric_names(self):
        return ("mpjpe_mm", "input_mpjpe_mm")

    def loss_fn(self, x, y, pred, training):
        l1 = losses.l1_loss(y["points"], pred)
        terms = {"l1_points": l1, "loss": l1}
        if self.cfg.dae_bone_loss > 0 and self.num_points == skeleton.NUM_POINTS:
            terms["l1_bones"] = losses.bone_length_l1(y["points"], pred)
            terms["loss"] = l1 + float(self.cfg.dae_bone_loss) * terms["l1_bones"]
        return terms

    def metric_fn(self, x, y, pred):
        return {"mpjpe_mm": mpjpe_mm(pred, y["points"]), "input_mpjpe_mm": mpjpe_mm(x, y["points"])}

    def report_extras(self, x, y, pred):
        return {"val_input_mpjpe_mm": mpjpe_mm(x, y["points"])}


# ------------------------------------------------------------------------------------------------ psi
class PsiStage(PointStage):
    """smplr_shape: Psi with L_beta (+ L_SMPL with --smpl_loss). Input --dae_input (default: see flagfiles)."""

    name = "smplr_shape"

    @property
    def num_points(self) -> int:
        return skeleton.NUM_POINTS

    def build_network(self):
        return self._network(template_lengths=self.template_lengths())

    def loss_names(self):
        return ("loss", "l_beta") + (("l_smpl",) if self.cfg.smpl_loss else ())

    def metric_names(self):
        return ("mpjpe_mm", "gender_accuracy", "beta_mae")

    def loss_fn(self, x, y, pred, training):
        true_shape = tf.concat([tf.cast(y["betas"], tf.float32), gender_code(y["gender"])[:, None]], axis=1)
        pred_shape = tf.concat([tf.cast(pred["betas"], tf.float32), tf.cast(pred["gender"], tf.float32)[:, None]],
                               axis=1)
        w = tf.constant([1.0] * NUM_BETAS + [float(self.cfg.gender_loss_weight)], tf.float32)[None, :]
        w = tf.broadcast_to(w, tf.shape(true_shape))
        lb = losses.beta_loss(true_shape, pred_shape, beta_reg=float(self.cfg.beta_reg), num_betas=NUM_BETAS,
                              weights=w, reg_outputs=self.cfg.beta_reg_outputs)
        terms = {"l_beta": lb, "loss": lb}
        if self.cfg.smpl_loss:
            pts = self.smpl_points(pred["betas"], y["rotmats"], y["gender"])
            terms["l_smpl"] = losses.smpl_points_loss(y["points"], pts)
            terms["loss"] = lb + float(self.cfg.smpl_loss_weight) * terms["l_smpl"]
        return terms

    def _body_points(self, y, pred):
        from smplr_tf.body.smpl import gender_index_from_sign

        return self.smpl_points(pred["betas"], y["rotmats"], gender_index_from_sign(pred["gender"]))

    def metric_fn(self, x, y, pred):
        from smplr_tf.body.smpl import gender_index_from_sign

        g = tf.cast(gender_index_from_sign(pred["gender"]), tf.int32)
        return {"mpjpe_mm": mpjpe_mm(self._body_points(y, pred), y["points"]),
                "gender_accuracy": tf.cast(tf.equal(g, tf.cast(y["gender"], tf.int32)), tf.float32),
                "beta_mae": tf.reduce_mean(tf.abs(tf.cast(pred["betas"], tf.float32) - y["betas"]), axis=-1)}

    def predicted_points(self, pred):
        raise NotImplementedError("Psi predicts shape; its points need the ground-truth pose (see report_error)")

    def report_error(self, x, y, pred):
        return mpjpe_mm(self._body_points(y, pred), y["points"])

    def report_extras(self, x, y, pred):
        zero = self.smpl_points(tf.zeros_like(y["betas"]), y["rotmats"], y["gender"])
        m = self.metric_fn(x, y, pred)
        return {"val_zero_betas_mpjpe_mm": mpjpe_mm(zero, y["points"]),
                "val_gender_accuracy_pct": 100.0 * m["gender_accuracy"],
                "val_beta_mae": m["beta_mae"]}


# ------------------------------------------------------------------------------------------------ omega
class OmegaStage(PointStage):
    """smplr_pose: Omega with L_R (+ L_SMPL with --smpl_loss)."""

    name = "smplr_pose"

    @property
    def num_points(self) -> int:
        return skeleton.NUM_POINTS

    def build_network(self):
        return self._network(template_lengths=self.template_lengths())

    def loss_names(self):
        return ("loss", "l_r") + (("l_smpl",) if self.cfg.smpl_loss else ())

    def metric_names(self):
        return ("mpjpe_mm", "rot_mae")

    def loss_fn(self, x, y, pred, training):
        lr_ = losses.rotation_loss(y["rotmats"], pred["rotmats"])
        terms = {"l_r": lr_, "loss": lr_}
        if self.cfg.smpl_loss:
            pts = self.smpl_points(y["betas"], pred["rotmats"], y["gender"])
            terms["l_smpl"] = losses.smpl_points_loss(y["points"], pts)
            terms["loss"] = lr_ + float(self.cfg.smpl_loss_weight) * terms["l_smpl"]
        return terms

    def metric_fn(self, x, y, pred):
        pts = self.smpl_points(y["betas"], pred["rotmats"], y["gender"])
        return {"mpjpe_mm": mpjpe_mm(pts, y["points"]),
                "rot_mae": tf.reduce_mean(tf.abs(tf.cast(pred["rotmats"], tf.float32) - y["rotmats"]),
                                          axis=[1, 2, 3])}

    def predicted_points(self, pred):
        raise NotImplementedError("Omega predicts rotations; its points need the ground-truth shape")

    def report_error(self, x, y, pred):
        return mpjpe_mm(self.smpl_points(y["betas"], pred["rotmats"], y["gender"]), y["points"])

    def report_extras(self, x, y, pred):
        rest = tf.broadcast_to(tf.eye(3), tf.shape(y["rotmats"]))
        ident = self.smpl_points(y["betas"], rest, y["gender"])
        return {"val_rest_pose_mpjpe_mm": mpjpe_mm(ident, y["points"])}
