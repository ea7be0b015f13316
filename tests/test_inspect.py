"""tfrecords_tools/inspect_records.py: counts, per-record validation naming file + index, the PNG grid."""

import os
import subprocess
import sys

import cv2
import numpy as np

from smplr_tf.data import crop, schema
from tfrecords_tools import inspect_records as ir

K = np.array([[600.0, 0, 160], [0, 600.0, 120], [0, 0, 1]])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def valid_example(i):
    """A consistent example: 2D = projection of 3D by the crop intrinsics."""
    rng = np.random.default_rng(i)
    root = np.array([0.1, 0.0, 5.0])
    j3 = root + rng.normal(0, 0.3, (24, 3))
    j3[0] = root
    l3 = root + rng.normal(0, 0.3, (18, 3))
    box = crop.crop_box(root, K)
    Kc = crop.crop_intrinsics(K, box)
    img = np.full((256, 256, 3), 60 + 10 * i, np.uint8)
    mask = np.zeros((256, 256), bool)
    mask[60:200, 100:150] = True
    return {
        "image": schema.encode_image(img), "mask": schema.encode_mask(mask),
        "joints3d": j3, "landmarks3d": l3, "joints2d": crop.project(j3, Kc), "landmarks2d": crop.project(l3, Kc),
        "pose": rng.normal(0, 0.2, 72), "betas": rng.normal(size=10), "gender": i % 2, "intrinsics": Kc,
        "root_depth": root[2], "crop_box": box, "dataset": "synthetic", "subject": "s", "sequence": "q",
        "frame": i, "camera": 0, "has_3d": 1, "has_smpl": 1, "has_mask": 1, "has_landmarks": 1,
    }


def _tamper(ex, **fields):
    """Serialize ``ex`` then overwrite fields in the proto, bypassing the writer's checks."""
    import tensorflow as tf

    proto = tf.train.Example.FromString(schema.serialize_example(ex))
    for k, v in fields.items():
        feat = proto.features.feature[k]
        if isinstance(v, bytes):
            feat.bytes_list.value[:] = [v]
        else:
            feat.float_list.value[:] = np.asarray(v, np.float32).reshape(-1)
    return proto.SerializeToString()


def _write_dir(d, records, listed=None):
    name = schema.shard_name("train", 0, 1)
    with schema.ShardWriter(os.path.join(d, name)) as w:
        for r in records:
            w.write_serialized(r)
    schema.update_manifest(d, "train", [{"file": name, "count": len(records) if listed is None else listed}])
    return os.path.join(d, name)


def test_valid_split_and_png(tmp_path):
    d = str(tmp_path)
    _write_dir(d, [schema.serialize_example(valid_example(i)) for i in range(5)])
    report, errors, examples = ir.validate_split(d, "train", keep=4)
    assert errors == []
    assert report["manifest_count"] == report["read_count"] == 5 and len(examples) == 4
    png = os.path.join(d, "grid.png")
    ir.write_grid(examples, png)
    grid = cv2.imread(png)
    assert grid.shape == (512, 512, 3)
    # The skeleton is drawn in green where joint 0 projects (the root, at the crop centre).
    assert grid[127, 127, 1] > 200 and grid[127, 127, 0] < 100
    # Without the overlay, resized tiles: the crops themselves (below the label), at 64 px.
    ir.write_grid(examples, png, overlay=False, tile=64)
    grid = cv2.imread(png)[..., ::-1]
    assert grid.shape == (128, 128, 3)
    want = cv2.resize(np.ascontiguousarray(examples[0]["image"]), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(grid[20:64, :64], want[20:])


def test_bad_records_are_named_by_file_and_index(tmp_path):
    d = str(tmp_path)
    bad_nan = valid_example(1)
    recs = [schema.serialize_example(valid_example(0)),
            _tamper(bad_nan, joints3d=np.full(72, np.nan)),
            _tamper(valid_example(2), image=schema.encode_image(np.zeros((128, 128, 3), np.uint8))),
            _tamper(valid_example(3), joints2d=np.zeros(48)),
            schema.serialize_example(valid_example(4))]
    path = _write_dir(d, recs)
    report, errors, _ = ir.validate_split(d, "train")
    assert len(errors) == 2, errors
    assert f"{path} record 1" in errors[0] and "joints3d" in errors[0] and "NaN" in errors[0]
    assert f"{path} record 2" in errors[1] and "image" in errors[1]
    # 2D that is not the projection of 3D (e.g. distortion kept by a converter): a warning, not an error.
    assert len(report["warnings"]) == 1 and f"{path} record 3" in report["warnings"][0]
    assert "joints2d" in report["warnings"][0]
    assert report["read_count"] == 5


def test_missing_field_and_corrupt_file(tmp_path):
    import tensorflow as tf

    d = str(tmp_path)
    proto = tf.train.Example.FromString(schema.serialize_example(valid_example(0)))
    del proto.features.feature["betas"]
    recs = [schema.serialize_example(valid_example(i)) for i in range(4)]
    recs[1] = proto.SerializeToString()
    path = _write_dir(d, recs)
    _, errors, _ = ir.validate_split(d, "train")
    assert len(errors) == 1 and f"{path} record 1" in errors[0] and "betas" in errors[0]
    # Corrupt the payload of record 2: its CRC no longer matches.
    data = bytearray(open(path, "rb").read())
    offset = sum(len(r) + 16 for r in recs[:2]) + 12 + 100
    data[offset] ^= 0xFF
    open(path, "wb").write(bytes(data))
    report, errors, _ = ir.validate_split(d, "train")
    assert any(f"{path} record 2" in e and "corrupt" in e for e in errors), errors


def test_count_mismatch(tmp_path):
    d = str(tmp_path)
    _write_dir(d, [schema.serialize_example(valid_example(i)) for i in range(3)], listed=4)
    _, errors, _ = ir.validate_split(d, "train")
    assert len(errors) == 1 and "4" in errors[0] and "3" in errors[0]


def test_cli_exit_status(tmp_path):
    d = str(tmp_path)
    _write_dir(d, [schema.serialize_example(valid_example(0)),
                   _tamper(valid_example(1), root_depth=[np.inf])])
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tfrecords_tools", "inspect_records.py"),
                        f"--data_dir={d}", f"--png={d}/x.png", "--png_examples=2"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1
    assert "record 1" in r.stdout and "root_depth" in r.stdout and "read 2" in r.stdout
    assert os.path.exists(f"{d}/x.png")
