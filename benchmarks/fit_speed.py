"""3D points -> SMPL: accuracy and throughput of our fitting, of Psi / Omega, and of smplfitter when installed.

Test bodies: ``--num_bodies`` random bodies of one gender of the model (``--smpl_dir`` or the free model), betas
~ N(0, 1), body pose ~ N(0, 0.2) rad per axis-angle component, any global rotation; inputs root-relative.
Rows (errors: mean joint / vertex distance to the truth after putting both pelvises at the origin, mm):

* ``psi_omega``: Psi / Omega alone (``--psi_run`` / ``--omega_run``; skipped without them);
* ``psi_omega+gn<N>``: Psi / Omega refined by N Gauss-Newton iterations (``GaussNewtonFitter``) on the 41 points;
* ``psi_omega+fit<N>``: Psi / Omega refined by N Adam steps (``Fitter``) on the 41 points;
* ``gn_from_zero_41_<N>``: N Gauss-Newton iterations from the zero pose on the 41 points;
* ``fit_from_zero_<input>``: our fitting from the zero pose (``--fit_steps`` Adam steps), inputs ``41`` (23
  joints + 18 landmarks) or ``24`` (joints);
* ``smplfitter_<input>`` (when ``import smplfitter`` works, e.g. ``PYTHONPATH=<dir with smplfitter>``): its TF
  fitter (``BodyFitter.fit``, ``--smplfitter_iters`` alternations) on the same model (written as a temporary
  official-style file) with inputs ``41`` (the 18 landmark vertices + 24 joints), ``24`` (the joints and no
  vertex: not accepted by it, so the row is left out) or ``verts`` (all vertices + joints, its own regime).

Psi / Omega see the points turned into their canonical frame (``fitting.psi_omega_start``, as
``points_to_smpl``); the refinements start from the Kabsch alignment of their body.
Throughput: bodies per second at batch 1, 64 and 256 (wall time of fitting ``--num_bodies`` bodies in batches,
after a warm-up batch; batch 1 fits 8 bodies); a refinement's time includes Psi / Omega's. A shared, loaded
machine makes these figures noisy.

    python benchmarks/fit_speed.py [--smpl_dir DIR] [--psi_run R --omega_run R] [--json]
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time

import numpy as np
from absl import flags
from scipy.spatial.transform import Rotation

from smplr_tf import cli

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    define = cli.flag_definer(fv)
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files; empty: the package's free body model.")
    define(flags.DEFINE_string, "gender", "female", "Gender of the model file to time.")
    define(flags.DEFINE_string, "psi_run", "", "Trained Psi (smplr_shape) run directory.")
    define(flags.DEFINE_string, "omega_run", "", "Trained Omega (smplr_pose) run directory.")
    define(flags.DEFINE_list, "batch_sizes", ["1", "64", "256"], "Batch sizes.")
    define(flags.DEFINE_integer, "num_bodies", 256, "Test bodies.", lower_bound=1)
    define(flags.DEFINE_integer, "fit_steps", 300, "Optimiser steps per batch of frames.", lower_bound=1)
    define(flags.DEFINE_integer, "refine_steps", 50, "Adam fitting steps after Psi / Omega.", lower_bound=1)
    define(flags.DEFINE_integer, "gn_refine_iterations", 2, "Gauss-Newton iterations after Psi / Omega.",
           lower_bound=1)
    define(flags.DEFINE_integer, "gn_iterations", 5, "Gauss-Newton iterations from the zero pose.", lower_bound=1)
    define(flags.DEFINE_integer, "smplfitter_iters", 3, "smplfitter's alternations (num_iter).", lower_bound=1)
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")


def make_bodies(layer, n, seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.2, (n, 72)).astype(np.float32)
    pose[:, :3] = Rotation.random(n, random_state=seed).as_rotvec()
    betas = rng.normal(0, 1, (n, 10)).astype(np.float32)
    out = layer(betas, pose)
    root = out["joints"].numpy()[:, :1]
    J, V, L = (out[k].numpy() - root for k in ("joints", "vertices", "landmarks"))
    return {"joints": J, "vertices": V, "points41": np.concatenate([J[:, 1:], L], 1)}


def errors(truth, joints, vertices):
    j = joints - joints[:, :1]
    v = vertices - joints[:, :1]
    return (float(np.linalg.norm(j - truth["joints"], axis=-1).mean() * 1000),
            float(np.linalg.norm(v - truth["vertices"], axis=-1).mean() * 1000))


def time_rows(run, n, sizes):
    """{batch: bodies/s} of run(first, count, batch) fitting ``count`` bodies in batches."""
    out = {}
    for b in sizes:
        count = min(n, 8) if b == 1 else n
        run(0, b, b)  # warm-up (tracing / compilation)
        t = time.perf_counter()
        run(0, count, b)
        out[b] = count / (time.perf_counter() - t)
    return out


def ours(data, truth, layer, key, steps, sizes, start=None, align=True, lr=0.1, solver="adam"):
    """Our fitting of the ``key`` inputs ("41" | "24"); ``start(points (b, 41, 3))`` -> {"pose", "betas"}: the
    initial body (Psi / Omega's, its time counted), None: the zero pose. solver: "adam" (``steps`` steps of
    :class:`Fitter`) or "gauss_newton" (``steps`` iterations of :class:`GaussNewtonFitter`)."""
    from smplr_tf import fitting
    from smplr_tf.body import skeleton

    pts = truth["points41"] if key == "41" else truth["joints"]
    idx = (list(range(1, 24)) + list(range(24, 42))) if key == "41" else list(range(24))
    jmap = fitting.JointMap.smpl_points(idx, num_points=skeleton.NUM_NODES if key == "41" else 24)
    fitters = {}

    def run(first, count, b):
        if b not in fitters:
            fitters[b] = (fitting.Fitter(data, jmap, batch_size=b, steps=steps, learning_rate=lr)
                          if solver == "adam" else fitting.GaussNewtonFitter(data, jmap, batch_size=b, steps=steps))
        outs = []
        for s in range(first, first + count, b):
            x = pts[s:min(s + b, first + count)]
            kw = {}
            if start is not None:
                init = start(x)
                kw = {"init_pose": init["pose"], "init_betas": init["betas"]}
            outs.append(fitters[b].fit(x, align=align, **kw))
        return {k: np.concatenate([o[k] for o in outs]) for k in ("pose", "betas")}

    speed = time_rows(run, len(pts), sizes)
    res = run(0, len(pts), max(sizes))
    body = layer(res["betas"], res["pose"])
    return errors(truth, body["joints"].numpy(), body["vertices"].numpy()), speed


def smplfitter_rows(data, truth, sizes, iters):
    try:
        import smplfitter.tf as sf
    except ImportError as e:
        return {"error": f"smplfitter not importable ({e})"}
    import tensorflow as tf

    tmp = tempfile.mkdtemp()
    arrays = {"v_template": data.v_template.astype(np.float64), "shapedirs": data.shapedirs.astype(np.float64),
              "posedirs": data.posedirs.astype(np.float64), "J_regressor": data.J_regressor.astype(np.float64),
              "weights": data.weights.astype(np.float64), "kintree_table": data.kintree_table, "f": data.f}
    with open(os.path.join(tmp, "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"), "wb") as fh:
        pickle.dump(arrays, fh)  # the same arrays, under the name smplfitter looks for
    np.save(os.path.join(tmp, "kid_template.npy"), np.zeros_like(arrays["v_template"]))
    rows = {}
    for key, vids in (("41", data.landmark_ids), ("verts", None)):
        bm = sf.BodyModel("smpl", "neutral", model_root=tmp, num_betas=10, vertex_subset=vids)
        full = sf.BodyModel("smpl", "neutral", model_root=tmp, num_betas=10)
        fitter = sf.BodyFitter(bm)
        verts = truth["vertices"] if vids is None else truth["vertices"][:, vids]

        def run(first, count, b, fitter=fitter, verts=verts):
            outs = []
            for s in range(first, first + count, b):
                outs.append(fitter.fit(tf.constant(verts[s:s + b]), tf.constant(truth["joints"][s:s + b]),
                                       num_iter=iters, beta_regularizer=1.0,
                                       requested_keys=["pose_rotvecs", "shape_betas", "trans"]))
            return outs

        speed = time_rows(run, len(verts), sizes)
        res = run(0, len(verts), max(sizes))
        pose = np.concatenate([r["pose_rotvecs"].numpy() for r in res])
        betas = np.concatenate([r["shape_betas"].numpy() for r in res])
        body = full(tf.constant(pose), tf.constant(betas), tf.zeros([len(pose), 3]))
        rows[f"smplfitter_{key}"] = (errors(truth, body["joints"].numpy(), body["vertices"].numpy()), speed)
    return rows


def main(argv):
    del argv
    from smplr_tf import fitting, runs
    from smplr_tf.body.model_io import find_model_files, load_model_file
    from smplr_tf.body.smpl import SMPL

    F = FLAGS
    sizes = [int(s) for s in F.batch_sizes]
    data = load_model_file(find_model_files(F.smpl_dir or None)[F.gender], gender=F.gender)
    layer = SMPL(F.smpl_dir or None, genders=(F.gender,))
    truth = make_bodies(layer, F.num_bodies)
    rows = {}
    if F.psi_run and F.omega_run:
        psi = runs.load_model_from_run(F.psi_run)[1]
        omega = runs.load_model_from_run(F.omega_run)[1]
        pts = truth["points41"]

        def predict(first, count, b):
            outs = []
            for s in range(first, first + count, b):
                start = fitting.psi_omega_start(pts[s:s + b], psi, omega)
                outs.append((start["betas"], start["pose"]))
            return outs

        speed = time_rows(predict, len(pts), sizes)
        pred = predict(0, len(pts), max(sizes))
        init = {"betas": np.concatenate([p[0] for p in pred]), "pose": np.concatenate([p[1] for p in pred])}
        body = layer(init["betas"], init["pose"])
        rows["psi_omega"] = (errors(truth, body["joints"].numpy(), body["vertices"].numpy()), speed)

        def start(x):
            return fitting.psi_omega_start(x, psi, omega)

        # the refinements start from the Kabsch alignment of Psi / Omega's body (align), as points_to_smpl does
        rows[f"psi_omega+gn{F.gn_refine_iterations}"] = ours(
            data, truth, layer, "41", F.gn_refine_iterations, sizes, start=start, solver="gauss_newton")
        rows[f"psi_omega+fit{F.refine_steps}"] = ours(data, truth, layer, "41", F.refine_steps, sizes, start=start,
                                                      lr=0.02)
    rows[f"gn_from_zero_41_{F.gn_iterations}"] = ours(data, truth, layer, "41", F.gn_iterations, sizes,
                                                      solver="gauss_newton")
    for key in ("41", "24"):
        rows[f"fit_from_zero_{key}"] = ours(data, truth, layer, key, F.fit_steps, sizes)
    sf_rows = smplfitter_rows(data, truth, sizes, F.smplfitter_iters)
    note = sf_rows.pop("error", None)
    rows.update(sf_rows)
    table = {k: {"joint_mm": e[0], "vertex_mm": e[1], "bodies_per_s": {str(b): s for b, s in sp.items()}}
             for k, (e, sp) in rows.items()}
    if F.json:
        print(json.dumps({"rows": table, "note": note, "cpu_count": os.cpu_count()}, indent=1))
        return
    print(f"{'method':<24}{'joint mm':>10}{'vertex mm':>11}" + "".join(f"{'b=' + str(b) + ' /s':>12}" for b in sizes))
    for k, r in table.items():
        print(f"{k:<24}{r['joint_mm']:>10.1f}{r['vertex_mm']:>11.1f}" +
              "".join(f"{r['bodies_per_s'][str(b)]:>12.1f}" for b in sizes))
    if not (F.psi_run and F.omega_run):
        print("psi_omega rows: give --psi_run and --omega_run")
    if note:
        print(note)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
