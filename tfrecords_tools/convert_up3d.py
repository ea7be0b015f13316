"""Convert UP-3D (Lassner et al., "Unite the People", CVPR 2017) into smplr_tf records.

Usage (from the repository root)::

    python tfrecords_tools/convert_up3d.py --root /data/up-3d --out_dir data/up3d --split train \
        --smpl_dir /models/smpl          # must hold the official neutral model (SMPL_NEUTRAL.pkl)

Input (``--root``, one flat folder): ``%05d_image.png``, ``%05d_body.pkl`` (a pickled dict: pose (72,),
betas (10,), trans (3,), rt (3,), t (3,), f (5000), ...), ``%05d_joints.npy`` ((3, 14) LSP 2D joints x, y,
visibility), ``%05d_fit_crop_info.txt`` (``H W y0 y1 x0 x1``), ``%05d_render_light.png`` (the fit rendered:
the silhouette), ``%05d_dataset_info.txt`` (e.g. ``lsp 17``), splits ``train.txt`` / ``val.txt`` /
``test.txt`` (lines ``/%05d_image.png``).

Conventions (BUILD_NOTES "UP-3D"):

* The fits use the gender-neutral SMPL: gender = 2 (neutral); ``--smpl_dir`` must provide the official
  neutral model (the tool refuses to run without it: every 3D / 2D field here comes from the model).
* Camera of a fit (OpenDR ProjectPoints): ``x_cam = Rodrigues(rt) (X + trans) + t`` for SMPL points X
  (global rotation about the pelvis), projected with focal f and principal point (W/2, H/2) in the
  fit frame of size H x W, which is the region [y0:y1, x0:x1] of ``_image.png`` scaled by
  fac = mean(W / (x1 - x0), H / (y1 - y0)) (as the UP tools map fit pixels back). So in image pixels
  K = [[f/fac, 0, W/2/fac + x0], [0, f/fac, H/2/fac + y0], [0, 0, 1]].
  The records' pose has global rotation Rodrigues(rt) @ G; joints / landmarks are SMPL's in that camera frame.
* has_3d = 0 (fits to 2D annotations, not measured 3D), has_smpl = 1, has_landmarks = 1 (from the fit),
  joints2d = projections of the fit; LSP annotations are not stored (no schema field) but compared with the
  projected fit: ``stats_<split>.fit_vs_lsp_px_median``.
* Mask: ``_render_light.png`` at image size, or at fit size (then uncropped like the UP tools do); a pixel is
  body where its colour differs (> 10 in some channel) from the most common border colour.
"""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
from absl import flags

from smplr_tf import cli

try:
    from tfrecords_tools import _common
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import _common

FLAGS = flags.FLAGS

log = logging.getLogger("smplr_tf.convert.up3d")

SPLITS = ("train", "val", "test")
# SMPL joints of the first 12 LSP joints (r ankle, r knee, r hip, l hip, l knee, l ankle, r wrist, r elbow,
# r shoulder, l shoulder, l elbow, l wrist); LSP's neck and head top have no SMPL joint.
LSP_TO_SMPL = np.array([8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20], np.int64)
# The model UP-3D's fits were made with: SMPLify's gender-neutral model, 10 shape components. SMPL v1.1.0's
# SMPL_NEUTRAL (300 components) is a different model whose first 10 components do not match these betas.
FIT_MODEL_FILE = "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
FIT_MODEL_COMPONENTS = 10


def neutral_model_record(smpl_dir: str) -> dict:
    """The neutral model file ``--smpl_dir`` gives and its shape-component count, for the manifest:
    {"body_model_file": base name, "body_model_shape_components": int, "body_model_matches_fits": bool}, with a
    warning when it is not the model UP-3D's fits were made with (FIT_MODEL_FILE, FIT_MODEL_COMPONENTS)."""
    from smplr_tf.body import model_io

    path = model_io.find_model_files(smpl_dir).get("neutral")
    if path is None:
        raise ValueError(f"{smpl_dir}: no gender-neutral SMPL model file ({FIT_MODEL_FILE}): UP-3D's fits are "
                         "neutral-SMPL parameters")
    n = int(model_io.load_model_file(path, gender="neutral").extras["num_shape_components"])
    name = os.path.basename(path)
    ok = n == FIT_MODEL_COMPONENTS and "v1.1" not in name.lower()
    if not ok:
        log.warning("up3d: the neutral model %s has %d shape components; UP-3D's fits were made with %s "
                    "(%d components): its first %d components differ, so the bodies will not match the fits",
                    path, n, FIT_MODEL_FILE, FIT_MODEL_COMPONENTS, FIT_MODEL_COMPONENTS)
    return {"body_model_file": name, "body_model_shape_components": n, "body_model_matches_fits": bool(ok)}


def read_split(root: str, split: str) -> list[int]:
    path = os.path.join(root, f"{split}.txt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: --root must be the UP-3D folder with {split}.txt")
    ids = []
    with open(path) as f:
        for line in f:
            tok = line.split()
            if tok:
                name = os.path.basename(tok[0])
                try:
                    ids.append(int(name[:5]))
                except ValueError as e:
                    raise ValueError(f"{path}: cannot read an image id from '{tok[0]}'") from e
    return ids


def load_body(path: str) -> dict:
    with open(path, "rb") as f:
        try:
            b = pickle.load(f, encoding="latin1")  # the files were written by Python 2
        except Exception as e:  # noqa: BLE001 - name the file
            raise ValueError(f"{path}: unreadable pickle ({type(e).__name__}: {e})") from e
    for k in ("pose", "betas", "trans", "rt", "t", "f"):
        if k not in b:
            raise ValueError(f"{path}: missing key '{k}'")
    return {"pose": np.asarray(b["pose"], np.float64).reshape(72),
            "betas": np.asarray(b["betas"], np.float64).reshape(-1)[:10],
            "trans": np.asarray(b["trans"], np.float64).reshape(3),
            "rt": np.asarray(b["rt"], np.float64).reshape(3),
            "t": np.asarray(b["t"], np.float64).reshape(3),
            "f": float(np.asarray(b["f"]).reshape(-1)[0])}


def read_crop_info(path: str) -> tuple:
    with open(path) as f:
        v = [int(float(x)) for x in f.read().split()]
    if len(v) != 6:
        raise ValueError(f"{path}: expected 6 numbers 'H W y0 y1 x0 x1', got {v}")
    return tuple(v)


def image_intrinsics(f: float, crop_info) -> np.ndarray:
    """K of ``_image.png`` for a fit with focal f and crop info (H, W, y0, y1, x0, x1)."""
    H, W, y0, y1, x0, x1 = crop_info
    fac = 0.5 * (W / float(x1 - x0) + H / float(y1 - y0))
    return np.array([[f / fac, 0.0, W / 2.0 / fac + x0], [0.0, f / fac, H / 2.0 / fac + y0], [0.0, 0.0, 1.0]])


def silhouette(render: np.ndarray, image_shape, crop_info) -> np.ndarray:
    """``_render_light.png`` (image-sized, or fit-sized and then uncropped) -> (H, W) bool of the image."""
    import cv2

    r = np.asarray(render)
    if r.ndim == 2:
        r = r[..., None]
    border = np.concatenate([r[0], r[-1], r[:, 0], r[:, -1]]).reshape(-1, r.shape[-1])
    vals, counts = np.unique(border, axis=0, return_counts=True)
    bg = vals[np.argmax(counts)].astype(int)
    m = (np.abs(r.astype(int) - bg).max(-1) > 10).astype(np.uint8)
    if m.shape == tuple(image_shape[:2]):
        return m > 0
    H, W, y0, y1, x0, x1 = crop_info
    if m.shape != (H, W):
        raise ValueError(f"render of shape {m.shape} matches neither the image {image_shape[:2]} "
                         f"nor the fit ({H}, {W})")
    full = np.zeros(image_shape[:2], np.uint8)
    small = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    ys, xs = slice(max(0, y0), min(full.shape[0], y1)), slice(max(0, x0), min(full.shape[1], x1))
    full[ys, xs] = small[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
    return full > 0


def convert(root: str, out_dir: str, split: str = "train", smpl_dir: str | None = None,
            examples_per_shard: int = 2000, max_examples: int = 0, num_shards: int = 1, shard_index: int = 0,
            num_workers: int = 0) -> dict:
    """Convert ``split`` of UP-3D under ``root`` into ``out_dir``. Returns stats (also in the manifest).

    The manifest records the neutral model file and its shape-component count (``neutral_model_record``).
    num_shards > 1: only part ``shard_index`` of the split's sorted ids, written to
    ``_common.part_dir(out_dir, split, num_shards, shard_index)``. num_workers > 1: images are read, cropped
    and encoded in that many processes (SMPL stays in this one); the same bytes whatever the count.
    """

    if smpl_dir is None:
        raise ValueError("convert_up3d needs --smpl_dir with the official gender-neutral SMPL model: UP-3D's fits "
                         "are neutral-SMPL parameters, and every joint, landmark and the crop come from that model")
    model_record = neutral_model_record(smpl_dir)
    body = _common.BodyModel(smpl_dir, genders=("neutral",))
    ids = _common.input_part(read_split(root, split), num_shards, shard_index)
    if max_examples:
        ids = ids[:max_examples]
    stats = {"images": 0, "written": 0, "without_mask": 0, "lsp": []}
    info = {"dataset": "up3d", "source": os.path.abspath(root), "body_model": "official neutral SMPL (--smpl_dir)",
            "conventions": "neutral SMPL fits; has_3d=0 (fits, not measured 3D); see convert_up3d.py",
            **model_record}
    dest = _common.part_dir(out_dir, split, num_shards, shard_index)
    with _common.ShardedOutput(dest, split, examples_per_shard, **info) as out:
        bar = _common.progress(total=len(ids), desc=f"up3d {split}", unit="img")
        results = _common.map_ordered(_image_task, _geometry(root, ids, body), num_workers)
        try:
            for rec, lsp_px, has_mask in results:
                out.write_serialized(rec)
                stats["images"] += 1
                stats["without_mask"] += int(not has_mask)
                if lsp_px is not None:
                    stats["lsp"].append(lsp_px)
                bar.update(1)
        finally:
            results.close()
        bar.close()
        stats["written"] = out.count
        lsp = stats.pop("lsp")
        if lsp:
            stats["fit_vs_lsp_px_median"] = float(np.median(lsp))
            if stats["fit_vs_lsp_px_median"] > 25:
                log.warning("up3d: projected fits are %.0f px from the LSP annotations (median): camera "
                            "convention mismatch?", stats["fit_vs_lsp_px_median"])
        out.finish(**{f"stats_{split}": stats})
    return stats


def _geometry(root, ids, body):
    """Per image id, in order (main process: SMPL): (path stem, id, K (3, 3), root_cam (3,), joints (24, 3),
    landmarks (18, 3), pose_cam (72,), betas (10,)), camera frame, metres."""
    for i in ids:
        p = os.path.join(root, f"{i:05d}")
        b = load_body(p + "_body.pkl")
        crop_info = read_crop_info(p + "_fit_crop_info.txt")
        K = image_intrinsics(b["f"], crop_info)
        R = _common.rotmat_from_axis_angle(b["rt"])
        pose_cam = _common.rotate_global_orient(b["pose"][None], R)[0]
        J, L = body(b["pose"][None], b["betas"][None], [2])
        root_cam = R @ (J[0, 0] + b["trans"]) + b["t"]
        Jc, Lc = body(pose_cam[None], b["betas"][None], [2])
        joints, landmarks = _common.place_body(Jc[0], Lc[0], root_cam)
        yield p, i, K, root_cam, joints, landmarks, pose_cam, b["betas"]


def _image_task(task):
    """One image (a worker process; no TensorFlow): -> (serialized example (bytes), median px distance of the projected fit to the
    visible LSP joints or None, whether a silhouette was found)."""
    import cv2

    p, i, K, root_cam, joints, landmarks, pose_cam, betas = task
    crop_info = read_crop_info(p + "_fit_crop_info.txt")
    bgr = cv2.imread(p + "_image.png", cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{p}_image.png: missing or unreadable")
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    mask = None
    if os.path.exists(p + "_render_light.png"):
        rl = cv2.imread(p + "_render_light.png", cv2.IMREAD_UNCHANGED)
        if rl is None:
            raise ValueError(f"{p}_render_light.png: unreadable")
        mask = silhouette(rl[..., :3] if rl.ndim == 3 else rl, img.shape, crop_info)
    lsp_px = None
    if os.path.exists(p + "_joints.npy"):
        lsp = np.load(p + "_joints.npy")
        if lsp.shape[0] >= 2 and lsp.shape[-1] == 14:
            vis = (lsp[2] > 0) if lsp.shape[0] > 2 else np.ones(14, bool)
            vis = vis[:12] & (lsp[0, :12] > 0) & (lsp[1, :12] > 0)
            if vis.any():
                pj = joints[LSP_TO_SMPL] @ K.T
                pj = pj[:, :2] / pj[:, 2:3]
                lsp_px = float(np.median(np.linalg.norm(pj[vis] - lsp[:2, :12].T[vis], axis=-1)))
    subject = ""
    if os.path.exists(p + "_dataset_info.txt"):
        with open(p + "_dataset_info.txt") as f:
            subject = (f.read().split() or [""])[0]
    ex = _common.crop_example(img, K, root_cam, joints, landmarks_cam=landmarks, mask=mask, pose=pose_cam,
                              betas=betas, gender=2, has_3d=0, has_smpl=1, dataset="up3d",
                              subject=subject, sequence=f"{i:05d}", frame=i, camera=0)
    return _common.serialized(ex), lsp_px, mask is not None


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv`` (--smpl_dir means what it means to train). Called under ``__main__``; a flag
    that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "root", None, "The UP-3D folder (%05d_image.png, %05d_body.pkl, ..., train.txt).")
    define(flags.DEFINE_enum, "split", "train", SPLITS, "The split converted.")
    define(flags.DEFINE_string, "smpl_dir", None, "Official SMPL model files, with the gender-neutral model "
           "(SMPL_NEUTRAL.pkl) that UP-3D's fits use.")
    _common.define_converter_flags(define)


def main(argv):
    del argv
    F = FLAGS
    _common.check_scale_flags(F.num_shards, F.shard_index)
    stats = convert(F.root, F.out_dir, F.split, F.smpl_dir, F.examples_per_shard, F.max_output_examples,
                    num_shards=F.num_shards, shard_index=F.shard_index, num_workers=F.num_workers)
    print(f"up3d {F.split}: {stats['written']} examples written to "
          f"{_common.part_dir(F.out_dir, F.split, F.num_shards, F.shard_index)}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["root", "out_dir", "smpl_dir"])
    logging.basicConfig(level=logging.INFO)
    cli.run(main)
