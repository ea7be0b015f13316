"""3D points -> SMPL: ``python -m smplr_tf.fit --points=points.npy --output_dir=out [--psi_run=... --omega_run=...]``.

``--points``: a ``.npy`` of (B, 41, 3) SMPLR points (joints 1..23, then the 18 landmarks), (B, 24, 3) SMPL
joints or (B, 23, 3) joints 1..23 with the pelvis at the origin, metres (a single (P, 3) body is B = 1).
With trained Psi / Omega runs (41 points only) their prediction is the answer, refined by ``--fit_steps``
fitting iterations (``--fit_solver``) when > 0; without them the body is fitted from the zero pose
(``--fit_gender``'s model).
Writes ``<output_dir>/smpl.npz`` (pose (B, 72) axis-angle, betas (B, 10), trans (B, 3), gender (B,) names,
joints (B, 24, 3), landmarks (B, 18, 3), vertices (B, V, 3), error (B,) metres RMS to the points) and one
``<output_dir>/body_<i>.obj`` per body (``--write_obj``). See :func:`smplr_tf.fitting.points_to_smpl`.
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS


class FitCommandError(cli.UserError):
    """Bad input to the fit command."""


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    define = cli.flag_definer(fv)
    define(flags.DEFINE_string, "points", "", "A .npy of (B, 41 | 24 | 23, 3) points, metres.")
    define(flags.DEFINE_string, "output_dir", "", "Where the outputs go (smpl.npz, body_<i>.obj).")
    define(flags.DEFINE_string, "psi_run", "", "Trained Psi (smplr_shape) run directory.")
    define(flags.DEFINE_string, "omega_run", "", "Trained Omega (smplr_pose) run directory.")
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files (default: the free body model).")
    define(flags.DEFINE_integer, "fit_steps", 0, "Fitting iterations (Gauss-Newton) or steps (Adam) per batch of "
           "frames (without Psi / Omega: 0 means 6 or 300).", lower_bound=0)
    define(flags.DEFINE_enum, "fit_solver", "gauss_newton", ["gauss_newton", "adam"],
           "Fitting: damped Gauss-Newton (a few iterations, no pose prior: it follows the points, noise included) "
           "or Adam (hundreds of steps, with the joint-angle and back-bend priors).")
    define(flags.DEFINE_string, "fit_gender", "neutral", "SMPL gender fitted without Psi: female, male or "
           "neutral.")
    define(flags.DEFINE_boolean, "write_obj", True, "Write one .obj mesh per body.")
    define(flags.DEFINE_boolean, "xla", True, "Compile with XLA.")


def main(argv):
    del argv
    F = FLAGS
    if not F.points or not F.output_dir:
        raise FitCommandError("give --points=<file.npy> and --output_dir=<folder>")
    try:
        points = np.load(F.points, allow_pickle=False)
    except ValueError as e:
        raise FitCommandError(f"{F.points}: not a .npy array ({e})") from e
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] not in (41, 24, 23):
        raise FitCommandError(f"{F.points}: expected (B, 41 | 24 | 23, 3) points, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise FitCommandError(f"{F.points}: holds NaN or infinite values")
    if bool(F.psi_run) != bool(F.omega_run):
        raise FitCommandError("give both --psi_run and --omega_run, or neither")
    if F.fit_gender not in ("female", "male", "neutral"):
        raise FitCommandError(f"--fit_gender={F.fit_gender}: expected female, male or neutral")
    from smplr_tf import fitting, render, runs  # TensorFlow: after the input checks

    psi = omega = None
    if F.psi_run:
        if points.shape[1] != 41:
            raise FitCommandError(f"Psi / Omega take the 41 points, {F.points} holds {points.shape[1]}")
        psi = runs.load_model_from_run(F.psi_run)[1]
        omega = runs.load_model_from_run(F.omega_run)[1]
    out = fitting.points_to_smpl(points, psi, omega, gender=F.fit_gender, smpl_dir=F.smpl_dir or None,
                                 steps=F.fit_steps, xla=F.xla, solver=F.fit_solver)
    os.makedirs(F.output_dir, exist_ok=True)
    path = os.path.join(F.output_dir, "smpl.npz")
    np.savez(path, **{k: v for k, v in out.items() if k != "faces"})
    print(f"wrote {path}: {len(points)} bodies, RMS distance to the points {np.mean(out['error']) * 1000:.1f} mm")
    if F.write_obj:
        for i, v in enumerate(out["vertices"]):
            render.write_obj(os.path.join(F.output_dir, f"body_{i}.obj"), v, out["faces"])
        print(f"wrote {len(points)} .obj meshes in {F.output_dir}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
