"""SMPL forward throughput: our TF layer vs body-models (NumPy) and, when installed, smplx (PyTorch).

All three run the same model arrays (one gender of the model in --smpl_dir, or of the free model; the references
get them as a temporary ``.npz``), batch 1, 64 and 256, random betas ~ N(0, 1) and axis-angle pose ~ N(0, 0.3).
Each figure is the median wall time of ``--timed_calls`` calls (10x at batch <= 8, a quarter at 256) after 3 warm-up
calls (tracing / XLA compilation excluded), outputs fetched to NumPy. Ratios are reference time / our time
(> 1: ours is faster).

    python benchmarks/smpl_speed.py [--json] [--smpl_dir DIR] [--gender female]
        [--smplx_python /path/to/venv/bin/python]   # an interpreter with torch + smplx (never the main venv)

Our variants: ``ours_xla`` (tf.function(jit_compile=True), the one the goals refer to), ``ours_graph``
(tf.function without XLA) and ``ours_xla_2g_mixed`` (a female+male layer on a mixed-gender batch); the
``*_points41`` rows time ``SMPL.points`` (the 24 joints and 18 landmarks only, what the point losses use) on the
same layers, against the full forward of the row without the suffix (``points41_speedup``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from smplr_tf import cli

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv`` (--smpl_dir means what it means to train). Called under ``__main__``; a
    flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files; empty: the package's free body model.")
    define(flags.DEFINE_string, "gender", "female", "Gender of the model file to time.")
    define(flags.DEFINE_list, "batch_sizes", ["1", "64", "256"], "Batch sizes.")
    define(flags.DEFINE_integer, "timed_calls", 20, "Timed calls per figure (10x at batch <= 8; batch >= 256 uses a "
           "quarter, at least 5).", lower_bound=1)
    define(flags.DEFINE_string, "smplx_python", os.environ.get("SMPLX_PYTHON"), "Python interpreter with torch + "
           "smplx for the smplx reference (default: this one, if it has them; env SMPLX_PYTHON).")
    define(flags.DEFINE_boolean, "random_model", False, "Time a random model with SMPL's exact sizes instead of a "
           "file.")
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")

_SMPLX_SNIPPET = r"""
import json, sys, time
import numpy as np
try:
    import torch, smplx
except ImportError as e:
    print(json.dumps({"error": f"smplx not available: {e}"})); sys.exit(0)
path, sizes, repeats = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
from smplx.utils import Struct
arrays = dict(np.load(path))  # smplx reads only pickles from a path: hand it the same arrays
model = smplx.SMPL(model_path=path, data_struct=Struct(**arrays), create_transl=False)
out = {"torch": torch.__version__, "smplx": getattr(smplx, "__version__", "?"), "ms": {}}
for b in sizes:
    rng = np.random.default_rng(0)
    betas = torch.tensor(rng.normal(0, 1, (b, 10)), dtype=torch.float32)
    pose = torch.tensor(rng.normal(0, 0.3, (b, 72)), dtype=torch.float32)
    def f():
        with torch.no_grad():
            o = model(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
            return o.vertices.numpy(), o.joints.numpy()
    f(); f(); f()
    n = 10 * repeats if b <= 8 else repeats if b < 256 else max(5, repeats // 4)
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    out["ms"][str(b)] = 1e3 * float(np.median(ts))
    out.setdefault("best_ms", {})[str(b)] = 1e3 * float(np.min(ts))
print(json.dumps(out))
"""


_BEST = {}  # (variant, batch) -> fastest call in ms: on a shared machine, the least disturbed figure


def _median_ms(fn, n: int, key=None) -> float:
    for _ in range(3):  # warm-up: tracing, XLA compilation, thread pools
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    if key is not None:
        _BEST[key] = 1e3 * float(np.min(ts))
    return 1e3 * float(np.median(ts))


def _inputs(b: int):
    rng = np.random.default_rng(0)
    return (rng.normal(0, 1, (b, 10)).astype(np.float32), rng.normal(0, 0.3, (b, 72)).astype(np.float32),
            rng.integers(0, 2, b).astype(np.int32))


def main(argv):
    del argv
    import tensorflow as tf

    from smplr_tf.body import model_io, skeleton, testing
    from smplr_tf.body.smpl import SMPL

    sizes = [int(s) for s in FLAGS.batch_sizes]
    tmp = tempfile.mkdtemp(prefix="smpl_speed_")
    if FLAGS.random_model:
        files = {g: str(testing.write_random_model(os.path.join(tmp, f"random_{g}.npz"), seed=i, gender=g).path)
                 for i, g in enumerate(skeleton.BODY_GENDERS)}
        source = "random model, SMPL sizes"
    else:
        files = model_io.find_model_files(FLAGS.smpl_dir or None)
        source = FLAGS.smpl_dir or "free model"
    data = {g: model_io.load_model_file(p, gender=g) for g, p in files.items()}
    gender = FLAGS.gender
    ref_path = os.path.join(tmp, f"model_{gender}.npz")  # the same arrays for every implementation
    with open(ref_path, "wb") as fh:
        np.savez(fh, **data[gender].to_npz_dict())

    result = {"model": source, "file": files[gender], "gender": gender, "num_vertices": data[gender].num_vertices,
              "tensorflow": tf.__version__, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "ms": {}}
    # Small batches take ~1 ms: 10x the repeats there, so that a burst of other load cannot own the median.
    n_for = {b: 10 * FLAGS.timed_calls if b <= 8 else FLAGS.timed_calls if b < 256 else max(5, FLAGS.timed_calls // 4)
             for b in sizes}

    layer = SMPL(models={gender: data[gender]}, genders=(gender,))
    variants = {"ours_xla": (layer, True), "ours_graph": (layer, False)}
    if "female" in data and "male" in data:
        variants["ours_xla_2g_mixed"] = (SMPL(models={g: data[g] for g in skeleton.BODY_GENDERS}), True)
    for name in ("ours_xla", "ours_xla_2g_mixed"):
        if name in variants:
            variants[name + "_points41"] = variants[name]
    for name, (lay, xla) in variants.items():
        if name.endswith("_points41"):
            fwd = tf.function(lambda b, p, g, lay=lay: {"points": lay.points(b, p, g)}, jit_compile=xla,
                              reduce_retracing=True)
        else:
            fwd = tf.function(lambda b, p, g, lay=lay: lay(b, p, g), jit_compile=xla, reduce_retracing=True)
        result["ms"][name] = {}
        for b in sizes:
            betas, pose, g = (tf.constant(x) for x in _inputs(b))
            if lay.num_genders == 1:
                g = tf.zeros_like(g)

            def run():
                return {k: v.numpy() for k, v in fwd(betas, pose, g).items()}

            result["ms"][name][str(b)] = _median_ms(run, n_for[b], (name, str(b)))

    try:
        from body_models.smpl.numpy import SMPL as BodyModelsSMPL

        bm = BodyModelsSMPL(model_path=ref_path)
        result["ms"]["body_models"] = {}
        for b in sizes:
            betas, pose, _ = _inputs(b)

            def run_bm():
                return bm.forward_vertices(pose[:, 3:].reshape(b, 23, 3), pelvis_rotation=pose[:, :3], shape=betas)

            result["ms"]["body_models"][str(b)] = _median_ms(run_bm, n_for[b], ("body_models", str(b)))
    except ImportError as e:
        result["body_models_error"] = str(e)

    py = FLAGS.smplx_python or sys.executable
    proc = subprocess.run([py, "-c", _SMPLX_SNIPPET, ref_path, ",".join(map(str, sizes)), str(FLAGS.timed_calls),
                           str(os.cpu_count())], capture_output=True, text=True, timeout=1800)
    try:
        sx = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        sx = {"error": f"smplx run failed: {proc.stderr.strip()[-500:]}"}
    if "ms" in sx:
        result["ms"]["smplx"] = sx["ms"]
        result["smplx_versions"] = {"torch": sx["torch"], "smplx": sx["smplx"]}
    else:
        result["smplx_error"] = sx["error"]

    result["best_ms"] = {}
    for (name, b), ms in _BEST.items():
        result["best_ms"].setdefault(name, {})[b] = ms
    if "smplx" in result["ms"]:
        result["best_ms"]["smplx"] = sx.get("best_ms", {})
    ours = result["ms"]["ours_xla"]
    result["ratios"] = {ref: {b: result["ms"][ref][b] / ours[b] for b in ours}
                        for ref in ("body_models", "smplx") if ref in result["ms"]}
    result["points41_speedup"] = {name: {b: result["ms"][name][b] / result["ms"][name + "_points41"][b]
                                         for b in result["ms"][name]}
                                  for name in ("ours_xla", "ours_xla_2g_mixed") if name + "_points41" in result["ms"]}
    result["goals"] = {
        "batch1_under_2ms": ours.get("1", float("inf")) < 2.0,
        "faster_at_64_and_256": all(r.get(b, 0) >= 1.0 for r in result["ratios"].values() for b in ("64", "256")
                                    if b in ours),
    }
    if FLAGS.json:
        print(json.dumps(result, indent=1))
        return
    print(f"SMPL forward, {source} ({gender}, V={result['num_vertices']}), TF {tf.__version__}, "
          f"{os.cpu_count()} CPUs, load average at start {result['load_average'][0]:.1f}")
    print(f"{'variant':<28}" + "".join(f"{'B=' + str(b):>14}" for b in sizes) + "   (median ms per call)")
    for name, row in result["ms"].items():
        print(f"{name:<28}" + "".join(f"{row[str(b)]:>12.2f}ms" for b in sizes))
    print("fastest call (ms), the least disturbed by other load:")
    for name, row in result["best_ms"].items():
        print(f"{name:<28}" + "".join(f"{row.get(str(b), float('nan')):>12.2f}ms" for b in sizes))
    print("ratios of medians:")
    for ref, row in result["ratios"].items():
        print(f"{ref + ' / ours_xla':<28}" + "".join(f"{row[str(b)]:>13.1f}x" for b in sizes))
    print("41 points alone vs the full forward (full / points41):")
    for name, row in result["points41_speedup"].items():
        print(f"{name:<28}" + "".join(f"{row[str(b)]:>13.1f}x" for b in sizes))
    for key in ("smplx_error", "body_models_error"):
        if key in result:
            print(f"({key}: {result[key]})")
    print("goals:", result["goals"])


if __name__ == "__main__":
    define_flags()
    app.run(main)
