"""The TFRecord schema (smplr_tf/data/schema.py): round trip, validation errors, atomic shards, manifest."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from smplr_tf.data import schema


def make_example(rng=None, **over):
    rng = rng or np.random.default_rng(0)
    ex = {k: rng.normal(size=s).astype(np.float32) for k, s in schema.FLOAT_FIELDS.items()}
    ex["root_depth"] = np.float32(4.0)
    ex.update(gender=1, frame=7, camera=2, has_3d=1, has_smpl=1, has_mask=0, has_landmarks=1,
              dataset="synthetic", subject=b"s1", sequence="seq",
              image=schema.encode_image(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)),
              mask=schema.encode_mask(rng.uniform(size=(256, 256)) > 0.5))
    ex.update(over)
    return ex


def test_round_trip():
    import tensorflow as tf

    ex = make_example()
    img = np.full((256, 256, 3), 90, np.uint8)
    mask = np.zeros((256, 256), bool)
    mask[10:50, 20:30] = True
    ex.update(image=schema.encode_image(img), mask=schema.encode_mask(mask))
    out = schema.parse_example(tf.constant(schema.serialize_example(ex)))
    for k, s in schema.FLOAT_FIELDS.items():
        assert out[k].shape == s
        np.testing.assert_allclose(out[k].numpy(), ex[k], rtol=1e-6)
    for k in schema.INT_FIELDS:
        assert int(out[k]) == int(ex[k])
    assert out["dataset"].numpy() == b"synthetic" and out["sequence"].numpy() == b"seq"
    assert np.abs(out["image"].numpy().astype(int) - 90).max() <= 2
    np.testing.assert_array_equal(out["mask"].numpy() > 0, mask)


def test_serialized_bytes_equal_tensorflows_example():
    """The hand-written protocol-buffer bytes parse to the same tf.train.Example TensorFlow builds itself
    (float lists bit-exact, negative and large int64, bytes longer than one varint byte of length)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    ex = make_example(frame=-7, camera=2**40 + 3, subject="S" * 300)  # the JPEG: thousands of bytes
    for k, s in schema.FLOAT_FIELDS.items():
        ex[k] = rng.normal(0, 10, s).astype(np.float32)
    ex["root_depth"] = np.float32(4.25)
    feats = {}
    for k in schema.FLOAT_FIELDS:
        feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(ex[k], np.float32).ravel()))
    for k in schema.INT_FIELDS:
        feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(ex[k])]))
    for k in schema.BYTES_FIELDS:
        v = ex[k].encode() if isinstance(ex[k], str) else bytes(ex[k])
        feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
    reference = tf.train.Example(features=tf.train.Features(feature=feats))
    ours = tf.train.Example.FromString(schema.serialize_example(ex))
    assert ours == reference
    assert ours.features.feature["frame"].int64_list.value[0] == -7
    parsed = schema.parse_example(tf.constant(schema.serialize_example(ex)))
    assert parsed["subject"].numpy() == b"S" * 300
    np.testing.assert_array_equal(parsed["pose"].numpy(), ex["pose"])


def test_serializing_needs_no_tensorflow():
    """Converter workers serialize records without importing TensorFlow (it costs seconds per process)."""
    code = ("import sys, numpy as np; from smplr_tf.data import schema; sys.path.insert(0, 'tests'); "
            "from test_schema import make_example; assert schema.serialize_example(make_example()); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@pytest.mark.parametrize("bad, needle", [
    (dict(joints3d=np.zeros((23, 3))), "joints3d"),
    (dict(betas=np.full(10, np.nan)), "betas"),
    (dict(gender=5), "gender"),
    (dict(image=b""), "image"),
])
def test_check_example_names_the_field(bad, needle):
    with pytest.raises(schema.SchemaError, match=needle):
        schema.serialize_example(make_example(**bad), where="here")
    ex = make_example()
    del ex["pose"]
    with pytest.raises(schema.SchemaError, match="pose"):
        schema.check_example(ex)


def test_shard_writer_is_atomic(tmp_path):
    path = os.path.join(tmp_path, schema.shard_name("train", 0, 1))
    with pytest.raises(RuntimeError):
        with schema.ShardWriter(path) as w:
            w.write(make_example())
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    with schema.ShardWriter(path) as w:
        w.write(make_example())
        w.write(make_example())
    assert w.count == 2 and os.listdir(tmp_path) == [os.path.basename(path)]


def test_manifest(tmp_path):
    d = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        schema.read_manifest(d)
    for split, n in (("train", 3), ("val", 1)):
        name = schema.shard_name(split, 0, 1)
        with schema.ShardWriter(os.path.join(d, name)) as w:
            for _ in range(n):
                w.write(make_example())
        schema.update_manifest(d, split, [{"file": name, "count": n}], dataset="synthetic")
    man = schema.read_manifest(d)
    assert man["splits"]["train"]["num_examples"] == 3 and man["splits"]["val"]["num_examples"] == 1
    assert schema.split_files(d, "val") == [os.path.join(d, "val-00000-of-00001.tfrecord")]
    with pytest.raises(schema.SchemaError, match="no split 'test'"):
        schema.split_files(d, "test")
    os.remove(os.path.join(d, "val-00000-of-00001.tfrecord"))
    with pytest.raises(FileNotFoundError, match="missing"):
        schema.split_files(d, "val")
    man["schema_version"] = 99
    with open(os.path.join(d, schema.MANIFEST_NAME), "w") as f:
        json.dump(man, f)
    with pytest.raises(schema.SchemaError, match="schema_version"):
        schema.read_manifest(d)


def test_validate_record_is_the_full_check():
    import tensorflow as tf

    rec = schema.serialize_example(make_example())
    ex = schema.validate_record(rec, "f record 0")
    assert ex["image"].shape == (256, 256, 3) and ex["mask"].shape == (256, 256) and ex["betas"].shape == (10,)
    assert schema.validate_record(rec, images=False)["image"] == make_example()["image"]

    def tampered(**fields):
        proto = tf.train.Example.FromString(rec)
        for k, v in fields.items():
            feat = proto.features.feature[k]
            if isinstance(v, bytes):
                feat.bytes_list.value[:] = [v]
            elif isinstance(v, int):
                feat.int64_list.value[:] = [v]
            else:
                feat.float_list.value[:] = v
        return proto.SerializeToString()

    for fields, needle in ((dict(has_mask=2), "'has_mask' is 2"), (dict(root_depth=[-1.0]), "root_depth"),
                           (dict(betas=[0.0] * 9), "'betas' has 9 floats"),
                           (dict(mask=schema.encode_image(np.zeros((256, 256, 3), np.uint8))), "'mask' is not a PNG"),
                           (dict(image=schema.encode_image(np.zeros((64, 64, 3), np.uint8))), "64x64")):
        with pytest.raises(schema.SchemaError, match=needle) as ei:
            schema.validate_record(tampered(**fields), "f record 7")
        assert str(ei.value).startswith("f record 7: ")
    with pytest.raises(schema.SchemaError, match="not a tf.train.Example"):
        schema.validate_record(b"\x0a\xff\xff\xffnot a protobuf", "f record 1")


def test_list_images_is_case_insensitive(tmp_path):
    for name in ("a.JPG", "b.png", "c.bmp", "d.txt", "sub/e.jpeg"):
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    got = [os.path.relpath(p, tmp_path) for p in schema.list_images(str(tmp_path))]
    assert got == ["a.JPG", "b.png", "c.bmp", os.path.join("sub", "e.jpeg")]
