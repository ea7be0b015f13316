"""Convert Human3.6M (Ionescu et al., TPAMI 2014) into smplr_tf records.

Usage (from the repository root)::

    python tfrecords_tools/convert_h36m.py --root /data/h36m --out_dir data/h36m --split train \
        [--fits_dir /data/h36m_smpl_fits --smpl_dir /models/smpl]

Input layout (``--root``):

* mocap, 32 joints in millimetres, world frame (z up): ``S*/MyPoseFeatures/D3_Positions/<Action>.cdf``
  (variable ``Pose``, (1, N, 96) or (N, 96)), or the older ``S*/MyPoses/3D_positions/<Action>.h5``
  (dataset ``3D_positions``, (96, N));
* videos: ``S*/Videos/<Action>.<camera id>.mp4`` (the 4 cameras 54138969 55011271 58860488 60457274);
* cameras: ``metadata.xml`` of the release (``--cameras`` or ``<root>/metadata.xml``), or a ``cameras.h5``
  (groups ``subject<s>/camera<c>/{R,T,f,c,k,p,Name}``, R stored transposed, as in the widely used file of
  Martinez et al.'s 3d-pose-baseline).

Conventions (BUILD_NOTES "Human3.6M"):

* Camera: ``x_cam = R (X - T)`` with X, T in the world frame (T = camera centre, mm -> m); K from f, c.
  metadata.xml: parameter vector ``w0``; camera c (0..3) of subject s (1..11) has its 6 extrinsic numbers
  (a0, a1, a2, Tx, Ty, Tz) at ``6 * (11 c + s - 1)`` and its 9 intrinsic numbers (fx, fy, cx, cy, k1, k2, k3,
  p1, p2) at ``264 + 9 c``; the world -> camera rotation is R = Rx(-a0) Ry(a1) Rz(-a2) with the passive
  rotations Rx(t) = [[1,0,0],[0,cos t,sin t],[0,-sin t,cos t]], Ry(t) = [[cos t,0,sin t],[0,1,0],
  [-sin t,0,cos t]], Rz(t) = [[cos t,sin t,0],[-sin t,cos t,0],[0,0,1]] (the layout and formula used by the
  public H36M preprocessing of learnable-triangulation, where t = -R T; OpenMMLab's stores its transpose).
  Lens distortion: the frames (and masks) are undistorted with the camera's radial (k1 k2 k3) and
  tangential (p1 p2) coefficients under Human3.6M's own lens model (:func:`distort`; cv2.remap), so that they
  are pinhole images of K, as the labels (pinhole projections) and the crop assume. When a ``D2_Positions``
  file is present (projections through the lens), the median distance between it and our projection,
  distorted alike, is reported as ``stats_<split>.joints2d_vs_d2_positions_px_median``.
* Masks: the release's background-subtraction masks ``S*/MySegmentsMat/ground_truth_bs/<Action>.<camera id>.mat``
  (MATLAB v7.3 = HDF5: ``Masks`` holds one reference per frame to a (W, H) array, transposed on reading) when
  present (has_mask = 1), else has_mask = 0.
* Frames: every 5th (``--every``, paper), from frame 0; splits train = S1 S5 S6 S7 S8, test = S9 S11.
* Human3.6M has no SMPL parameters (``fit_h36m.py`` makes them). With ``--fits_dir`` the file
  ``<fits_dir>/<subject>/<action>.npz``
  (``<action>`` = the mocap file's name, e.g. ``Directions 1``) gives them, in the mocap world frame:
  ``pose (N, 72)`` axis-angle, ``trans (N, 3)`` metres (world SMPL joints = SMPL(pose, betas).joints + trans),
  ``betas (10,)`` or ``(N, 10)``, ``gender`` ("female" | "male" | "neutral"); row i = mocap frame i.
  - fits + ``--smpl_dir``: joints3d / landmarks3d from SMPL on the fits (has_3d = has_smpl = has_landmarks = 1,
    the paper's ground truth for H36M); the mean distance of the fitted joints to the mocap at the mapped
    joints is reported (``fit_vs_mocap_mm_mean``).
  - fits without ``--smpl_dir``: has_smpl = 1 (camera-frame pose, betas, gender), joints as without fits.
  - no fits (a warning says so): has_smpl = 0, has_landmarks = 0, and has_3d = 0 because a complete set of
    SMPL joints does not exist; ``joints3d`` still holds the mocap at the SMPL joints listed in
    ``H36M_TO_SMPL`` (the rest are 0) and the manifest's ``joints3d_valid`` (24 booleans) says which;
    root_depth / the crop use the mocap hip (joint 0).
"""

from __future__ import annotations

import glob
import logging
import os
import xml.etree.ElementTree as ET

import numpy as np
from absl import flags

from smplr_tf import cli

try:
    from tfrecords_tools import _common
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import _common

FLAGS = flags.FLAGS

log = logging.getLogger("smplr_tf.convert.h36m")

SPLIT_SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")

# SMPL joint <- Human3.6M mocap joint (32-joint skeleton of D3_Positions: 0 Hips, 1 RightUpLeg, 2 RightLeg,
# 3 RightFoot, 4 RightToeBase, 6 LeftUpLeg, 7 LeftLeg, 8 LeftFoot, 9 LeftToeBase, 12 Spine1, 13 Neck,
# 14 Head, 15 head top, 17 LeftArm, 18 LeftForeArm, 19 LeftHand, 25 RightArm, 26 RightForeArm, 27 RightHand).
# Only anatomically clear correspondences; H36M's hips sit wider / lower than SMPL's, so even these are
# approximate (the paper notes the imperfect match too). Spine1/2/3, collars and hands are left out.
H36M_TO_SMPL = {
    0: 0,    # pelvis <- Hips
    1: 6,    # left_hip <- LeftUpLeg
    2: 1,    # right_hip <- RightUpLeg
    4: 7,    # left_knee <- LeftLeg
    5: 2,    # right_knee <- RightLeg
    7: 8,    # left_ankle <- LeftFoot
    8: 3,    # right_ankle <- RightFoot
    10: 9,   # left_foot <- LeftToeBase
    11: 4,   # right_foot <- RightToeBase
    12: 13,  # neck <- Neck
    15: 14,  # head <- Head
    16: 17,  # left_shoulder <- LeftArm
    17: 25,  # right_shoulder <- RightArm
    18: 18,  # left_elbow <- LeftForeArm
    19: 26,  # right_elbow <- RightForeArm
    20: 19,  # left_wrist <- LeftHand
    21: 27,  # right_wrist <- RightHand
}
SMPL_IDX = np.array(sorted(H36M_TO_SMPL), np.int64)
H36M_IDX = np.array([H36M_TO_SMPL[j] for j in SMPL_IDX], np.int64)
JOINTS3D_VALID = np.isin(np.arange(24), SMPL_IDX)
# Material known to be broken in the release, skipped unless --keep_broken: (subject, action = the mocap file's
# name, camera id or None = every camera) -> why. S11 "Directions" from camera 54138969 is a corrupt video (it
# stops early); S9 "Greeting", "SittingDown 1" and "Waiting 1" have ground truth shifted against the video, which
# public evaluation pipelines leave out too.
KNOWN_BROKEN = {
    ("S11", "Directions", "54138969"): "corrupt video",
    ("S9", "Greeting", None): "ground truth shifted against the video",
    ("S9", "SittingDown 1", None): "ground truth shifted against the video",
    ("S9", "Waiting 1", None): "ground truth shifted against the video",
}


def known_broken(subject: str, action: str, camera_id: str) -> str | None:
    """Why (subject, action, camera) is in KNOWN_BROKEN, or None."""
    return KNOWN_BROKEN.get((subject, action, camera_id)) or KNOWN_BROKEN.get((subject, action, None))


# ---------------------------------------------------------------------------------------------- cameras
def _rx(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[1.0, 0, 0], [0, c, s], [0, -s, c]])


def _ry(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rz(t):
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])


def rotation_from_angles(a0, a1, a2) -> np.ndarray:
    """metadata.xml's three extrinsic angles -> world -> camera rotation R (x_cam = R (X - T))."""
    return _rx(-a0) @ _ry(a1) @ _rz(-a2)


def distort(xy, k, p) -> np.ndarray:
    """Human3.6M's lens model (the release's ProjectPointRadial): (..., 2) pinhole normalised image coordinates
    (x/z, y/z) -> distorted ones. k = (k1, k2, k3) radial, p = (p1, p2) tangential (metadata.xml's order):
    r2 = x^2 + y^2, s = 1 + k1 r2 + k2 r2^2 + k3 r2^3 + p1 y + p2 x, (x, y) -> (x s + p2 r2, y s + p1 r2).
    (Not OpenCV's model: the tangential terms differ.)"""
    xy = np.asarray(xy, np.float64)
    k = np.zeros(3) if k is None else np.asarray(k, np.float64).reshape(3)
    p = np.zeros(2) if p is None else np.asarray(p, np.float64).reshape(2)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    s = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3 + p[0] * y + p[1] * x
    return np.stack([x * s + p[1] * r2, y * s + p[0] * r2], -1)


def has_distortion(cam) -> bool:
    return any(v is not None and np.any(np.asarray(v) != 0) for v in (cam.get("k"), cam.get("p")))


def undistort_maps(cam, width: int, height: int):
    """cv2.remap maps (map_x, map_y) (H, W) float32 that turn a frame of ``cam`` (lens-distorted, Human3.6M's
    model) into the pinhole image of the same K: output pixel (u, v) reads the source at
    K distort(K^-1 (u, v)). Pixel-centre convention (pixel i at coordinate i), as everywhere here."""
    K = cam["K"]
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    xy = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]], -1)
    d = distort(xy, cam.get("k"), cam.get("p"))
    return ((d[..., 0] * K[0, 0] + K[0, 2]).astype(np.float32), (d[..., 1] * K[1, 1] + K[1, 2]).astype(np.float32))


def _camera(R, T_mm, f, c, cam_id, k=None, p=None) -> dict:
    K = np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])
    return {"R": np.asarray(R, np.float64), "T": np.asarray(T_mm, np.float64).reshape(3) / 1000.0, "K": K,
            "id": str(cam_id), "k": None if k is None else np.asarray(k).reshape(-1),
            "p": None if p is None else np.asarray(p).reshape(-1)}


def load_cameras_xml(path: str) -> dict:
    """metadata.xml -> {(subject 'S1', camera index 0..3): camera dict (R, T metres, K, id)}."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a readable XML file ({e})") from e
    w0 = root.find("w0")
    if w0 is None or not w0.text:
        raise ValueError(f"{path}: no <w0> camera parameter vector")
    w = np.array([float(v) for v in w0.text.strip().strip("[]").split()])
    if len(w) < 264 + 36:
        raise ValueError(f"{path}: <w0> has {len(w)} numbers, expected >= 300")
    ids_el = root.find("dbcameras/index2id")
    ids = [e.text.strip() for e in ids_el] if ids_el is not None else list(CAMERA_IDS)
    cams = {}
    for c in range(4):
        intr = w[264 + 9 * c: 264 + 9 * (c + 1)]
        for s in range(1, 12):
            e = w[6 * (11 * c + s - 1): 6 * (11 * c + s - 1) + 6]
            cams[(f"S{s}", c)] = _camera(rotation_from_angles(*e[:3]), e[3:6], intr[0:2], intr[2:4], ids[c],
                                         intr[4:7], intr[7:9])
    return cams


def load_cameras_h5(path: str) -> dict:
    """cameras.h5 (subject<s>/camera<c>/{R,T,f,c,k,p,Name}; R stored transposed) -> same as the XML loader."""
    import h5py

    cams = {}
    with h5py.File(path, "r") as h:
        for sk in h.keys():
            if not sk.startswith("subject"):
                continue
            s = int(sk[len("subject"):])
            for ck in h[sk].keys():
                c = int(ck[len("camera"):]) - 1
                g = h[sk][ck]
                name = g["Name"][()] if "Name" in g else CAMERA_IDS[c]
                if isinstance(name, np.ndarray):
                    name = "".join(chr(int(v)) for v in name.reshape(-1))
                elif isinstance(name, bytes):
                    name = name.decode()
                cams[(f"S{s}", c)] = _camera(np.asarray(g["R"]).T, g["T"][()], np.asarray(g["f"]).reshape(-1),
                                             np.asarray(g["c"]).reshape(-1), name,
                                             g["k"][()] if "k" in g else None, g["p"][()] if "p" in g else None)
    if not cams:
        raise ValueError(f"{path}: no subject<s>/camera<c> groups")
    return cams


def load_cameras(path: str) -> dict:
    return load_cameras_h5(path) if path.endswith((".h5", ".hdf5")) else load_cameras_xml(path)


# ------------------------------------------------------------------------------------------------ mocap
def load_mocap(path: str) -> np.ndarray:
    """D3_Positions .cdf or 3D_positions .h5 -> (N, 32, 3) metres, world frame."""
    if path.endswith(".cdf"):
        import cdflib

        try:
            a = np.asarray(cdflib.CDF(path).varget("Pose"), np.float64)
        except Exception as e:  # noqa: BLE001 - name the file
            raise ValueError(f"{path}: cannot read variable 'Pose' ({type(e).__name__}: {e})") from e
        a = a.reshape(-1, 96)
    else:
        import h5py

        with h5py.File(path, "r") as h:
            if "3D_positions" not in h:
                raise ValueError(f"{path}: no dataset '3D_positions'")
            a = np.asarray(h["3D_positions"], np.float64)
        if a.shape[0] != 96:
            raise ValueError(f"{path}: 3D_positions has shape {a.shape}, expected (96, N)")
        a = a.T
    if a.shape[-1] != 96:
        raise ValueError(f"{path}: mocap rows of {a.shape[-1]} numbers, expected 96 (32 joints x 3)")
    return a.reshape(-1, 32, 3) / 1000.0


def find_actions(root: str, subject: str) -> dict:
    """{action name: mocap path} for one subject (D3_Positions .cdf preferred over the older .h5)."""
    out = {}
    for p in sorted(glob.glob(os.path.join(root, subject, "MyPoses", "3D_positions", "*.h5"))):
        out[os.path.splitext(os.path.basename(p))[0]] = p
    for p in sorted(glob.glob(os.path.join(root, subject, "MyPoseFeatures", "D3_Positions", "*.cdf"))):
        out[os.path.splitext(os.path.basename(p))[0]] = p
    return out


def load_fits(fits_dir: str | None, subject: str, action: str) -> dict | None:
    """The user's SMPL fits of one sequence (format in the module docstring), or None if absent."""
    if not fits_dir:
        return None
    path = os.path.join(fits_dir, subject, action + ".npz")
    if not os.path.exists(path):
        return None
    z = np.load(path, allow_pickle=False)
    for k in ("pose", "trans", "betas", "gender"):
        if k not in z:
            raise ValueError(f"{path}: missing key '{k}' (expected pose (N,72), trans (N,3), betas, gender)")
    pose = np.asarray(z["pose"], np.float64).reshape(-1, 72)
    trans = np.asarray(z["trans"], np.float64).reshape(-1, 3)
    betas = np.asarray(z["betas"], np.float64)
    betas = np.broadcast_to(betas.reshape(-1, 10), (len(pose), 10)).copy()
    g = str(np.asarray(z["gender"]).reshape(-1)[0]).lower()
    if g not in _common.GENDER_NAMES:
        raise ValueError(f"{path}: gender '{g}', expected one of {_common.GENDER_NAMES}")
    if len(trans) != len(pose):
        raise ValueError(f"{path}: pose has {len(pose)} rows, trans {len(trans)}")
    return {"pose": pose, "trans": trans, "betas": betas, "gender": _common.GENDER_NAMES.index(g), "path": path}


def load_masks(path: str, frames, shape) -> dict:
    """{frame: (H, W) bool} from a ground_truth_bs .mat (v7.3 / HDF5, dataset ``Masks`` of references)."""
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as h:
            refs = np.asarray(h["Masks"]).reshape(-1)
            for f in frames:
                if f < len(refs):
                    m = np.asarray(h[refs[f]]).T
                    if m.shape != tuple(shape[:2]):
                        raise ValueError(f"mask of frame {f} has shape {m.shape}, the video {tuple(shape[:2])}")
                    out[int(f)] = m > 0
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: bad ground_truth_bs mask file ({e})") from e
    return out


def _d2_check(root, subject, action, cam, frames, j2d):
    """Mean pixel distance of D2_Positions (when the release has the file) to ``j2d`` (F, 24, 2) at the mapped
    joints, or None; a warning above 10 px."""
    path = os.path.join(root, subject, "MyPoseFeatures", "D2_Positions", f"{action}.{cam['id']}.cdf")
    if not os.path.exists(path):
        return None
    import cdflib

    d2 = np.asarray(cdflib.CDF(path).varget("Pose"), np.float64).reshape(-1, 32, 2)
    ok = frames < len(d2)
    if not ok.any():
        return None
    err = float(np.linalg.norm(d2[frames[ok]][:, H36M_IDX] - j2d[ok][:, SMPL_IDX], axis=-1).mean())
    if err > 10.0:
        log.warning("%s: our projection of the mocap differs from D2_Positions by %.1f px: camera "
                    "convention mismatch?", path, err)
    return err


# ---------------------------------------------------------------------------------------------- convert
def convert(root: str, out_dir: str, split: str = "train", smpl_dir: str | None = None, fits_dir: str | None = None,
            cameras: str | None = None, examples_per_shard: int = 2000, max_examples: int = 0, every: int = 5,
            subjects=None, keep_broken: bool = False, num_shards: int = 1, shard_index: int = 0,
            num_workers: int = 0) -> dict:
    """Convert ``split`` of Human3.6M under ``root`` into ``out_dir``. Returns stats (also in the manifest).

    The videos of KNOWN_BROKEN are skipped unless ``keep_broken`` (counted: ``skipped_known_broken``, listed:
    ``skipped_known_broken_videos``). num_shards > 1: only part ``shard_index`` of the sorted (subject, action,
    camera) videos, written to ``_common.part_dir(out_dir, split, num_shards, shard_index)``. num_workers > 1:
    videos are decoded, undistorted and cropped in that many processes (mocap, fits and SMPL stay in this one);
    the same bytes whatever the count.
    """
    subjects = tuple(subjects) if subjects else SPLIT_SUBJECTS[split]
    cam_path = cameras or next((p for p in (os.path.join(root, "metadata.xml"), os.path.join(root, "cameras.h5"))
                                if os.path.exists(p)), None)
    if cam_path is None:
        raise FileNotFoundError(f"no cameras: pass --cameras or put metadata.xml / cameras.h5 in {root}")
    cams = load_cameras(cam_path)
    if not fits_dir:
        log.warning("convert_h36m: no --fits_dir: Human3.6M has no SMPL parameters, so pose / betas / landmarks "
                    "are absent (has_smpl=0, has_landmarks=0) and joints3d holds only the mocap joints that "
                    "correspond to SMPL joints (has_3d=0; see joints3d_valid in the manifest)")
    elif smpl_dir is None:
        log.warning("convert_h36m: fits without --smpl_dir: joints3d / landmarks come from the mocap mapping, "
                    "not from SMPL (has_landmarks=0)")
    bodies: dict[int, _common.BodyModel] = {}
    stats = {"sequences": 0, "written": 0, "with_fits": 0, "without_fits": 0, "missing_videos": 0,
             "missing_video_frames": 0, "undistorted_videos": 0, "skipped_known_broken": 0, "skipped_known_broken_videos": [],
             "d2": [], "fit": []}
    info = {"dataset": "h36m", "source": os.path.abspath(root), "every": every,
            "joints3d_valid": JOINTS3D_VALID.astype(int).tolist(),
            "joints3d_source": "smpl fits" if (fits_dir and smpl_dir) else "h36m mocap mapped to SMPL joints",
            "body_model": "official SMPL (--smpl_dir)" if smpl_dir else "none"}
    jobs = []
    for s in subjects:
        for action, path in find_actions(root, s).items():
            for c in range(4):
                if (s, c) in cams:
                    jobs.append((s, action, path, c))
    if not jobs:
        raise FileNotFoundError(f"no mocap files for subjects {subjects} under {root}")
    jobs = _common.input_part(jobs, num_shards, shard_index)  # before skipping: each part counts its own
    if not keep_broken:
        kept = []
        for job in jobs:
            s, action, _, c = job
            why = known_broken(s, action, cams[(s, c)]["id"])
            if why:
                stats["skipped_known_broken"] += 1
                stats["skipped_known_broken_videos"].append(f"{s}/{action}.{cams[(s, c)]['id']}: {why}")
            else:
                kept.append(job)
        jobs = kept
    info["known_broken"] = "kept (--keep_broken)" if keep_broken else "skipped"
    dest = _common.part_dir(out_dir, split, num_shards, shard_index)
    with _common.ShardedOutput(dest, split, examples_per_shard, **info) as out:
        bar = _common.progress(total=len(jobs), desc=f"h36m {split}", unit="video")
        tasks = _video_tasks(root, jobs, cams, fits_dir, smpl_dir, bodies, every, stats)
        results = _common.map_ordered(_video_task, tasks, num_workers)
        try:
            for examples, st in results:
                stats["sequences"] += 1
                for k in ("missing_video_frames", "undistorted_videos"):
                    stats[k] += st[k]
                if st["d2"] is not None:
                    stats["d2"].append(st["d2"])
                if _common.write_capped(out, examples, max_examples, bar)[1]:
                    break
        finally:
            results.close()
        bar.close()
        stats["written"] = out.count
        d2, fit = stats.pop("d2"), stats.pop("fit")
        if d2:
            stats["joints2d_vs_d2_positions_px_median"] = float(np.median(d2))
        if fit:
            stats["fit_vs_mocap_mm_mean"] = float(np.mean(fit))
        out.finish(**{f"stats_{split}": stats})
    return stats


def _video_tasks(root, jobs, cams, fits_dir, smpl_dir, bodies, every, stats):
    """Per video (main process: mocap, fits, SMPL; lazily, in job order): the task of :func:`_video_task`.
    A missing video is counted and skipped here."""
    cache = {}
    for s, action, path, c in jobs:
        cam = cams[(s, c)]
        video = os.path.join(root, s, "Videos", f"{action}.{cam['id']}.mp4")
        if not os.path.exists(video):
            stats["missing_videos"] += 1
            log.warning("%s missing: skipped", video)
            continue
        if path not in cache:
            cache.clear()
            cache[path] = (load_mocap(path), load_fits(fits_dir, s, action))
        mocap, fits = cache[path]
        yield _video_geometry(root, s, action, c, cam, video, mocap, fits, smpl_dir, bodies, every, stats)


def _video_geometry(root, s, action, c, cam, video, mocap, fits, smpl_dir, bodies, every, stats) -> dict:
    """The labels of one video's sampled frames (camera frame, metres) and what its worker needs."""
    n = len(mocap) if fits is None else min(len(mocap), len(fits["pose"]))
    frames = np.arange(0, n, every)
    R, T = cam["R"], cam["T"]
    mocap_cam = (mocap[frames] - T) @ R.T  # (F, 32, 3)
    joints = np.zeros((len(frames), 24, 3))
    joints[:, SMPL_IDX] = mocap_cam[:, H36M_IDX]
    root_cam = mocap_cam[:, 0]
    pose = betas = landmarks = None
    gender = 2
    has_3d, has_smpl = 0, 0
    if fits is not None:
        stats["with_fits"] += 1
        pose = _common.rotate_global_orient(fits["pose"][frames], R)
        betas, gender, has_smpl = fits["betas"][frames], fits["gender"], 1
        if smpl_dir is not None:
            if gender not in bodies:
                bodies[gender] = _common.BodyModel(smpl_dir, genders=(_common.GENDER_NAMES[gender],))
            J, L = bodies[gender](fits["pose"][frames], betas, np.full(len(frames), gender))
            jw = J + fits["trans"][frames][:, None]  # world frame, metres
            root_cam = (jw[:, 0] - T) @ R.T
            Jc, Lc = bodies[gender](pose, betas, np.full(len(frames), gender))
            joints, landmarks = _common.place_body(Jc, Lc, root_cam)
            has_3d = 1
            stats["fit"].append(float(np.linalg.norm(joints[:, SMPL_IDX] - mocap_cam[:, H36M_IDX], axis=-1)
                                      .mean() * 1000.0))
    else:
        stats["without_fits"] += 1
    # D2_Positions are projections through the lens (distorted): compare them with ours, distorted alike
    K = cam["K"]
    xy = distort(mocap_cam[..., :2] / mocap_cam[..., 2:3], cam.get("k"), cam.get("p"))
    proj = np.concatenate([xy * np.diag(K)[:2] + K[:2, 2], np.ones(xy.shape[:-1] + (1,))], -1)
    return {"root": root, "subject": s, "action": action, "c": c, "cam": cam, "video": video, "frames": frames,
            "joints": joints, "root_cam": root_cam, "pose": pose, "betas": betas, "landmarks": landmarks,
            "gender": gender, "has_3d": has_3d, "has_smpl": has_smpl, "j2d_lens": _smpl_order_2d(proj)}


def _video_task(t: dict):
    """One video (a worker process; no TensorFlow): D2 check, frames and masks read and undistorted, crops.
    Returns (its serialized examples (bytes) in frame order, stats of the video)."""
    s, action, cam, video, frames = t["subject"], t["action"], t["cam"], t["video"], t["frames"]
    st = {"missing_video_frames": 0, "undistorted_videos": 0, "d2": None}
    if len(frames) == 0:
        return [], st
    st["d2"] = _d2_check(t["root"], s, action, cam, frames, t["j2d_lens"])
    imgs = _common.read_video_frames(video, frames)
    masks = {}
    mask_path = os.path.join(t["root"], s, "MySegmentsMat", "ground_truth_bs", f"{action}.{cam['id']}.mat")
    if imgs and os.path.exists(mask_path):
        masks = load_masks(mask_path, sorted(imgs), next(iter(imgs.values())).shape)
    if imgs and has_distortion(cam):  # frames and masks -> the pinhole images that the labels and crop assume
        import cv2

        h, w = next(iter(imgs.values())).shape[:2]
        mx, my = undistort_maps(cam, w, h)
        imgs = {f: cv2.remap(im, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) for f, im in imgs.items()}
        masks = {f: cv2.remap(m.astype(np.uint8) * 255, mx, my, cv2.INTER_LINEAR) > 127 for f, m in masks.items()}
        st["undistorted_videos"] = 1
    lost = [f for f in frames.tolist() if f not in imgs]
    if lost:
        st["missing_video_frames"] = len(lost)
        log.warning("%s: %d of the %d wanted frames could not be decoded (from frame %d on): not written",
                    video, len(lost), len(frames), lost[0])
    pose, betas, landmarks = t["pose"], t["betas"], t["landmarks"]
    examples = []
    for n_, f in enumerate(frames.tolist()):
        if f not in imgs:
            continue
        examples.append(_common.crop_example(
            imgs[f], cam["K"], t["root_cam"][n_], t["joints"][n_],
            landmarks_cam=None if landmarks is None else landmarks[n_], mask=masks.get(f),
            pose=None if pose is None else pose[n_], betas=None if betas is None else betas[n_],
            gender=t["gender"], has_3d=t["has_3d"], has_smpl=t["has_smpl"], dataset="h36m", subject=s,
            sequence=f"{action}.{cam['id']}", frame=f, camera=t["c"],
            joint_valid=None if t["has_3d"] else JOINTS3D_VALID))
    return [_common.serialized(ex) for ex in examples], st


def _smpl_order_2d(proj):
    """(F, 32, 3) homogeneous projections of the mocap -> (F, 24, 2) at SMPL indices (0 where unmapped)."""
    p = proj[..., :2] / proj[..., 2:3]
    out = np.zeros(p.shape[:1] + (24, 2))
    out[:, SMPL_IDX] = p[:, H36M_IDX]
    return out


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv`` (--smpl_dir means what it means to train). Called under ``__main__``; a flag
    that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "root", None, "The Human3.6M folder (holding S1, S5, ... and metadata.xml).")
    define(flags.DEFINE_enum, "split", "train", list(SPLIT_SUBJECTS), "The split converted (train: "
           + " ".join(SPLIT_SUBJECTS["train"]) + "; test: " + " ".join(SPLIT_SUBJECTS["test"]) + ").")
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files (with --fits_dir: joints and landmarks "
           "from SMPL on the fits).")
    define(flags.DEFINE_string, "fits_dir", None, "SMPL fits: <fits_dir>/<subject>/<action>.npz (pose, trans, "
           "betas, gender; see the module docstring).")
    define(flags.DEFINE_string, "cameras", None, "metadata.xml or cameras.h5 (default: found in --root).")
    define(flags.DEFINE_integer, "every", 5, "Keep every n-th frame (paper: 5).", lower_bound=1)
    define(flags.DEFINE_list, "subjects", None, "Subjects overriding the split's (e.g. S9).")
    define(flags.DEFINE_boolean, "keep_broken", False, "Also convert the videos known to be broken (S11 "
           "Directions camera 54138969; S9 Greeting, SittingDown 1, Waiting 1), skipped by default.")
    _common.define_converter_flags(define)


def main(argv):
    del argv
    F = FLAGS
    _common.check_scale_flags(F.num_shards, F.shard_index)
    subjects = [s.strip() for s in F.subjects if s.strip()] if F.subjects else None
    stats = convert(F.root, F.out_dir, F.split, F.smpl_dir or None, F.fits_dir or None, F.cameras or None,
                    F.examples_per_shard, F.max_output_examples, F.every, subjects, keep_broken=F.keep_broken,
                    num_shards=F.num_shards, shard_index=F.shard_index, num_workers=F.num_workers)
    print(f"h36m {F.split}: {stats['sequences']} videos ({stats['with_fits']} with SMPL fits, "
          f"{stats['skipped_known_broken']} known-broken skipped), {stats['written']} examples written to "
          f"{_common.part_dir(F.out_dir, F.split, F.num_shards, F.shard_index)}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["root", "out_dir"])
    logging.basicConfig(level=logging.INFO)
    cli.run(main)
