"""Peak GPU memory of training the volumetric hourglass (Vol. SHN) at the paper's full size and batch 6.

    python benchmarks/gpu_memory.py [--json] [--mixed_precision] [--xla] [--small]

The network and its training step are Table 5's (``benchmarks/timing.py``): the shn stage's network built from
the training flags (5 stacks x 256 features, 256 px crops, 64x64x16 volumes, 41 points), wrapped in the
StageTrainer train.py uses (the stage's loss, Adam), and ``--memory_steps`` optimiser steps on one synthetic
batch. The figure is TensorFlow's allocator peak on ``GPU:0`` (``tf.config.experimental.get_memory_info``)
from before the network is built (statistics reset) to after the last step: weights, Adam slots, the batch,
activations, gradients and cuDNN workspaces, everything training holds at once. Not counted: the CUDA context
and what the allocator reserves beyond its peak in use. Goal: at most 11 GiB, the memory of the paper's
GTX 1080 Ti (11264 MiB, of which the CUDA context takes a few hundred MiB).

Without a GPU the GPU figure is unavailable (``peak_gib`` null, said in ``note``); the process's peak resident
memory (``rss_peak_mb``: Python, TensorFlow and the step together) is reported instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import time

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))
GOAL_GIB = 11.0  # the GTX 1080 Ti's memory (11264 MiB)
GIB = 2.0 ** 30


def _timing():
    """benchmarks/timing.py as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("_smplr_benchmark_timing", os.path.join(HERE, "timing.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(small: bool = False, batch: int = 0, steps: int = 3, mixed_precision: bool = False,
            xla: bool = False) -> dict:
    """Build the hourglass, run ``steps`` training steps at ``batch`` (0: the paper's 6; 2 with ``small``) and
    return the figures: {"device", "tf_version", "gpu": bool, "config": network sizes, "params", "batch",
    "steps", "mixed_precision", "xla", "step_s": [seconds per step, the first includes tracing], "peak_bytes",
    "peak_gib", "after_build_gib" (GPU memory in use once the network, its optimiser and the batch exist),
    "goal_gib", "meets_goal" (None without a GPU), "rss_peak_mb", "note"}."""
    import keras
    import tensorflow as tf

    timing = _timing()
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    batch = int(batch) or (timing.SMALL_BATCH if small else timing.PAPER_BATCH)["shn"]
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    stage = timing._stage("shn", small)
    model = stage.build_network()
    data, trainer = timing.shn_train_batch(stage, model, batch, np.random.default_rng(0))
    after_build = tf.config.experimental.get_memory_info("GPU:0")["current"] if gpu else None
    step = tf.function(trainer.train_step, jit_compile=bool(xla))
    times = []
    for _ in range(max(int(steps), 1)):
        t0 = time.perf_counter()
        timing._sync(step(data))
        times.append(time.perf_counter() - t0)
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] if gpu else None
    cfg = model.get_config()
    out = {"device": timing.device_name(), "tf_version": tf.__version__, "gpu": gpu,
           "config": {k: cfg.get(k) for k in ("num_stacks", "features", "input_size", "depth_bins", "num_points",
                                              "downsamplings") if k in cfg},
           "params": timing._n_params(model), "batch": batch, "steps": len(times),
           "mixed_precision": bool(mixed_precision), "xla": bool(xla), "step_s": [round(t, 5) for t in times],
           "peak_bytes": peak, "peak_gib": None if peak is None else peak / GIB,
           "after_build_gib": None if after_build is None else after_build / GIB, "goal_gib": GOAL_GIB,
           "meets_goal": None if peak is None else bool(peak / GIB <= GOAL_GIB),
           "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "small": bool(small)}
    out["note"] = ("GPU:0 allocator peak from before the network was built to after the last step" if gpu else
                   "no GPU: the GPU memory figure is unavailable; rss_peak_mb is the process's peak resident "
                   "memory on the CPU (Python and TensorFlow included)")
    return out


def format_result(r: dict) -> str:
    """One paragraph of text for a result of :func:`measure`."""
    what = (f"Vol. SHN training, {'small sizes' if r['small'] else 'full size'} {r['config']}, batch {r['batch']}, "
            f"{'mixed_float16' if r['mixed_precision'] else 'float32'}{', XLA' if r['xla'] else ''}; "
            f"{r['params'] / 1e6:.1f} M parameters; {r['device']}")
    steps = ", ".join(f"{t:.3f}" for t in r["step_s"])
    if r["peak_gib"] is None:
        mem = f"GPU peak: unavailable ({r['note']}); peak RSS {r['rss_peak_mb']:.0f} MB"
    else:
        mem = (f"GPU peak {r['peak_gib']:.2f} GiB (after building {r['after_build_gib']:.2f} GiB); goal <= "
               f"{r['goal_gib']:g} GiB: {'met' if r['meets_goal'] else 'MISSED'}")
    return f"{what}\n{mem}\nstep seconds (the first traces): {steps}"


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv`` (--mixed_precision, --xla and --batch_size mean what they mean to train).
    Called under ``__main__``; a flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_boolean, "small", False, "Tiny models and batches, a quick look.")
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of the table.")
    define(flags.DEFINE_boolean, "xla", False, "jit_compile the train/test steps with XLA.")
    define(flags.DEFINE_boolean, "mixed_precision", False, "Keras mixed_float16 policy (GPU).")
    define(flags.DEFINE_integer, "batch_size", 0, "Training batch (0: the paper's 6; 2 with --small).", lower_bound=0)
    define(flags.DEFINE_integer, "memory_steps", 3, "Training steps run (the first traces the step).", lower_bound=1)


def main(argv):
    del argv
    a = FLAGS
    r = measure(a.small, a.batch_size, a.memory_steps, a.mixed_precision, a.xla)
    print(json.dumps(r, indent=1) if a.json else format_result(r))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
