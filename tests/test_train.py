"""Training: every stage learns on tiny configurations, runs resume after kill -9 and refuse to overwrite,
two workers train one model over sharded records, the learning-rate schedule, flags round trip, TensorBoard.

Everything here is tiny (few hundred steps of small networks) so the file stays fast on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _cfg(**kw):
    from smplr_tf import runs

    # deterministic=False: op determinism is process-wide and would leak into other tests of the session
    base = dict(verbose=0, tb_images=0, baseline_batches=4, seed=0, bn_momentum=0.9, deterministic=False)
    base.update(kw)
    return runs.flag_values(**base)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A tiny synthetic records set: train 32 examples in 4 shards, val 8 (rendered by our generator)."""
    from smplr_tf.synth.generate import generate_split

    d = str(tmp_path_factory.mktemp("records"))
    generate_split(d, "train", 32, seed=0, examples_per_shard=8, progress=False)
    generate_split(d, "val", 8, seed=1, examples_per_shard=8, progress=False)
    return d


# --------------------------------------------------------------------------------------------- units
def test_cosine_schedule_runs_from_lr_to_the_floor_over_the_run():
    from smplr_tf.stages.schedule import make_learning_rate

    cfg = _cfg(lr_schedule="cosine", lr=1e-2, lr_floor=1e-4, epochs=4)
    sched = make_learning_rate(cfg, steps_per_epoch=25)  # 100 steps in all
    lrs = [float(sched(s)) for s in range(0, 121, 10)]
    assert lrs[0] == pytest.approx(1e-2, rel=1e-6)
    assert lrs[5] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 0.5, rel=1e-4)  # half way: the cosine's midpoint
    assert lrs[10] == pytest.approx(1e-4, rel=1e-4) and lrs[12] == pytest.approx(1e-4, rel=1e-4)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_flags_text_round_trip():
    from smplr_tf import runs

    cfg = _cfg(stage="dae", batch_size=7, smplr_trunk=["8", "4"], limbs=True, lr=3e-4, run_name="t/x")
    back = runs.parse_flags_text(runs.flags_text(cfg))
    assert runs.flags_dict(back) == runs.flags_dict(cfg)
    assert back.limbs is True and back.smplr_trunk == ["8", "4"] and back.stage == "dae"


def test_stop_after_seconds_ends_fit_after_the_batch_that_passes_the_limit(capsys):
    import keras

    from smplr_tf.callbacks import StopAfterSeconds

    ticks = iter(range(1000))  # a fake clock: every call is one second later
    cb = StopAfterSeconds(4.5, clock=lambda: float(next(ticks)))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((40, 2), np.float32), np.zeros((40, 1), np.float32)
    hist = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[cb])  # 10 batches per epoch
    assert "training stops after 4.5 s (--max_train_seconds)" in capsys.readouterr().out  # read by EpochEta
    # begin at 0 s; batch ends at 1, 2, 3, 4, 5 s: the 5th batch passes 4.5 s, its epoch closes, fit returns
    assert cb.summary() == {"seconds": 4.5, "reached": True, "steps": 5, "elapsed_s": 5.0, "first_step_s": 1.0}
    assert hist.epoch == [0]
    cb2 = StopAfterSeconds(1e6)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb2])
    assert cb2.reached is False and cb2.steps == 20
    with pytest.raises(ValueError):
        StopAfterSeconds(0)


def test_max_train_seconds_ends_the_run_cleanly_with_its_final_weights(tmp_path):
    from smplr_tf import train

    run_dir = str(tmp_path / "limited")
    state = train.train(_cfg(stage="dae", run_dir=run_dir, epochs=50, steps_per_epoch=20, batch_size=32,
                             num_train_samples=256, num_val_samples=64, dae_hidden=32, dae_bottleneck=16,
                             tb_hparams=False, max_train_seconds=1e-6))
    # the first step passes the limit: one (short) epoch, validated and logged, then the final save and report
    assert state["finished"] is True and state["epochs_done"] == 1
    assert state["time_limit"]["reached"] is True and state["time_limit"]["steps"] == 1
    assert state["final"]["val_mpjpe_mm"] > 0
    assert _epochs_logged(run_dir) == [1]
    assert os.path.exists(os.path.join(run_dir, "final.weights.h5"))
    from smplr_tf.cli import UserError

    with pytest.raises(UserError, match="multi_worker"):  # workers would stop after different steps
        train.train(_cfg(stage="dae", run_dir=str(tmp_path / "mw"), distribution="multi_worker",
                         max_train_seconds=5.0))


# --------------------------------------------------------------------------------------------- learning
def test_dae_lowers_noisy_input_error(tmp_path):
    from smplr_tf import train

    cfg = _cfg(stage="dae", run_dir=str(tmp_path / "dae"), epochs=12, steps_per_epoch=25, batch_size=128,
               num_train_samples=4096, num_val_samples=512, dae_hidden=512, dae_bottleneck=256,
               dae_keep_prob=1.0, noise_scale=3.0, lr=2e-3)
    state = train.train(cfg)
    f = state["final"]
    print(f"DAE: noisy input {f['val_input_mpjpe_mm']:.1f} mm -> denoised {f['val_mpjpe_mm']:.1f} mm "
          f"(mean pose {f['val_mean_pose_mpjpe_mm']:.1f} mm)")
    assert f["val_mpjpe_mm"] <= 0.7 * f["val_input_mpjpe_mm"]


def test_psi_recovers_shape_from_gt_points(tmp_path):
    from smplr_tf import train

    cfg = _cfg(stage="smplr_shape", run_dir=str(tmp_path / "psi"), dae_input="gt", epochs=6, steps_per_epoch=25,
               batch_size=128, num_train_samples=4096, num_val_samples=512, smplr_trunk=["256", "256", "128"],
               smplr_head=64, lr=2e-3)
    f = train.train(cfg)["final"]
    print(f"Psi on GT points: joints+landmarks {f['val_mpjpe_mm']:.1f} mm with predicted betas vs "
          f"{f['val_zero_betas_mpjpe_mm']:.1f} mm with zero betas; gender {f['val_gender_accuracy_pct']:.0f} %")
    assert f["val_mpjpe_mm"] < 0.5 * f["val_zero_betas_mpjpe_mm"]
    assert f["val_gender_accuracy_pct"] > 80


def test_omega_recovers_pose_from_gt_points(tmp_path):
    from smplr_tf import train

    cfg = _cfg(stage="smplr_pose", run_dir=str(tmp_path / "omega"), dae_input="gt", epochs=10,
               steps_per_epoch=25, batch_size=128, num_train_samples=4096, num_val_samples=512,
               smplr_trunk=["256", "256", "128"], smplr_head=64, lr=2e-3)
    f = train.train(cfg)["final"]
    print(f"Omega on GT points: {f['val_mpjpe_mm']:.1f} mm vs rest pose {f['val_rest_pose_mpjpe_mm']:.1f} mm, "
          f"mean pose {f['val_mean_pose_mpjpe_mm']:.1f} mm")
    assert f["val_mpjpe_mm"] < 0.5 * f["val_mean_pose_mpjpe_mm"]


def test_hourglass_overfits_a_handful_of_crops(tmp_path, records):
    from smplr_tf import train

    run_dir = str(tmp_path / "shn")
    # 8 crops (the val split) trained and validated on: overfitting them is the point
    cfg = _cfg(stage="shn", run_dir=run_dir, data_dir=records, train_split="val", val_split="val", epochs=8,
               steps_per_epoch=20, validation_steps=1, batch_size=8, input_size=64, heatmap_size=16, depth_bins=16,
               hg_stacks=1, hg_features=32, hg_downsamplings=2, hg_dropout=0.0, lr=5e-3, tb_images=2)
    f = train.train(cfg)["final"]
    print(f"hourglass on its 8 training crops: {f['val_mpjpe_mm']:.1f} mm vs mean pose "
          f"{f['val_mean_pose_mpjpe_mm']:.1f} mm")
    assert f["val_mpjpe_mm"] < 0.25 * f["val_mean_pose_mpjpe_mm"]
    # TensorBoard got the scalars (loss, learning rate, validation MPJPE), the images and the hparams row
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(os.path.join(run_dir, "tb"))
    mux.Reload()
    tags = {run: set(t["tensors"]) | set(t.get("images", [])) for run, t in mux.Runs().items()}
    assert "epoch_mpjpe_mm" in tags["validation"] and "epoch_learning_rate" in tags["train"]
    assert any(t.startswith("val_crops") for t in tags["images"])
    assert any("_hparams_" in t for t in tags["."])


def test_e2e_trains_from_its_component_runs_and_reloads_without_them(tmp_path, records):
    """e2e assembles the pipeline from four runs, trains only the hourglass, and writes a network.json from
    which its run reloads alone (the component runs deleted)."""
    import shutil

    import tensorflow as tf

    from smplr_tf import runs, train

    tiny = dict(data_dir=records, input_size=32, heatmap_size=8, depth_bins=4, hg_stacks=1, hg_features=8,
                hg_downsamplings=1, dae_hidden=16, dae_bottleneck=8, smplr_trunk=["16", "16"], smplr_head=8)
    parts = {}
    for key, stage in (("shn", "shn"), ("dae", "dae"), ("psi", "smplr_shape"), ("omega", "smplr_pose")):
        d = str(tmp_path / key)
        cfg = _cfg(stage=stage, run_dir=d, **tiny)
        runs.prepare_run_dir(d, cfg)
        net = runs.build_network(cfg)
        net.save_weights(os.path.join(d, runs.FINAL_WEIGHTS))
        runs.write_network_json(d, net, stage)
        parts[f"{key}_run"] = d
    before = runs.pipeline_from_runs(parts["shn_run"], parts["dae_run"], parts["psi_run"], parts["omega_run"])
    e2e = str(tmp_path / "e2e")
    train.train(_cfg(stage="e2e", run_dir=e2e, epochs=1, steps_per_epoch=2, validation_steps=1, batch_size=4,
                     baseline_batches=1, lr=1e-2, **parts, **tiny))
    for d in parts.values():
        shutil.rmtree(d)
    stage, pipe, _ = runs.load_model_from_run(e2e)
    assert stage == "e2e" and pipe.get_config() == json.load(open(os.path.join(e2e, runs.NETWORK_FILE)))["config"]
    # only the hourglass moved
    for key in ("dae", "psi", "omega"):
        for a, b in zip(getattr(pipe, key).weights, getattr(before, key).weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(pipe.hourglass.trainable_weights, before.hourglass.trainable_weights))
    out = pipe(tf.random.stateless_uniform([2, 32, 32, 3], seed=[0, 1]), training=False)
    assert out["vertices"].shape[0] == 2 and np.isfinite(np.asarray(out["vertices"])).all()


# --------------------------------------------------------------------------------------------- fault tolerance
def _train_cmd(run_dir, extra=()):
    return [sys.executable, "-m", "smplr_tf.train", "--stage=dae", f"--run_dir={run_dir}", "--epochs=8",
            "--steps_per_epoch=40", "--batch_size=64", "--num_train_samples=1024", "--num_val_samples=128",
            "--dae_hidden=64", "--dae_bottleneck=32", "--verbose=0", "--tb_hparams=false", *extra]


def _epochs_logged(run_dir):
    """Epochs (1-based) in the run's log.csv, in the order written (CSVLogger counts from 0)."""
    path = os.path.join(run_dir, "log.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines[1:]:
        if line and line.split(",")[0].isdigit():
            out.append(int(line.split(",")[0]) + 1)
    return out


def _strict_json(path):
    """The JSON at ``path``; fails on a NaN / Infinity token (not JSON)."""
    def refuse(token):
        raise AssertionError(f"{path} holds {token}")

    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def _error_lines(stderr):
    """stderr without TF's and absl's log lines (``I1130 ...``, ``W0000 ...``) and blank lines."""
    import re

    return [line for line in stderr.splitlines() if line.strip() and not re.match(r"^[IWEF]\d{4} ", line)
            and not line.startswith("WARNING: All log messages before absl::InitializeLog()")]


def test_kill_minus_9_resumes_losing_at_most_one_epoch(tmp_path):
    run_dir = str(tmp_path / "run")
    cmd = _train_cmd(run_dir)
    p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_epochs_logged(run_dir)) < 3 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done_at_kill = _epochs_logged(run_dir)[-1]
    state = json.load(open(os.path.join(run_dir, "run.json")))
    assert state["finished"] is False

    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    epochs = _epochs_logged(run_dir)
    resumed_from = epochs[len([e for e in epochs if e <= done_at_kill]):][0]  # first epoch of the 2nd session
    print(f"killed after epoch {done_at_kill}; the same command resumed at epoch {resumed_from}")
    assert done_at_kill <= resumed_from <= done_at_kill + 1  # at most the epoch in flight is redone
    assert epochs[-1] == 8
    state = json.load(open(os.path.join(run_dir, "run.json")))
    assert state["finished"] is True and os.path.exists(os.path.join(run_dir, "final.weights.h5"))

    # a finished run is not trained again by the same command
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Refusing to overwrite" in r.stderr
    assert _epochs_logged(run_dir) == epochs


def test_nan_loss_stops_the_run_and_a_lower_lr_resumes_it(tmp_path):
    import h5py

    run_dir = str(tmp_path / "diverge")
    cmd = _train_cmd(run_dir)
    r = subprocess.run(cmd + ["--lr=1e8"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    errors = _error_lines(r.stderr)
    assert r.returncode == 2 and len(errors) == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    msg = errors[0]
    assert run_dir in msg and "diverged" in msg and "NaN or inf" in msg and "--lr" in msg and "resumes" in msg
    state = _strict_json(os.path.join(run_dir, "run.json"))
    assert state["finished"] is False and state["last_stop"]["reason"].endswith("not finite")
    stopped = state["last_stop"]["epoch"]
    assert state["epochs_done"] == stopped - 1  # the diverging epoch was not recorded as done
    assert not os.path.exists(os.path.join(run_dir, "final.weights.h5"))
    for name in os.listdir(os.path.join(run_dir, "checkpoints")) if stopped > 1 else []:
        with h5py.File(os.path.join(run_dir, "checkpoints", name), "r") as f:
            arrays = []
            f.visititems(lambda n, o: arrays.append(o[()]) if isinstance(o, h5py.Dataset) else None)
        assert all(np.all(np.isfinite(a)) for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating))
    before = _epochs_logged(run_dir)
    assert before == list(range(1, stopped))

    # the same command with a lower --lr resumes at the epoch that diverged and finishes
    r = subprocess.run(cmd + ["--lr=1e-3"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _epochs_logged(run_dir) == list(range(1, 9))
    state = _strict_json(os.path.join(run_dir, "run.json"))
    assert state["finished"] is True and state["last_stop"] is None
    assert np.isfinite(state["final"]["val_mpjpe_mm"])
    with h5py.File(os.path.join(run_dir, "final.weights.h5"), "r") as f:
        arrays = []
        f.visititems(lambda n, o: arrays.append(o[()]) if isinstance(o, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays)


def test_nan_stop_keeps_the_last_finite_epoch_and_resume_starts_at_the_broken_one(tmp_path):
    """StopOnNonFinite with Keras' BackupAndRestore and the checkpoints: targets turn NaN in epoch 3; epochs 1-2
    stay saved (finite), nothing of epoch 3 is, and fitting again (clean data) starts at epoch 3."""
    import keras
    import tensorflow as tf

    from smplr_tf import callbacks as cbs
    from smplr_tf import runs

    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    runs.update_run_json(run_dir, finished=False, epochs_done=0)
    steps = 4

    def data(nan_from_step):
        x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
        ds = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).batch(8).repeat()
        return ds.enumerate().map(lambda k, xy: (xy[0], tf.where(k >= nan_from_step, np.nan, xy[1])))

    def model(lr=1e-2):
        net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        net.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        return net

    def callbacks(net, seen, lr=1e-2):
        return [cbs.StopOnNonFinite(net, run_dir, lr=lr),
                keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), double_checkpoint=True),
                cbs.SetLearningRate(lr), cbs.NetCheckpoint(net, os.path.join(run_dir, "checkpoints")),
                cbs.RunProgress(run_dir),
                keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e + 1))]

    net, seen = model(), []
    with pytest.raises(cbs.TrainingDiverged, match="epoch 3, batch 2"):
        net.fit(data(nan_from_step=2 * steps + 1), epochs=5, steps_per_epoch=steps, verbose=0,
                callbacks=callbacks(net, seen))
    assert seen == [1, 2, 3]
    state = _strict_json(os.path.join(run_dir, "run.json"))
    assert state["epochs_done"] == 2 and state["last_stop"] == {"reason": "the loss (loss) not finite", "epoch": 3,
                                                                "batch": 2}
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["epoch_001.weights.h5",
                                                                        "epoch_002.weights.h5"]
    assert os.path.isdir(os.path.join(run_dir, "backup"))
    saved = model()
    saved.load_weights(os.path.join(run_dir, "checkpoints", "epoch_002.weights.h5"))
    assert cbs.weights_finite(saved)

    # resumed with a lower learning rate (BackupAndRestore alone would restore the old one with the optimizer)
    net, seen = model(lr=1e-3), []
    net.fit(data(nan_from_step=10 ** 9), epochs=5, steps_per_epoch=steps, verbose=0,
            callbacks=callbacks(net, seen, lr=1e-3))
    assert seen == [3, 4, 5] and cbs.weights_finite(net)
    assert float(net.optimizer.learning_rate) == pytest.approx(1e-3)


def test_run_json_is_strict_json_with_non_finite_numbers_as_null(tmp_path):
    from smplr_tf import runs

    path = str(tmp_path / "x.json")
    runs.write_json_atomic(path, {"a": float("nan"), "b": [1.0, float("inf"), np.float32(2.5)], "c": np.int64(3),
                                  "d": {"e": -float("inf")}, "f": np.array([1.0, np.nan])})
    assert _strict_json(path) == {"a": None, "b": [1.0, None, 2.5], "c": 3, "d": {"e": None}, "f": [1.0, None]}


# --------------------------------------------------------------------------------------------- scale-out
def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _record_fingerprints(data_dir):
    """{fingerprint (mm of the first point) -> shard file} of every training record."""
    import tensorflow as tf

    from smplr_tf.body.smpl import SMPL
    from smplr_tf.data import points as points_lib
    from smplr_tf.data import schema

    smpl = SMPL()
    out = {}
    for path in schema.split_files(data_dir, "train"):
        exs = [schema.parse_example(r, decode_images=False) for r in tf.data.TFRecordDataset(path)]
        pose = tf.stack([e["pose"] for e in exs])
        betas = tf.stack([e["betas"] for e in exs])
        gender = tf.stack([e["gender"] for e in exs])
        pts = points_lib.smpl_points(smpl, pose, betas, gender)["points"].numpy()
        for p in pts:
            out[tuple(np.round(p[0] * 1000).astype(int))] = os.path.basename(path)
    return out


def _read_fingerprints(path):
    """Lines 'worker [x y z x y z ...]' written by tf.print -> list of (x, y, z) int tuples."""
    fps = []
    with open(path) as f:
        for line in f:
            nums = [int(t) for t in line.replace("[", " ").replace("]", " ").split()[1:]]
            fps += [tuple(nums[i:i + 3]) for i in range(0, len(nums), 3)]
    return fps


def test_two_workers_train_one_model_on_their_own_shards(tmp_path, records):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    run_dir = str(tmp_path / "mw")
    log = str(tmp_path / "ids.log")
    procs = []
    for i in range(2):
        env = _env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        cmd = [sys.executable, "-m", "smplr_tf.train", "--stage=dae", f"--run_dir={run_dir}", f"--data_dir={records}",
               "--val_split=val", "--distribution=multi_worker", "--epochs=2", "--steps_per_epoch=3",
               "--validation_steps=1", "--batch_size=8", "--val_batch_size=4", "--dae_hidden=32",
               "--dae_bottleneck=16", "--verbose=0", f"--log_example_ids={log}", "--tb_hparams=false"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]

    import h5py

    def weights(path):
        with h5py.File(path, "r") as f:
            arrays = []
            f.visititems(lambda n, o: arrays.append((n, o[()])) if isinstance(o, h5py.Dataset) else None)
            return dict(arrays)

    w0 = weights(os.path.join(run_dir, "final.weights.h5"))
    w1 = weights(os.path.join(run_dir, ".workers", "worker1", "final.weights.h5"))
    assert w0.keys() == w1.keys() and len(w0) > 4
    for k in w0:
        np.testing.assert_array_equal(w0[k], w1[k], err_msg=k)

    shard_of = _record_fingerprints(records)
    seen = {i: _read_fingerprints(f"{log}.worker{i}") for i in range(2)}
    shards = {i: {shard_of[fp] for fp in seen[i]} for i in range(2)}
    print(f"worker 0 read {sorted(shards[0])}, worker 1 read {sorted(shards[1])}; "
          f"{len(seen[0])} + {len(seen[1])} examples")
    assert len(seen[0]) == len(seen[1]) == 2 * 3 * 4  # epochs x steps x per-replica batch
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert state_finished(run_dir)


def state_finished(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        return json.load(f)["finished"] is True


def test_run_dir_round_trip_and_resume_guard(tmp_path):
    """load_model_from_run rebuilds the trained network; --init_from starts from it; an unfinished run refuses
    other flags; --overwrite starts again."""
    import tensorflow as tf

    from smplr_tf import runs, train

    kw = dict(stage="dae", epochs=1, steps_per_epoch=3, batch_size=32, num_train_samples=256, num_val_samples=64,
              dae_hidden=32, dae_bottleneck=16, tb_hparams=False)
    a = str(tmp_path / "a")
    train.train(_cfg(run_dir=a, **kw))
    stage, net, fl = runs.load_model_from_run(a)
    assert stage == "dae" and fl["dae_hidden"] == 32
    x = tf.random.stateless_uniform([4, 41, 3], seed=[1, 2])
    trained = runs.build_network(runs.read_flags(a))
    trained.load_weights(os.path.join(a, "final.weights.h5"))
    np.testing.assert_allclose(net(x, training=False), trained(x, training=False), atol=1e-6)
    assert json.load(open(os.path.join(a, "run.json")))["final"]["val_mpjpe_mm"] > 0
    # training wrote what rebuilds the network beside its weights
    doc = json.load(open(os.path.join(a, runs.NETWORK_FILE)))
    assert doc["stage"] == "dae" and doc["config"] == net.get_config() and doc["config"]["hidden"] == 32

    # --init_from: the new run starts from a's weights (lr 0: nothing moves, the BN statistics aside)
    b = str(tmp_path / "b")
    train.train(_cfg(run_dir=b, init_from=a, lr=0.0, **kw))
    _, net_b, _ = runs.load_model_from_run(b)
    for wa, wb in zip(net.trainable_weights, net_b.trainable_weights):
        np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb))

    # an unfinished run refuses other flags, and --overwrite starts again
    c = str(tmp_path / "c")
    runs.prepare_run_dir(c, _cfg(run_dir=c, **kw))
    # a start that failed before its first epoch does not pin its flags
    assert runs.prepare_run_dir(c, _cfg(run_dir=c, **dict(kw, dae_hidden=64))) == "new"
    assert runs.read_flags(c).dae_hidden == 64
    runs.prepare_run_dir(c, _cfg(run_dir=c, overwrite=True, **kw))
    runs.update_run_json(c, epochs_done=1)  # as after a first epoch
    with pytest.raises(runs.RunError, match="dae_hidden"):
        runs.prepare_run_dir(c, _cfg(run_dir=c, **dict(kw, dae_hidden=64)))
    assert runs.prepare_run_dir(c, _cfg(run_dir=c, **kw)) == "resume"
    with pytest.raises(runs.RunError, match="Refusing to overwrite"):
        train.train(_cfg(run_dir=a, **kw))
    assert runs.prepare_run_dir(a, _cfg(run_dir=a, overwrite=True, **kw)) == "new"
    assert not os.path.exists(os.path.join(a, "final.weights.h5"))
    assert not os.path.exists(os.path.join(a, runs.NETWORK_FILE))
