"""Train one stage of SMPLR: ``python -m smplr_tf.train --stage=... --flagfile=... [--run_dir=...]``.

Stages (smplr_tf/stages/): shn (volumetric hourglass; --num_points=41|23, --limbs, --augment,
--heatmap_loss), shn2d, alexnet, dae (--dae_input=noise|gt|depth0|run, --input_run), smplr_shape (Psi),
smplr_pose (Omega; --smpl_loss adds L_SMPL), e2e (--shn_run --dae_run --psi_run --omega_run).

Training runs through ``model.fit`` on a :class:`smplr_tf.stages.base.StageTrainer` with callbacks:
TensorBoard (losses, metrics, learning rate; images; hparams), network checkpoints, BackupAndRestore
(kill -9 at any moment, run the same command again: it continues from the last finished epoch), run.json
progress, log.csv. A finished run is never trained again unless --overwrite. See smplr_tf/runs.py for the layout.

Failing safely: a NaN / inf loss stops the run inside the epoch (callbacks.StopOnNonFinite) with a message that
says so and what to try; nothing of that epoch is saved, the run is not marked finished, and the same command
(e.g. with a lower --lr) resumes from that epoch. A corrupt record stops it naming the file and the record
(data.records.named_errors). Run as a command, bad input ends in one line on stderr (smplr_tf.cli).

Distribution: --distribution=mirrored (one machine, all local devices) or multi_worker (TF_CONFIG; tf.data's
auto-sharding gives each worker its own files of the records, or its share of the examples when there are
fewer files than workers; see distributed_dataset). --mixed_precision, --xla, --seed. --max_train_seconds ends
training cleanly after a wall-time limit (callbacks.StopAfterSeconds).
"""

from __future__ import annotations

import json
import os
import time

from absl import flags, logging

from smplr_tf import flags as sflags

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """Define the training flags (every section of :mod:`smplr_tf.flags`) on ``fv`` as key flags of this
    command, so that ``--helpshort`` lists them. Called under ``__main__``; a second call does nothing new."""
    sflags.define_flags(fv)
    for name in sflags.section_flag_names():
        flags.declare_key_flag(name, flag_values=fv)


# ------------------------------------------------------------------------------------------- setup
def make_strategy(kind: str):
    import tensorflow as tf

    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--distribution=multi_worker needs the cluster in the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown --distribution {kind!r}")


def task_info():
    """(is_chief, worker_index) from TF_CONFIG (chief = worker 0 when there is no 'chief' task)."""
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in cfg.get("cluster", {})
    is_chief = kind == "chief" or (not has_chief and kind == "worker" and index == 0)
    return is_chief, index


def seed_everything(cfg) -> None:
    import keras
    import tensorflow as tf

    if cfg.seed is None or cfg.seed < 0:
        return
    keras.utils.set_random_seed(int(cfg.seed))
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def num_workers() -> int:
    """Workers of the cluster in TF_CONFIG (chief included); 1 without a cluster."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def split_files(cfg, split: str) -> list[str]:
    """The record files of ``split`` under --data_dir ([] without records, or no such split)."""
    from smplr_tf.data import schema

    if not getattr(cfg, "data_dir", ""):
        return []
    try:
        return schema.split_files(cfg.data_dir, split)
    except (schema.SchemaError, OSError):
        return []


def distributed_dataset(strategy, stage, split: str, train: bool, global_batch: int):
    """The stage's dataset for ``split`` (batches of ``global_batch``) split over the workers by tf.data's
    auto-sharding: each worker reads its own files of the records when there are at least as many files as
    workers, else every worker reads all and keeps its share of the examples (records.auto_shard_policy)."""
    import tensorflow as tf

    from smplr_tf.data import records

    ds, _ = stage.make_dataset(split, train, batch_size=global_batch)
    opt = tf.data.Options()
    opt.experimental_distribute.auto_shard_policy = records.auto_shard_policy(len(split_files(stage.cfg, split)),
                                                                              num_workers())
    return strategy.experimental_distribute_dataset(ds.with_options(opt))


def configure_batch_norm(model, momentum: float = 0.0, synchronized: bool = False) -> int:
    """Every BatchNormalization layer inside ``model``: set the moving-average ``momentum`` (if > 0) and the
    cross-replica ``synchronized`` statistics. Returns how many layers."""
    import keras

    def walk(m, seen):
        for layer in getattr(m, "layers", ()):  # public: a model's layers; nested models recursively
            if id(layer) not in seen:
                seen.add(id(layer))
                yield layer
                yield from walk(layer, seen)

    n = 0
    for layer in walk(model, set()):
        if isinstance(layer, keras.layers.BatchNormalization):
            if momentum > 0:
                layer.momentum = momentum
            layer.synchronized = bool(synchronized)
            n += 1
    return n


def _dummy_input(ds):
    """A batch of zeros with the dataset's x structure (batch 1), to build the model before fit."""
    import tensorflow as tf

    spec = ds.element_spec[0]

    def zeros(s):
        shape = [1] + [d if d is not None else 1 for d in s.shape[1:]]
        return tf.zeros(shape, s.dtype)

    return tf.nest.map_structure(zeros, spec)


# ------------------------------------------------------------------------------------------- train
def train(cfg) -> dict:
    """Train the stage described by ``cfg`` (absl FlagValues). Returns the final run.json dict.

    Raises runs.RunError when the run directory holds a finished run (and not --overwrite).
    """
    if cfg.max_train_seconds > 0 and cfg.distribution == "multi_worker":
        from smplr_tf.cli import UserError

        # each worker's clock would stop it after a different step, and the others would wait for it forever
        raise UserError("--max_train_seconds is not supported with --distribution=multi_worker")
    strategy = make_strategy(cfg.distribution)  # first: multi-worker collectives must be set up early
    import keras

    from smplr_tf import callbacks as cbs
    from smplr_tf import runs
    from smplr_tf.data import records
    from smplr_tf.stages import get_stage
    from smplr_tf.stages.schedule import fit_epochs, make_learning_rate

    if cfg.stage is None:
        raise ValueError("--stage is required (one of %s)" % ", ".join(sflags.STAGES))
    is_chief, worker_index = task_info() if cfg.distribution == "multi_worker" else (True, 0)
    run_dir = runs.resolve_run_dir(cfg)
    mode = runs.prepare_run_dir(run_dir, cfg, write=is_chief)
    # Non-chief workers keep their own backup (same epochs as the chief's) out of TensorBoard's way.
    work_dir = run_dir if is_chief else os.path.join(run_dir, ".workers", f"worker{worker_index}")
    os.makedirs(work_dir, exist_ok=True)
    logging.info("stage %s, run_dir %s (%s), %d replica(s)", cfg.stage, run_dir, mode,
                 strategy.num_replicas_in_sync)

    seed_everything(cfg)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")

    stage = get_stage(cfg.stage)(cfg)
    train_ds, val_ds = stage.datasets()
    steps = int(cfg.steps_per_epoch) or stage.num_train // int(cfg.batch_size)
    val_bs = int(cfg.val_batch_size or cfg.batch_size)
    val_steps = int(cfg.validation_steps) or max(stage.num_val // val_bs, 1)
    if steps <= 0:
        raise ValueError(f"--steps_per_epoch is 0 and the training split has {stage.num_train} examples < "
                         f"--batch_size {cfg.batch_size}")
    fit_train, fit_val = train_ds, val_ds
    if cfg.distribution == "multi_worker":
        if int(cfg.batch_size) % strategy.num_replicas_in_sync or val_bs % strategy.num_replicas_in_sync:
            raise ValueError(f"--batch_size {cfg.batch_size} / val batch {val_bs} must divide by the "
                             f"{strategy.num_replicas_in_sync} replicas")
        fit_train = distributed_dataset(strategy, stage, cfg.train_split, True, int(cfg.batch_size))
        fit_val = distributed_dataset(strategy, stage, cfg.val_split, False, val_bs)
    example_log = cfg.log_example_ids
    if example_log and cfg.distribution == "multi_worker":
        example_log = f"{example_log}.worker{worker_index}"

    with strategy.scope():
        net = stage.build_network()
        if is_chief:  # what rebuilds the network at reload, beside its weights
            runs.write_network_json(run_dir, net, cfg.stage)
        configure_batch_norm(net, float(cfg.bn_momentum),
                             synchronized=cfg.sync_batch_norm and cfg.distribution != "none")
        if cfg.init_from:
            path = stage.load_init_weights(net, cfg.init_from)
            logging.info("initialised from %s", path)
        trainer = stage.make_trainer(net, example_log=example_log, worker_index=worker_index)
        trainer(_dummy_input(train_ds), training=False)
        opt_kw = {"clipnorm": float(cfg.clipnorm)} if cfg.clipnorm > 0 else {}
        optimizer = keras.optimizers.Adam(learning_rate=make_learning_rate(cfg, steps), **opt_kw)
        trainer.compile(optimizer=optimizer, jit_compile=bool(cfg.xla))
        trainer.optimizer.build(trainer.trainable_variables)

    # StopOnNonFinite first: its epoch-end check must run before anything saves the epoch
    callbacks = [cbs.StopOnNonFinite(net, run_dir, lr=float(cfg.lr), record=is_chief),
                 keras.callbacks.BackupAndRestore(os.path.join(work_dir, runs.BACKUP), double_checkpoint=True)]
    time_limit = cbs.StopAfterSeconds(float(cfg.max_train_seconds)) if cfg.max_train_seconds > 0 else None
    if time_limit is not None:
        callbacks.append(time_limit)
    if cfg.lr_schedule == "constant":  # after BackupAndRestore: a resume may change --lr
        callbacks.append(cbs.SetLearningRate(float(cfg.lr)))
    if is_chief:
        tb_dir = os.path.join(run_dir, runs.TB)
        callbacks += [
            keras.callbacks.TensorBoard(tb_dir, write_graph=False, profile_batch=0, update_freq="epoch"),
            cbs.NetCheckpoint(net, os.path.join(run_dir, runs.CHECKPOINTS), every=cfg.checkpoint_every),
            cbs.RunProgress(run_dir),
            keras.callbacks.CSVLogger(os.path.join(run_dir, runs.LOG_CSV), append=True),
        ]
        if stage.image_input and cfg.tb_images > 0:
            callbacks.append(cbs.ImageSummaries(net, stage, next(iter(val_ds)), os.path.join(tb_dir, "images"),
                                                n=cfg.tb_images))
        if cfg.tb_hparams and mode == "new":
            cbs.write_hparams(tb_dir, cfg.run_name or os.path.basename(os.path.normpath(run_dir)),
                              runs.flags_dict(cfg))

    keras_epochs = fit_epochs(cfg.epochs, steps, int(cfg.epoch_growth))  # = --epochs unless epochs grow
    t0 = time.time()
    with records.named_errors(split_files(cfg, cfg.train_split) + split_files(cfg, cfg.val_split)):
        trainer.fit(fit_train, epochs=keras_epochs, steps_per_epoch=steps, validation_data=fit_val,
                    validation_steps=val_steps, callbacks=callbacks, verbose=int(cfg.verbose), shuffle=False)
    train_time = time.time() - t0
    if not cbs.weights_finite(net):  # (StopOnNonFinite checks every epoch end: a safeguard for final weights)
        raise cbs.TrainingDiverged(f"{run_dir}: the trained weights hold NaN or inf; {runs.FINAL_WEIGHTS} was "
                                   "not written. Try a lower --lr, then run the same command again.")

    if not is_chief:
        net.save_weights(os.path.join(work_dir, runs.FINAL_WEIGHTS))  # for checking that workers agree
        return {}
    net.save_weights(os.path.join(run_dir, runs.FINAL_WEIGHTS))
    report = stage.final_report(net, val_steps)
    for k, v in sorted(report.items()):
        logging.info("final %s = %.2f", k, v)
        print(f"final {k} = {v:.2f}", flush=True)
    state = runs.update_run_json(run_dir, finished=True, epochs=int(cfg.epochs), fit_epochs=keras_epochs,
                                 final=report,
                                 train_seconds_last_session=round(train_time, 1), last_stop=None,
                                 time_limit=None if time_limit is None else time_limit.summary())
    return state


def main(argv):
    del argv
    train(FLAGS)  # bad input (a finished run, a missing file, a corrupt record, a NaN loss): cli.run's one line


if __name__ == "__main__":
    from smplr_tf import cli

    define_flags()
    cli.run(main)
