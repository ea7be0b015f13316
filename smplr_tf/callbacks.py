"""Keras callbacks of a training run: network checkpoints, run.json progress, the stop on a NaN / inf loss,
the stop after a wall-time limit, TensorBoard images and hparams.

(The scalar logging — losses, metrics, learning rate — is keras.callbacks.TensorBoard, the per-epoch text log
keras.callbacks.CSVLogger; resume is keras.callbacks.BackupAndRestore; all are set up in smplr_tf/train.py.)
"""

from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from smplr_tf import runs, volume
from smplr_tf.body import skeleton
from smplr_tf.cli import UserError


def _py(logs):
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(np.asarray(v).reshape(-1)[0])
        except (TypeError, ValueError):
            pass
    return out


class NetCheckpoint(keras.callbacks.Callback):
    """Saves the *network* (not the training wrapper) to ``<dir>/epoch_NNN.weights.h5`` every ``every`` epochs,
    atomically (written under a temporary name, then renamed), keeping the newest ``keep`` files.

    These files load straight into the stage's network (``--init_from``, ``runs.weights_path('latest')``).
    """

    def __init__(self, net, directory: str, every: int = 1, keep: int = 3):
        super().__init__()
        self.net, self.directory, self.every, self.keep = net, directory, max(int(every), 1), int(keep)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.weights.h5")
        tmp = os.path.join(self.directory, f".tmp_epoch_{epoch + 1:03d}.weights.h5")
        self.net.save_weights(tmp)
        os.replace(tmp, path)
        ckpts = sorted(f for f in os.listdir(self.directory) if f.startswith("epoch_"))
        for old in ckpts[:-self.keep] if self.keep > 0 else []:
            os.remove(os.path.join(self.directory, old))


class RunProgress(keras.callbacks.Callback):
    """Keeps ``run.json`` up to date after every epoch: epochs_done and the last epoch's logs."""

    def __init__(self, run_dir: str):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        runs.update_run_json(self.run_dir, epochs_done=epoch + 1, last=_py(logs))


class TrainingDiverged(UserError):
    """The loss (or the weights) of a run became NaN or inf; the message says where and what to try."""


def _non_finite(logs) -> dict:
    """{name: value} of the entries of ``logs`` that are numbers but not finite."""
    return {k: v for k, v in _py(logs).items() if not np.isfinite(v)}


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops a diverging run within the epoch and keeps the last finite state.

    After every training batch: a NaN / inf in the batch logs (the running loss terms) raises
    :class:`TrainingDiverged`. Raising (rather than ``stop_training``) leaves ``fit`` before ``on_epoch_end``, so
    neither BackupAndRestore nor the checkpoints save the broken state and run.json is not marked finished: the
    same command resumes from the start of this epoch. At the end of an epoch (this callback must come first
    in the list, before BackupAndRestore) the epoch logs (validation included) and the network's weights are
    checked the same way, for a last training step that broke the weights without showing in its own loss.

    net: the trained network (its weights are checked at epoch ends). run_dir: named in the message and,
    with ``record`` (the chief worker only), where run.json records the stop (``last_stop``). lr: the learning
    rate the message quotes.
    """

    def __init__(self, net, run_dir: str, lr: float, record: bool = True):
        super().__init__()
        self.net, self.run_dir, self.lr, self.record = net, run_dir, float(lr), bool(record)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def _stop(self, what: str, batch: int | None):
        epoch = self._epoch + 1
        where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch + 1}")
        if self.record:
            runs.update_run_json(self.run_dir, last_stop={"reason": f"{what} not finite", "epoch": epoch,
                                                          "batch": None if batch is None else batch + 1})
        raise TrainingDiverged(
            f"{self.run_dir}: training diverged: {what} became NaN or inf at {where}. Nothing of epoch {epoch} "
            f"was saved and the run is not finished ({epoch - 1} epoch(s) done). Try a lower --lr (this run: "
            f"{self.lr:g}) or a --clipnorm, then run the same command again: it resumes at epoch {epoch}.")

    def on_train_batch_end(self, batch, logs=None):
        bad = _non_finite(logs)
        if bad:
            self._stop(f"the loss ({', '.join(sorted(bad))})", batch)

    def on_epoch_end(self, epoch, logs=None):
        bad = _non_finite(logs)
        if bad:
            self._stop(f"the epoch's logs ({', '.join(sorted(bad))})", None)
        if not weights_finite(self.net):
            self._stop("the network's weights", None)


class StopAfterSeconds(keras.callbacks.Callback):
    """Ends ``fit`` cleanly once ``seconds`` of wall time have passed since this call of ``fit`` began
    (``--max_train_seconds``).

    After the training batch whose end is ``seconds`` or more after ``on_train_begin``, ``model.stop_training``
    is set: Keras closes the current epoch as usual (validation, ``on_epoch_end``: checkpoints, log.csv,
    run.json progress) and ``fit`` returns, so train.py then saves the final weights and report as after a
    full run. ``steps`` (training batches of this call of ``fit``), ``elapsed_s`` (seconds at the last batch
    end), ``first_step_s`` (seconds at the first batch end: tracing and compiling the step included) and ``reached``
    (whether the limit ended training) are read afterwards (:meth:`summary`). ``on_train_begin`` prints
    ``training stops after <seconds> s (--max_train_seconds)``.

    seconds: the limit, > 0. clock: a function returning seconds (time.monotonic; tests pass a fake one).
    """

    def __init__(self, seconds: float, clock=time.monotonic):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        self.seconds, self.clock = float(seconds), clock
        self._t0, self.steps, self.elapsed_s, self.first_step_s, self.reached = None, 0, 0.0, None, False

    def on_train_begin(self, logs=None):
        self._t0, self.steps, self.elapsed_s, self.first_step_s, self.reached = self.clock(), 0, 0.0, None, False
        # read by progress readers (reproduce's epoch ETA): the epochs may end before their count does
        print(f"training stops after {self.seconds:g} s (--max_train_seconds)", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.elapsed_s = self.clock() - self._t0
        if self.first_step_s is None:
            self.first_step_s = self.elapsed_s
        if self.elapsed_s >= self.seconds:
            self.reached = True
            self.model.stop_training = True

    def summary(self) -> dict:
        """{"seconds": the limit, "reached": bool, "steps": training batches, "elapsed_s": seconds,
        "first_step_s": seconds (None before a step)}."""
        return {"seconds": self.seconds, "reached": self.reached, "steps": self.steps,
                "elapsed_s": round(self.elapsed_s, 3),
                "first_step_s": None if self.first_step_s is None else round(self.first_step_s, 3)}


class SetLearningRate(keras.callbacks.Callback):
    """Sets the optimizer's constant learning rate to ``lr`` when training starts, after BackupAndRestore has
    restored the optimizer of an interrupted run: a resume with another --lr trains with the new one."""

    def __init__(self, lr: float):
        super().__init__()
        self.lr = float(lr)

    def on_train_begin(self, logs=None):
        self.model.optimizer.learning_rate = self.lr


def weights_finite(net) -> bool:
    """True when every floating-point weight of ``net`` is finite."""
    for w in net.weights:
        a = np.asarray(keras.ops.convert_to_numpy(w.value))
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            return False
    return True


# --------------------------------------------------------------------------------------------- images
def skeleton_parents(num_points: int) -> np.ndarray:
    """Parents of the drawn skeleton nodes: a root prepended to the P points (P = 41 or 23)."""
    if num_points == skeleton.NUM_POINTS:
        return skeleton.TREE_PARENTS
    if num_points == skeleton.NUM_JOINTS - 1:
        return skeleton.JOINT_PARENTS
    raise ValueError(f"no skeleton for {num_points} points")


def points_to_crop_pixels(points, input_size: int):
    """(..., P, 3|2) root-relative metres -> (..., P, 2) crop pixels, weak perspective at the root depth
    (the crop is the projection of a CUBE_SIZE square centred on the root): u = (x / cube + 0.5) * S."""
    p = np.asarray(points, np.float32)[..., :2]
    return (p / volume.CUBE_SIZE + 0.5) * input_size - 0.5


def display_image(img) -> np.ndarray:
    """A float image (H,W,3), [0, 1] RGB or standardised -> uint8 RGB for display (min-max stretch)."""
    a = np.asarray(img, np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.clip((a - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)


def heatmap_slice(volume_logits, softmax: bool = True) -> np.ndarray:
    """(H,W,D,C) or (H,W,C) logits/targets -> (H,W) uint8: per channel max over depth, max over channels,
    after a softmax over each channel's volume (logits) so that every point shows up."""
    v = np.asarray(volume_logits, np.float32)
    if v.ndim == 3:
        v = v[:, :, None, :]
    if softmax:
        flat = v.reshape(-1, v.shape[-1])
        flat = np.exp(flat - flat.max(axis=0, keepdims=True))
        v = (flat / flat.sum(axis=0, keepdims=True)).reshape(v.shape)
    v = v / np.maximum(v.max(axis=(0, 1, 2), keepdims=True), 1e-12)
    m = v.max(axis=2).max(axis=-1)
    return (np.clip(m, 0, 1) * 255).astype(np.uint8)


def skeleton_panel(image, pred_points, true_points, pred_heatmap=None, true_heatmap=None) -> np.ndarray:
    """One TensorBoard panel: the crop with the true (green) and predicted (red) skeletons, then the
    predicted and true heatmaps (max over depth and channels), resized to the crop. Returns (S, k*S, 3) uint8."""
    import cv2

    from smplr_tf.render import draw_skeleton

    img = display_image(image)
    if img.shape[0] < 256:  # draw small crops (quick runs: 64 px) at 256 px so that skeletons are readable
        img = cv2.resize(img, (256, 256), interpolation=cv2.INTER_LINEAR)
    s = img.shape[0]
    parents = skeleton_parents(np.asarray(true_points).shape[0])
    for pts, color in ((true_points, (0, 255, 0)), (pred_points, (255, 0, 0))):
        p = np.concatenate([np.zeros((1, 2), np.float32), np.asarray(pts, np.float32)[:, :2]], axis=0)
        img = draw_skeleton(img, points_to_crop_pixels(p, s), parents, color=color, thickness=1)
    panels = [img]
    for hm in (pred_heatmap, true_heatmap):
        if hm is not None:
            g = cv2.resize(heatmap_slice(hm, softmax=hm is pred_heatmap), (s, s), interpolation=cv2.INTER_NEAREST)
            panels.append(np.repeat(g[..., None], 3, axis=-1))
    return np.concatenate(panels, axis=1)


class ImageSummaries(keras.callbacks.Callback):
    """Every epoch: draws ``n`` fixed validation crops with predicted and true skeletons and heatmap slices
    into ``<tb>/images`` (TensorBoard's Images tab)."""

    def __init__(self, net, stage, batch, log_dir: str, n: int = 4):
        super().__init__()
        self.net, self.stage, self.log_dir, self.n = net, stage, log_dir, int(n)
        x, y = batch
        self.x = x[: self.n]
        self.y = {k: v[: self.n] for k, v in y.items()} if isinstance(y, dict) else y[: self.n]
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self.n <= 0:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        pred = self.net(self.x, training=False)
        pred_pts = np.asarray(self.stage.predicted_points(pred))
        true_pts = np.asarray(self.y["points"] if isinstance(self.y, dict) else self.y)
        pred_hm = true_hm = None
        if isinstance(pred, dict) and "heatmaps" in pred:
            pred_hm = np.asarray(pred["heatmaps"][-1])
        if isinstance(self.y, dict) and "heatmaps" in self.y:
            true_hm = np.asarray(self.y["heatmaps"])
        imgs = []
        for i in range(min(self.n, pred_pts.shape[0])):
            imgs.append(skeleton_panel(np.asarray(self.x[i]), pred_pts[i], true_pts[i],
                                       None if pred_hm is None else pred_hm[i],
                                       None if true_hm is None else true_hm[i]))
        with self._writer.as_default():
            tf.summary.image("val_crops_pred_red_true_green__pred_heatmap__true_heatmap", np.stack(imgs),
                             step=epoch, max_outputs=self.n)
        self._writer.flush()


def write_hparams(log_dir: str, run_name: str, hparams: dict) -> None:
    """Record the run's hyper-parameters for TensorBoard's HParams tab (one row per run)."""
    from tensorboard.plugins.hparams import api as hp

    clean = {}
    for k, v in hparams.items():
        if isinstance(v, (bool, int, float, str)):
            clean[k] = v
        elif isinstance(v, (list, tuple)):
            clean[k] = ",".join(str(x) for x in v)
    with tf.summary.create_file_writer(log_dir).as_default():
        hp.hparams(clean, trial_id=run_name)
