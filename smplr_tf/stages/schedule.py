"""Learning-rate schedules of the paper / the authors' code, as Keras schedules (per optimizer step, so a
resumed run continues on the same curve: the step count is part of the optimizer state).

The authors' schedule (their TF1 training scripts) is a sigmoid *decay* from about ``lr0 + 1e-4`` to the
``1e-4`` floor::

    lr(epoch) = lr0 * (1 - 1 / (1 + exp(c - epoch / 12.5))) + 1e-4 = lr0 * sigmoid(c - epoch / 12.5) + 1e-4

with ``c = 4`` for the DAE, Psi and Omega (lr0 = 0.01: 9.9e-3 at epoch 0, 5.1e-3 at 50, 2.8e-4 at 100, ~1e-4
after) and ``c = 10`` for the hourglass (flat at ~0.01 until epoch ~75, 5.1e-3 at 125, 2.8e-4 at 175).
Here the epoch is fractional (``step / steps_per_epoch``), a smooth version of the code's per-epoch value.

Growing epochs (``--epoch_growth``): the code's hourglass epoch ``e`` runs ``min(500 (e + 1), all)`` batches,
so its schedule, written per epoch, is stretched in steps. With ``epoch_growth = g`` the schedule counts such
epochs (:func:`growing_epoch`) and training runs as many steps as ``--epochs`` of them hold
(:func:`growing_total_steps`); ``model.fit`` still validates and checkpoints every ``steps_per_epoch`` steps
(:func:`fit_epochs` of them), which changes where validation happens, not the optimisation.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def growing_total_steps(epochs: int, growth: int, full: int) -> int:
    """Steps in ``epochs`` growing epochs: sum over e < epochs of min(growth * (e + 1), full)."""
    growth, full = int(growth), max(int(full), 1)
    if growth <= 0:
        return int(epochs) * full
    n = max((full + growth - 1) // growth - 1, 0)  # epochs shorter than a full one: growth * (e + 1) < full
    k = min(int(epochs), n)
    return growth * k * (k + 1) // 2 + max(int(epochs) - n, 0) * full


def growing_epoch(step, growth: int, full: int):
    """The fractional epoch at optimizer ``step`` when epoch e lasts min(growth * (e + 1), full) steps.

    step: scalar int or float tensor. Returns float32: e + (steps into e) / (length of e)."""
    g, f = float(growth), float(max(int(full), 1))
    n = float(max((int(full) + int(growth) - 1) // int(growth) - 1, 0))
    s = tf.cast(step, tf.float64)
    grown = g * n * (n + 1.0) / 2.0  # steps of the growing epochs
    e = tf.floor((tf.sqrt(1.0 + 8.0 * s / g) - 1.0) / 2.0)
    e = tf.where(g * (e + 1.0) * (e + 2.0) / 2.0 <= s, e + 1.0, e)  # guard the float rounding of sqrt
    e = tf.where(g * e * (e + 1.0) / 2.0 > s, e - 1.0, e)
    early = e + (s - g * e * (e + 1.0) / 2.0) / (g * (e + 1.0))
    late = n + (s - grown) / f
    return tf.cast(tf.where(s < grown, early, late), tf.float32)


def fit_epochs(epochs: int, steps_per_epoch: int, growth: int = 0) -> int:
    """Keras epochs of ``steps_per_epoch`` steps that ``model.fit`` runs for ``epochs`` schedule epochs
    (``growth`` > 0: growing epochs, rounded up to whole Keras epochs)."""
    if growth <= 0:
        return int(epochs)
    return max(math.ceil(growing_total_steps(epochs, growth, steps_per_epoch) / max(int(steps_per_epoch), 1)), 1)

HOURGLASS_OFFSET = 10.0  # c of the hourglass in the authors' code
POINTS_OFFSET = 4.0  # c of the DAE, Psi and Omega


@keras.saving.register_keras_serializable(package="smplr_tf")
class SigmoidDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(epoch) = peak * sigmoid(offset - epoch / epochs_scale) + floor, epoch = step / steps_per_epoch.

    peak: lr0 (the paper: 0.01 hourglass, 0.001 DAE / Psi / Omega; the authors' code: 0.01 everywhere);
    offset: c (10 hourglass, 4 DAE / Psi / Omega); epochs_scale: 12.5 epochs; floor: 1e-4 (added, so the
    rate never falls below it; with peak 1e-4, the fine-tune's, the effective rate is ~2e-4).
    Decreasing in the step; ``lr(0) = peak * sigmoid(offset) + floor``. ``epoch_growth`` > 0: epochs grow
    (:func:`growing_epoch`, epoch e = min(epoch_growth * (e + 1), steps_per_epoch) steps; the code: 500).
    """

    def __init__(self, peak=0.01, floor=1e-4, offset=POINTS_OFFSET, epochs_scale=12.5, steps_per_epoch=1,
                 epoch_growth=0):
        self.peak, self.floor, self.offset = float(peak), float(floor), float(offset)
        self.epochs_scale, self.steps_per_epoch = float(epochs_scale), int(max(steps_per_epoch, 1))
        self.epoch_growth = int(epoch_growth)

    def epoch(self, step):
        """The schedule's fractional epoch at optimizer ``step`` (float32)."""
        if self.epoch_growth > 0:
            return growing_epoch(step, self.epoch_growth, self.steps_per_epoch)
        return tf.cast(step, tf.float32) / float(self.steps_per_epoch)

    def __call__(self, step):
        return self.peak * tf.sigmoid(self.offset - self.epoch(step) / self.epochs_scale) + self.floor

    def get_config(self):
        return dict(peak=self.peak, floor=self.floor, offset=self.offset, epochs_scale=self.epochs_scale,
                    steps_per_epoch=self.steps_per_epoch, epoch_growth=self.epoch_growth)


@keras.saving.register_keras_serializable(package="smplr_tf")
class SigmoidRamp(SigmoidDecay):
    """The name this schedule was first registered under; kept so that saved configs naming it still load.
    It is the same (decaying) schedule as :class:`SigmoidDecay`."""


def make_learning_rate(cfg, steps_per_epoch: int):
    """--lr_schedule constant -> cfg.lr; sigmoid -> SigmoidDecay(peak=cfg.lr, floor=cfg.lr_floor,
    offset=cfg.lr_offset, epochs_scale=cfg.lr_epochs, epoch_growth=cfg.epoch_growth); cosine -> Keras CosineDecay from cfg.lr at step 0 down
    to cfg.lr_floor at the last step (cfg.epochs * steps_per_epoch), then flat."""
    if cfg.lr_schedule == "constant":
        return float(cfg.lr)
    if cfg.lr_schedule == "cosine":
        fit = fit_epochs(cfg.epochs, steps_per_epoch, int(cfg.epoch_growth))
        total = max(fit * int(max(steps_per_epoch, 1)), 1)
        floor = min(float(cfg.lr_floor), float(cfg.lr))
        return keras.optimizers.schedules.CosineDecay(float(cfg.lr), total, alpha=floor / float(cfg.lr))
    return SigmoidDecay(cfg.lr, cfg.lr_floor, cfg.lr_offset, cfg.lr_epochs, steps_per_epoch,
                        epoch_growth=int(cfg.epoch_growth))
