"""SMPL fits of Human3.6M's mocap, in the ``--fits_dir`` layout that ``convert_h36m.py`` reads.

Usage (from the repository root)::

    python tfrecords_tools/fit_h36m.py --root /data/h36m --fits_dir /data/h36m_fits [--smpl_dir /models/smpl]
    python tfrecords_tools/convert_h36m.py --root /data/h36m --fits_dir /data/h36m_fits --smpl_dir ... --split train

Human3.6M has no SMPL parameters; the paper (Sec. 4.2) fitted its own: pose per frame to the mocap through a
joint correspondence, the imperfect joints down-weighted (weights in [0.25, 0.75]), a penalty on back bends
outside a symmetric range about 0, and one shape per subject. Here:

* targets: the 32-joint mocap (``D3_Positions``, world frame, metres) at the joints of ``H36M_TO_SMPL`` (the
  converter's table); per-joint weights from ``--h36m_joint_weights`` (defaults below, our choice within the
  paper's range for the joints whose Human3.6M position differs from SMPL's: hips, neck, head, shoulders);
* shape, once per subject: betas whose rest-pose SMPL bones match the median length over all the subject's
  sampled frames of every mapped bone that is rigid in SMPL (parent / child joints: hip-knee, knee-ankle,
  ankle-foot, shoulder-elbow, elbow-wrist, pelvis-hips, neck-head); or, when ``--scans_dir`` holds the
  subject's body scan (as the paper did), the SMPL mesh fitted to the scan by a symmetric nearest-point loss
  (:func:`smplr_tf.fitting.fit_scan`; the scan must be in SMPL's axes, y up, facing +z); saved as
  ``<fits_dir>/<subject>/shape.json``;
* pose and translation per frame with that shape fixed (:class:`smplr_tf.fitting.Fitter`), every ``--every``-th
  frame (the converter's sampling; the other rows of ``pose`` / ``trans`` are NaN);
* output ``<fits_dir>/<subject>/<action>.npz``: ``pose (N, 72)`` axis-angle, ``trans (N, 3)`` metres (world
  SMPL joints = SMPL(pose, betas).joints + trans), ``betas (10,)``, ``gender``, ``frames`` (the fitted rows),
  ``error_mm (N,)`` (weighted RMS distance to the mocap targets, NaN where not fitted); next to it
  ``<action>.json`` with the sequence's error statistics, and ``<fits_dir>/manifest.json`` gathering them.

Resumable (a sequence whose ``.npz`` exists is skipped; files are written whole, then renamed) and shardable
over sequences (``--num_fit_shards`` processes, each with its ``--fit_shard``).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time

import numpy as np
from absl import flags

from smplr_tf import cli

try:
    from tfrecords_tools import convert_h36m
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import convert_h36m

FLAGS = flags.FLAGS
log = logging.getLogger("smplr_tf.fit_h36m")

SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
# Gender of the Human3.6M subjects (the dataset's own description).
SUBJECT_GENDERS = {"S1": "female", "S5": "female", "S6": "male", "S7": "female", "S8": "male", "S9": "male",
                   "S11": "male"}
H36M_JOINT_NAMES = {0: "Hips", 1: "RightUpLeg", 2: "RightLeg", 3: "RightFoot", 4: "RightToeBase", 6: "LeftUpLeg",
                    7: "LeftLeg", 8: "LeftFoot", 9: "LeftToeBase", 12: "Spine1", 13: "Neck", 14: "Head",
                    15: "HeadTop", 17: "LeftArm", 18: "LeftForeArm", 19: "LeftHand", 25: "RightArm",
                    26: "RightForeArm", 27: "RightHand"}
DEFAULT_WEIGHTS = ("Hips=0.5", "LeftUpLeg=0.5", "RightUpLeg=0.5", "Neck=0.75", "Head=0.5", "LeftArm=0.75",
                   "RightArm=0.75")


class FitError(cli.UserError):
    """Bad input to fit_h36m (a flag, a missing tree)."""


def joint_map(weights=DEFAULT_WEIGHTS):
    """The 32 Human3.6M joints as targets of the SMPL joints (converter's table), weights from "Name=w" items."""
    from smplr_tf import fitting

    by_name = {v: k for k, v in H36M_JOINT_NAMES.items()}
    pairs = {int(h): int(s) for s, h in convert_h36m.H36M_TO_SMPL.items()}
    w = {}
    for item in weights or ():
        name, _, value = str(item).partition("=")
        if name not in by_name or int(by_name[name]) not in pairs:
            raise FitError(f"--h36m_joint_weights: '{name}' is not a mapped Human3.6M joint "
                           f"(mapped: {', '.join(H36M_JOINT_NAMES[h] for h in sorted(pairs))})")
        try:
            w[by_name[name]] = float(value)
        except ValueError as e:
            raise FitError(f"--h36m_joint_weights: '{item}' is not Name=number") from e
    return fitting.JointMap.from_pairs(32, pairs, w, num_points=24)


def _atomic_write(path: str, write) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)


def find_scan(scans_dir: str | None, subject: str) -> str | None:
    """``<scans_dir>/<subject>.npy`` ((M, 3) points) or ``.obj`` (its ``v`` lines), if there."""
    for ext in (".npy", ".obj"):
        p = os.path.join(scans_dir or "", subject + ext)
        if scans_dir and os.path.exists(p):
            return p
    return None


def read_scan(path: str, scale: float = 1.0) -> np.ndarray:
    """(M, 3) float32 scan points from a .npy or the ``v`` lines of an .obj, times ``scale`` (to metres)."""
    if path.endswith(".npy"):
        pts = np.load(path, allow_pickle=False)
    else:
        with open(path) as f:
            pts = np.array([[float(t) for t in line.split()[1:4]] for line in f if line.startswith("v ")])
    pts = np.asarray(pts, np.float32).reshape(-1, 3) * scale
    if len(pts) < 100:
        raise FitError(f"{path}: {len(pts)} scan points, expected a body scan (>= 100)")
    return pts


def subject_shape(data, mocaps, jmap, path: str, scan_path: str | None = None, scan_scale: float = 1.0,
                  scan_steps: int = 300) -> np.ndarray:
    """betas (10,) of a subject: read from ``path`` (shape.json) if there; else fitted to the subject's scan
    (``scan_path``: metres after ``scan_scale``, SMPL's axes: y up, facing +z) when given, else to its bone
    lengths over ``mocaps`` (list of (N, 32, 3) metres)."""
    from smplr_tf import fitting

    if os.path.exists(path):
        with open(path) as f:
            return np.asarray(json.load(f)["betas"], np.float32)
    if scan_path:
        res = fitting.fit_scan(data, read_scan(scan_path, scan_scale), steps=scan_steps)
        betas = res["betas"]
        info = {"betas": betas.tolist(), "source": "scan", "scan": os.path.abspath(scan_path),
                "gender": data.gender, "scan_to_mesh_mm": res["scan_to_mesh_mm"]}
    else:
        betas, info = fitting.betas_from_bone_lengths(data, np.concatenate(mocaps), jmap)
        info = {"betas": betas.tolist(), "source": "bone lengths", "gender": data.gender, **info}
    _atomic_write(path, lambda fh: fh.write(json.dumps(info, indent=1).encode()))
    return betas


def fit_tree(root: str, fits_dir: str, smpl_dir: str | None = None, subjects=SUBJECTS, every: int = 5,
             weights=DEFAULT_WEIGHTS, steps: int = 300, batch_size: int = 1024, learning_rate: float = 0.1,
             back_limit: float = 0.5, gender: str = "auto", shard: int = 0, num_shards: int = 1,
             xla: bool = True, scans_dir: str | None = None, scan_scale: float = 1.0) -> dict:
    """Fit every ``every``-th mocap frame of ``subjects`` under ``root``; writes ``fits_dir`` (module docstring).
    Returns {"sequences": fitted now, "skipped": already there, "frames": fitted now, "seconds": fitting time,
    "frames_per_s": ...}."""
    from smplr_tf import fitting
    from smplr_tf.body.model_io import find_model_files, load_model_file

    if not 0 <= shard < num_shards:
        raise FitError(f"--fit_shard {shard} not in [0, --num_fit_shards {num_shards})")
    files = find_model_files(smpl_dir)
    jmap = joint_map(weights)
    priors = fitting.Priors(back_limit=back_limit)
    fitters = {}
    stats = {"sequences": 0, "skipped": 0, "frames": 0, "seconds": 0.0}
    seq_index = 0
    for s in subjects:
        actions = convert_h36m.find_actions(root, s)
        if not actions:
            log.warning("fit_h36m: no mocap for %s under %s", s, root)
            continue
        g = SUBJECT_GENDERS.get(s, "neutral") if gender == "auto" else gender
        if g not in files:
            g = "neutral" if "neutral" in files else sorted(files)[0]
        os.makedirs(os.path.join(fits_dir, s), exist_ok=True)
        mine = []
        for action, path in sorted(actions.items()):
            if seq_index % num_shards == shard:
                mine.append((action, path))
            seq_index += 1
        todo = [(a, p) for a, p in mine if not os.path.exists(os.path.join(fits_dir, s, a + ".npz"))]
        stats["skipped"] += len(mine) - len(todo)
        if not todo:
            continue
        if g not in fitters:
            fitters[g] = fitting.Fitter(load_model_file(files[g], gender=g), jmap, batch_size=batch_size,
                                        steps=steps, learning_rate=learning_rate, priors=priors, xla=xla)
        fitter = fitters[g]
        mocaps = {a: convert_h36m.load_mocap(p) for a, p in sorted(actions.items())}
        betas = subject_shape(fitter.model.data, [m[::every] for m in mocaps.values()], jmap,
                              os.path.join(fits_dir, s, "shape.json"), find_scan(scans_dir, s), scan_scale)
        for action, _ in todo:
            mocap = mocaps[action]
            frames = np.arange(0, len(mocap), every)
            t0 = time.perf_counter()
            res = fitter.fit(mocap[frames], fixed_betas=betas)
            stats["seconds"] += time.perf_counter() - t0
            n = len(mocap)
            pose = np.full((n, 72), np.nan, np.float32)
            trans = np.full((n, 3), np.nan, np.float32)
            err = np.full(n, np.nan, np.float32)
            pose[frames], trans[frames], err[frames] = res["pose"], res["trans"], res["error"] * 1000.0
            _atomic_write(os.path.join(fits_dir, s, action + ".npz"), lambda fh: np.savez(
                fh, pose=pose, trans=trans, betas=betas, gender=np.array(g), frames=frames, error_mm=err))
            dist = np.linalg.norm(res["fitted"] - mocap[frames], axis=-1)[:, jmap.weights > 0] * 1000.0
            summary = {"subject": s, "action": action, "frames": int(n), "fitted_frames": int(len(frames)),
                       "gender": g, "weighted_rms_mm_mean": float(np.mean(res["error"]) * 1000.0),
                       "weighted_rms_mm_max": float(np.max(res["error"]) * 1000.0),
                       "mapped_joint_mm_mean": float(dist.mean()), "mapped_joint_mm_max": float(dist.max())}
            _atomic_write(os.path.join(fits_dir, s, action + ".json"),
                          lambda fh: fh.write(json.dumps(summary, indent=1).encode()))
            stats["sequences"] += 1
            stats["frames"] += len(frames)
            log.info("fit_h36m: %s %s: %d frames, %.1f mm", s, action, len(frames), summary["mapped_joint_mm_mean"])
    write_manifest(fits_dir, {"every": every, "steps": steps, "weights": {
        H36M_JOINT_NAMES[q]: float(jmap.weights[q]) for q in np.flatnonzero(jmap.weights)},
        "back_limit_rad": back_limit, "shape": "per subject: <subject>/shape.json (from its scan or bone lengths)"})
    stats["frames_per_s"] = stats["frames"] / stats["seconds"] if stats["seconds"] else 0.0
    return stats


def write_manifest(fits_dir: str, settings: dict) -> dict:
    """``<fits_dir>/manifest.json``: the settings and every sequence's error summary found under fits_dir."""
    seqs = []
    for p in sorted(glob.glob(os.path.join(fits_dir, "*", "*.json"))):
        if os.path.basename(p) != "shape.json":
            with open(p) as f:
                seqs.append(json.load(f))
    manifest = {"settings": settings, "sequences": seqs}
    _atomic_write(os.path.join(fits_dir, "manifest.json"),
                  lambda fh: fh.write(json.dumps(manifest, indent=1).encode()))
    return manifest


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    define = cli.flag_definer(fv)
    define(flags.DEFINE_string, "root", None, "The Human3.6M folder (holding S1, S5, ... and metadata.xml).")
    define(flags.DEFINE_string, "fits_dir", None, "SMPL fits: <fits_dir>/<subject>/<action>.npz (pose, trans, "
           "betas, gender).")
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files (default: the free body model).")
    define(flags.DEFINE_list, "subjects", None, "Subjects overriding the split's (e.g. S9).")
    define(flags.DEFINE_integer, "every", 5, "Keep every n-th frame (paper: 5).", lower_bound=1)
    define(flags.DEFINE_list, "h36m_joint_weights", list(DEFAULT_WEIGHTS),
           "Fitting weight of Human3.6M joints, Name=w (others mapped: 1).")
    define(flags.DEFINE_integer, "fit_steps", 300, "Optimiser steps per batch of frames.", lower_bound=1)
    define(flags.DEFINE_integer, "fit_batch_size", 1024, "Frames fitted together.", lower_bound=1)
    define(flags.DEFINE_float, "fit_learning_rate", 0.1, "Adam's initial step (cosine-decayed).")
    define(flags.DEFINE_float, "back_limit", 0.5, "Back-bend range: spine axis-angle components beyond "
           "+-this (radians) are penalised.")
    define(flags.DEFINE_string, "fit_gender", "auto", "SMPL gender fitted: auto (each subject's), female, male "
           "or neutral.")
    define(flags.DEFINE_integer, "fit_shard", 0, "This process's share of the sequences.", lower_bound=0)
    define(flags.DEFINE_integer, "num_fit_shards", 1, "Processes sharing the sequences.", lower_bound=1)
    define(flags.DEFINE_boolean, "xla", True, "Compile with XLA.")
    define(flags.DEFINE_string, "scans_dir", "", "Body scans, <scans_dir>/<subject>.npy | .obj, SMPL's axes (y up, "
           "facing +z): the subject's shape from its scan instead of its bone lengths.")
    define(flags.DEFINE_float, "scan_scale", 1.0, "Scan units -> metres (0.001 for millimetres).")


def main(argv):
    del argv
    F = FLAGS
    if not F.root or not F.fits_dir:
        raise FitError("--root and --fits_dir are required")
    if not os.path.isdir(F.root):
        raise FitError(f"{F.root}: not a directory")
    if F.fit_gender not in ("auto", "female", "male", "neutral"):
        raise FitError(f"--fit_gender={F.fit_gender}: expected auto, female, male or neutral")
    stats = fit_tree(F.root, F.fits_dir, F.smpl_dir or None, tuple(F.subjects or SUBJECTS), F.every,
                     F.h36m_joint_weights, F.fit_steps, F.fit_batch_size, F.fit_learning_rate, F.back_limit,
                     F.fit_gender, F.fit_shard, F.num_fit_shards, F.xla, F.scans_dir or None, F.scan_scale)
    print(f"fit_h36m: {stats['sequences']} sequences fitted ({stats['skipped']} already there), "
          f"{stats['frames']} frames in {stats['seconds']:.1f} s ({stats['frames_per_s']:.0f} frames/s)")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
