"""Helpers shared by the dataset converters (convert_surreal / convert_h36m / convert_up3d / subsample).

* Each converter defines its own flags (--root, --out_dir, --split, --smpl_dir, --examples_per_shard,
  --max_output_examples, ...) in its ``define_flags``.
* :class:`BodyModel`: our SMPL layer on numpy batches (joints and landmarks of given pose / betas / gender).
* Rotations on numpy batches (axis-angle <-> matrices, via scipy's Rotation, robust near pi).
* :func:`crop_example`: the paper's crop of one source frame and the schema dict of one example.
* :class:`ShardedOutput`: writes examples into shards through :class:`smplr_tf.data.schema.ShardWriter` under
  hidden in-progress names, and only at a clean finish renames them to ``<split>-%05d-of-%05d.tfrecord`` and
  records them in the manifest: a crash never leaves a shard that looks complete.

Units: metres, camera frame x right / y down / z forward, pixels.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
import re

import numpy as np

from smplr_tf.body import skeleton
from smplr_tf.data import schema

log = logging.getLogger("smplr_tf.convert")

GENDER_NAMES = skeleton.GENDERS  # index = schema gender code


# -------------------------------------------------------------------------------------------- rotations
def rotmat_from_axis_angle(aa) -> np.ndarray:
    """(..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices (float64)."""
    from scipy.spatial.transform import Rotation

    aa = np.asarray(aa, dtype=np.float64)
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(aa.shape[:-1] + (3, 3))


def axis_angle_from_rotmat(R) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, angle in [0, pi] (float64)."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(R.shape[:-2] + (3,))


def rotate_global_orient(pose, R) -> np.ndarray:
    """Pose (N, 72) with its global rotation left-multiplied by R ((3, 3) or (N, 3, 3)): the same body seen in
    the frame that R maps into. Body-part rotations (pose[:, 3:]) are unchanged."""
    pose = np.array(pose, dtype=np.float64, copy=True)
    G = rotmat_from_axis_angle(pose[:, :3])
    pose[:, :3] = axis_angle_from_rotmat(np.matmul(R, G))
    return pose


# ------------------------------------------------------------------------------------------- body model
class BodyModel:
    """Our SMPL layer (``smplr_tf.body.smpl.SMPL``) applied to numpy batches.

    smpl_dir: official files (None: the package's free body model). ``official`` tells whether the model's
    joints / landmarks are those of the official SMPL: only then are landmarks of official-SMPL data (SURREAL,
    H36M fits, UP-3D) right. genders: the model genders to load (names from GENDER_NAMES).
    """

    def __init__(self, smpl_dir: str | None, genders=skeleton.BODY_GENDERS):
        from smplr_tf.body.smpl import SMPL

        self.official = smpl_dir is not None
        self.genders = tuple(genders)
        self.layer = SMPL(smpl_dir=smpl_dir, genders=self.genders)

    def index_of(self, gender_code) -> np.ndarray:
        """Schema gender codes (0 female, 1 male, 2 neutral) -> indices into ``self.genders``."""
        codes = np.atleast_1d(np.asarray(gender_code, dtype=np.int64))
        out = np.empty_like(codes)
        for i, c in enumerate(codes):
            name = GENDER_NAMES[int(c)]
            if name not in self.genders:
                raise ValueError(f"body model has no '{name}' model (loaded: {self.genders})")
            out[i] = self.genders.index(name)
        return out

    BATCH = 256  # most rows per SMPL call

    def _fn(self):
        import tensorflow as tf

        if getattr(self, "_compiled", None) is None:
            self._compiled = tf.function(
                lambda betas, pose, g: self.layer(betas, pose, g),
                input_signature=[tf.TensorSpec((None, 10), tf.float32), tf.TensorSpec((None, 72), tf.float32),
                                 tf.TensorSpec((None,), tf.int32)])
        return self._compiled

    def __call__(self, pose, betas, gender_code):
        """pose (N, 72) axis-angle, betas (N, 10), gender_code (N,) schema codes.

        Returns (joints (N, 24, 3), landmarks (N, 18, 3)) float64, metres, model frame (global rotation about
        the pelvis joint, no translation). One graph (traced once, any batch size), in chunks of BATCH rows.
        """
        pose = np.asarray(pose, np.float32).reshape(-1, 72)
        betas = np.asarray(betas, np.float32).reshape(-1, 10)
        gidx = self.index_of(np.broadcast_to(np.asarray(gender_code), (len(pose),))).astype(np.int32)
        if not len(pose):
            return np.zeros((0, 24, 3)), np.zeros((0, 18, 3))
        fn, b = self._fn(), self.BATCH
        js, ls = [], []
        for s in range(0, len(pose), b):
            out = fn(betas[s:s + b], pose[s:s + b], gidx[s:s + b])
            js.append(np.asarray(out["joints"], np.float64))
            ls.append(np.asarray(out["landmarks"], np.float64))
        return np.concatenate(js), np.concatenate(ls)


class PointsModel:
    """SMPL's joints and its 18 landmark vertices, in NumPy (float64), for worker processes that do not import
    TensorFlow. The same model as :class:`BodyModel` (the layer of ``smplr_tf.body.smpl``), evaluated only
    where the converters need it: the rest joints are linear in betas (J_regressor applied to the shape
    basis), and only the landmark rows of the template, shape and pose-corrective bases and skinning weights
    are kept, so a body costs ~20K multiply-adds instead of the full mesh's ~4M. Tested against the layer.

    smpl_dir: official files (None: the package's free model); genders: names from GENDER_NAMES.
    """

    def __init__(self, smpl_dir: str | None, genders=skeleton.BODY_GENDERS):
        from smplr_tf.body import model_io

        files = model_io.find_model_files(smpl_dir)
        self.genders = tuple(genders)
        self._m = []
        for g in self.genders:
            d = model_io.load_model_file(files[g], gender=g)
            jreg = np.asarray(d.J_regressor, np.float64)
            ids = np.asarray(d.landmark_ids, np.int64)
            self._m.append({
                "j0": jreg @ np.asarray(d.v_template, np.float64),  # (24, 3)
                "jdirs": np.einsum("jv,vcs->jcs", jreg, np.asarray(d.shapedirs, np.float64)),  # (24, 3, 10)
                "l0": np.asarray(d.v_template, np.float64)[ids],  # (18, 3)
                "ldirs": np.asarray(d.shapedirs, np.float64)[ids],  # (18, 3, 10)
                "lpose": np.asarray(d.posedirs, np.float64)[ids],  # (18, 3, 207)
                "lw": np.asarray(d.weights, np.float64)[ids],  # (18, 24)
            })
        self.parents = [int(p) for p in skeleton.JOINT_PARENTS]

    def __call__(self, pose, betas, gender_code):
        """pose (N, 72) axis-angle, betas (N, 10), gender_code (N,) schema codes -> (joints (N, 24, 3),
        landmarks (N, 18, 3)) float64, metres, model frame (as :class:`BodyModel`)."""
        pose = np.asarray(pose, np.float64).reshape(-1, 72)
        betas = np.asarray(betas, np.float64).reshape(-1, 10)
        codes = np.broadcast_to(np.atleast_1d(np.asarray(gender_code, np.int64)), (len(pose),))
        n = len(pose)
        joints, landmarks = np.zeros((n, 24, 3)), np.zeros((n, 18, 3))
        R = rotmat_from_axis_angle(pose.reshape(n, 24, 3))  # (N, 24, 3, 3)
        feat = (R[:, 1:] - np.eye(3)).reshape(n, 207)
        for gi, g in enumerate(self.genders):
            rows = np.flatnonzero(codes == GENDER_NAMES.index(g))
            if not len(rows):
                continue
            m = self._m[gi]
            J = m["j0"] + np.einsum("jcs,ns->njc", m["jdirs"], betas[rows])  # rest joints (n, 24, 3)
            rot, trans = [R[rows, 0]], [J[:, 0]]
            for k in range(1, 24):
                p = self.parents[k]
                rot.append(rot[p] @ R[rows, k])
                trans.append(np.einsum("nab,nb->na", rot[p], J[:, k] - J[:, p]) + trans[p])
            rot, posed = np.stack(rot, 1), np.stack(trans, 1)  # (n, 24, 3, 3), (n, 24, 3)
            skin_t = posed - np.einsum("nkab,nkb->nka", rot, J)
            v = (m["l0"] + np.einsum("lcs,ns->nlc", m["ldirs"], betas[rows])
                 + np.einsum("lci,ni->nlc", m["lpose"], feat[rows]))  # posed template landmarks (n, 18, 3)
            A = np.einsum("lk,nkab->nlab", m["lw"], rot)
            t = np.einsum("lk,nka->nla", m["lw"], skin_t)
            joints[rows] = posed
            landmarks[rows] = np.einsum("nlab,nlb->nla", A, v) + t
        missing = set(np.unique(codes).tolist()) - {GENDER_NAMES.index(g) for g in self.genders}
        if missing:
            raise ValueError(f"points model has no {[GENDER_NAMES[c] for c in sorted(missing)]} model "
                             f"(loaded: {self.genders})")
        return joints, landmarks


# ------------------------------------------------------------------------------------------------ crop
def crop_example(image, K, root_cam, joints_cam, *, landmarks_cam=None, mask=None, pose=None, betas=None,
                 gender=schema.GENDER_NEUTRAL, has_3d=1, has_smpl=None, dataset="", subject="", sequence="",
                 frame=0, camera=0, pad=None, joint_valid=None) -> dict:
    """The paper's crop of one source frame -> a schema example dict (see smplr_tf/data/schema.py).

    image: (H, W, 3) uint8 RGB source frame. K: (3, 3) its intrinsics. root_cam: (3,) pelvis, camera frame
    (metres, z > 0): the crop is a 2.5 m square centred on it, perpendicular to the optical axis, resized to
    256 (``smplr_tf.data.crop``). joints_cam (24, 3) / landmarks_cam (18, 3) or None: camera frame, metres.
    mask: (H, W) bool silhouette or None. pose (72,) camera-frame axis-angle, betas (10,) or None.
    joint_valid: optional (24,) bool: joints without data (zeros in joints_cam) get joints2d = 0 too.
    A missing field is written as zeros with its has_* flag 0.
    """
    from smplr_tf.data import crop as crop_lib

    size = schema.IMAGE_SIZE
    root_cam = np.asarray(root_cam, np.float64).reshape(3)
    box = crop_lib.crop_box(root_cam, K)
    Kc = crop_lib.crop_intrinsics(K, box, size)
    img = crop_lib.crop_image(np.asarray(image, np.uint8), box, size, pad=pad)
    joints_cam = np.asarray(joints_cam, np.float64).reshape(24, 3)
    has_lm = landmarks_cam is not None
    lm = np.asarray(landmarks_cam, np.float64).reshape(18, 3) if has_lm else np.zeros((18, 3))
    if mask is not None:
        m = crop_lib.crop_image(np.asarray(mask, np.uint8) * 255, box, size) > 127
    else:
        m = np.zeros((size, size), bool)
    has_smpl = int(pose is not None) if has_smpl is None else int(has_smpl)
    j2d = np.zeros((24, 2))
    ok = np.ones(24, bool) if joint_valid is None else np.asarray(joint_valid, bool)
    j2d[ok] = crop_lib.project(joints_cam[ok], Kc)
    return {
        "image": schema.encode_image(img),
        "mask": schema.encode_mask(m),
        "joints3d": joints_cam.astype(np.float32),
        "landmarks3d": lm.astype(np.float32),
        "joints2d": j2d.astype(np.float32),
        "landmarks2d": (crop_lib.project(lm, Kc) if has_lm else np.zeros((18, 2))).astype(np.float32),
        "pose": (np.zeros(72) if pose is None else np.asarray(pose, np.float64).reshape(72)).astype(np.float32),
        "betas": (np.zeros(10) if betas is None else np.asarray(betas, np.float64).reshape(10)).astype(np.float32),
        "gender": int(gender),
        "intrinsics": np.asarray(Kc, np.float32),
        "root_depth": np.float32(root_cam[2]),
        "crop_box": np.asarray(box, np.float32),
        "dataset": dataset,
        "subject": str(subject),
        "sequence": str(sequence),
        "frame": int(frame),
        "camera": int(camera),
        "has_3d": int(has_3d),
        "has_smpl": has_smpl,
        "has_mask": int(mask is not None),
        "has_landmarks": int(has_lm),
    }


def place_body(joints_model, landmarks_model, root_cam):
    """Translate model-frame SMPL outputs so that the pelvis sits at ``root_cam``.

    joints_model (..., 24, 3), landmarks_model (..., 18, 3) (camera-frame rotation already applied),
    root_cam (..., 3). Returns camera-frame (joints, landmarks): ``x + (root_cam - J0)`` (the contract's
    "pose in the camera frame").
    """
    t = np.asarray(root_cam)[..., None, :] - joints_model[..., :1, :]
    return joints_model + t, landmarks_model + t


# -------------------------------------------------------------------------------------------- sampling
def keep_by_motion(joints, min_mean_dist: float = 0.05) -> np.ndarray:
    """The paper's SURREAL sampling: keep the first frame, then a frame only if its mean joint distance to the
    last kept frame is >= ``min_mean_dist`` (metres; paper: skip below 5 cm).

    joints: (T, J, 3) metres, one clip, any frame fixed over the clip. Returns sorted kept indices (int64).
    """
    joints = np.asarray(joints, np.float64)
    if len(joints) == 0:
        return np.zeros(0, np.int64)
    kept = [0]
    last = joints[0]
    for t in range(1, len(joints)):
        if np.linalg.norm(joints[t] - last, axis=-1).mean() >= min_mean_dist:
            kept.append(t)
            last = joints[t]
    return np.asarray(kept, np.int64)


# --------------------------------------------------------------------------------------------- output
class ShardedOutput:
    """Examples -> ``<out_dir>/<split>-%05d-of-%05d.tfrecord`` + manifest, atomically.

    Shards are written through schema.ShardWriter under hidden names ``.<split>-%05d.inprogress``; ``finish``
    renames them to their final names (the count of shards is only known then), deletes stale shards of the same
    split from an earlier run, and records them with schema.update_manifest. Use as a context manager: on an
    exception the in-progress shards are deleted and the manifest is left untouched.
    """

    def __init__(self, out_dir: str, split: str, examples_per_shard: int = 2000, **manifest_info):
        if examples_per_shard < 1:
            raise ValueError("examples_per_shard must be >= 1")
        self.out_dir, self.split, self.per_shard = out_dir, split, int(examples_per_shard)
        self.info = dict(manifest_info)
        self.count = 0
        self._tmp_paths: list[str] = []
        self._counts: list[int] = []
        self._writer = None
        os.makedirs(out_dir, exist_ok=True)

    def _tmp_name(self, i: int) -> str:
        return os.path.join(self.out_dir, f".{self.split}-{i:05d}.inprogress")

    def _roll(self):
        if self._writer is not None and self._writer.count >= self.per_shard:
            self._close_current()
        if self._writer is None:
            path = self._tmp_name(len(self._tmp_paths))
            self._writer = schema.ShardWriter(path).__enter__()

    def _close_current(self, exc=None):
        w, self._writer = self._writer, None
        w.__exit__(type(exc) if exc else None, exc, None)
        if exc is None:
            self._tmp_paths.append(w.path)
            self._counts.append(w.count)

    def write(self, ex: dict) -> None:
        self._roll()
        self._writer.write(ex)
        self.count += 1

    def write_serialized(self, record: bytes) -> None:
        self._roll()
        self._writer.write_serialized(record)
        self.count += 1

    def finish(self, **more_info) -> list[dict]:
        """Close, rename to final names, update the manifest. Returns the shard list written."""
        if self._writer is not None:
            self._close_current()
        n = len(self._tmp_paths)
        finals = [schema.shard_name(self.split, i, n) for i in range(n)]
        pattern = re.compile(rf"^{re.escape(self.split)}-\d{{5}}-of-\d{{5}}\.tfrecord$")
        for old in glob.glob(os.path.join(self.out_dir, f"{self.split}-*.tfrecord")):
            if pattern.match(os.path.basename(old)) and os.path.basename(old) not in finals:
                os.remove(old)
        shards = []
        for tmp, name, c in zip(self._tmp_paths, finals, self._counts):
            os.replace(tmp, os.path.join(self.out_dir, name))
            shards.append({"file": name, "count": int(c)})
        self._tmp_paths = []
        info = dict(self.info, **more_info)
        schema.update_manifest(self.out_dir, self.split, shards, **info)
        return shards

    def abort(self, exc=None) -> None:
        if self._writer is not None:
            self._close_current(exc or RuntimeError("aborted"))
        for p in self._tmp_paths:
            if os.path.exists(p):
                os.remove(p)
        self._tmp_paths = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort(exc)
        return False


def progress(iterable=None, total=None, desc=None, unit="it"):
    """A tqdm progress bar on stderr (disabled when SMPLR_NO_PROGRESS is set, e.g. in tests)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=bool(os.environ.get("SMPLR_NO_PROGRESS")))


#: FFmpeg decoding threads per video. One: the converters' parallelism is their worker processes, and on
#: SURREAL's 320x240 clips FFmpeg's own threads (one per core by default) made decoding cost ~50 % more CPU and
#: the conversion ~5 % slower even in one process (BUILD_NOTES, "Conversion at dataset scale").
DECODER_THREADS = 1


def read_video_frames(path: str, wanted) -> dict:
    """Decode an mp4 with OpenCV and return {frame index: (H, W, 3) uint8 RGB} for the indices in ``wanted``.

    Reads sequentially (seeking in H.264 is slow and not frame exact). Missing frames are simply absent.
    """
    import cv2

    wanted = set(int(w) for w in wanted)
    out = {}
    if not wanted:
        return out
    cap = cv2.VideoCapture(path, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, DECODER_THREADS])
    if not cap.isOpened():
        raise OSError(f"{path}: OpenCV cannot open this video")
    last = max(wanted)
    t = 0
    try:
        while t <= last:
            ok, bgr = cap.read()
            if not ok:
                break
            if t in wanted:
                out[t] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t += 1
    finally:
        cap.release()
    return out



# ----------------------------------------------------------------------------------- parallel / parts
def input_part(items, num_shards: int = 1, shard_index: int = 0) -> list:
    """The ``shard_index``-th of ``num_shards`` contiguous, near-equal blocks of ``items`` (a sorted input list):
    block k = items[k n // N : (k + 1) n // N]. Contiguous blocks, so the merged parts hold the records in the
    order one run over every input writes them."""
    items = list(items)
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard_index {shard_index} must lie in [0, --num_shards {num_shards})")
    n = len(items)
    return items[shard_index * n // num_shards:(shard_index + 1) * n // num_shards]


def part_dir(out_dir: str, split: str, num_shards: int = 1, shard_index: int = 0) -> str:
    """Where a converter writes: ``out_dir`` itself for a whole run, else its own records directory
    ``<out_dir>/parts/<split>-KKKKK-of-NNNNN`` (several machines never write one manifest; merge_parts.py
    gathers the parts into ``out_dir``)."""
    if num_shards <= 1:
        return out_dir
    return os.path.join(out_dir, "parts", f"{split}-{shard_index:05d}-of-{num_shards:05d}")


def _start_worker(initializer=None, initargs=()) -> None:
    """A pool worker's start: OpenCV's parallel loops single-threaded, since the pool is the parallelism and more
    threads than cores only add switching; then ``initializer(*initargs)``."""
    import cv2

    cv2.setNumThreads(1)
    if initializer is not None:
        initializer(*initargs)


def map_ordered(fn, items, num_workers: int = 0, initializer=None, initargs=()):
    """Yield ``fn(item)`` for every item, in the order of ``items``.

    num_workers <= 1: in this process (``initializer(*initargs)`` called first). Otherwise a ``spawn`` process
    pool of that many workers (each runs the initializer once, with OpenCV single-threaded); at most 2 tasks per
    worker are in flight, so memory stays bounded on long input lists. Results come back in input order whatever
    the worker count, so a caller writing them as they come writes the same bytes. Closing the generator early
    cancels what is queued.
    An exception in a task is raised here, at that task's place. ``items`` may be a lazy iterator: it is
    consumed only as tasks are submitted, so work the main process does to make an item overlaps the workers'.
    """
    if num_workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for it in items:
            yield fn(it)
        return
    import collections
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=ctx, initializer=_start_worker,
                                                initargs=(initializer, initargs)) as pool:
        pending = collections.deque()
        it = iter(items)
        try:
            for item in itertools.islice(it, 2 * num_workers):
                pending.append(pool.submit(fn, item))
            while pending:
                res = pending.popleft().result()
                for item in itertools.islice(it, 1):
                    pending.append(pool.submit(fn, item))
                yield res
        finally:
            for f in pending:
                f.cancel()


def merge_stats(parts: list[dict]) -> dict:
    """Per-part stats -> one: integer counters summed, lists concatenated in part order; float summaries
    (medians, means of a part) cannot be combined exactly, so each becomes ``<key>_by_part`` (a list in part
    order)."""
    out: dict = {}
    for st in parts:
        for k, v in st.items():
            if isinstance(v, list):
                out[k] = out.get(k, []) + v
            elif isinstance(v, int) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
    for k in sorted({k for st in parts for k, v in st.items() if isinstance(v, float)}):
        out[f"{k}_by_part"] = [st.get(k) for st in parts]
    for k in sorted({k for st in parts for k, v in st.items() if isinstance(v, dict)}):
        out[k] = merge_stats([st.get(k, {}) for st in parts])
    return out


def merge_parts(out_dir: str, split: str, remove_parts: bool = True) -> dict:
    """Gather ``<out_dir>/parts/<split>-KKKKK-of-NNNNN`` (every part, each complete) into ``out_dir``: shards
    renamed to ``<split>-%05d-of-%05d.tfrecord`` in part order (the order of one whole run), the manifest's
    ``stats_<split>`` merged with :func:`merge_stats`, the other manifest entries taken from part 0 (a warning
    where parts disagree), ``parts_<split>`` = the part count. Stale shards of ``split`` in out_dir are removed;
    with ``remove_parts`` the part folders are deleted afterwards. Returns the merged stats.

    Raises FileNotFoundError / ValueError naming the part when one is missing, incomplete or of another count.
    """
    base = os.path.join(out_dir, "parts")
    pat = re.compile(rf"^{re.escape(split)}-(\d{{5}})-of-(\d{{5}})$")
    found = sorted(d for d in (os.listdir(base) if os.path.isdir(base) else []) if pat.match(d))
    if not found:
        raise FileNotFoundError(f"{base}: no part folders of split '{split}' (<split>-KKKKK-of-NNNNN)")
    counts = {int(pat.match(d).group(2)) for d in found}
    if len(counts) != 1:
        raise ValueError(f"{base}: parts of different --num_shards {sorted(counts)} for split '{split}'")
    n = counts.pop()
    missing = [f"{split}-{k:05d}-of-{n:05d}" for k in range(n) if f"{split}-{k:05d}-of-{n:05d}" not in found]
    if missing:
        raise FileNotFoundError(f"{base}: missing part(s) {missing}")
    mans, files = [], []
    for d in found:
        pdir = os.path.join(base, d)
        man = schema.read_manifest(pdir)
        if split not in man.get("splits", {}):
            raise ValueError(f"{pdir}: part is incomplete (its manifest has no split '{split}')")
        mans.append(man)
        files += [(os.path.join(pdir, s["file"]), int(s["count"])) for s in man["splits"][split]["shards"]]
    info = {k: v for k, v in mans[0].items() if k not in ("splits", "schema_version") and not k.startswith("stats_")}
    for d, man in zip(found[1:], mans[1:]):
        for k, v in info.items():
            if man.get(k) != v:
                log.warning("merge_parts: %s: manifest entry '%s' differs from part 0's (kept part 0's)", d, k)
    stats = merge_stats([m.get(f"stats_{split}", {}) for m in mans])
    nonempty = [(p, c) for p, c in files if c > 0]
    finals = [schema.shard_name(split, i, len(nonempty)) for i in range(len(nonempty))]
    keep = re.compile(rf"^{re.escape(split)}-\d{{5}}-of-\d{{5}}\.tfrecord$")
    for old in glob.glob(os.path.join(out_dir, f"{split}-*.tfrecord")):
        if keep.match(os.path.basename(old)) and os.path.basename(old) not in finals:
            os.remove(old)
    shards = []
    for (p, c), name in zip(nonempty, finals):
        os.replace(p, os.path.join(out_dir, name))
        shards.append({"file": name, "count": c})
    info[f"stats_{split}"] = stats
    info[f"parts_{split}"] = n
    schema.update_manifest(out_dir, split, shards, **info)
    if remove_parts:
        import shutil

        for d in found:
            shutil.rmtree(os.path.join(base, d))
        if not os.listdir(base):
            os.rmdir(base)
    return stats


def serialized(example: dict) -> bytes:
    """One example (a :func:`crop_example` dict) -> its record (``schema.serialize_example``, which imports no
    TensorFlow), errors naming its dataset, sequence and frame. The converters' worker processes serialize their
    own records: the main process, which every worker waits on, then only writes bytes."""
    where = f"{example.get('dataset')} {example.get('sequence')} frame {example.get('frame')}"
    return schema.serialize_example(example, where=where)


def write_capped(out, records, max_examples: int, bar):
    """Write ``records`` (one input's serialized examples, bytes: see :func:`serialized`) to ``out``, no more than
    ``max_examples`` in all (0: no cap), and advance the progress ``bar`` by one input. Returns (examples
    written, whether the cap is reached)."""
    if max_examples:
        records = records[: max(0, max_examples - out.count)]
    for rec in records:
        out.write_serialized(rec)
    bar.update(1)
    bar.set_postfix(examples=out.count)
    return len(records), bool(max_examples) and out.count >= max_examples


def define_converter_flags(define) -> None:
    """The flags every dataset converter shares: --out_dir, --examples_per_shard, --max_output_examples and the
    scale flags (:func:`define_scale_flags`), through ``define`` = ``cli.flag_definer(fv)``."""
    from absl import flags

    define(flags.DEFINE_string, "out_dir", None, "Output records directory (shards + manifest.json).")
    define(flags.DEFINE_integer, "examples_per_shard", 2000, "Examples per output shard.", lower_bound=1)
    define(flags.DEFINE_integer, "max_output_examples", 0, "Stop after writing this many examples (0: all).",
           lower_bound=0)
    define_scale_flags(define)


def define_scale_flags(define, workers: bool = True) -> None:
    """--num_workers (with ``workers``), --num_shards, --shard_index, through ``define`` =
    ``cli.flag_definer(fv)``."""
    from absl import flags

    if workers:
        define(flags.DEFINE_integer, "num_workers", 0, "Local worker processes (0 or 1: this process). The output "
               "is the same whatever the count.", lower_bound=0)
    define(flags.DEFINE_integer, "num_shards", 1, "Split the inputs into this many contiguous parts (one per "
           "machine / scheduler task); with > 1 this run writes part --shard_index into "
           "<out_dir>/parts/<split>-KKKKK-of-NNNNN, and tfrecords_tools/merge_parts.py gathers them.",
           lower_bound=1)
    define(flags.DEFINE_integer, "shard_index", 0, "The part of the inputs this run converts (0-based, "
           "< --num_shards).", lower_bound=0)


def check_scale_flags(num_shards: int, shard_index: int) -> None:
    """--shard_index must lie in [0, --num_shards): else a one-line user error (exit 2)."""
    from smplr_tf import cli

    if not 0 <= shard_index < num_shards:
        raise cli.UserError(f"--shard_index={shard_index} must be < --num_shards={num_shards}")
