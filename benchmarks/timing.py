"""Table 5: seconds per step of each module, training and test, beside the paper's GTX 1080 Ti numbers.

    python benchmarks/timing.py                 # full size (the paper's models and batch sizes)
    python benchmarks/timing.py --small         # tiny models, a quick look (seconds)
    python benchmarks/timing.py --json          # machine-readable
    python benchmarks/timing.py --modules=dae,smplr --xla
    python benchmarks/timing.py --mixed_precision       # Keras mixed_float16 policy (a GPU's tensor cores)

Modules (41 points): 2D SHN (5 stacks, 2D heads), Vol. SHN (5 stacks, 16 depth bins), DAE, SMPLR (Psi + Omega
+ SMPL). Every network is built as training builds it: the stage's ``build_network`` from the training flags
(``smplr_tf.stages``; the builders of ``smplr_tf.models``). Phases: ``train`` = one optimiser step as
``train.py`` runs it: ``StageTrainer.train_step`` with the stage's own ``loss_fn`` (forward, loss, backward,
Adam update) at the paper's batch (6, 6, 256, 256; SMPLR = one step of Psi (smplr_shape) plus one of Omega
(smplr_pose)); ``test`` = one forward pass of the inference form of the model (batch norms folded, the
hourglass's intermediate heads merged: ``smplr_tf.models.inference.inference_model``; SMPLR: Psi and Omega
then SMPL, ``smplr_tf.models.pipeline.smpl_from_points``) at the paper's batch and at batch 1. Each row: warm-up steps excluded (the first call traces and compiles), then ``--repeats`` timed
steps; median, min, max, and the inter-quartile range. Every module runs in its own subprocess so that its
peak resident memory (``ru_maxrss``) is its own; ``mem_peak_mb`` is that peak and ``mem_delta_mb`` the peak
minus the process's resident memory after importing TensorFlow (before building the model).

FLOPs per step are counted from the traced TF graph (``tf.compat.v1.profiler`` float-operation count over the
concrete function: every MatMul / Conv2D / their gradients / element-wise op with a registered cost), and
``GFLOP/s`` = FLOPs / median time. The machine's peak is measured by the same script: the best of several
float32 square matrix products (1024, 2048, 3072), run with all threads.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MODULES = ("shn2d", "shn", "dae", "smplr")
LABELS = {"shn2d": "2D SHN", "shn": "Vol. SHN", "dae": "DAE", "smplr": "SMPLR"}
PAPER_BATCH = {"shn2d": 6, "shn": 6, "dae": 256, "smplr": 256}
SMALL_BATCH = {"shn2d": 2, "shn": 2, "dae": 32, "smplr": 32}
# Goals on the 2-core CPU of this project (issue 5): module -> {(phase, batch): seconds}.
GOALS = {"smplr": {("test", 1): 0.003}, "dae": {("test", 256): 0.011}, "shn": {("test", 1): 0.25}}


# ------------------------------------------------------------------------------------------------ device

def device_name() -> str:
    """A readable name of the device TF runs on (GPU name, or the CPU model and core count)."""
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            d = tf.config.experimental.get_device_details(gpus[0])
            return f"GPU: {d.get('device_name', gpus[0].name)} (x{len(gpus)})"
    except Exception:  # noqa: BLE001 - the name is informative only
        pass
    from smplr_tf import machine

    return f"CPU: {machine.cpu_model()}, {os.cpu_count()} logical cores"


def measure_peak(sizes=(1024, 2048, 3072), repeats: int = 8) -> dict:
    """Best float32 matmul throughput (GFLOP/s) of TF on this machine over a few square sizes: the practical
    peak the modules are compared with."""
    import tensorflow as tf

    mm = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    best = {"gflops_per_s": 0.0}
    for size in sizes:
        a = tf.random.normal([size, size])
        b = tf.random.normal([size, size])
        mm(a, b).numpy()
        t = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            mm(a, b).numpy()
            t = min(t, time.perf_counter() - t0)
        g = 2.0 * size ** 3 / t / 1e9
        if g > best["gflops_per_s"]:
            best = {"matmul_size": size, "best_s": t, "gflops_per_s": g}
    return best


# ------------------------------------------------------------------------------------------------ FLOPs

def graph_flops(concrete_fn) -> float | None:
    """Float operations of one call of a traced tf.function (tf.profiler's registered op costs)."""
    try:
        import tensorflow as tf

        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        prof = tf.compat.v1.profiler.profile(concrete_fn.graph, options=opts)
        return float(prof.total_float_ops)
    except Exception:  # noqa: BLE001 - reported as unknown
        return None


# ------------------------------------------------------------------------------------------------ models

# Sizes of the networks (training flags); everything else is the flags' defaults, as train.py would run.
FULL_FLAGS = {"shn": dict(hg_stacks=5, hg_features=256, input_size=256, heatmap_size=64, depth_bins=16),
              "dae": dict(dae_hidden=1024, dae_bottleneck=512), "smplr": {}}
SMALL_FLAGS = {"shn": dict(hg_stacks=2, hg_features=32, input_size=64, heatmap_size=16, depth_bins=4,
                           hg_downsamplings=2),
               "dae": dict(dae_hidden=128, dae_bottleneck=64), "smplr": dict(smplr_trunk=["64", "64"], smplr_head=32)}


def _stage(stage_name: str, small: bool, smpl_dir: str = ""):
    """The training stage ``stage_name`` with the benchmark's sizes (see FULL_FLAGS / SMALL_FLAGS)."""
    from smplr_tf import runs
    from smplr_tf.stages import get_stage

    family = {"shn": "shn", "shn2d": "shn", "dae": "dae", "smplr_shape": "smplr", "smplr_pose": "smplr"}[stage_name]
    sizes = (SMALL_FLAGS if small else FULL_FLAGS)[family]
    cfg = runs.flag_values(stage=stage_name, num_points="41", smpl_dir=smpl_dir, **sizes)
    return get_stage(stage_name)(cfg)


def _trainer(stage, net, x):
    """The StageTrainer train.py wraps ``net`` in (the stage's loss_fn), compiled with Adam and built."""
    import keras

    from smplr_tf.stages.base import StageTrainer

    trainer = StageTrainer(net, stage.loss_fn, stage.metric_fn, stage.loss_names(), stage.metric_names())
    trainer(x, training=False)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer


def shn_train_batch(stage, model, batch: int, rng):
    """One synthetic training batch of an hourglass stage (shn or shn2d) for ``model`` (its config):
    x (batch, S, S, 3) float32 RGB in [0, 1]; y {"heatmaps": (batch, H, H, D, P) or (batch, H, H, P) float32,
    a softmax over the depth axis (volumetric) or the heatmap columns (2D), "points": (batch, P, 3) float32
    metres}. Returns ((x, y), trainer): the data and the StageTrainer train.py would wrap ``model`` in."""
    import tensorflow as tf

    cfg = model.get_config()
    s, hm, d, c = cfg["input_size"], cfg["input_size"] // 4, cfg["depth_bins"], cfg["num_points"]
    tshape = (hm, hm, d, c) if d else (hm, hm, c)
    x = tf.constant(rng.uniform(size=(batch, s, s, 3)), tf.float32)
    t = tf.nn.softmax(tf.constant(rng.normal(size=(batch,) + tshape), tf.float32), axis=-2)
    y = {"heatmaps": t, "points": tf.constant(rng.normal(scale=0.3, size=(batch, c, 3)), tf.float32)}
    return (x, y), _trainer(stage, model, x)


def build_module(name: str, small: bool):
    """-> dict(params, infer, make_inputs(batch) -> tuple, forward(infer, *inputs), make_train(batch) ->
    (step(*args), args), config, bf16() -> a bfloat16 inference form)."""
    import keras
    import tensorflow as tf

    from smplr_tf.models import registry
    from smplr_tf.models.inference import fold_batch_norm, inference_model, randomize_batch_norms

    rng = np.random.default_rng(0)

    def bf16_copy(net):
        """The network rebuilt from its config under the mixed_bfloat16 policy, with the same weights."""
        old = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            copy = registry.build_network(net.get_config())
            copy.set_weights(net.get_weights())
            return inference_model(copy)
        finally:
            keras.mixed_precision.set_global_policy(old)

    if name in ("shn", "shn2d"):
        stage = _stage(name, small)
        model = stage.build_network()
        randomize_batch_norms(model)
        cfg = model.get_config()
        s = cfg["input_size"]

        def make_inputs(batch):
            return (tf.constant(rng.uniform(size=(batch, s, s, 3)), tf.float32),)

        def make_train(batch):
            data, trainer = shn_train_batch(stage, model, batch, rng)
            return trainer.train_step, (data,)

        return dict(params=_n_params(model), infer=inference_model(model), make_inputs=make_inputs,
                    forward=lambda m, x: m(x, training=False)["points"], make_train=make_train, config=cfg,
                    bf16=lambda: bf16_copy(model))

    if name == "dae":
        stage = _stage("dae", small)
        model = stage.build_network()
        randomize_batch_norms(model)

        def make_inputs(batch):
            y = tf.constant(rng.normal(scale=0.3, size=(batch, 41, 3)), tf.float32)
            return (y + 0.02,)

        def make_train(batch):
            y = tf.constant(rng.normal(scale=0.3, size=(batch, 41, 3)), tf.float32)
            return _trainer(stage, model, y).train_step, ((y + 0.02, {"points": y}),)

        return dict(params=_n_params(model), infer=inference_model(model), make_inputs=make_inputs,
                    forward=lambda m, x: m(x, training=False), make_train=make_train, config=model.get_config(),
                    bf16=lambda: bf16_copy(model))

    if name == "smplr":
        from smplr_tf.models.pipeline import smpl_from_points

        smpl_dir, body = _smpl_dir()
        psi_stage, omega_stage = _stage("smplr_shape", small, smpl_dir), _stage("smplr_pose", small, smpl_dir)
        psi, omega = psi_stage.build_network(), omega_stage.build_network()
        smpl = psi_stage.smpl
        for net in (psi, omega):
            randomize_batch_norms(net)

        def make_inputs(batch):
            return (tf.constant(rng.normal(scale=0.3, size=(batch, 41, 3)), tf.float32),)

        def make_train(batch):
            pts = make_inputs(batch)[0]
            y = {"points": pts, "rotmats": tf.eye(3, batch_shape=[batch, 24]),
                 "betas": tf.constant(rng.normal(size=(batch, 10)), tf.float32),
                 "gender": tf.constant(rng.integers(0, 2, batch), tf.int32)}
            tp, to = _trainer(psi_stage, psi, pts), _trainer(omega_stage, omega, pts)
            return (lambda data: (tp.train_step(data), to.train_step(data))), ((pts, y),)

        def forward(m, pts):
            return smpl_from_points(m[0], m[1], smpl, pts)["vertices"]

        return dict(params=_n_params(psi) + _n_params(omega),
                    infer=(fold_batch_norm(psi), fold_batch_norm(omega)), make_inputs=make_inputs, forward=forward,
                    make_train=make_train, config=dict(body_model=body, psi=psi.get_config(), omega=omega.get_config()),
                    bf16=lambda: (bf16_copy(psi), bf16_copy(omega)))  # SMPL itself always computes in float32
    raise ValueError(f"unknown module {name!r}; choose from {MODULES}")


def _n_params(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.weights))


def _smpl_dir():
    """("" = the package's free body model, its description); if the free model is not installed, a directory
    with a random model of SMPL's exact dimensions (6890 vertices, same cost)."""
    from smplr_tf.body import skeleton
    from smplr_tf.body.smpl import SMPL

    try:
        SMPL()
        return "", "free body model"
    except FileNotFoundError:
        import tempfile

        from smplr_tf.body.testing import write_random_model

        d = tempfile.mkdtemp(prefix="timing_smpl_")
        for i, g in enumerate(skeleton.BODY_GENDERS):
            write_random_model(os.path.join(d, f"{g}.npz"), seed=i, gender=g)
        return d, "random model, SMPL dimensions (free model not installed)"


# ------------------------------------------------------------------------------------------------ timing

FAST_WARMUP_S = 1.0  # a step under 0.1 s is warmed up for at least this long
FAST_TIMED_S = 2.0  # ... and timed for at least this long (at most MAX_FAST_REPEATS steps)
MAX_FAST_REPEATS = 500
# A float32 test variant other than the graph (XLA, TFLite) counts as exact if no output coordinate is further than
# this from the graph's (mm). Measured: TFLite 0.0004-0.006 mm on the DAE and SMPLR; on a random-weight volumetric
# hourglass, whose untrained soft-argmax amplifies summation-order differences over 37 GFLOP, XLA 0.39 mm and
# TFLite 0.64 mm (bfloat16: 800-2200 mm; a voxel is 39 mm wide).
EXACT_TOL_MM = 1.0


def time_steps(fn, args, warmup: int, repeats: int, budget_s: float) -> dict:
    """Call ``fn(*args)`` warmup times (untimed), then up to ``repeats`` times (stopping after budget_s).

    Steps faster than 0.1 s (DAE, SMPLR, batch 1) are measured in milliseconds on a machine whose thread pools,
    caches and CPU clock take a while to settle: they are warmed up for at least ``FAST_WARMUP_S`` and timed
    over at least ``FAST_TIMED_S`` (up to ``MAX_FAST_REPEATS`` steps), so that their median is a steady state
    rather than the first few calls. Slow steps keep exactly ``warmup`` + ``repeats``.
    """
    t0 = time.perf_counter()
    for _ in range(warmup):
        _sync(fn(*args))
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    _sync(fn(*args))
    step = time.perf_counter() - t1
    if step < 0.1:
        while time.perf_counter() - t0 < FAST_WARMUP_S:
            _sync(fn(*args))
        repeats = max(repeats, min(MAX_FAST_REPEATS, int(FAST_TIMED_S / max(step, 1e-5))))
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        _sync(fn(*args))
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and len(times) >= 3:
            break
    t = np.array(times)
    q1, q3 = np.percentile(t, [25, 75])
    return {"median_s": float(np.median(t)), "min_s": float(t.min()), "max_s": float(t.max()),
            "iqr_s": float(q3 - q1), "n": int(t.size), "warmup_s": first}


def _sync(out):
    import tensorflow as tf

    for t in tf.nest.flatten(out):
        if hasattr(t, "numpy"):
            t.numpy()
    return out


def _tflite_variant(mod, inputs):
    """The inference form of the module converted to TFLite (float32, XNNPACK) at these inputs' fixed shapes:
    (callable taking the NumPy inputs, the NumPy inputs)."""
    import tensorflow as tf

    from smplr_tf import tflite

    specs = [tf.TensorSpec(x.shape, x.dtype, name=f"input_{i}") for i, x in enumerate(inputs)]
    runner = tflite.Runner(tflite.convert(lambda *a: mod["forward"](mod["infer"], *a), specs))

    def call(*arrays):
        return runner(**{f"input_{i}": a for i, a in enumerate(arrays)})["output_0"]

    return call, [np.asarray(x) for x in inputs]


def run_module(name: str, small: bool, xla: bool, repeats: int, warmup: int, budget_s: float,
               phases=("train", "test"), no_bf16: bool = False, no_tflite: bool = False,
               mixed_precision: bool = False) -> dict:
    """Time one module in this process. Returns {"module", "rows": [...], "mem_...", "config"}.

    Test rows: the inference form timed as a plain tf.function ("graph"), with XLA ("xla") and, on a machine
    without a GPU, converted to TFLite ("tflite": TensorFlow's CPU inference runtime, XNNPACK, float32); the
    row reports the fastest of these exact float32 forms and lists all under ``tried``. An exact form counts
    only if its output is within ``EXACT_TOL_MM`` of the graph's; the row reports its deviation
    (``exact_dev_mm``). Every module also gets a "bf16" row (approximate: its largest point deviation from
    float32, mm, is reported). ``mixed_precision``: the networks are built under Keras's mixed_float16 policy
    (float16 compute, float32 weights; training through Keras's loss-scale optimizer, as train.py
    --mixed_precision); the "graph" variant is then the reference the others are compared with.
    """
    import keras
    import tensorflow as tf

    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    base_rss = _rss_mb()
    mod = build_module(name, small)
    batch = (SMALL_BATCH if small else PAPER_BATCH)[name]
    rows = []
    # Inference forms are made before the training steps change the weights, so that all variants agree.
    bf16 = None
    if "test" in phases and not no_bf16:
        bf16 = mod["bf16"]()
    if "train" in phases:
        step, args = mod["make_train"](batch)
        fn = tf.function(step, jit_compile=xla)
        flops = graph_flops(fn.get_concrete_function(*args))
        r = time_steps(fn, args, warmup, repeats, budget_s)
        rows.append(dict(phase="train", batch=batch, flops=flops, **r))
    if "test" in phases:
        cands = {"graph": (mod["infer"], False), "xla": (mod["infer"], True)}
        if xla:
            cands.pop("graph")
        use_tflite = not no_tflite and not tf.config.list_physical_devices("GPU")
        for b in sorted({batch, 1}, reverse=True):
            inputs = mod["make_inputs"](b)
            timed, outs = {}, {}
            extra = [("bf16", (bf16, False)), ("bf16_xla", (bf16, True))] if bf16 is not None else []
            variants = list(cands.items()) + ([("tflite", None)] if use_tflite else []) + extra
            for vname, spec in variants:
                try:
                    if vname == "tflite":
                        fn, args = _tflite_variant(mod, inputs)
                    else:
                        fn = tf.function(lambda *a, net=spec[0]: mod["forward"](net, *a), jit_compile=spec[1])
                        args = inputs
                    outs[vname] = np.asarray(fn(*args))
                    timed[vname] = time_steps(fn, args, warmup, repeats, budget_s)
                except Exception as e:  # noqa: BLE001 - a variant that does not compile is reported, not fatal
                    timed[vname] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
            ref = outs.get("graph", outs.get("xla"))
            devs = {k: float(np.abs(o.astype(np.float32) - ref).max()) * 1000.0 for k, o in outs.items()}
            for k in list(timed):
                if not k.startswith("bf16") and "median_s" in timed[k] and devs[k] > EXACT_TOL_MM:
                    timed[k] = {"error": f"not exact: {devs[k]:.3f} mm from the graph output"}
            ok = {k: v for k, v in timed.items() if "median_s" in v and not k.startswith("bf16")}
            best = min(ok, key=lambda k: ok[k]["median_s"])
            flops = graph_flops(tf.function(lambda *a: mod["forward"](mod["infer"], *a)).get_concrete_function(*inputs))
            tried = {k: (v.get("median_s") if "median_s" in v else v["error"]) for k, v in timed.items()}
            rows.append(dict(phase="test", batch=b, variant=best, flops=flops, tried=tried, exact_dev_mm=devs[best],
                             **timed[best]))
            half = {k: v for k, v in timed.items() if "median_s" in v and k.startswith("bf16")}
            if half:
                hb = min(half, key=lambda k: half[k]["median_s"])
                dev = float(np.abs(outs[hb].astype(np.float32) - ref).max()) * 1000.0
                rows.append(dict(phase="test", batch=b, variant=hb, flops=flops, tried=tried,
                                 bf16_max_point_dev_mm=dev, **timed[hb]))
    peak = _peak_rss_mb()
    return {"module": name, "label": LABELS[name], "rows": rows, "mem_peak_mb": peak,
            "mem_delta_mb": peak - base_rss, "config": {k: v for k, v in mod.get("config", {}).items()},
            "params": mod["params"]}


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------------------ report

def attach_paper(result: dict, peak_gflops: float | None, small: bool = False) -> None:
    """Add the paper's time, our/paper ratio, goal and GFLOP/s (and % of peak) to each row in place.

    With ``small`` the models are not the paper's: the paper's time is shown, the ratio and goal are not.
    """
    from smplr_tf import paper_results

    paper = paper_results.TABLE5[result["label"]]
    for r in result["rows"]:
        p = paper.get((r["phase"], r["batch"]))
        r["paper_s"] = p
        r["ratio_vs_paper"] = r["median_s"] / p if p and not small else None
        goal = None if small else GOALS.get(result["module"], {}).get((r["phase"], r["batch"]))
        r["goal_s"] = goal
        r["meets_goal"] = (r["median_s"] <= goal) if goal else None
        if r.get("flops"):
            r["gflops"] = r["flops"] / 1e9
            r["gflops_per_s"] = r["flops"] / r["median_s"] / 1e9
            r["pct_of_peak"] = 100.0 * r["gflops_per_s"] / peak_gflops if peak_gflops else None


def _sec(v: float) -> str:
    """Seconds for the table: 4 decimals, or 3 significant digits below 10 ms (TFLite rows take ~0.1 ms)."""
    return f"{v:.4f}" if v >= 0.01 else f"{v:.3g}"


def format_table(report: dict) -> str:
    lines = [f"Table 5 — seconds per step ({'small models' if report['small'] else 'full size'}); "
             f"device: {report['device']}; XLA {'on' if report['xla'] else 'off'}; "
             f"{'mixed_float16' if report.get('mixed_precision') else 'float32'}",
             f"paper: {report['paper_device']}; machine peak (float32 matmul {report['peak']['matmul_size']}): "
             f"{report['peak']['gflops_per_s']:.0f} GFLOP/s; load average {report['loadavg']}",
             "",
             "| module | phase | batch | variant | ours median (s) | min–max (s) | IQR (s) | n | paper (s) | ours/paper | "
             "GFLOP/step | GFLOP/s | % peak | goal | peak mem (MB) | tried (median s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in report["modules"]:
        if "error" in res:
            lines.append(f"| {LABELS[res['module']]} | error: {res['error'][:120]} |")
            continue
        for r in res["rows"]:
            f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
            goal = "-" if not r.get("goal_s") else f"<= {r['goal_s']} {'met' if r['meets_goal'] else 'MISSED'}"
            tried = ", ".join(f"{k} {_sec(v)}" if isinstance(v, float) else f"{k} failed"
                              for k, v in (r.get("tried") or {}).items())
            variant = r.get("variant", "graph" if not report["xla"] else "xla")
            if "bf16_max_point_dev_mm" in r:
                variant += f" (≤{r['bf16_max_point_dev_mm']:.1f} mm off)"
            elif r.get("exact_dev_mm"):
                variant += f" (≤{r['exact_dev_mm']:.2g} mm off)"
            lines.append(
                f"| {res['label']} | {r['phase']} | {r['batch']} | {variant} | {_sec(r['median_s'])} | "
                f"{_sec(r['min_s'])}–{_sec(r['max_s'])} | {_sec(r['iqr_s'])} | {r['n']} | {f(r['paper_s'])} | "
                f"{f(r['ratio_vs_paper'], 2)} | {f(r.get('gflops'), 2)} | {f(r.get('gflops_per_s'), 1)} | "
                f"{f(r.get('pct_of_peak'), 0)} | {goal} | {res['mem_peak_mb']:.0f} (+{res['mem_delta_mb']:.0f}) | "
                f"{tried} |")
    return "\n".join(lines)


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv`` (--xla means what it means to train). Called under ``__main__``; a flag
    that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_boolean, "small", False, "Tiny models and batches, a quick look.")
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of the table.")
    define(flags.DEFINE_string, "modules", ",".join(MODULES), "Subset of " + ",".join(MODULES) + ".")
    define(flags.DEFINE_string, "phases", "train,test", "Phases to time.")
    define(flags.DEFINE_boolean, "xla", False, "jit_compile the timed steps with XLA.")
    define(flags.DEFINE_boolean, "mixed_precision", False, "Keras mixed_float16 policy (GPU tensor cores): every "
           "network built and trained in float16 compute with float32 weights, as train.py --mixed_precision.")
    define(flags.DEFINE_boolean, "no_bf16", False, "Skip the bfloat16 test rows.")
    define(flags.DEFINE_boolean, "no_tflite", False, "Skip the TFLite (XNNPACK, float32) test variant; it is only "
           "tried on a machine without a GPU.")
    define(flags.DEFINE_integer, "repeats", 0, "Timed steps per row (0: 20, with --small 5).", lower_bound=0)
    define(flags.DEFINE_integer, "warmup", 2, "Warm-up steps per row, not timed.", lower_bound=0)
    define(flags.DEFINE_float, "budget_s", 30.0, "Stop repeating a row after this many seconds.")
    define(flags.DEFINE_list, "peak_sizes", ["1024", "2048", "3072"], "Sizes of the square float32 matrix products "
           "that measure the machine's peak (the best of them counts).")
    define(flags.DEFINE_string, "child", None, "Internal: time this one module and print its result.")


def main(argv):
    del argv
    from absl import app

    a = FLAGS
    repeats = a.repeats or (5 if a.small else 20)
    phases = tuple(a.phases.split(","))

    if a.child:
        try:
            res = run_module(a.child, a.small, a.xla, repeats, a.warmup, a.budget_s, phases, a.no_bf16,
                             a.no_tflite, a.mixed_precision)
        except Exception as e:  # noqa: BLE001 - reported in the parent's table
            res = {"module": a.child, "error": f"{type(e).__name__}: {e}"}
        print("@@RESULT@@" + json.dumps(res))
        return 0

    import tensorflow as tf  # noqa: F401 - for the device name and the peak

    report = {"device": device_name(), "small": a.small, "xla": a.xla, "mixed_precision": a.mixed_precision,
              "repeats": repeats, "warmup": a.warmup,
              "loadavg": [round(x, 2) for x in os.getloadavg()], "modules": []}
    from smplr_tf import paper_results

    report["paper_device"] = paper_results.TABLE5_DEVICE
    report["peak"] = measure_peak(tuple(int(n) for n in a.peak_sizes))
    mods = [m.strip() for m in a.modules.split(",") if m.strip()]
    for m in mods:
        if m not in MODULES:
            raise app.UsageError(f"--modules: unknown {m!r}; choose from {','.join(MODULES)}")
    for m in mods:
        if not a.json:
            print(f"[timing] {LABELS[m]} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), f"--child={m}", f"--repeats={repeats}",
               f"--warmup={a.warmup}", f"--budget_s={a.budget_s}", f"--phases={a.phases}"]
        cmd += ["--small"] if a.small else []
        cmd += ["--xla"] if a.xla else []
        cmd += ["--mixed_precision"] if a.mixed_precision else []
        cmd += ["--no_bf16"] if a.no_bf16 else []
        cmd += ["--no_tflite"] if a.no_tflite else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = [l for l in proc.stdout.splitlines() if l.startswith("@@RESULT@@")]
        if line:
            res = json.loads(line[-1][len("@@RESULT@@"):])
        else:
            res = {"module": m, "error": f"child exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        if "error" not in res:
            attach_paper(res, report["peak"]["gflops_per_s"], a.small)
        report["modules"].append(res)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1) if a.json else format_table(report))
    return 0


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
