"""Synthetic SURREAL-like examples: sample a body and a camera, pose it with our SMPL layer, render, crop.

Work is split so that TensorFlow stays in the main process:

* main process: :func:`sample_body_params` (NumPy), the SMPL layer on batches (:class:`BodySource`),
  serialisation and shard writing (:func:`generate_split`);
* rendering workers (``multiprocessing`` *spawn* pool, NumPy/OpenCV only): :func:`render_example` draws the
  scene in the 320x240 source frame, renders the body, crops the paper's 2.5 m box and encodes the images.

Every random draw of example ``i`` comes from generators seeded by ``(seed, crc32(split), i, stream)``
(stream 0: body and camera, 1: appearance), so the bytes written do not depend on the number of workers or on
the batch an example falls in.

Camera and frame (SURREAL's): 320x240 pixels, f = 600 px, principal point (160, 120); the pelvis 3-7 m away;
the centre of the body's 3D bounding box projected within +-30 px (x) / +-20 px (y) of the image centre.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections import deque

import cv2
import numpy as np

from smplr_tf.body import skeleton
from smplr_tf.data import crop as crop_lib
from smplr_tf import render
from smplr_tf.synth import appearance, pose as pose_lib

SOURCE_SIZE = (240, 320)  # (H, W) of the source frame
FOCAL = 600.0
K_SOURCE = np.array([[FOCAL, 0.0, 160.0], [0.0, FOCAL, 120.0], [0.0, 0.0, 1.0]], np.float64)
# Pelvis depth, metres (uniform in 3-7 m). SURREAL's own renderer draws the camera distance from N(8, 1) m:
# pass depth_range=(6, 10) / --depth_range=6,10 for data closer to SURREAL (fewer bodies leave the frame).
DEPTH_RANGE = (3.0, 7.0)
OFFSET_PX = (30.0, 20.0)  # max offset of the projected pelvis from the image centre
CROP_SIZE = 256
PAD_SIZE = (128, 128)  # padding image, drawn small (it is only seen around the frame, resized to 256)
OCCLUDER_PROB = 0.2
GENDER_IDS = skeleton.GENDER_IDS  # schema ids


def example_rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The random generator of one example's ``stream`` (0: body and camera, 1: scene, 2: the person's look)."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index), int(stream)])


def sample_body_params(seed: int, split: str, index: int, num_genders: int = 2, depth_range=DEPTH_RANGE) -> dict:
    """Body and camera of example ``index`` (NumPy only).

    Returns dict: family (str), pose (72,) axis-angle with the camera-frame global rotation, betas (10,)
    ~ N(0, 1), gender_index (int, position in the SMPL layer's genders), root_cam (3,) metres (pelvis;
    :meth:`BodySource.jobs` then moves the body sideways so that its box centre projects there instead).
    """
    rng = example_rng(seed, split, index, 0)
    family, _, body_pose, pelvis = pose_lib.sample_body(rng)
    R = pose_lib.camera_rotation(rng, pelvis)
    z = rng.uniform(*depth_range)
    u = K_SOURCE[0, 2] + rng.uniform(-OFFSET_PX[0], OFFSET_PX[0])
    v = K_SOURCE[1, 2] + rng.uniform(-OFFSET_PX[1], OFFSET_PX[1])
    root = np.array([(u - K_SOURCE[0, 2]) * z / FOCAL, (v - K_SOURCE[1, 2]) * z / FOCAL, z])
    return {
        "family": family,
        "pose": pose_lib.full_pose(R, body_pose).astype(np.float32),
        "betas": rng.normal(0.0, 1.0, size=10).astype(np.float32),
        "gender_index": int(rng.integers(num_genders)),
        "root_cam": root,
    }


def outward_faces(faces: np.ndarray, v_template: np.ndarray) -> np.ndarray:
    """Faces wound so that (v1 - v0) x (v2 - v0) points out of the template (positive signed volume)."""
    v = v_template - v_template.mean(axis=0)
    vol = np.einsum("fk,fk->f", v[faces[:, 0]], np.cross(v[faces[:, 1]], v[faces[:, 2]])).sum()
    return faces if vol >= 0 else faces[:, ::-1].copy()


# ------------------------------------------------------------------------------------------ workers
_CTX: dict = {}


def init_worker(ctx: dict) -> None:
    """Pool initializer: the mesh topology and appearance tables every example uses."""
    cv2.setNumThreads(1)
    _CTX.clear()
    _CTX.update(ctx)


def render_example(job: dict) -> dict:
    """Render and crop one posed body; returns every schema field (images encoded).

    job: index, seed, split, verts (V, 3) / joints3d (24, 3) / landmarks3d (18, 3) camera frame metres,
    pose (72,), betas (10,), gender (schema id), root_cam (3,).
    Needs :func:`init_worker` (faces, appearance tables, background_paths). The person's appearance has its own
    random stream (2), so the scene stream (1: backgrounds, light, occluder, noise) does not depend on it.
    """
    from smplr_tf.data import schema  # light: no TensorFlow at import

    rng = example_rng(job["seed"], job["split"], job["index"], 1)
    faces = _CTX["faces"]
    paths = _CTX.get("background_paths")

    def background(size):
        if paths:
            return appearance.image_background(rng, paths, size)
        return appearance.procedural_background(rng, size, _CTX.get("background_clutter", 1.0))

    bg = background(SOURCE_SIZE)
    albedo = appearance.sample_face_colors(example_rng(job["seed"], job["split"], job["index"], 2),
                                           _CTX["appearance"])
    light_dir, ambient, light_col = appearance.sample_light(rng)
    rgb, mask = render.rasterize(job["verts"], faces, K_SOURCE, SOURCE_SIZE, face_colors=albedo * light_col,
                                 light_dir=light_dir, background=bg, ambient=ambient)
    if rng.uniform() < OCCLUDER_PROB:
        uv = crop_lib.project(job["joints3d"], K_SOURCE)
        occ = appearance.draw_occluder(rng, rgb, (*uv.min(0), *uv.max(0)))
        mask &= ~occ
    noisy = rgb.astype(np.float32) + appearance.gaussian_noise(rng, rgb.shape) * np.float32(rng.uniform(0, 4))
    rgb = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (0, 0), float(rng.uniform(0.3, 0.8)))

    box = crop_lib.crop_box(job["root_cam"], K_SOURCE)
    pad = background(PAD_SIZE)  # the paper pads with a random (VOC) image; crop_image resizes it
    image = crop_lib.crop_image(rgb, box, CROP_SIZE, pad=pad)
    mask_c = crop_lib.crop_image(mask.astype(np.uint8) * 255, box, CROP_SIZE) > 127
    Kc = crop_lib.crop_intrinsics(K_SOURCE, box, CROP_SIZE)
    return {
        "image": schema.encode_image(image),
        "mask": schema.encode_mask(mask_c),
        "joints3d": job["joints3d"].astype(np.float32),
        "landmarks3d": job["landmarks3d"].astype(np.float32),
        "joints2d": crop_lib.project(job["joints3d"], Kc),
        "landmarks2d": crop_lib.project(job["landmarks3d"], Kc),
        "pose": job["pose"].astype(np.float32),
        "betas": job["betas"].astype(np.float32),
        "gender": int(job["gender"]),
        "intrinsics": Kc,
        "root_depth": np.float32(job["joints3d"][0, 2]),
        "crop_box": box,
        "dataset": b"synthetic",
        "subject": f"synth-{job['gender']}".encode(),
        "sequence": str(job.get("family", "")).encode(),  # the pose family
        "frame": int(job["index"]),
        "camera": 0,
        "has_3d": 1, "has_smpl": 1, "has_mask": 1, "has_landmarks": 1,
    }


# ------------------------------------------------------------------------------------- main process
class BodySource:
    """Our SMPL layer plus the per-face appearance tables, in the main process.

    smpl_dir: None = the free body model; genders: names in the order of the layer's gender index.
    """

    def __init__(self, smpl_dir=None, genders=skeleton.BODY_GENDERS, background_dir=None, batch_size: int = 32,
                 depth_range=DEPTH_RANGE, background_clutter: float = 1.0):
        from smplr_tf.body import model_io
        from smplr_tf.body.smpl import SMPL

        self.depth_range = tuple(float(z) for z in depth_range)
        if not 0.0 <= float(background_clutter) <= 4.0:
            raise ValueError(f"background_clutter must be in [0, 4], got {background_clutter}")
        self.background_clutter = float(background_clutter)
        if len(self.depth_range) != 2 or not 0.5 <= self.depth_range[0] <= self.depth_range[1]:
            raise ValueError(f"depth_range must be (min, max) metres with 0.5 <= min <= max, got {depth_range}")
        self.genders = tuple(genders)
        unknown = [g for g in self.genders if g not in GENDER_IDS]
        if unknown:
            raise ValueError(f"unknown gender(s) {unknown}; use {sorted(GENDER_IDS)}")
        self.smpl = SMPL(smpl_dir=smpl_dir, genders=self.genders)
        self.files = model_io.find_model_files(smpl_dir)
        data = model_io.load_model_file(self.files[self.genders[0]])
        faces = outward_faces(np.asarray(self.smpl.faces, np.int64), data.v_template)
        self.ctx = {
            "faces": faces.astype(np.int32),
            "appearance": appearance.face_tables(data.weights, faces, data.v_template),
            "background_paths": appearance.list_images(background_dir) if background_dir else None,
            "background_clutter": self.background_clutter,
        }
        self.batch_size = int(batch_size)
        self.smpl_dir, self.background_dir = smpl_dir, background_dir
        self.num_vertices = int(data.num_vertices)
        self._fn = None

    def _forward(self, betas, pose, gender):
        import tensorflow as tf

        if self._fn is None:
            self._fn = tf.function(lambda b, p, g: self.smpl(b, p, g), reduce_retracing=True)
        out = self._fn(tf.constant(betas), tf.constant(pose), tf.constant(gender))
        return {k: out[k].numpy() for k in ("vertices", "joints", "landmarks")}

    def jobs(self, seed: int, split: str, indices) -> list[dict]:
        """Render jobs of ``indices``: sample, run SMPL in one batch (padded to batch_size), place in the camera."""
        params = [sample_body_params(seed, split, i, len(self.genders), self.depth_range) for i in indices]
        n = len(params)
        pad = self.batch_size - n if n < self.batch_size else 0
        betas = np.stack([p["betas"] for p in params] + [params[0]["betas"]] * pad)
        pose = np.stack([p["pose"] for p in params] + [params[0]["pose"]] * pad)
        gidx = np.array([p["gender_index"] for p in params] + [params[0]["gender_index"]] * pad, np.int32)
        out = self._forward(betas, pose, gidx)
        jobs = []
        for k, (i, p) in enumerate(zip(indices, params)):
            t = p["root_cam"] - out["joints"][k, 0].astype(np.float64)  # pose is about the pelvis: translate only
            verts = out["vertices"][k].astype(np.float64) + t
            # Aim the camera at the body, as SURREAL does: move the body sideways (same depth) so that the centre
            # of its 3D box, not the pelvis, projects at the sampled point. Fewer bent / arms-up bodies leave
            # the frame.
            centre = (verts.min(axis=0) + verts.max(axis=0)) / 2
            target = crop_lib.project(p["root_cam"], K_SOURCE).astype(np.float64)
            shift = np.zeros(3)
            shift[:2] = (target - crop_lib.project(centre, K_SOURCE)) * centre[2] / FOCAL
            t += shift
            jobs.append({
                "index": int(i), "seed": int(seed), "split": split,
                "verts": (verts + shift).astype(np.float32),
                "joints3d": (out["joints"][k] + t).astype(np.float32),
                "landmarks3d": (out["landmarks"][k] + t).astype(np.float32),
                "pose": p["pose"], "betas": p["betas"],
                "gender": GENDER_IDS[self.genders[p["gender_index"]]],
                "root_cam": p["root_cam"] + shift, "family": p["family"],
            })
        return jobs


def generate_split(out_dir: str, split: str, num_examples: int, seed: int = 0, num_workers: int = 0,
                   examples_per_shard: int = 1000, background_dir=None, smpl_dir=None, depth_range=DEPTH_RANGE,
                   genders=skeleton.BODY_GENDERS, batch_size: int = 32, progress: bool = True,
                   source: "BodySource | None" = None, background_clutter: float = 1.0) -> list[dict]:
    """Write ``num_examples`` synthetic examples of ``split`` to ``out_dir`` and record them in the manifest.

    Shards are written atomically (:class:`~smplr_tf.data.schema.ShardWriter`) and listed in the manifest only
    once all are complete. num_workers: rendering processes (0 = render in this process).
    depth_range: (min, max) pelvis depth in metres, uniform. background_clutter: shapes drawn on the procedural
    backgrounds, relative to the default (0: bare wall and floor; see
    :func:`smplr_tf.synth.appearance.procedural_background`). source: a ready :class:`BodySource` to reuse (then
    smpl_dir / genders / background_dir / batch_size / depth_range / background_clutter are taken from it).
    Returns the shard list [{"file", "count"}].
    """
    from tqdm import tqdm

    from smplr_tf.data import schema

    if num_examples <= 0:
        raise ValueError("num_examples must be > 0")
    if source is None:
        source = BodySource(smpl_dir, genders, background_dir, batch_size, depth_range, background_clutter)
    batch_size, smpl_dir, background_dir = source.batch_size, source.smpl_dir, source.background_dir
    num_shards = max(1, -(-num_examples // examples_per_shard))
    os.makedirs(out_dir, exist_ok=True)
    shards, writer, shard_idx = [], None, -1
    pool = None
    if num_workers > 0:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(num_workers, initializer=init_worker, initargs=(source.ctx,))
    else:
        init_worker(source.ctx)
    bar = tqdm(total=num_examples, desc=f"synthetic {split}", unit="img", disable=not progress)
    pending = deque()

    def write(results):
        nonlocal writer, shard_idx
        for ex in results:
            s = ex["frame"] // examples_per_shard
            if s != shard_idx:
                if writer is not None:
                    writer.__exit__(None, None, None)
                    shards.append({"file": os.path.basename(writer.path), "count": writer.count})
                shard_idx = s
                writer = schema.ShardWriter(os.path.join(out_dir, schema.shard_name(split, s, num_shards)))
                writer.__enter__()
            writer.write(ex)
            bar.update(1)

    try:
        for start in range(0, num_examples, batch_size):
            jobs = source.jobs(seed, split, range(start, min(start + batch_size, num_examples)))
            if pool is None:
                write(map(render_example, jobs))
                continue
            pending.append(pool.map_async(render_example, jobs,
                                          chunksize=max(1, len(jobs) // (2 * num_workers))))
            while len(pending) > 2:
                write(pending.popleft().get())
        while pending:
            write(pending.popleft().get())
        if writer is not None:
            writer.__exit__(None, None, None)
            shards.append({"file": os.path.basename(writer.path), "count": writer.count})
            writer = None
    except BaseException as e:
        if writer is not None:
            writer.__exit__(type(e), e, None)  # removes the partial shard
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    _record(out_dir, split, shards, source, seed, background_dir, smpl_dir)
    import glob

    stale = sorted(set(glob.glob(os.path.join(glob.escape(out_dir), f"{split}-*-of-*.tfrecord")))
                   - {os.path.join(out_dir, s["file"]) for s in shards})
    if stale:
        print(f"note: {len(stale)} older '{split}' shard(s) in {out_dir} are not in the manifest and are ignored "
              f"(e.g. {os.path.basename(stale[0])}); delete them to save space", file=sys.stderr)
    return shards


def _record(out_dir, split, shards, source, seed, background_dir, smpl_dir):
    import json

    from smplr_tf.data import schema

    path = os.path.join(out_dir, schema.MANIFEST_NAME)
    sources = {}
    if os.path.exists(path):
        with open(path) as f:
            sources = json.load(f).get("sources", {})
    sources[split] = {
        "generator": "smplr_tf.synth (tfrecords_tools/make_synthetic.py)",
        "seed": int(seed),
        "background_dir": os.path.abspath(background_dir) if background_dir else None,
        "background_clutter": source.background_clutter,
        "camera": {"size_hw": list(SOURCE_SIZE), "K": K_SOURCE.tolist(), "depth_range_m": list(source.depth_range)},
    }
    body_model = {
        "smpl_dir": os.path.abspath(smpl_dir) if smpl_dir else None,
        "kind": "official/user SMPL files" if smpl_dir else "free body model (smplr_tf/body/assets)",
        "files": {g: os.path.basename(source.files[g]) for g in source.genders},
        "genders": list(source.genders),
        "num_vertices": source.num_vertices,
    }
    schema.update_manifest(out_dir, split, shards, dataset="synthetic", body_model=body_model, sources=sources)
