"""tf.data input pipelines: the hourglass input (images -> heatmap targets) and the points input (DAE / SMPLR).

Reading: the shards of a split (``schema.split_files``) are read file by file, each record tagged with its
file and its index in that file, then interleaved. Every record is validated before use (a cheap check of the
serialized bytes: the record framing / CRC, the protobuf, every schema field present with its length, no NaN
or inf in a float field, and the 256 x 256 size in the JPEG / PNG headers); the first bad record stops the
pipeline with a :class:`RecordError` whose message names the file and the record index, e.g.
``data/train-00000-of-00002.tfrecord record 17: field 'betas' holds NaN or inf``. (TF's own reader reports a
corrupt record without the file name, hence the per-file reader with the check.)

Hourglass examples: decode -> resize to ``input_size`` -> augment (optional, :mod:`smplr_tf.data.augment`)
-> per-image standardisation -> targets (:mod:`smplr_tf.data.targets`). The 41 points are root-relative
(``skeleton.points_from_smpl`` on joints3d / landmarks3d); ``num_points=23`` keeps the joints only.
"""

from __future__ import annotations

import struct

import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import augment as aug
from smplr_tf.data import noise as noise_lib
from smplr_tf.data import points as points_lib
from smplr_tf.data import schema, targets

AUTOTUNE = tf.data.AUTOTUNE


class RecordError(schema.SchemaError):
    """A bad record; the message starts with '<file> record <index>:'."""


# ------------------------------------------------------------------------------------------- validation
def jpeg_size(data: bytes):
    """(height, width) from a JPEG's SOF header, or None if the bytes are not a readable JPEG header."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(h), int(w)
        i += 2 + seg_len
    return None


def png_size(data: bytes):
    """(height, width) from a PNG's IHDR, or None."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return int(h), int(w)


def check_record(record: bytes, where: str, check_images: bool = True) -> None:
    """Validate one serialized record against the schema; raise :class:`RecordError` naming ``where``."""
    try:
        ex = tf.train.Example.FromString(record)
    except Exception as e:  # protobuf DecodeError
        raise RecordError(f"{where}: corrupt record (not a tf.train.Example: {e})") from None
    feats = ex.features.feature
    missing = [k for k in schema.ALL_FIELDS if k not in feats]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}")
    for k, shape in schema.FLOAT_FIELDS.items():
        vals = feats[k].float_list.value
        size = int(np.prod(shape)) if shape else 1
        if len(vals) != size:
            raise RecordError(f"{where}: field '{k}' has {len(vals)} floats, expected {size}")
        if not np.all(np.isfinite(np.asarray(vals, np.float32))):
            raise RecordError(f"{where}: field '{k}' holds NaN or inf")
    for k in schema.INT_FIELDS:
        if len(feats[k].int64_list.value) != 1:
            raise RecordError(f"{where}: field '{k}' must hold one int64")
    for k in schema.BYTES_FIELDS:
        if len(feats[k].bytes_list.value) != 1:
            raise RecordError(f"{where}: field '{k}' must hold one bytes value")
    if check_images:
        size = (schema.IMAGE_SIZE, schema.IMAGE_SIZE)
        for key, read_size, fmt in (("image", jpeg_size, "JPEG"), ("mask", png_size, "PNG")):
            hw = read_size(feats[key].bytes_list.value[0])
            if hw is None:
                raise RecordError(f"{where}: field '{key}' is not a {fmt}")
            if hw != size:
                raise RecordError(f"{where}: {key} is {hw[1]}x{hw[0]}, expected {size[1]}x{size[0]}")


def _record_iterator(path: str):
    """Raw records of one file. TF 1's iterator: 0.02 ms per record against 0.36 ms for iterating a
    TFRecordDataset eagerly (measured); its deprecation notice is silenced (it still ships with TF 2.21)."""
    try:
        from tensorflow.python.util import deprecation

        with deprecation.silence():
            return tf.compat.v1.io.tf_record_iterator(path)
    except (ImportError, AttributeError):  # pragma: no cover - other TF versions
        return iter(tf.data.TFRecordDataset(path).as_numpy_iterator())


def iter_file(path: str, check_images: bool = True):
    """Yield (index, serialized record) of one TFRecord file, validating each; RecordError on the first bad one."""
    it = _record_iterator(path)
    index = 0
    while True:
        try:
            record = next(it)
        except StopIteration:
            return
        except tf.errors.DataLossError as e:
            raise RecordError(f"{path} record {index}: corrupt record ({e.message})") from None
        check_record(record, f"{path} record {index}", check_images)
        yield index, record
        index += 1


@tf.autograph.experimental.do_not_convert
def _file_dataset(path, check_images: bool):
    def gen(p):
        yield from iter_file(p.decode() if isinstance(p, bytes) else str(p), check_images)

    ds = tf.data.Dataset.from_generator(
        gen, args=(path,), output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.string)))
    return ds.map(lambda i, r: (path, i, r))


def read_records(files, *, shuffle_files: bool = False, seed=None, check_images: bool = True,
                 cycle_length: int = 4, num_shards: int = 1, shard_index: int = 0):
    """Dataset of (file (), index () int64, record () string), validated, interleaved over ``files``.

    num_shards / shard_index: keep every num_shards-th file (one worker's part); with fewer files than shards
    the records are sharded instead.
    """
    files = list(files)
    if not files:
        raise ValueError("read_records: no files")
    by_file = num_shards > 1 and len(files) >= num_shards
    if by_file:
        files = files[shard_index::num_shards]
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if shuffle_files and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(lambda f: _file_dataset(f, check_images), cycle_length=max(1, min(cycle_length, len(files))),
                       block_length=1, num_parallel_calls=AUTOTUNE, deterministic=True)
    if num_shards > 1 and not by_file:
        ds = ds.shard(num_shards, shard_index)
    return ds


def _base_seed(seed):
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    return int(seed)


# ------------------------------------------------------------------------------------------- hourglass
def _resize_labels_2d(points2d, src: int, dst: int):
    """Crop pixels of a ``src`` crop -> pixels of the same crop resized to ``dst`` (centre convention)."""
    return (points2d + 0.5) * (dst / src) - 0.5


def _hourglass_example(record, counter, *, input_size, heatmap_size, depth_bins, num_points, limbs, augment,
                       base_seed, cfg, backgrounds, occluders, heatmap_dtype, targets_on_device):
    ex = schema.parse_example(record, decode_images=False)
    image = tf.io.decode_jpeg(ex["image"], channels=3)
    mask = tf.io.decode_png(ex["mask"], channels=1)
    image = tf.ensure_shape(image, (schema.IMAGE_SIZE, schema.IMAGE_SIZE, 3))
    mask = tf.ensure_shape(mask, (schema.IMAGE_SIZE, schema.IMAGE_SIZE, 1))
    image = tf.cast(image, tf.float32) * (1.0 / 255.0)
    mask = tf.cast(mask, tf.float32) * (1.0 / 255.0)
    j3, l3 = ex["joints3d"], ex["landmarks3d"]
    p3 = tf.concat([j3, l3], axis=0) - j3[:1]  # (42, 3) root-relative
    p2 = tf.concat([ex["joints2d"], ex["landmarks2d"]], axis=0)  # (42, 2) crop pixels
    if input_size != schema.IMAGE_SIZE:
        image = tf.image.resize(image[None], (input_size, input_size), antialias=True)[0]
        mask = tf.image.resize(mask[None], (input_size, input_size), antialias=True)[0]
        p2 = _resize_labels_2d(p2, schema.IMAGE_SIZE, input_size)
    mask = mask[..., 0]
    if augment:
        seed = tf.stack([tf.constant(base_seed, tf.int64), tf.cast(counter, tf.int64)])
        image, mask, p3, p2 = aug.augment_example(image, mask, p3, p2, seed, has_mask=ex["has_mask"] > 0,
                                                  cfg=cfg, backgrounds=backgrounds, occluders=occluders)

    points = skeleton.points_from_smpl(p3[:24], p3[24:])[:num_points]  # (P, 3)
    points2d = tf.concat([p2[1:24], p2[24:]], axis=0)[:num_points]  # (P, 2)
    is_landmark = tf.constant(np.arange(num_points) >= skeleton.NUM_JOINTS - 1)
    known = tf.where(is_landmark, ex["has_landmarks"] > 0, tf.ones([num_points], tf.bool))
    out = {"points": points, "points2d": points2d}
    if depth_bins > 0:
        shape = (heatmap_size, heatmap_size, depth_bins)
        valid = known & (ex["has_3d"] > 0) & targets.inside_cube(points, shape)
        limb_valid = tf.fill([skeleton.NUM_LIMBS], ex["has_3d"] > 0)
    else:
        hw = tf.cast(input_size, tf.float32) - 0.5
        inside = tf.reduce_all((points2d >= -0.5) & (points2d <= hw), axis=-1)
        valid = known & inside
        limb_valid = tf.ones([skeleton.NUM_LIMBS], tf.bool)
    if limbs:
        valid = tf.concat([valid, limb_valid], 0)
    out["mask_valid"] = tf.cast(valid, tf.float32)
    if targets_on_device:
        out["joints"] = p3[:24]
        out["joints2d"] = p2[:24]
        return image, out
    if depth_bins > 0:
        hm = targets.volumetric_heatmaps(points, shape, dtype=heatmap_dtype)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps(p3[:24], shape, dtype=heatmap_dtype)], axis=-1)
    else:
        hm = targets.heatmaps_2d(points2d, input_size, (heatmap_size, heatmap_size), dtype=heatmap_dtype)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps_2d(p2[:24], input_size, (heatmap_size, heatmap_size),
                                                         dtype=heatmap_dtype)], axis=-1)
    out["heatmaps"] = hm
    return image, out


def heatmaps_on_device(targets_batch, *, input_size=256, heatmap_size=64, depth_bins=16, limbs=False,
                       dtype=tf.float32):
    """The ``heatmaps`` of a ``targets_on_device=True`` batch, built where this runs (e.g. on the GPU in the loss).

    targets_batch: the targets dict of such a batch (``points (B, P, 3)``, ``points2d (B, P, 2)``, ``joints
    (B, 24, 3)``, ``joints2d (B, 24, 2)``). Returns what the pipeline would have emitted as ``heatmaps``:
    (B, h, h, D, C) or (B, h, h, C) (limb maps computed densely: equal to the pipeline's to 4e-6).
    """
    if depth_bins > 0:
        shape = (heatmap_size, heatmap_size, depth_bins)
        hm = targets.volumetric_heatmaps(targets_batch["points"], shape, dtype=dtype)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps(targets_batch["joints"], shape, dtype=dtype)], axis=-1)
        return hm
    size = (heatmap_size, heatmap_size)
    hm = targets.heatmaps_2d(targets_batch["points2d"], input_size, size, dtype=dtype)
    if limbs:
        hm = tf.concat([hm, targets.limb_heatmaps_2d(targets_batch["joints2d"], input_size, size, dtype=dtype)], -1)
    return hm


def hourglass_dataset(data_dir, split, batch_size, *, input_size=256, heatmap_size=64, depth_bins=16,
                      num_points=41, limbs=False, augment=False, shuffle=False, repeat=False, seed=None,
                      background_dir=None, occluder_dir=None, augment_config: aug.AugmentConfig | None = None,
                      shuffle_buffer=512, drop_remainder=None, heatmap_dtype=tf.float32,
                      targets_on_device=False, num_shards=1, shard_index=0, check_records=True,
                      cache=False):
    """The stacked-hourglass input.

    Yields ``(image (B, S, S, 3) float32 standardised, targets)`` with targets:

    * ``heatmaps``: ``(B, h, h, D, C)`` (``depth_bins`` > 0) or ``(B, h, h, C)`` (``depth_bins`` = 0), C =
      num_points [+ 4 limbs], unnormalised Gaussians (see :mod:`smplr_tf.data.targets`), ``heatmap_dtype``;
      absent when ``targets_on_device`` (the loss builds them from ``points`` / ``joints``).
    * ``points``: ``(B, P, 3)`` root-relative metres (after augmentation).
    * ``points2d``: ``(B, P, 2)`` pixels of the ``input_size`` crop.
    * ``mask_valid``: ``(B, C)`` float32 1/0: the target of that channel is usable (3D known, the landmark
      known, the point inside the cube / crop).
    * with ``targets_on_device`` also ``joints (B, 24, 3)`` root-relative and ``joints2d (B, 24, 2)`` pixels
      for the limb maps.

    Training (shuffle) batches drop the remainder unless ``drop_remainder`` says otherwise. ``seed`` makes
    the order and the augmentation repeatable. ``num_shards`` / ``shard_index``: this worker's part (see
    :func:`read_records`). ``check_records=False`` skips the image-header size check (the field / NaN checks
    always run). ``augment_config``: probabilities and ranges (:class:`smplr_tf.data.augment.AugmentConfig`).

    ``cache``: keep every decoded, resized example with its targets in memory after the first pass, so that
    later epochs cost no decoding (on a 2-core CPU the decoding threads otherwise slow every training step
    by contending with the model's threads). Only without ``augment`` (augmented examples differ per epoch);
    memory: about (S*S*3 + h*h*D*C) * 4 bytes per example (0.7 MB at 64 px / 16^3 x 41; full size 11.5 MB:
    use it for small sets only). The order is still reshuffled every epoch.
    """
    if cache and augment:
        raise ValueError("hourglass_dataset: cache=True needs augment=False (augmented examples differ per epoch)")
    if num_points not in (skeleton.NUM_JOINTS - 1, skeleton.NUM_POINTS):
        raise ValueError(f"num_points must be 23 (joints only) or 41, got {num_points}")
    files = schema.split_files(data_dir, split)
    base = _base_seed(seed)
    cfg = augment_config or aug.AugmentConfig()
    backgrounds = aug.ImageBank(background_dir, "background") if (augment and background_dir) else None
    occluders = aug.ImageBank(occluder_dir, "occluder") if (augment and occluder_dir) else None
    ds = read_records(files, shuffle_files=shuffle, seed=base, check_images=check_records,
                      num_shards=num_shards, shard_index=shard_index)
    ds = ds.map(lambda f, i, r: r)

    def fn(counter, record):
        return _hourglass_example(
            record, counter, input_size=input_size, heatmap_size=heatmap_size, depth_bins=depth_bins,
            num_points=num_points, limbs=limbs, augment=augment, base_seed=base, cfg=cfg,
            backgrounds=backgrounds, occluders=occluders, heatmap_dtype=heatmap_dtype,
            targets_on_device=targets_on_device)

    if cache:  # decode once (no augmentation: the counter is unused), then shuffle / repeat the cached examples
        ds = ds.enumerate().map(fn, num_parallel_calls=AUTOTUNE, deterministic=True).cache()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=base, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if not cache:  # a running counter: per-example augmentation seeds that differ across epochs
        ds = ds.enumerate().map(fn, num_parallel_calls=AUTOTUNE, deterministic=True)
    if drop_remainder is None:
        drop_remainder = bool(shuffle)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(AUTOTUNE)


# ------------------------------------------------------------------------------------------- points
def points_dataset(data_dir, split, batch_size, *, smpl_layer, noise="uniform", seed=None, num_points=41,
                   shuffle=False, repeat=False, num_samples=None, noise_scale=1.0, shuffle_buffer=4096,
                   drop_remainder=None, num_shards=1, shard_index=0):
    """The DAE / SMPLR input: SMPL parameters (from the records or sampled) -> points by our SMPL layer.

    data_dir: a records directory, or None to sample parameters (:mod:`smplr_tf.data.points`); then
    ``num_samples`` fixes the set's size (the same samples every epoch; None = an endless stream of new ones).
    With records, those without SMPL parameters (has_smpl = 0) are skipped; ``num_samples`` keeps the first ones.

    Yields dicts of batches: ``points (B, P, 3)`` clean, root-relative metres; ``noisy (B, P, 3)``
    (:func:`smplr_tf.data.noise.apply_noise` with mode ``noise``: "uniform" | "depth0" | "none");
    ``rotmats (B, 24, 3, 3)``; ``betas (B, 10)``; ``gender (B,)`` int32 index into ``smpl_layer.genders``.
    """
    if noise not in noise_lib.NOISE_MODES:
        raise ValueError(f"noise must be one of {noise_lib.NOISE_MODES}, got '{noise}'")
    if num_points not in (skeleton.NUM_JOINTS - 1, skeleton.NUM_POINTS):
        raise ValueError(f"num_points must be 23 (joints only) or 41, got {num_points}")
    base = _base_seed(seed)
    num_genders = len(smpl_layer.genders)
    if drop_remainder is None:
        drop_remainder = bool(shuffle) or (repeat and data_dir is not None)

    if data_dir is None:
        if num_samples is None:
            ds = tf.data.Dataset.range(np.iinfo(np.int64).max)
        else:
            n_batches = int(num_samples) // batch_size if drop_remainder else -(-int(num_samples) // batch_size)
            ds = tf.data.Dataset.range(n_batches)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
        if shuffle:
            ds = ds.shuffle(4096, seed=base)
        if repeat:
            ds = ds.repeat()

        def sample(b):
            pose, betas, gender = points_lib.sample_params(tf.stack([tf.constant(base, tf.int64), b]), batch_size,
                                                           num_genders)
            return {"pose": pose, "betas": betas, "gender": gender}

        ds = ds.map(sample, num_parallel_calls=AUTOTUNE, deterministic=True)
        if num_samples is not None and int(num_samples) % batch_size and not drop_remainder:
            last, n_full = int(num_samples) % batch_size, int(num_samples) // batch_size

            def trim(k, d):  # the final batch holds only the remainder
                n = tf.where(k % (n_full + 1) == n_full, last, batch_size)
                return {key: v[:n] for key, v in d.items()}

            ds = ds.enumerate().map(trim)
    else:
        files = schema.split_files(data_dir, split)
        ds = read_records(files, shuffle_files=shuffle, seed=base, check_images=False,
                          num_shards=num_shards, shard_index=shard_index)

        def parse(f, i, r):
            ex = schema.parse_example(r, decode_images=False)
            g = ex["gender"]
            ok = tf.debugging.Assert(g < num_genders, [f, "record", i, ": gender index", g,
                                                       "needs a SMPL layer with genders", str(smpl_layer.genders)])
            with tf.control_dependencies([ok]):
                g = tf.identity(g)
            return {"pose": ex["pose"], "betas": ex["betas"], "gender": g, "has_smpl": ex["has_smpl"]}

        ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.filter(lambda d: d["has_smpl"] > 0).map(lambda d: {k: v for k, v in d.items() if k != "has_smpl"})
        if num_samples is not None:
            ds = ds.take(int(num_samples))
        if shuffle:
            ds = ds.shuffle(shuffle_buffer, seed=base, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    ds = ds.enumerate()

    def smpl_fn(k, d):
        out = points_lib.smpl_points(smpl_layer, d["pose"], d["betas"], d["gender"], num_points)
        seed = tf.stack([tf.constant(base + 1, tf.int64), tf.cast(k, tf.int64)])
        noisy = noise_lib.apply_noise(out["points"], noise, seed=seed, scale=noise_scale)
        return {"points": out["points"], "noisy": noisy, "rotmats": out["rotmats"], "betas": d["betas"],
                "gender": tf.cast(d["gender"], tf.int32)}

    ds = ds.map(smpl_fn, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(AUTOTUNE)


def dataset_size(data_dir, split) -> int:
    """Number of examples of ``split`` in the manifest."""
    return int(schema.read_manifest(data_dir)["splits"][split]["num_examples"])


__all__ = ["hourglass_dataset", "points_dataset", "heatmaps_on_device", "read_records", "check_record", "iter_file",
           "RecordError", "jpeg_size", "png_size", "dataset_size"]
