"""Images/s of the hourglass input pipeline (decode, augment, standardise, volumetric targets + limbs).

    python benchmarks/input_pipeline.py [--data_dir=DIR] [--batch_size=6] [--num_batches=40] [--json]

Without --data_dir it writes a small set of records first (random images with consistent crop geometry) in a
temporary folder. Variants: the full float32 targets (the default input of the volumetric SHN), float16 / bfloat16
targets, targets built on the device from the points (``targets_on_device=True``: the pipeline emits points only),
and the un-augmented input. The machine's load average is printed beside the figures: on a shared machine
images/s fall with it.
"""

import json
import os
import sys
import tempfile
import time

from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS
VARIANTS = ("full_f32", "full_f16", "full_bf16", "on_device", "no_augment")


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv`` (--data_dir means what it means to train). Called under ``__main__``; a
    flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "data_dir", "", "Records to read; empty: write --num_examples to a temporary "
           "folder first.")
    define(flags.DEFINE_string, "split", "train", "The split read.")
    define(flags.DEFINE_integer, "num_examples", 120, "Examples written when no --data_dir is given.", lower_bound=1)
    define(flags.DEFINE_integer, "batch_size", 6, "Batch size (6: the paper's hourglass batch).", lower_bound=1)
    define(flags.DEFINE_integer, "num_batches", 40, "Batches timed per variant (after the warm-up).", lower_bound=1)
    define(flags.DEFINE_integer, "warmup_batches", 5, "Batches read per variant before timing.", lower_bound=0)
    if "variants" not in fv:
        flags.DEFINE_list("variants", list(VARIANTS), "Variants to time, of " + ",".join(VARIANTS) + ".",
                          flag_values=fv)
        flags.register_validator("variants", lambda v: set(v) <= set(VARIANTS), flag_values=fv,
                                 message="--variants: choose from " + ",".join(VARIANTS))
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")


def write_random_records(data_dir: str, split: str, n: int, shards: int = 2, seed: int = 0) -> None:
    """n schema examples: random smooth images, an elliptic mask, body-shaped 3D points (the pose sampler on
    a random SMPL-sized model) placed 4-6 m away and projected through the paper's crop."""
    import numpy as np

    from smplr_tf.data import crop, schema

    import cv2
    import tensorflow as tf

    from smplr_tf.body.smpl import SMPL
    from smplr_tf.body.testing import random_model_data
    from smplr_tf.data.points import sample_params_numpy

    rng = np.random.default_rng(seed)
    K = np.array([[600.0, 0, 160.0], [0, 600.0, 120.0], [0, 0, 1]], np.float32)
    yy, xx = np.mgrid[:256, :256]
    # body-shaped geometry: the pose sampler on a random SMPL-sized model (no model file needed)
    smpl = SMPL(models={"female": random_model_data(500, 0, "female"), "male": random_model_data(500, 1, "male")})
    pose, betas, gender = sample_params_numpy(seed, n)
    out = smpl(tf.constant(betas), tf.constant(pose), tf.constant(gender))
    joints, landmarks = out["joints"].numpy(), out["landmarks"].numpy()
    writers = []
    for s in range(shards):
        name = schema.shard_name(split, s, shards)
        w = schema.ShardWriter(os.path.join(data_dir, name)).__enter__()
        writers.append((name, w))
    for i in range(n):
        root = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(4, 6)], np.float32)
        pts = np.concatenate([joints[i], landmarks[i]]) - joints[i, :1] + root
        box = crop.crop_box(root, K)
        Kc = crop.crop_intrinsics(K, box, 256)
        p2 = crop.project(pts, Kc)
        small = rng.integers(0, 255, (16, 16, 3)).astype(np.uint8)
        img = cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC)
        mask = ((xx - 127.5) ** 2 / 40 ** 2 + (yy - 127.5) ** 2 / 100 ** 2) < 1
        writers[i % shards][1].write({
            "image": schema.encode_image(img), "mask": schema.encode_mask(mask),
            "joints3d": pts[:24], "landmarks3d": pts[24:], "joints2d": p2[:24], "landmarks2d": p2[24:],
            "pose": pose[i], "betas": betas[i], "gender": int(gender[i]),
            "intrinsics": Kc, "root_depth": float(root[2]), "crop_box": box, "dataset": "random",
            "subject": "0", "sequence": "0", "frame": i, "camera": 0, "has_3d": 1, "has_smpl": 1, "has_mask": 1,
            "has_landmarks": 1})
    info = []
    for name, w in writers:
        w.__exit__(None, None, None)
        info.append({"file": name, "count": w.count})
    schema.update_manifest(data_dir, split, info, source="benchmarks/input_pipeline.py random records")


def time_variant(data_dir, split, batch_size, num_batches, warmup, **kw):
    from smplr_tf.data.pipeline import hourglass_dataset

    ds = hourglass_dataset(data_dir, split, batch_size, limbs=True, shuffle=True, repeat=True, seed=0, **kw)
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    cpu0, t0 = os.times(), time.perf_counter()
    for _ in range(num_batches):
        next(it)
    dt = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"images_per_s": num_batches * batch_size / dt, "seconds": dt, "cpu_seconds": cpu,
            "cpu_ms_per_image": 1000 * cpu / (num_batches * batch_size),
            # what the same work gives when every core is ours (CPU time is what contention does not inflate)
            "idle_estimate_images_per_s": (os.cpu_count() or 1) * num_batches * batch_size / max(cpu, 1e-9)}


def main(argv):
    del argv
    import tensorflow as tf

    variants = {
        "full_f32": dict(augment=True),
        "full_f16": dict(augment=True, heatmap_dtype=tf.float16),
        "full_bf16": dict(augment=True, heatmap_dtype=tf.bfloat16),
        "on_device": dict(augment=True, targets_on_device=True),
        "no_augment": dict(augment=False),
    }
    tmp = None
    data_dir = FLAGS.data_dir or None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory()
        data_dir = tmp.name
        source = "random records"
        try:  # rendered bodies when a body model is available (the free model or --smpl_dir)
            from smplr_tf.synth.generate import generate_split

            generate_split(data_dir, FLAGS.split, FLAGS.num_examples, seed=0, num_workers=0)
            source = "tfrecords_tools/make_synthetic (rendered)"
        except Exception as e:  # noqa: BLE001  (no body model yet: fall back)
            print(f"synthetic generator unavailable ({type(e).__name__}: {e}); writing random records",
                  file=sys.stderr)
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
            os.makedirs(data_dir)
            write_random_records(data_dir, FLAGS.split, FLAGS.num_examples)
    else:
        source = data_dir
    load_before = os.getloadavg()
    results = {}
    for name in FLAGS.variants:
        results[name] = time_variant(data_dir, FLAGS.split, FLAGS.batch_size, FLAGS.num_batches,
                                     FLAGS.warmup_batches, **variants[name])
    out = {"batch_size": FLAGS.batch_size, "num_batches": FLAGS.num_batches, "cpu_count": os.cpu_count(),
           "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "data": source,
           "targets": "64x64x16 x (41 points + 4 limbs), input 256, augmentation on", "variants": results}
    if FLAGS.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"hourglass input ({source}), batch {FLAGS.batch_size}, {os.cpu_count()} cores, load average "
              f"{load_before[0]:.1f} -> {out['loadavg_after'][0]:.1f}")
        for name, r in results.items():
            print(f"  {name:12s} {r['images_per_s']:8.1f} images/s   {r['cpu_ms_per_image']:6.1f} ms CPU/image   "
                  f"~{r['idle_estimate_images_per_s']:6.0f} images/s on {os.cpu_count()} idle cores")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    define_flags()
    cli.run(main)
