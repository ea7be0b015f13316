"""The training wrapper shared by every stage: a Keras model around the stage's network with a custom
``train_step`` / ``test_step`` (named loss terms, per-example metrics), fit for ``model.fit`` under any
``tf.distribute`` strategy.

A stage supplies (see :class:`Stage`): the network (what ``final.weights.h5`` holds and
:func:`smplr_tf.runs.load_model_from_run` returns), the datasets ``(x, y)`` with ``y`` a dict, a loss
function returning named scalar terms (``"loss"`` = the total that is minimised) and a metric function
returning per-example values (e.g. MPJPE in mm). Metrics are Keras ``Mean`` trackers, so they are exact
means over the epoch and aggregated over replicas and workers.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _multi_worker() -> bool:
    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)


class StageTrainer(keras.Model):
    """Wraps ``net`` for ``fit``.

    loss_fn(x, y, pred, training) -> dict name -> scalar float32 (local batch mean), must hold "loss".
    metric_fn(x, y, pred) -> dict name -> (B,) float32 per-example values (or None for no metrics); metrics
    are computed on validation batches only (Keras logs them as val_<name>).
    ``trainable_net``: the model whose trainable variables are optimised (default ``net``; e2e trains only
    the hourglass inside the assembled pipeline).
    ``example_log``: a file path; each train step appends one line per example with a fingerprint of the
    example (the first target point, mm) and the worker's task index (scale-out test).
    """

    def __init__(self, net, loss_fn, metric_fn, loss_names, metric_names, example_log: str = "",
                 worker_index: int = 0, **kw):
        super().__init__(name=kw.pop("name", "trainer"), **kw)
        self.net = net
        self._loss_fn = loss_fn
        self._metric_fn = metric_fn
        self._loss_names = tuple(loss_names)
        self._metric_names = tuple(metric_names)
        self._trackers = {n: keras.metrics.Mean(name=n) for n in self._loss_names + self._metric_names}
        self._example_log = example_log
        self._worker_index = worker_index

    def call(self, x, training=False):
        return self.net(x, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    # -- Keras 3.15 + MultiWorkerMirroredStrategy work-arounds ---------------------------------------
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras reduces a whole (nested) data batch across workers to build the model symbolically, which
        # fails for dict targets under MultiWorkerMirroredStrategy and consumes a batch. We build the model
        # and the optimizer before fit (see train.py), so there is nothing to build here.
        if self.built and (self.optimizer is None or self.optimizer.built) and all(
                layer.built for layer in self._flatten_layers()):
            return
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _logs(self, with_metrics: bool):
        names = self._loss_names + (self._metric_names if with_metrics else ())
        logs = {n: self._trackers[n].result() for n in names}
        if _multi_worker():
            # Keras reduces multi-worker logs with MEAN over axis 0: give it a rank-1 value.
            logs = {n: tf.reshape(v, [1]) for n, v in logs.items()}
        return logs

    def _update(self, terms, per_example):
        for n in self._loss_names:
            self._trackers[n].update_state(tf.cast(terms[n], tf.float32))
        for n in self._metric_names:
            if n in per_example:
                self._trackers[n].update_state(tf.cast(per_example[n], tf.float32))

    def _log_examples(self, y):
        if not self._example_log:
            return
        pts = y["points"] if isinstance(y, dict) else y
        fp = tf.cast(tf.round(tf.cast(pts[:, 0, :], tf.float32) * 1000.0), tf.int32)  # (B, 3) mm
        # one line per step: "<worker> [x0 y0 z0 x1 y1 z1 ...]"
        tf.print(self._worker_index, tf.reshape(fp, [-1]), summarize=-1, output_stream="file://" + self._example_log)

    def train_step(self, data):
        x, y = data
        self._log_examples(y)
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            pred = self(x, training=True)
            terms = self._loss_fn(x, y, pred, True)
            total = tf.cast(terms["loss"], tf.float32)
            if self.losses:
                total = total + tf.add_n([tf.cast(v, tf.float32) for v in self.losses])
            scaled = self.optimizer.scale_loss(total / _replicas())
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self._update(terms, {})  # the metrics (SMPL forward passes ...) are computed on validation only
        return self._logs(with_metrics=False)

    def test_step(self, data):
        x, y = data
        pred = self(x, training=False)
        terms = self._loss_fn(x, y, pred, False)
        per_example = self._metric_fn(x, y, pred) if self._metric_fn else {}
        self._update(terms, per_example)
        return self._logs(with_metrics=True)


class Stage:
    """What a stage supplies to :mod:`smplr_tf.train`. Subclasses set ``name`` and implement the methods.

    ``cfg`` is an absl FlagValues (or any object with the same attributes).
    """

    name = ""
    image_input = False  # True: x is an image batch (TensorBoard draws crops)
    report_dims = 3  # coordinates compared by the final report (2 for the 2D hourglass)

    def __init__(self, cfg):
        self.cfg = cfg
        self.train_ds = self.val_ds = None  # set by datasets()
        self.num_train = self.num_val = 0  # examples per split (for steps per epoch)

    def build_network(self) -> keras.Model:
        raise NotImplementedError

    def load_init_weights(self, net, run_dir: str) -> str:
        """--init_from: load ``run_dir``'s weights (final, else the latest checkpoint) into ``net``; returns
        the file read."""
        from smplr_tf import runs

        return runs.load_weights_into(net, run_dir)

    def make_dataset(self, split: str, train: bool, num_shards: int = 1, shard_index: int = 0, batch_size=None):
        """-> (dataset of (x, y dict) batches, repeated, full batches only; number of examples in the split).

        ``num_shards`` / ``shard_index``: this input pipeline's part of the records (by file);
        ``batch_size``: None = the flags' (global) batch size for the split."""
        raise NotImplementedError

    def datasets(self):
        """-> (train_ds, val_ds), undistributed, global batch size; also sets num_train / num_val."""
        self.train_ds, self.num_train = self.make_dataset(self.cfg.train_split, True)
        self.val_ds, self.num_val = self.make_dataset(self.cfg.val_split, False)
        return self.train_ds, self.val_ds

    def loss_names(self):
        return ("loss",)

    def metric_names(self):
        return ("mpjpe_mm",)

    def loss_fn(self, x, y, pred, training):
        raise NotImplementedError

    def metric_fn(self, x, y, pred):
        raise NotImplementedError

    def make_trainer(self, net, **kw):
        """The Keras model that ``fit`` trains around ``net`` (``kw``: StageTrainer's example_log,
        worker_index). Default: a :class:`StageTrainer` with this stage's losses and metrics."""
        return StageTrainer(net, self.loss_fn, self.metric_fn, self.loss_names(), self.metric_names(), **kw)

    def trainable_net(self, net):
        """The part of ``net`` that is trained (default: all of it)."""
        return net

    def predicted_points(self, pred):
        """(B, P, 3) root-relative metres predicted by the network output ``pred`` (for reports/images)."""
        return pred["points"] if isinstance(pred, dict) else pred

    def report_error(self, x, y, pred):
        """(B,) mm: the error the final report calls val_mpjpe_mm."""
        return mpjpe_mm(self.predicted_points(pred), y["points"], y.get("mask_valid_points"))

    def report_extras(self, x, y, pred) -> dict:
        """Extra per-example (B,) values for the final report (e.g. the DAE's input error)."""
        return {}

    def final_report(self, net, val_steps: int) -> dict:
        """Validation metrics of the trained network and the mean-pose baseline (mm)."""
        return mean_pose_report(self, net, val_steps, int(self.cfg.baseline_batches))


# ------------------------------------------------------------------------------------------- helpers
def mpjpe_mm(pred, gt, mask=None):
    """(B, P, k) metres -> (B,) mean point distance in mm (k = 2 or 3; only the first k of gt are used).
    mask: optional (B, P) weights (1 = valid)."""
    pred = tf.cast(pred, tf.float32)
    gt = tf.cast(gt, tf.float32)[..., : pred.shape[-1]]
    d = tf.norm(pred - gt, axis=-1) * 1000.0
    if mask is None:
        return tf.reduce_mean(d, axis=-1)
    m = tf.cast(mask, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(d * m, axis=-1), tf.reduce_sum(m, axis=-1))


def mean_pose_report(stage, net, val_steps: int, baseline_batches: int) -> dict:
    """Validation MPJPE (mm) of ``net`` and of predicting the mean training pose, plus the stage's extras.

    The mean pose is the average of ``baseline_batches`` training batches' target points (root-relative).
    Runs eagerly on the stage's own (undistributed) datasets.
    """
    import numpy as np

    acc = None
    n = 0
    for _, y in stage.train_ds.take(baseline_batches):
        pts = np.asarray(y["points"], np.float64)
        acc = pts.sum(axis=0) if acc is None else acc + pts.sum(axis=0)
        n += pts.shape[0]
    mean_pose = (acc / max(n, 1)).astype(np.float32)
    sums = {}
    count = 0
    for x, y in stage.val_ds.take(val_steps):
        pred = net(x, training=False)
        gt = tf.cast(y["points"], tf.float32)
        mask = y.get("mask_valid_points")
        vals = {"val_mpjpe_mm": stage.report_error(x, y, pred),
                "val_mean_pose_mpjpe_mm": mpjpe_mm(
                    tf.broadcast_to(mean_pose[None, :, : stage.report_dims], tf.shape(gt[..., : stage.report_dims])),
                    gt, mask)}
        vals.update(stage.report_extras(x, y, pred))
        b = int(gt.shape[0])
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(tf.reduce_sum(v))
        count += b
    return {k: v / max(count, 1) for k, v in sums.items()}
