"""The ablation subset of the paper (Sec. 4.4): keep a frame only if, against every frame kept before it, some
joint moved at least 150 mm (i.e. max over joints of the joint distance >= 150 mm).

Usage::

    python tfrecords_tools/subsample.py --in_dir data/surreal --out_dir data/surreal_sub --split train
    python tfrecords_tools/subsample.py --benchmark 1000000      # throughput on synthetic frames

How it is fast (millions of frames)
-----------------------------------
The rule is greedy and order dependent (frame i is compared with the frames kept before it), so frames are
visited in order; the cost is finding, for each frame, whether any kept frame is *near* (all joints within r).
Near frames have every coordinate within r, so on any D chosen coordinates they lie within an axis-aligned
box of half-side r. We hash cells of side 2r on D coordinates (the D of largest variance): a kept frame is
inserted into each cell its (x - r, x + r) box touches (at most 2 per coordinate, <= 2^D cells), so a query
needs ONE dict lookup of its own cell, and only the frames in that bucket get the exact test. Before that,
each block of frames is tested against the most recently kept frames (near frames are mostly recent frames
of the same clip), all vectorised. Hash collisions only add candidates; a near frame is never missed, so the
result equals the brute-force rule exactly (tested).

Which joints: root-relative by default (``--relative``): the paper subsamples to spread *poses* uniformly;
camera-frame positions would let a mere translation count as a new sample. ``--norelative`` uses joints3d as
stored.
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
from absl import flags

from smplr_tf import cli

try:
    from tfrecords_tools import _common
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import _common

FLAGS = flags.FLAGS

_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9,
                 0x27D4EB2F165667C5, 0x85EBCA77C2B2AE63, 0x9FB21C651E98DF25, 0xA0761D6478BD642F],
                dtype=np.uint64)


def _keys(cells: np.ndarray) -> np.ndarray:
    """(..., D) int64 cell indices -> (...) uint64 hash keys (collisions are harmless: extra candidates)."""
    c = np.ascontiguousarray(cells, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        return np.bitwise_xor.reduce(c * _MIX[: c.shape[-1]], axis=-1)


def brute_force_subsample(joints, threshold: float = 0.15) -> np.ndarray:
    """Reference O(N * kept) implementation of the rule. joints (N, J, 3) metres. Returns kept indices."""
    x = np.asarray(joints, np.float64)
    kept: list[int] = []
    for i in range(len(x)):
        if kept:
            d = np.linalg.norm(x[kept] - x[i], axis=-1).max(axis=-1)  # (K,) max joint distance
            if np.any(d < threshold):
                continue
        kept.append(i)
    return np.asarray(kept, np.int64)


def subsample(joints, threshold: float = 0.15, hash_dims: int = 6, block: int = 16,
              recent: int = 32) -> np.ndarray:
    """Fast exact version of :func:`brute_force_subsample` (see the module docstring).

    joints: (N, J, 3) metres (float32 is fine). threshold: metres (paper: 0.15). hash_dims: D coordinates
    hashed (<= 12). block: frames handled per vectorised step. Returns the kept indices, increasing (int64).

    Per block of frames: (0) all frames against the ``recent`` most recently kept frames, vectorised (in video
    most frames are rejected here); (1) for the rest, one dict lookup per frame gives the kept frames sharing
    its cell; all (frame, candidate) pairs get a cheap 16-coordinate test then the exact one, vectorised;
    (2) the frames that survive are tested against each other (a small matrix) and kept greedily in order;
    (3) the kept ones enter the hash.
    """
    x = np.ascontiguousarray(np.asarray(joints, np.float32).reshape(len(joints), -1, 3))
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    flat = x.reshape(n, -1)
    D = int(min(hash_dims, flat.shape[1], len(_MIX)))
    sample = flat[:: max(1, n // 100000)]
    dims = np.argsort(-sample.var(axis=0))[:D]
    r = float(threshold)
    side = 2.0 * r
    hx = flat[:, dims].astype(np.float64)
    order = np.argsort(-sample.var(axis=0))
    pre = np.ascontiguousarray(flat[:, order[: min(16, flat.shape[1])]])  # prefilter coordinates
    own = _keys(np.floor(hx / side).astype(np.int64)).tolist()  # cell of each frame
    lo_all = np.floor((hx - r) / side).astype(np.int64)
    span_all = np.floor((hx + r) / side).astype(np.int64) - lo_all  # 0 or 1 per coordinate
    bits = ((np.arange(2 ** D)[:, None] >> np.arange(D)[None, :]) & 1).astype(np.int64)  # (2^D, D)
    r2 = np.float32(r * r)
    buckets: dict[int, list[int]] = {}
    kept: list[int] = []
    empty: list[int] = []
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        # (0) against the most recently kept frames (in video most frames are near one of them): no hashing
        near = np.zeros(b1 - b0, bool)
        if kept:
            rec = np.asarray(kept[-recent:], np.int64)
            xb = x[b0:b1]
            ok = (np.abs(pre[b0:b1, None] - pre[None, rec]) < r).all(-1)  # (B, R) cheap necessary test
            bi, ri = np.nonzero(ok)
            if len(bi):
                hit = ((xb[bi] - x[rec[ri]]) ** 2).sum(-1).max(-1) < r2
                near[bi[hit]] = True
        # (1) the others against every frame kept before this block, through the hash
        todo = np.flatnonzero(~near)
        cands = [buckets.get(own[b0 + i], empty) for i in todo.tolist()]
        lens = np.fromiter((len(c) for c in cands), np.int64, len(todo))
        if lens.sum():
            rows = np.repeat(todo + b0, lens)
            cols = np.fromiter(itertools.chain.from_iterable(cands), np.int64, int(lens.sum()))
            # cheap necessary test on a few coordinates first (near => every coordinate within r)
            ok = (np.abs(pre[rows] - pre[cols]) < r).all(-1)
            rows, cols = rows[ok], cols[ok]
            hit = ((x[rows] - x[cols]) ** 2).sum(-1).max(-1) < r2
            near |= np.bincount(rows[hit] - b0, minlength=b1 - b0) > 0
        surv = np.flatnonzero(~near) + b0
        if len(surv) == 0:
            continue
        # (2) survivors against each other, greedily in order
        xs = x[surv]
        close = (((xs[:, None] - xs[None, :]) ** 2).sum(-1).max(-1) < r2)
        keep_mask = np.zeros(len(surv), bool)
        for a in range(len(surv)):
            if not close[a, :a][keep_mask[:a]].any():
                keep_mask[a] = True
        # (3) insert the kept frames into every cell their +-r box touches
        new = surv[keep_mask]
        kept.extend(new.tolist())
        cells = lo_all[new][:, None, :] + bits[None] * span_all[new][:, None, :]  # (K, 2^D, D)
        keys = _keys(cells)
        for i, krow in zip(new.tolist(), keys.tolist()):
            for k in set(krow):
                buckets.setdefault(k, []).append(i)
    return np.asarray(kept, np.int64)


def synthetic_frames(n: int, clip: int = 100, seed: int = 0) -> np.ndarray:
    """Video-like synthetic joints for the benchmark: clips of random walks (1-3 cm per frame per joint)
    around random rest poses (spread ~0.3 m). Returns (n, 24, 3) float32 metres."""
    rng = np.random.default_rng(seed)
    clips = -(-n // clip)
    start = rng.normal(0, 0.3, (clips, 1, 24, 3)).astype(np.float32)
    steps = rng.normal(0, 0.012, (clips, clip, 24, 3)).astype(np.float32)
    return (start + np.cumsum(steps, axis=1)).reshape(-1, 24, 3)[:n]


# ------------------------------------------------------------------------------------------------ records
def _file_joints(path) -> np.ndarray:
    import tensorflow as tf

    spec = {"joints3d": tf.io.FixedLenFeature([72], tf.float32)}
    ds = tf.data.TFRecordDataset(path).batch(4096).map(lambda s: tf.io.parse_example(s, spec)["joints3d"])
    parts = [b.numpy() for b in ds]
    return np.concatenate(parts).reshape(-1, 24, 3) if parts else np.zeros((0, 24, 3), np.float32)


def read_joints(files, num_workers: int = 0) -> np.ndarray:
    """joints3d (N, 24, 3) float32 metres of every record in ``files``, in file order then record order.
    num_workers > 1: that many files are parsed at once (threads; TensorFlow releases the GIL), the result is
    the same."""
    files = list(files)
    if num_workers > 1:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
            parts = list(pool.map(_file_joints, files))
    else:
        parts = [_file_joints(f) for f in files]
    return np.concatenate(parts) if parts else np.zeros((0, 24, 3), np.float32)


def subsample_records(in_dir: str, out_dir: str, split: str, threshold: float = 0.15, relative: bool = True,
                      examples_per_shard: int = 2000, num_workers: int = 0) -> dict:
    """Read ``split`` of ``in_dir``, keep the subset, write it to ``out_dir`` (same schema). Returns stats.

    num_workers > 1: the input shards' joints are parsed that many at a time (the same output). The selection
    itself is one greedy pass (frame i against every frame kept before it, over the whole split), so it is not
    split into parts: no --num_shards here (it runs at millions of frames per minute, see --benchmark)."""
    import tensorflow as tf

    from smplr_tf.data import schema

    files = schema.split_files(in_dir, split)
    man = schema.read_manifest(in_dir)
    j = read_joints(files, num_workers)
    if relative:
        j = j - j[:, :1]
    t0 = time.perf_counter()
    keep = subsample(j, threshold)
    dt = time.perf_counter() - t0
    keep_set = np.zeros(len(j), bool)
    keep_set[keep] = True
    info = {k: v for k, v in man.items() if k not in ("splits", "schema_version")}
    info["subsample"] = {"source": os.path.abspath(in_dir), "threshold_m": threshold, "relative": relative,
                         "rule": "keep iff max_joint_distance >= threshold against every kept frame"}
    with _common.ShardedOutput(out_dir, split, examples_per_shard, **info) as out:
        for i, rec in enumerate(_common.progress(tf.data.TFRecordDataset(files).as_numpy_iterator(), total=len(j),
                                                 desc=f"subsample {split}", unit="rec")):
            if keep_set[i]:
                out.write_serialized(rec)
        out.finish()
    return {"input": int(len(j)), "kept": int(len(keep)), "seconds": dt}


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv``: --in_dir and --out_dir are required unless --benchmark. Called under
    ``__main__``; a flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "in_dir", None, "Input records directory.")
    define(flags.DEFINE_string, "out_dir", None, "Output records directory (shards + manifest.json).")
    define(flags.DEFINE_string, "split", "train", "The split read and written.")
    define(flags.DEFINE_float, "threshold_mm", 150.0, "Minimum max-joint displacement to every kept frame "
           "(paper: 150).", lower_bound=0.0)
    define(flags.DEFINE_boolean, "relative", True, "Compare root-relative joints (default) instead of camera-frame "
           "ones.")
    define(flags.DEFINE_integer, "examples_per_shard", 2000, "Examples per output shard.", lower_bound=1)
    define(flags.DEFINE_integer, "num_workers", 0, "Input shards parsed at once (0 or 1: one at a time). The output "
           "is the same whatever the count.", lower_bound=0)
    define(flags.DEFINE_integer, "benchmark", 0, "Instead, time the selection on this many synthetic frames.",
           lower_bound=0)
    define(flags.DEFINE_boolean, "json", False, "--benchmark: print one JSON object instead of text.")


def _in_and_out_or_benchmark(d) -> bool:
    return bool(d["benchmark"]) or bool(d["in_dir"] and d["out_dir"])


def main(argv):
    del argv
    F = FLAGS
    if F.benchmark:
        x = synthetic_frames(F.benchmark)
        x = x - x[:, :1]
        t0 = time.perf_counter()
        keep = subsample(x, F.threshold_mm / 1000.0)
        dt = time.perf_counter() - t0
        res = {"frames": int(len(x)), "kept": int(len(keep)), "seconds": round(dt, 2),
               "frames_per_s": round(len(x) / dt, 1)}
        if F.json:
            import json

            print(json.dumps(res))
        else:
            print(f"subsample: {res['frames']} synthetic frames -> {res['kept']} kept in {res['seconds']} s "
                  f"({res['frames_per_s']:.0f} frames/s)")
        return
    stats = subsample_records(F.in_dir, F.out_dir, F.split, F.threshold_mm / 1000.0, F.relative,
                              F.examples_per_shard, F.num_workers)
    print(f"subsample {F.split}: {stats['input']} -> {stats['kept']} records "
          f"(selection {stats['seconds']:.1f} s) written to {F.out_dir}")


if __name__ == "__main__":
    define_flags()
    flags.register_multi_flags_validator(["in_dir", "out_dir", "benchmark"], _in_and_out_or_benchmark,
                                         message="--in_dir and --out_dir are required (or --benchmark=N)")
    cli.run(main)
