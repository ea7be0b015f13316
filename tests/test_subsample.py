"""The ablation subset rule (tfrecords_tools/subsample.py): the fast hashed version equals the O(N^2) rule."""

import json
import os

import numpy as np
import pytest

from tfrecords_tools import subsample as sub

os.environ.setdefault("SMPLR_NO_PROGRESS", "1")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_equals_brute_force_on_video_like_data(seed):
    x = sub.synthetic_frames(1500, clip=60, seed=seed)
    x = x - x[:, :1]
    ref = sub.brute_force_subsample(x, 0.15)
    assert 20 < len(ref) < 1500  # the rule both keeps and drops frames here
    np.testing.assert_array_equal(sub.subsample(x, 0.15), ref)


@pytest.mark.parametrize("hash_dims,block", [(1, 1), (3, 7), (6, 16), (12, 64)])
def test_fast_equals_brute_force_dense_random(hash_dims, block):
    """Few joints in a small box: many near pairs, many bucket collisions, frames straddling cell edges."""
    rng = np.random.default_rng(hash_dims)
    x = rng.uniform(0.0, 0.5, (800, 2, 3)).astype(np.float32)
    ref = sub.brute_force_subsample(x, 0.15)
    assert 10 < len(ref) < 700
    np.testing.assert_array_equal(sub.subsample(x, 0.15, hash_dims=hash_dims, block=block), ref)


def test_rule_by_hand():
    """Frame 1 moved one joint by 149 mm (dropped), frame 2 by 151 mm (kept), frame 3 is within 150 mm of
    frame 2 on every joint but far from frame 0 (dropped: it must differ from *every* kept frame)."""
    x = np.zeros((4, 3, 3))
    x[1, 2, 0] = 0.149
    x[2, 2, 0] = 0.151
    x[3, 2, 0] = 0.20
    x[3, 1, 1] = 0.10
    assert sub.brute_force_subsample(x).tolist() == [0, 2]
    assert sub.subsample(x).tolist() == [0, 2]


def test_subsample_records(tmp_path):
    from fixtures.records import read_split
    from smplr_tf.data import schema
    from tfrecords_tools import _common

    rng = np.random.default_rng(0)
    j = rng.uniform(0, 0.4, (40, 24, 3)).astype(np.float32) * (rng.uniform(size=(40, 1, 1)) > 0.5)
    j += np.array([0.0, 0.0, 4.0], np.float32)
    img = schema.encode_image(np.zeros((256, 256, 3), np.uint8))
    msk = schema.encode_mask(np.zeros((256, 256), bool))
    src = str(tmp_path / "src")
    with _common.ShardedOutput(src, "train", 16, dataset="synthetic") as out:
        for i in range(40):
            ex = {k: np.zeros(s, np.float32) for k, s in schema.FLOAT_FIELDS.items()}
            ex.update(joints3d=j[i], root_depth=np.float32(4.0), image=img, mask=msk, dataset="synthetic",
                      subject="s", sequence="q", frame=i, camera=0, gender=0, has_3d=1, has_smpl=0, has_mask=0,
                      has_landmarks=0)
            out.write(ex)
        out.finish()
    dst = str(tmp_path / "dst")
    stats = sub.subsample_records(src, dst, "train", 0.15, relative=True, examples_per_shard=5)
    rel = j - j[:, :1]
    expect = sub.brute_force_subsample(rel, 0.15)
    recs = read_split(dst, "train")
    assert [int(r["frame"]) for r in recs] == expect.tolist()
    assert stats["kept"] == len(expect)
    man = json.load(open(os.path.join(dst, "manifest.json")))
    assert man["subsample"]["threshold_m"] == 0.15 and man["dataset"] == "synthetic"
    assert man["splits"]["train"]["num_examples"] == len(expect)
    # several shards parsed at once: the same records, byte for byte
    dst2 = str(tmp_path / "dst2")
    sub.subsample_records(src, dst2, "train", 0.15, relative=True, examples_per_shard=5, num_workers=3)
    for f in sorted(os.listdir(dst)):
        if f.endswith(".tfrecord"):
            assert open(os.path.join(dst, f), "rb").read() == open(os.path.join(dst2, f), "rb").read()
    np.testing.assert_array_equal(sub.read_joints(schema.split_files(src, "train"), 3), j)
