"""Batch-1 latency of the volumetric hourglass at inference: plain, batch norms folded, and folded with the
intermediate heads merged (:mod:`smplr_tf.models.inference`), with and without XLA, and in bfloat16.

    python benchmarks/inference_speed.py [--hg_stacks=5 --hg_features=256 --input_size=256 --timed_calls=10] [--json]

Variants are timed round robin, so that all see the same machine load; wall and process CPU seconds per call,
medians. The input is a random [0, 1] image (the networks standardise it themselves).
"""

from __future__ import annotations

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS
VARIANTS = ("plain", "plain_xla", "folded", "folded_xla", "merged", "merged_xla", "merged_bf16", "merged_bf16_xla")


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv``. Called under ``__main__``; a flag that ``fv`` holds already is left."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_integer, "hg_stacks", 5, "Hourglass stacks.", lower_bound=1)
    define(flags.DEFINE_integer, "hg_features", 256, "Hourglass features.", lower_bound=1)
    define(flags.DEFINE_integer, "input_size", 256, "Image crop size fed to the hourglass.", lower_bound=16)
    define(flags.DEFINE_integer, "batch", 1, "Images per call.", lower_bound=1)
    define(flags.DEFINE_integer, "timed_calls", 10, "Timed calls per variant (after two warm-up calls).",
           lower_bound=1)
    if "variants" not in fv:
        flags.DEFINE_list("variants", ["plain", "folded", "merged", "merged_bf16"],
                          "Variants to time, of " + ",".join(VARIANTS) + ".", flag_values=fv)
        flags.register_validator("variants", lambda v: set(v) <= set(VARIANTS), flag_values=fv,
                                 message="--variants: each one of " + ",".join(VARIANTS))
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")


def main(argv):
    del argv
    import json
    import os
    import time

    import tensorflow as tf

    from smplr_tf.models.hourglass import build_hourglass, hourglass_flops
    from smplr_tf.models.inference import (fold_batch_norm, hourglass_inference_model,
                                           randomize_batch_norms)

    a = FLAGS
    cfg = dict(num_stacks=a.hg_stacks, features=a.hg_features, input_size=a.input_size)
    load0 = os.getloadavg()
    model = build_hourglass(**cfg)
    randomize_batch_norms(model)
    x = tf.constant(np.random.default_rng(0).uniform(size=(a.batch, a.input_size, a.input_size, 3)),
                    tf.float32)
    variants = {"plain": (model, False), "plain_xla": (model, True)}
    wanted = list(a.variants)
    if any(v.startswith("folded") for v in wanted):
        f = fold_batch_norm(model)
        variants.update(folded=(f, False), folded_xla=(f, True))
    if any(v.startswith("merged") for v in wanted):
        m = hourglass_inference_model(model)
        variants.update(merged=(m, False), merged_xla=(m, True))
    if "merged_bf16" in wanted:  # not exact: bfloat16 compute (oneDNN uses AVX512_BF16 where present)
        mb = hourglass_inference_model(model, dtype_policy="mixed_bfloat16")
        variants["merged_bf16"] = (mb, False)
        variants["merged_bf16_xla"] = (mb, True)
    fns, outs, first, times, cpu = {}, {}, {}, {}, {}
    for name in wanted:  # compile + warm up
        net, xla = variants[name]
        fns[name] = tf.function(lambda t, net=net: net(t, training=False)["points"], jit_compile=xla)
        t0 = time.perf_counter()
        outs[name] = fns[name](x).numpy()
        first[name] = time.perf_counter() - t0
        fns[name](x).numpy()
        times[name], cpu[name] = [], []
    for _ in range(a.timed_calls):  # round robin: every variant sees the same machine load
        for name in wanted:
            t0, c0 = time.perf_counter(), time.process_time()
            fns[name](x).numpy()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    results = {}
    ref = outs[wanted[0]]
    for name in wanted:
        ts = np.asarray(times[name])
        gflops = hourglass_flops(**cfg, inference=name.startswith("merged")) * a.batch / 1e9
        med = float(np.median(ts))
        results[name] = dict(median_s=med, min_s=float(ts.min()), max_s=float(ts.max()),
                             first_call_s=first[name], cpu_s=float(np.median(cpu[name])), gflops=gflops, gflops_per_s=gflops / med,
                             max_abs_diff_points_m=float(np.abs(outs[name] - ref).max()))
        if not a.json:
            r = results[name]
            print(f"{name:16s} median {med:.3f} s  min {r['min_s']:.3f}  max {r['max_s']:.3f}  "
                  f"cpu {r['cpu_s']:.3f} s  {gflops:.1f} GFLOP  {r['gflops_per_s']:.0f} GFLOP/s  first call "
                  f"{r['first_call_s']:.1f} s  |dpoints| vs {wanted[0]} {r['max_abs_diff_points_m']:.2e} m")
    info = dict(config=cfg, loadavg_before=load0, batch=a.batch, timed_calls=a.timed_calls, loadavg=os.getloadavg(), results=results)
    if a.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"load average {info['loadavg']}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
