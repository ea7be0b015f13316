"""tf.data input pipelines: the hourglass input (images -> heatmap targets) and the points input (DAE / SMPLR).

Reading: :mod:`smplr_tf.data.records` (``tf.data.TFRecordDataset`` over the split's shards, interleaved, parsed
in the graph). A NaN / inf in a record stops the input naming its file and index; a corrupt or truncated shard,
or a record that does not parse, fails with TF's error, which :func:`smplr_tf.data.records.named_errors` turns
into a :class:`RecordError` naming the file and the record (training wraps ``fit`` in it).

Hourglass examples: decode -> [0, 1] RGB -> resize to ``input_size`` -> augment (optional,
:mod:`smplr_tf.data.augment`) -> targets. The image networks standardise each image themselves (their first
layer, :class:`smplr_tf.models.layers.Standardize`), so this pipeline, evaluate, infer and the exported models
all feed the same [0, 1] input. Targets: :mod:`smplr_tf.data.targets`. The 41 points are root-relative
(``skeleton.points_from_smpl`` on joints3d / landmarks3d); ``num_points=23`` keeps the joints only.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from smplr_tf.body import skeleton
from smplr_tf.data import augment as aug
from smplr_tf.data import noise as noise_lib
from smplr_tf.data import points as points_lib
from smplr_tf.data import records, schema, targets

AUTOTUNE = tf.data.AUTOTUNE
RecordError = records.RecordError
read_records = records.read_records


def _base_seed(seed):
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    return int(seed)


# ------------------------------------------------------------------------------------------- hourglass
def _resize_labels_2d(points2d, src: int, dst: int):
    """Crop pixels of a ``src`` crop -> pixels of the same crop resized to ``dst`` (centre convention)."""
    return (points2d + 0.5) * (dst / src) - 0.5


def _seed_draw(base_seed: int):
    """A stateless-op seed (2,) int64: (base_seed, the next draw of a stream seeded by base_seed).

    Called in a sequential ``map``, it gives one seed per element in order, repeatable for a given seed and
    new every epoch (the stream runs on across ``repeat``). Used rather than ``enumerate``: a counter zipped
    into the dataset would keep tf.data's auto-sharding from splitting the input by file."""
    k = tf.random.uniform([], maxval=tf.int64.max, dtype=tf.int64, seed=int(base_seed) & 0x7FFFFFFF)
    return tf.stack([tf.constant(int(base_seed), tf.int64), k])


def _augment_seeds(ds, base_seed: int):
    """Append to each (file, index, record) its augmentation seed (:func:`_seed_draw`)."""
    return ds.map(lambda path, index, record: (path, index, record, _seed_draw(base_seed)))  # sequential


def _joints_known(ex):
    """(24,) bool: the joints a record has. Without true 3D (``has_3d`` = 0) a converter writes a joint it
    has no data for (Human3.6M without SMPL fits: spine, collars, hands) as zeros in both ``joints3d`` and
    ``joints2d``; such a joint is unknown. ANDed with its left/right mirror, so that the mask stays right after
    a flip augmentation (the unmapped sets are symmetric, so nothing known is lost)."""
    zero = tf.reduce_all(tf.equal(ex["joints3d"], 0.0), -1) & tf.reduce_all(tf.equal(ex["joints2d"], 0.0), -1)
    known = ~(zero & (ex["has_3d"] <= 0))
    return known & tf.gather(known, skeleton.JOINT_FLIP_PERM)


def _hourglass_example(path, index, record, seed, *, input_size, heatmap_size, depth_bins, num_points, limbs,
                       augment, cfg, backgrounds, occluders, heatmap_dtype, targets_on_device,
                       target_form="gaussian", fits_as_3d=False, smpl_params=False):
    ex = records.parse_record(path, index, record)
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
        image, mask, p3, p2 = aug.augment_example(image, mask, p3, p2, seed, has_mask=ex["has_mask"] > 0,
                                                  cfg=cfg, backgrounds=backgrounds, occluders=occluders)

    points = skeleton.points_from_smpl(p3[:24], p3[24:])[:num_points]  # (P, 3)
    points2d = tf.concat([p2[1:24], p2[24:]], axis=0)[:num_points]  # (P, 2)
    is_landmark = tf.constant(np.arange(num_points) >= skeleton.NUM_JOINTS - 1)
    joint_known = _joints_known(ex)  # (24,)
    known = tf.where(is_landmark, ex["has_landmarks"] > 0,
                     tf.pad(joint_known[1:], [[0, num_points - (skeleton.NUM_JOINTS - 1)]]))
    out = {"points": points, "points2d": points2d}
    has_3d = ex["has_3d"] > 0
    if fits_as_3d:  # SMPL fits (UP-3D) train as 3D truth
        has_3d = has_3d | (ex["has_smpl"] > 0)
    if depth_bins > 0:
        shape = (heatmap_size, heatmap_size, depth_bins)
        valid = known & has_3d & targets.inside_cube(points, shape)
        limb_valid = tf.fill([skeleton.NUM_LIMBS], has_3d)
    else:
        hw = tf.cast(input_size, tf.float32) - 0.5
        inside = tf.reduce_all((points2d >= -0.5) & (points2d <= hw), axis=-1)
        valid = known & inside
        limb_valid = tf.stack([tf.reduce_all(tf.gather(joint_known, list(c))) for c in skeleton.LIMB_CHAINS])
    if limbs:
        valid = tf.concat([valid, limb_valid], 0)
    out["mask_valid"] = tf.cast(valid, tf.float32)
    if smpl_params:  # augmentation moves the crop's body away from the records' parameters: none then
        out["pose"], out["betas"] = ex["pose"], ex["betas"]
        out["has_smpl"] = tf.cast((ex["has_smpl"] > 0) & (not augment), tf.float32)
        out["has_3d"] = tf.cast(ex["has_3d"] > 0, tf.float32)
    out["joints"] = p3[:24]
    out["joints2d"] = p2[:24]
    if targets_on_device:
        return image, out
    return _with_heatmaps(image, out, input_size=input_size, heatmap_size=heatmap_size, depth_bins=depth_bins,
                          limbs=limbs, heatmap_dtype=heatmap_dtype, target_form=target_form)


def _with_heatmaps(image, out, *, input_size, heatmap_size, depth_bins, limbs, heatmap_dtype, target_form):
    """One example's targets ``out`` (with ``joints`` (24, 3) root-relative metres and ``joints2d`` (24, 2) crop
    pixels) -> the same with ``heatmaps`` (see :func:`hourglass_dataset`) in place of the joints."""
    out = dict(out)
    j3, j2 = out.pop("joints"), out.pop("joints2d")
    if depth_bins > 0:
        shape = (heatmap_size, heatmap_size, depth_bins)
        hm = targets.volumetric_heatmaps(out["points"], shape, dtype=heatmap_dtype, form=target_form)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps(j3, shape, dtype=heatmap_dtype, form=target_form)], axis=-1)
    else:
        hm = targets.heatmaps_2d(out["points2d"], input_size, (heatmap_size, heatmap_size), dtype=heatmap_dtype)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps_2d(j2, input_size, (heatmap_size, heatmap_size),
                                                         dtype=heatmap_dtype)], axis=-1)
    out["heatmaps"] = hm
    return image, out


def heatmaps_on_device(targets_batch, *, input_size=256, heatmap_size=64, depth_bins=16, limbs=False,
                       dtype=tf.float32, target_form="gaussian"):
    """The ``heatmaps`` of a ``targets_on_device=True`` batch, built where this runs (e.g. on the GPU in the loss).

    targets_batch: the targets dict of such a batch (``points (B, P, 3)``, ``points2d (B, P, 2)``, ``joints
    (B, 24, 3)``, ``joints2d (B, 24, 2)``). Returns what the pipeline would have emitted as ``heatmaps``:
    (B, h, h, D, C) or (B, h, h, C) (limb maps computed densely: equal to the pipeline's to 1e-5).
    """
    if depth_bins > 0:
        shape = (heatmap_size, heatmap_size, depth_bins)
        hm = targets.volumetric_heatmaps(targets_batch["points"], shape, dtype=dtype, form=target_form)
        if limbs:
            hm = tf.concat([hm, targets.limb_heatmaps(targets_batch["joints"], shape, dtype=dtype,
                                                      form=target_form)], axis=-1)
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
                      targets_on_device=False, num_shards=1, shard_index=0, cache=False,
                      target_form="gaussian", mix_data_dir=None, mix_fraction=0.0, fits_as_3d=False,
                      smpl_params=False):
    """The stacked-hourglass input.

    Yields ``(image (B, S, S, 3) float32 RGB in [0, 1], targets)`` with targets:

    * ``heatmaps``: ``(B, h, h, D, C)`` (``depth_bins`` > 0) or ``(B, h, h, C)`` (``depth_bins`` = 0), C =
      num_points [+ 4 limbs], of ``target_form`` (volumetric: "gaussian", unnormalised Gaussians, or "code",
      the authors' values; see :mod:`smplr_tf.data.targets`), ``heatmap_dtype``;
      absent when ``targets_on_device`` (the loss builds them from ``points`` / ``joints``).
    * ``points``: ``(B, P, 3)`` root-relative metres (after augmentation).
    * ``points2d``: ``(B, P, 2)`` pixels of the ``input_size`` crop.
    * ``mask_valid``: ``(B, C)`` float32 1/0: the target of that channel is usable (3D known, the landmark
      known, the point inside the cube / crop).
    * with ``targets_on_device`` also ``joints (B, 24, 3)`` root-relative and ``joints2d (B, 24, 2)`` pixels
      for the limb maps.
    * with ``smpl_params`` also the records' ``pose (B, 72)`` axis-angle, ``betas (B, 10)``, ``has_smpl (B,)``
      float 1/0 (0 for every example when ``augment``: the augmented crop no longer matches them) and
      ``has_3d (B,)`` float 1/0.

    Training (shuffle) batches drop the remainder unless ``drop_remainder`` says otherwise. ``seed`` makes
    the order and the augmentation repeatable. ``num_shards`` / ``shard_index``: a part of the records, outside
    tf.distribute only (see :func:`smplr_tf.data.records.read_records`). ``augment_config``: probabilities and
    ranges (:class:`smplr_tf.data.augment.AugmentConfig`).

    ``cache``: keep every decoded, resized example with its points in memory after the first pass, so that
    later epochs cost no decoding (on a 2-core CPU the decoding threads otherwise slow every training step
    by contending with the model's threads); the heatmaps are still made per epoch from the cached points. Only
    without ``augment`` (augmented examples differ per epoch); memory: about S*S*3 * 4 bytes per example
    (49 kB at 64 px, 197 kB at 128 px, 786 kB at 256 px). The order is still reshuffled every epoch.

    ``mix_data_dir``: a second records directory whose ``split`` is drawn from with probability
    ``mix_fraction`` per example (:func:`mix_weights`; 0: in proportion to the two splits' sizes), the rest
    from ``data_dir`` (the paper's UP-3D recipe: UP-3D plus an 18K-image SURREAL subset). Each source is
    shuffled and repeated on its own and the choice is drawn by ``tf.data.Dataset.sample_from_datasets`` from
    ``seed``: the same seed gives the same sequence. Without ``repeat`` the stream ends when either source does.

    ``fits_as_3d``: records without measured 3D but with SMPL fits (``has_3d = 0``, ``has_smpl = 1``: UP-3D)
    count as 3D truth in ``mask_valid`` (their fitted joints and landmarks are the targets).
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

    # With ``cache`` the cached targets are the points and joints (a few kB), not the heatmaps (up to 11 MB at
    # full size): the heatmaps are made after the cache, every epoch.
    def fn(path, index, record, seed=None):
        return _hourglass_example(
            path, index, record, seed, input_size=input_size, heatmap_size=heatmap_size, depth_bins=depth_bins,
            num_points=num_points, limbs=limbs, augment=augment, cfg=cfg, backgrounds=backgrounds,
            occluders=occluders, heatmap_dtype=heatmap_dtype, targets_on_device=targets_on_device or cache,
            target_form=target_form, fits_as_3d=fits_as_3d, smpl_params=smpl_params)

    def heatmaps(image, out):
        return _with_heatmaps(image, out, input_size=input_size, heatmap_size=heatmap_size, depth_bins=depth_bins,
                              limbs=limbs, heatmap_dtype=heatmap_dtype, target_form=target_form)

    def source(source_files, source_seed):
        d = read_records(source_files, shuffle_files=shuffle, seed=source_seed, num_shards=num_shards,
                         shard_index=shard_index)
        if cache:  # decode once (no augmentation), then shuffle / repeat the cached examples
            d = d.map(fn, num_parallel_calls=AUTOTUNE, deterministic=True).cache()
        if shuffle:
            d = d.shuffle(shuffle_buffer, seed=source_seed, reshuffle_each_iteration=True)
        if repeat:
            d = d.repeat()
        return d

    ds = source(files, base)
    if mix_data_dir:
        weights = mix_weights(data_dir, mix_data_dir, split, mix_fraction)
        mix = source(schema.split_files(mix_data_dir, split), (base + 7919) & 0x7FFFFFFF)
        ds = tf.data.Dataset.sample_from_datasets([ds, mix], weights=list(weights), seed=(base + 1) & 0x7FFFFFFF,
                                                  stop_on_empty_dataset=True)
    if not cache:
        if augment:  # per-example augmentation seeds that differ across epochs
            ds = _augment_seeds(ds, base)
        ds = ds.map(fn, num_parallel_calls=AUTOTUNE, deterministic=True)
    elif not targets_on_device:
        ds = ds.map(heatmaps, num_parallel_calls=AUTOTUNE, deterministic=True)
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
        ds = read_records(files, shuffle_files=shuffle, seed=base, num_shards=num_shards, shard_index=shard_index)

        def parse(f, i, r):
            ex = records.parse_record(f, i, r)
            g = ex["gender"]
            ok = tf.debugging.Assert(g < num_genders, [f, "record", i, ": gender index", g,
                                                       "needs a SMPL layer with genders", str(smpl_layer.genders)])
            with tf.control_dependencies([ok]):
                g = tf.identity(g)
            return {"pose": ex["pose"], "betas": ex["betas"], "gender": g, "has_smpl": ex["has_smpl"]}

        ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)

        def has_smpl(d):
            return d["has_smpl"] > 0

        def drop_flag(d):
            return {k: v for k, v in d.items() if k != "has_smpl"}

        ds = ds.filter(has_smpl).map(drop_flag)
        if num_samples is not None:
            ds = ds.take(int(num_samples))
        if shuffle:
            ds = ds.shuffle(shuffle_buffer, seed=base, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    ds = ds.map(lambda d: (d, _seed_draw(base + 1)))  # sequential: one noise seed per batch, in order

    def smpl_fn(d, seed):
        out = points_lib.smpl_points(smpl_layer, d["pose"], d["betas"], d["gender"], num_points)
        noisy = noise_lib.apply_noise(out["points"], noise, seed=seed, scale=noise_scale)
        return {"points": out["points"], "noisy": noisy, "rotmats": out["rotmats"], "betas": d["betas"],
                "gender": tf.cast(d["gender"], tf.int32)}

    ds = ds.map(smpl_fn, num_parallel_calls=1, deterministic=True)
    return ds.prefetch(AUTOTUNE)


def dataset_size(data_dir, split) -> int:
    """Number of examples of ``split`` in the manifest."""
    return int(schema.read_manifest(data_dir)["splits"][split]["num_examples"])


def mix_weights(data_dir, mix_data_dir, split, mix_fraction=0.0) -> tuple[float, float]:
    """(p_data, p_mix): the probabilities with which :func:`hourglass_dataset` draws an example from
    ``data_dir`` and from ``mix_data_dir``. mix_fraction in (0, 1): that share from ``mix_data_dir``; 0: in
    proportion to the sizes of the two ``split`` s (each record equally likely, as one concatenated set)."""
    f = float(mix_fraction)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"mix_fraction must be in [0, 1), got {f}")
    if f == 0.0:
        n, m = dataset_size(data_dir, split), dataset_size(mix_data_dir, split)
        f = m / float(n + m)
    return 1.0 - f, f


__all__ = ["hourglass_dataset", "points_dataset", "heatmaps_on_device", "read_records", "RecordError", "dataset_size",
           "mix_weights"]
