"""Convert SURREAL (Varol et al., CVPR 2017) into smplr_tf records.

Usage (from the repository root)::

    python tfrecords_tools/convert_surreal.py --root /data/SURREAL/data --out_dir data/surreal \
        --split train --smpl_dir /models/smpl

Input layout: ``<root>/cmu/{train,val,test}/run*/<seq>/<seq>_c%04d{.mp4,_info.mat,_segm.mat}`` (``--root``
may also point at the ``cmu`` folder itself). ``_info.mat`` (scipy.io): joints2D (2,24,T), joints3D (3,24,T)
world metres, pose (72,T), shape (10,T), gender (T,1) 0 = female, zrot (T,1), camLoc (3,1), camDist.
``_segm.mat``: segm_1 .. segm_T (240,320) uint8 part labels, 0 = background.

Conventions (worked out here; BUILD_NOTES "SURREAL conventions"):

* Published camera: K = [[600,0,160],[0,600,120],[0,0,1]] (Blender: 60 mm lens, 32 mm sensor, 320x240);
  world -> camera ``x = R_pub x_world + t`` with R_pub = diag(1,-1,-1) @ M^T, M = [[0,0,1],[0,-1,0],[-1,0,0]]
  (the rotation part of the Blender camera's matrix_world) and t = -R_pub camLoc; it maps joints3D onto
  joints2D exactly.
* **The videos are mirror images.** det(M) = -1, so R_pub = [[0,0,-1],[0,1,0],[-1,0,0]] is a reflection, not
  a rotation: Blender renders through a mirrored camera, and the released joints2D follow the mirrored
  video. This is the origin of SURREAL's well-known "left/right swapped" complaint: the joint labels of
  joints2D / joints3D are SMPL's, but in the mirrored picture a left limb looks like a right one. (The
  SURREAL authors' SMPL-relations demo notes the swap; DecoMR-style preprocessing mirrors the frames.)
  We mirror every frame and mask back (x -> W - 1 - x) and use the proper camera
  R = diag(-1,1,1) @ R_pub = [[0,0,1],[0,1,0],[-1,0,0]], t = -R camLoc, and the intrinsics below.
* Principal point: SURREAL's K (and so its joints2D) measures pixels from the image's corner, as Blender does
  (its raster spans [0, W] x [0, H] over the sensor, optical axis at (W/2, H/2), and pixel x is sampled around
  raster x + 0.5). Our convention puts pixel i's centre at coordinate i, so the rendered frames have
  cx = 160 - 0.5 = 159.5, cy = 119.5, and the released joints2D are ours + 0.5. Mirrored back:
  cx' = W - 1 - 159.5 = 159.5 (K_UNMIRRORED). Then joints keep SMPL's labels (no permutation), the
  body is a true (non-mirrored) SMPL body, and its pose is a rotation away from the world pose.
* Body rotation: SURREAL stores ``pose[0:3]`` as MoSh gives it (CMU mocap frame, z up) and spins the body
  about the vertical by ``zrot``. The SMPL global rotation in the world frame is
  ``G_world = Rx(pi/2) @ Rz(zrot) @ Rodrigues(pose[0:3])`` (Rx(pi/2) = [[1,0,0],[0,0,-1],[0,1,0]] takes the
  mocap's z-up to the world's -y-up); in our camera frame ``G_cam = R @ G_world``. The records' pose is pose
  with pose[0:3] = axis-angle(G_cam): SMPL on it, translated so that its pelvis sits at the camera-frame
  pelvis, is the camera-frame body (checked per clip against joints3D when --smpl_dir is given: the mean
  distance is stored as stats ``smpl_vs_surreal_joints_mm_mean``; a wrong left/right or rotation convention
  shows up as tens of cm).
* Gender: SURREAL 0 = female, 1 = male, the schema's code too.
* Sampling (paper Sec. 4.2): within each clip keep the first frame, then a frame only if its mean joint
  distance to the last kept frame is >= 5 cm (``--min_motion_cm``).
* Joints3d: SURREAL's joints3D (ground truth) in our camera frame. Landmarks: our SMPL layer on the
  camera-frame pose with the official model of ``--smpl_dir``; without it landmarks are not written
  (has_landmarks = 0, a warning): the free body model's surface is not SMPL's.
* Mask: ``segm_t > 0`` (mirrored like the frame). Frame t of the mp4 is annotation column t (0-based).
"""

from __future__ import annotations

import glob
import logging
import os
import re

import numpy as np
from absl import flags

from smplr_tf import cli

from smplr_tf.body import skeleton

try:
    from tfrecords_tools import _common
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import _common

FLAGS = flags.FLAGS

log = logging.getLogger("smplr_tf.convert.surreal")

WIDTH, HEIGHT = 320, 240
SURREAL_K = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])  # published, mirrored video
_BLENDER_CAM_ROT = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])  # det = -1
_BCAM_TO_CV = np.diag([1.0, -1.0, -1.0])
R_PUBLISHED = _BCAM_TO_CV @ _BLENDER_CAM_ROT.T  # [[0,0,-1],[0,1,0],[-1,0,0]], det = -1 (a reflection)
R_WORLD_TO_CAM = np.diag([-1.0, 1.0, 1.0]) @ R_PUBLISHED  # [[0,0,1],[0,1,0],[-1,0,0]], a rotation
K_PIXEL_CENTRES = SURREAL_K - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])  # pixel i at coordinate i
K_UNMIRRORED = K_PIXEL_CENTRES.copy()
K_UNMIRRORED[0, 2] = WIDTH - 1 - K_PIXEL_CENTRES[0, 2]  # intrinsics of the frames after mirroring them back
R_X90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
SPLITS = ("train", "val", "test")


def extrinsics(cam_loc):
    """camLoc (3,) or (3,1) world metres -> (R (3,3), t (3,)) with x_cam = R x_world + t: the proper camera of
    the mirrored-back frames (intrinsics K_UNMIRRORED)."""
    c = np.asarray(cam_loc, np.float64).reshape(3)
    return R_WORLD_TO_CAM.copy(), -R_WORLD_TO_CAM @ c


def rot_z(angle) -> np.ndarray:
    """(N,) radians -> (N, 3, 3) rotations about z."""
    a = np.atleast_1d(np.asarray(angle, np.float64))
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(a.shape + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def camera_pose(pose, zrot, R_cam) -> np.ndarray:
    """SURREAL pose (N, 72) + zrot (N,) -> pose (N, 72) whose global rotation is in the camera frame:
    pose[:, :3] = axis-angle(R_cam @ Rx(pi/2) @ Rz(zrot) @ Rodrigues(pose[:, :3]))."""
    Rw = np.matmul(R_X90[None], rot_z(zrot))
    return _common.rotate_global_orient(pose, np.matmul(R_cam[None], Rw))


def _as_tn(a, rows: int, name: str, path: str) -> np.ndarray:
    """A (rows, T) matlab matrix (T = 1 may have been squeezed) -> (T, rows)."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.shape[0] != rows:
        raise ValueError(f"{path}: field '{name}' has shape {a.shape}, expected ({rows}, T)")
    return a.T


def load_info(path: str) -> dict:
    """Read one ``_info.mat``; returns arrays T first (joints keep SURREAL's labels, which are SMPL's):
    joints3d_world (T,24,3), joints2d (T,24,2), pose (T,72), betas (T,10), gender (T,) int, zrot (T,),
    cam_loc (3,)."""
    import scipy.io

    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 - report the file
        raise ValueError(f"{path}: unreadable .mat ({type(e).__name__}: {e})") from e
    need = ("joints2D", "joints3D", "pose", "shape", "gender", "zrot", "camLoc")
    missing = [k for k in need if k not in m]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    j3 = np.asarray(m["joints3D"], np.float64)
    j2 = np.asarray(m["joints2D"], np.float64)
    if j3.ndim == 2:
        j3, j2 = j3[..., None], j2[..., None]
    if j3.shape[:2] != (3, 24) or j2.shape[:2] != (2, 24):
        raise ValueError(f"{path}: joints3D {j3.shape} / joints2D {j2.shape}, expected (3,24,T) / (2,24,T)")
    out = {
        "joints3d_world": j3.transpose(2, 1, 0),
        "joints2d": j2.transpose(2, 1, 0),  # pixels of the (mirrored) video
        "pose": _as_tn(m["pose"], 72, "pose", path).astype(np.float64),
        "betas": _as_tn(m["shape"], 10, "shape", path).astype(np.float64),
        "gender": np.asarray(m["gender"]).reshape(-1).astype(np.int64),
        "zrot": np.asarray(m["zrot"], np.float64).reshape(-1),
        "cam_loc": np.asarray(m["camLoc"], np.float64).reshape(3),
    }
    T = len(out["joints3d_world"])
    for k in ("pose", "betas", "gender", "zrot"):
        if len(out[k]) != T:
            raise ValueError(f"{path}: field '{k}' has {len(out[k])} frames, joints3D has {T}")
    if not set(np.unique(out["gender"]).tolist()) <= {0, 1}:
        raise ValueError(f"{path}: gender values {np.unique(out['gender'])}, expected 0 (female) / 1 (male)")
    return out


def find_clips(root: str, split: str) -> list[str]:
    """Sorted ``_info.mat`` paths of ``split`` under root (root = the folder holding cmu/, or cmu/ itself)."""
    base = os.path.join(root, "cmu") if os.path.isdir(os.path.join(root, "cmu")) else root
    if not os.path.isdir(os.path.join(base, split)):
        raise FileNotFoundError(f"{os.path.join(base, split)} not found: --root must hold cmu/{{train,val,test}}/")
    return sorted(glob.glob(os.path.join(base, split, "run*", "*", "*_c[0-9][0-9][0-9][0-9]_info.mat")))


def _clip_ids(info_path: str):
    stem = os.path.basename(info_path)[: -len("_info.mat")]  # <seq>_c0001
    run = os.path.basename(os.path.dirname(os.path.dirname(info_path)))
    m = re.match(r"^(.*)_c(\d{4})$", stem)
    seq = m.group(1) if m else stem
    return stem, run, seq, (int(m.group(2)) if m else 0)


def convert(root: str, out_dir: str, split: str = "train", smpl_dir: str | None = None,
            examples_per_shard: int = 2000, max_examples: int = 0, min_motion: float = 0.05,
            num_workers: int = 0, num_shards: int = 1, shard_index: int = 0) -> dict:
    """Convert ``split`` of SURREAL under ``root`` into ``out_dir``. Returns stats (also in the manifest).

    num_workers > 1: clips are converted in that many ``spawn`` processes, results written in clip order (the
    same bytes as one process). num_shards > 1: only part ``shard_index`` of the sorted clips, written to
    ``_common.part_dir(out_dir, split, num_shards, shard_index)`` (merge_parts.py gathers the parts).
    """
    clips = find_clips(root, split)
    if not clips:
        raise FileNotFoundError(f"no *_info.mat clips under {root} for split '{split}'")
    clips = _common.input_part(clips, num_shards, shard_index)  # may be empty: an empty part is still written
    if smpl_dir is None:
        log.warning("convert_surreal: no --smpl_dir: landmarks are not written (has_landmarks=0); SURREAL's "
                    "bodies are official SMPL, whose surface the free body model does not reproduce")
    stats = {"clips": 0, "frames_total": 0, "zero_joint_frames": 0, "frames_sampled": 0, "written": 0,
             "missing_video_frames": 0}
    rep_all, dis_all = [], []
    info = {"dataset": "surreal", "source": os.path.abspath(root), "source_frame_size": [WIDTH, HEIGHT],
            "body_model": "official SMPL (--smpl_dir)" if smpl_dir else "none (landmarks absent)",
            "conventions": "frames mirrored back (SURREAL renders through a mirrored camera); pose/joints in the "
                           "proper camera frame; see convert_surreal.py"}
    dest = _common.part_dir(out_dir, split, num_shards, shard_index)
    with _common.ShardedOutput(dest, split, examples_per_shard, **info) as out:
        bar = _common.progress(total=len(clips), desc=f"surreal {split}", unit="clip")
        results = _common.map_ordered(_clip_task, [(c, min_motion) for c in clips], num_workers,
                                      initializer=_init_worker, initargs=(smpl_dir,))
        try:
            for examples, st in results:
                for k in ("frames_total", "zero_joint_frames", "missing_video_frames"):
                    stats[k] += st[k]
                rep_all.append(st["rep"])
                if st["dis"] is not None:
                    dis_all.append(st["dis"])
                written, full = _common.write_capped(out, examples, max_examples, bar)
                stats["frames_sampled"] += st["frames_sampled"] if not max_examples else written
                stats["clips"] += 1
                if full:
                    break
        finally:
            results.close()
        bar.close()
        stats["written"] = out.count
        if rep_all:
            stats["joints2d_reprojection_px_median"] = float(np.median(rep_all))
        if dis_all:
            stats["smpl_vs_surreal_joints_mm_mean"] = float(np.mean(dis_all))
        out.finish(**{f"stats_{split}": stats})
    return stats


_BODY = None  # this process's PointsModel (None without --smpl_dir), set by _init_worker


def _init_worker(smpl_dir):
    """Load the body model once per process: NumPy joints + landmarks (_common.PointsModel), no TensorFlow."""
    global _BODY
    _BODY = None if smpl_dir is None else _common.PointsModel(smpl_dir, genders=skeleton.BODY_GENDERS)


def zero_joint_frames(joints3d_world) -> np.ndarray:
    """(T, 24, 3) -> (T,) bool: frames whose joints are all exactly zero (SURREAL writes zeros where it has no
    annotation; the authors' loader skips such frames)."""
    return ~np.any(np.asarray(joints3d_world) != 0, axis=(1, 2))


def _clip_task(args):
    """One clip -> (its serialized examples (bytes) in frame order, stats of the clip). Runs in a worker process
    that imports no TensorFlow (NumPy, SciPy, OpenCV); landmarks from this process's PointsModel."""
    import cv2
    import scipy.io

    info_path, min_motion = args
    d = load_info(info_path)
    stem, run, seq, clip = _clip_ids(info_path)
    T = len(d["pose"])
    st = {"frames_total": T, "zero_joint_frames": 0, "frames_sampled": 0, "missing_video_frames": 0, "rep": 0.0,
          "dis": None}
    zero = zero_joint_frames(d["joints3d_world"])
    st["zero_joint_frames"] = int(zero.sum())
    valid = np.flatnonzero(~zero)
    R, t = extrinsics(d["cam_loc"])
    joints_cam = d["joints3d_world"] @ R.T + t  # (T, 24, 3)
    # Sanity check of the camera convention against the released 2D joints (an independent annotation),
    # mirrored like the frames.
    proj = joints_cam[valid] @ K_UNMIRRORED.T
    proj = proj[..., :2] / proj[..., 2:3]
    j2 = d["joints2d"][valid] - 0.5  # corner-origin (Blender's raster) -> pixel centres
    j2[..., 0] = WIDTH - 1 - j2[..., 0]
    rep = float(np.linalg.norm(proj - j2, axis=-1).mean()) if len(valid) else 0.0
    st["rep"] = rep
    if rep > 5.0:
        log.warning("%s: SURREAL joints2D and our projection of joints3D differ by %.1f px on average: "
                    "camera convention mismatch?", info_path, rep)
    # the 5 cm rule over the annotated frames only (an all-zero frame would be "far" from every other)
    sub = d["joints3d_world"][valid]
    keep = valid[_common.keep_by_motion(sub, min_motion) if min_motion > 0 else np.arange(len(valid))]
    st["frames_sampled"] = len(keep)
    if len(keep) == 0:
        return [], st
    pose_cam = camera_pose(d["pose"][keep], d["zrot"][keep], R)
    landmarks = None
    if _BODY is not None:
        J, L = _BODY(pose_cam, d["betas"][keep], d["gender"][keep])
        Jc, landmarks = _common.place_body(J, L, joints_cam[keep, 0])
        st["dis"] = float(np.linalg.norm(Jc - joints_cam[keep], axis=-1).mean() * 1000.0)
        if st["dis"] > 50.0:
            log.warning("%s: SMPL joints of the camera-frame pose differ from SURREAL's joints3D by %.0f mm "
                        "on average: pose convention mismatch (or not the official model)?", info_path, st["dis"])
    video = info_path[: -len("_info.mat")] + ".mp4"
    frames = _common.read_video_frames(video, keep)
    segm_path = info_path[: -len("_info.mat")] + "_segm.mat"
    segm = scipy.io.loadmat(segm_path) if os.path.exists(segm_path) else None
    examples = []
    for n, f in enumerate(keep.tolist()):
        if f not in frames:
            st["missing_video_frames"] += 1
            continue
        mask = None
        if segm is not None and f"segm_{f + 1}" in segm:
            mask = cv2.flip(np.asarray(segm[f"segm_{f + 1}"], np.uint8), 1) > 0
        examples.append(_common.crop_example(
            cv2.flip(frames[f], 1), K_UNMIRRORED, joints_cam[f, 0], joints_cam[f],
            landmarks_cam=None if landmarks is None else landmarks[n], mask=mask, pose=pose_cam[n],
            betas=d["betas"][f], gender=int(d["gender"][f]), has_3d=1, dataset="surreal", subject=seq.split("_")[0],
            sequence=f"{run}/{stem}", frame=f, camera=0))
    return [_common.serialized(ex) for ex in examples], st


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv`` (--smpl_dir means what it means to train). Called under ``__main__``; a flag
    that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "root", None, "SURREAL's data folder (the one holding cmu/).")
    define(flags.DEFINE_enum, "split", "train", SPLITS, "The split converted.")
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files (gives the landmarks; empty: none are "
           "written).")
    define(flags.DEFINE_float, "min_motion_cm", 5.0, "The paper's sampling: skip a frame whose mean joint distance "
           "to the last kept frame is below this (0 = keep every frame).", lower_bound=0.0)
    _common.define_converter_flags(define)


def main(argv):
    del argv
    F = FLAGS
    _common.check_scale_flags(F.num_shards, F.shard_index)
    stats = convert(F.root, F.out_dir, F.split, F.smpl_dir or None, F.examples_per_shard, F.max_output_examples,
                    F.min_motion_cm / 100.0, num_workers=F.num_workers, num_shards=F.num_shards,
                    shard_index=F.shard_index)
    dest = _common.part_dir(F.out_dir, F.split, F.num_shards, F.shard_index)
    print(f"surreal {F.split}: {stats['clips']} clips, {stats['frames_total']} frames "
          f"({stats['zero_joint_frames']} without joints, skipped), {stats['frames_sampled']} sampled, "
          f"{stats['written']} written to {dest}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["root", "out_dir"])
    logging.basicConfig(level=logging.INFO)
    cli.run(main)
