"""Learning-rate schedules of the paper / the authors' code, as Keras schedules (per optimizer step, so a
resumed run continues on the same curve: the step count is part of the optimizer state).

The authors' schedule (their TF1 training scripts) is a sigmoid *decay* from about ``lr0 + 1e-4`` to the
``1e-4`` floor::

    lr(epoch) = lr0 * (1 - 1 / (1 + exp(c - epoch / 12.5))) + 1e-4 = lr0 * sigmoid(c - epoch / 12.5) + 1e-4

with ``c = 4`` for the DAE, Psi and Omega (lr0 = 0.01: 9.9e-3 at epoch 0, 5.1e-3 at 50, 2.8e-4 at 100, ~1e-4
after) and ``c = 10`` for the hourglass (flat at ~0.01 until epoch ~75, 5.1e-3 at 125, 2.8e-4 at 175).
Here the epoch is fractional (``step / steps_per_epoch``), a smooth version of the code's per-epoch value.

Not reproduced: the code's hourglass epochs grow, epoch ``e`` running ``min(500 (e + 1), all)`` batches.
``model.fit`` runs a fixed number of steps per epoch, so an epoch here is always ``--steps_per_epoch`` steps
(or a pass over the data); set --steps_per_epoch to taste.
"""

from __future__ import annotations

import keras
import tensorflow as tf

HOURGLASS_OFFSET = 10.0  # c of the hourglass in the authors' code
POINTS_OFFSET = 4.0  # c of the DAE, Psi and Omega


@keras.saving.register_keras_serializable(package="smplr_tf")
class SigmoidDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(epoch) = peak * sigmoid(offset - epoch / epochs_scale) + floor, epoch = step / steps_per_epoch.

    peak: lr0 (the paper: 0.01 hourglass, 0.001 DAE / Psi / Omega; the authors' code: 0.01 everywhere);
    offset: c (10 hourglass, 4 DAE / Psi / Omega); epochs_scale: 12.5 epochs; floor: 1e-4 (added, so the
    rate never falls below it; with peak 1e-4, the fine-tune's, the effective rate is ~2e-4).
    Decreasing in the step; ``lr(0) = peak * sigmoid(offset) + floor``.
    """

    def __init__(self, peak=0.01, floor=1e-4, offset=POINTS_OFFSET, epochs_scale=12.5, steps_per_epoch=1):
        self.peak, self.floor, self.offset = float(peak), float(floor), float(offset)
        self.epochs_scale, self.steps_per_epoch = float(epochs_scale), int(max(steps_per_epoch, 1))

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / float(self.steps_per_epoch)
        return self.peak * tf.sigmoid(self.offset - epoch / self.epochs_scale) + self.floor

    def get_config(self):
        return dict(peak=self.peak, floor=self.floor, offset=self.offset, epochs_scale=self.epochs_scale,
                    steps_per_epoch=self.steps_per_epoch)


@keras.saving.register_keras_serializable(package="smplr_tf")
class SigmoidRamp(SigmoidDecay):
    """The name this schedule was first registered under; kept so that saved configs naming it still load.
    It is the same (decaying) schedule as :class:`SigmoidDecay`."""


def make_learning_rate(cfg, steps_per_epoch: int):
    """--lr_schedule constant -> cfg.lr; sigmoid -> SigmoidDecay(peak=cfg.lr, floor=cfg.lr_floor,
    offset=cfg.lr_offset, epochs_scale=cfg.lr_epochs); cosine -> Keras CosineDecay from cfg.lr at step 0 down
    to cfg.lr_floor at the last step (cfg.epochs * steps_per_epoch), then flat."""
    if cfg.lr_schedule == "constant":
        return float(cfg.lr)
    if cfg.lr_schedule == "cosine":
        total = max(int(cfg.epochs) * int(max(steps_per_epoch, 1)), 1)
        floor = min(float(cfg.lr_floor), float(cfg.lr))
        return keras.optimizers.schedules.CosineDecay(float(cfg.lr), total, alpha=floor / float(cfg.lr))
    return SigmoidDecay(cfg.lr, cfg.lr_floor, cfg.lr_offset, cfg.lr_epochs, steps_per_epoch)
