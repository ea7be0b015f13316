"""Learning-rate schedules of the paper / the authors' code, as Keras schedules (per optimizer step, so a
resumed run continues on the same curve: the step count is part of the optimizer state)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="smplr_tf")
class SigmoidRamp(keras.optimizers.schedules.LearningRateSchedule):
    """lr(epoch) = peak * (1 - sigmoid(offset - epoch / epochs_scale)) + floor, epoch = step / steps_per_epoch.

    DESIGN.md (authors' code), DAE / Psi / Omega: peak 0.01, offset 4, epochs_scale 12.5, floor 1e-4. Note the
    curve *rises*: 2.8e-4 at epoch 0, 5.1e-3 at epoch 50, 1.0e-2 at epoch 100 (a slow sigmoid warm-up).
    """

    def __init__(self, peak=0.01, floor=1e-4, offset=4.0, epochs_scale=12.5, steps_per_epoch=1):
        self.peak, self.floor, self.offset = float(peak), float(floor), float(offset)
        self.epochs_scale, self.steps_per_epoch = float(epochs_scale), int(max(steps_per_epoch, 1))

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / float(self.steps_per_epoch)
        return self.peak * (1.0 - tf.sigmoid(self.offset - epoch / self.epochs_scale)) + self.floor

    def get_config(self):
        return dict(peak=self.peak, floor=self.floor, offset=self.offset, epochs_scale=self.epochs_scale,
                    steps_per_epoch=self.steps_per_epoch)


def make_learning_rate(cfg, steps_per_epoch: int):
    """--lr_schedule constant -> cfg.lr; sigmoid -> SigmoidRamp(peak=cfg.lr, ...); cosine -> Keras CosineDecay
    from cfg.lr at step 0 down to cfg.lr_floor at the last step (cfg.epochs * steps_per_epoch), then flat."""
    if cfg.lr_schedule == "constant":
        return float(cfg.lr)
    if cfg.lr_schedule == "cosine":
        total = max(int(cfg.epochs) * int(max(steps_per_epoch, 1)), 1)
        floor = min(float(cfg.lr_floor), float(cfg.lr))
        return keras.optimizers.schedules.CosineDecay(float(cfg.lr), total, alpha=floor / float(cfg.lr))
    return SigmoidRamp(cfg.lr, cfg.lr_floor, cfg.lr_offset, cfg.lr_epochs, steps_per_epoch)
