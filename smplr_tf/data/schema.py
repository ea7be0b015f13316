"""The TFRecord schema: the one definition of what an example holds, how it is written and read.

Every converter and the synthetic generator write examples through :func:`serialize_example` and
:class:`ShardWriter`; every pipeline reads them through :func:`parse_example`.

One example (units: metres, camera frame x right / y down / z forward; pixels of the 256x256 crop):

==============  ==========  ======================================================================
key             shape       meaning
==============  ==========  ======================================================================
image           JPEG bytes  the crop, 256 x 256 x 3 RGB
mask            PNG bytes   the person's silhouette in the crop, 256 x 256, 0 / 255
joints3d        (24, 3)     SMPL joints, camera frame
landmarks3d     (18, 3)     the 18 SMPLR landmarks, camera frame
joints2d        (24, 2)     joints projected into the crop, pixels (x, y)
landmarks2d     (18, 2)     landmarks projected into the crop, pixels (x, y)
pose            (72,)       SMPL axis-angle pose; the global rotation expressed in the camera frame
betas           (10,)       SMPL shape
gender          ()          0 = female, 1 = male, 2 = neutral (unknown)
intrinsics      (3, 3)      the crop's intrinsics: camera frame -> crop pixels
root_depth      ()          z of the pelvis, metres
crop_box        (4,)        x0, y0, x1, y1 of the crop in the source frame, pixels (may lie outside it)
dataset         bytes       e.g. b"synthetic", b"surreal", b"h36m", b"up3d"
subject         bytes       subject id
sequence        bytes       sequence / video id
frame           ()          frame index in the sequence
camera          ()          camera index
has_3d          ()          1 if joints3d / landmarks3d / root_depth are true 3D
has_smpl        ()          1 if pose / betas / gender are known
has_mask        ()          1 if mask is a real silhouette
has_landmarks   ()          1 if landmarks3d / landmarks2d are known
==============  ==========  ======================================================================

A field that a source lacks is written as zeros with its ``has_*`` flag set to 0: never a fake value that
a pipeline could take for data. Files: ``<dir>/<split>-00000-of-00008.tfrecord`` plus ``<dir>/manifest.json``
(see :class:`ShardWriter`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from smplr_tf.body.skeleton import GENDER_FEMALE, GENDER_MALE, GENDER_NEUTRAL  # noqa: F401  (owner: skeleton)
from smplr_tf.cli import UserError

SCHEMA_VERSION = 1
IMAGE_SIZE = 256
MANIFEST_NAME = "manifest.json"
# Image files the tools read from folders (backgrounds, occluders), matched case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

# name -> (shape, numpy dtype); floats are stored as float32 lists, ints as int64.
FLOAT_FIELDS = {
    "joints3d": (24, 3),
    "landmarks3d": (18, 3),
    "joints2d": (24, 2),
    "landmarks2d": (18, 2),
    "pose": (72,),
    "betas": (10,),
    "intrinsics": (3, 3),
    "root_depth": (),
    "crop_box": (4,),
}
INT_FIELDS = ("gender", "frame", "camera", "has_3d", "has_smpl", "has_mask", "has_landmarks")
HAS_FIELDS = ("has_3d", "has_smpl", "has_mask", "has_landmarks")  # 0 / 1 flags
BYTES_FIELDS = ("image", "mask", "dataset", "subject", "sequence")
ALL_FIELDS = tuple(FLOAT_FIELDS) + INT_FIELDS + BYTES_FIELDS


class SchemaError(UserError, ValueError):
    """A record or an example that does not follow the schema; the message names where."""


def _size(shape) -> int:
    return int(np.prod(shape)) if shape else 1


def encode_image(rgb: np.ndarray) -> bytes:
    """(256, 256, 3) uint8 RGB -> JPEG bytes (quality 95)."""
    import cv2

    bgr = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)  # 40x faster than copying a reversed view
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise SchemaError("JPEG encoding failed")
    return buf.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """(256, 256) bool/uint8 -> PNG bytes with values 0 / 255."""
    import cv2

    m = (np.asarray(mask) > 0).astype(np.uint8) * 255
    ok, buf = cv2.imencode(".png", m)
    if not ok:
        raise SchemaError("PNG encoding failed")
    return buf.tobytes()


def check_example(ex: dict, where: str = "example") -> None:
    """Raise :class:`SchemaError` naming ``where`` and the field if ``ex`` breaks the schema.

    ``ex``: one example as a dict (numpy arrays / scalars, images as encoded bytes). Checked: every field
    present; float fields with the schema's shapes and finite; int fields scalar; gender 0 / 1 / 2; the
    ``has_*`` flags 0 or 1; ``root_depth`` > 0 where ``has_3d``; image and mask non-empty bytes. The one
    definition of a valid example: the writers (:func:`serialize_example`), the records validator
    (:func:`validate_record`) and ``tfrecords_tools/inspect_records.py`` all go through it.
    """
    missing = [k for k in ALL_FIELDS if k not in ex]
    if missing:
        raise SchemaError(f"{where}: missing field(s) {missing}")
    for k, shape in FLOAT_FIELDS.items():
        a = np.asarray(ex[k], dtype=np.float32)
        if a.shape != tuple(shape):
            raise SchemaError(f"{where}: field '{k}' has shape {a.shape}, expected {tuple(shape)}")
        if not np.all(np.isfinite(a)):
            raise SchemaError(f"{where}: field '{k}' holds NaN or inf")
    for k in INT_FIELDS:
        if np.asarray(ex[k]).shape != ():
            raise SchemaError(f"{where}: field '{k}' must be a scalar")
    if int(ex["gender"]) not in (GENDER_FEMALE, GENDER_MALE, GENDER_NEUTRAL):
        raise SchemaError(f"{where}: field 'gender' is {ex['gender']}, expected 0, 1 or 2")
    for k in HAS_FIELDS:
        if int(ex[k]) not in (0, 1):
            raise SchemaError(f"{where}: field '{k}' is {ex[k]}, expected 0 or 1")
    if int(ex["has_3d"]) and not float(ex["root_depth"]) > 0:
        raise SchemaError(f"{where}: field 'root_depth' is {float(ex['root_depth'])}, expected > 0")
    for k in ("image", "mask"):
        if not isinstance(ex[k], (bytes, bytearray)) or len(ex[k]) == 0:
            raise SchemaError(f"{where}: field '{k}' must be non-empty encoded bytes")


def example_from_record(record: bytes, where: str = "record") -> dict:
    """A serialized tf.train.Example -> dict of numpy values with the schema's shapes (images still encoded).

    Raises :class:`SchemaError` naming ``where`` when the bytes are not an Example, a field is missing, or a
    field holds the wrong number of values. Does not check values: see :func:`check_example`.
    """
    import tensorflow as tf

    try:
        proto = tf.train.Example.FromString(bytes(record))
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError)
        raise SchemaError(f"{where}: corrupt record (not a tf.train.Example: {e})") from None
    feats = proto.features.feature
    missing = [k for k in ALL_FIELDS if k not in feats]
    if missing:
        raise SchemaError(f"{where}: missing field(s) {missing}")
    ex = {}
    for k, shape in FLOAT_FIELDS.items():
        vals = feats[k].float_list.value
        if len(vals) != _size(shape):
            raise SchemaError(f"{where}: field '{k}' has {len(vals)} floats, expected {_size(shape)}")
        ex[k] = np.asarray(vals, np.float32).reshape(shape)
    for k in INT_FIELDS:
        vals = feats[k].int64_list.value
        if len(vals) != 1:
            raise SchemaError(f"{where}: field '{k}' must hold one int64, holds {len(vals)}")
        ex[k] = np.int64(vals[0])
    for k in BYTES_FIELDS:
        vals = feats[k].bytes_list.value
        if len(vals) != 1:
            raise SchemaError(f"{where}: field '{k}' must hold one bytes value, holds {len(vals)}")
        ex[k] = bytes(vals[0])
    return ex


def decode_images(ex: dict, where: str = "example") -> dict:
    """``ex`` with ``image`` decoded to (256, 256, 3) uint8 RGB and ``mask`` to (256, 256) uint8 0/255.

    Raises :class:`SchemaError` naming ``where`` if the image is not a JPEG, the mask not a PNG, or either is
    not 256 x 256."""
    import tensorflow as tf

    out = dict(ex)
    for key, decode, fmt, magic, channels in (("image", tf.io.decode_jpeg, "JPEG", b"\xff\xd8", 3),
                                              ("mask", tf.io.decode_png, "PNG", b"\x89PNG\r\n\x1a\n", 1)):
        if not bytes(ex[key][:len(magic)]) == magic:  # (TF's decoders read any format: check the signature)
            raise SchemaError(f"{where}: field '{key}' is not a {fmt}")
        try:
            arr = decode(tf.constant(ex[key]), channels=channels).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
            msg = str(getattr(e, "message", e)).strip().splitlines()[0]
            raise SchemaError(f"{where}: field '{key}' is not a {fmt} ({msg})") from None
        if arr.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            raise SchemaError(f"{where}: field '{key}' is {arr.shape[1]}x{arr.shape[0]}, "
                              f"expected {IMAGE_SIZE}x{IMAGE_SIZE}")
        out[key] = arr if channels == 3 else arr[..., 0]
    return out


def validate_record(record: bytes, where: str = "record", images: bool = True) -> dict:
    """Validate one serialized record against the schema: the full check.

    record: the bytes of one tf.train.Example. Returns the example as a dict of numpy values (``image`` (256,
    256, 3) uint8 and ``mask`` (256, 256) uint8 decoded when ``images``, else their encoded bytes). Raises
    :class:`SchemaError` whose message starts with ``where``, e.g. ``"<file> record 17: field 'betas' holds NaN
    or inf"``.
    """
    ex = example_from_record(record, where)
    check_example(ex, where)
    return decode_images(ex, where) if images else ex


def _varint(n: int) -> bytes:
    """Protocol-buffer base-128 varint of an unsigned integer (< 2**64)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited protocol-buffer field: tag, varint length, payload."""
    return tag + _varint(len(payload)) + payload


# tf.train.Feature's oneof (bytes_list = 1, float_list = 2, int64_list = 3) and the lists' packed field 1, as
# length-delimited tags ((number << 3) | 2).
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST, _ONE = b"\x0a", b"\x12", b"\x1a", b"\x0a"


def serialize_example(ex: dict, where: str = "example") -> bytes:
    """A dict with every field of the schema (numpy arrays / scalars / bytes) -> serialized tf.train.Example.

    Strings (dataset, subject, sequence) may be given as str. Raises SchemaError on a bad field.

    The protocol-buffer bytes are written here directly (Example{features{feature: map<key, Feature>}}, float
    and int64 lists packed), without TensorFlow: a converter's worker processes serialize their own records
    without importing it, in half the time of building ``tf.train.Example`` objects (validation included). The
    records parse to the same ``tf.train.Example`` as the TensorFlow-built ones (tests/test_schema.py).
    """
    ex = dict(ex)
    for k in ("dataset", "subject", "sequence"):
        if isinstance(ex.get(k), str):
            ex[k] = ex[k].encode()
    check_example(ex, where)
    entries = []
    for k in FLOAT_FIELDS:
        values = np.asarray(ex[k], "<f4").reshape(-1).tobytes()
        entries.append((k, _field(_FLOAT_LIST, _field(_ONE, values))))
    for k in INT_FIELDS:
        value = _varint(int(ex[k]) & 0xFFFFFFFFFFFFFFFF)  # int64 as protobuf does: two's complement, 10 bytes if < 0
        entries.append((k, _field(_INT64_LIST, _field(_ONE, value))))
    for k in BYTES_FIELDS:
        entries.append((k, _field(_BYTES_LIST, _field(_ONE, bytes(ex[k])))))
    features = b"".join(_field(b"\x0a", _field(b"\x0a", k.encode()) + _field(b"\x12", feature))
                        for k, feature in entries)
    return _field(b"\x0a", features)


def feature_spec() -> dict:
    """The tf.io feature description used by :func:`parse_example` (no defaults: a missing field fails)."""
    import tensorflow as tf

    spec = {k: tf.io.FixedLenFeature([_size(s)], tf.float32) for k, s in FLOAT_FIELDS.items()}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in INT_FIELDS})
    spec.update({k: tf.io.FixedLenFeature([], tf.string) for k in BYTES_FIELDS})
    return spec


def parse_example(serialized, decode_images: bool = True) -> dict:
    """Serialized tf.train.Example (scalar string tensor) -> dict of tensors with the schema's shapes.

    image: (256, 256, 3) uint8, mask: (256, 256) uint8 0/255 when decode_images, else the encoded bytes.
    Float fields keep their schema shapes (float32), int fields are int32.
    """
    import tensorflow as tf

    raw = tf.io.parse_single_example(serialized, feature_spec())
    out = {}
    for k, s in FLOAT_FIELDS.items():
        out[k] = tf.reshape(raw[k], s)
    for k in INT_FIELDS:
        out[k] = tf.cast(raw[k], tf.int32)
    for k in ("dataset", "subject", "sequence"):
        out[k] = raw[k]
    if decode_images:
        img = tf.io.decode_jpeg(raw["image"], channels=3)
        out["image"] = tf.ensure_shape(img, (IMAGE_SIZE, IMAGE_SIZE, 3))
        m = tf.io.decode_png(raw["mask"], channels=1)
        out["mask"] = tf.ensure_shape(m[..., 0], (IMAGE_SIZE, IMAGE_SIZE))
    else:
        out["image"], out["mask"] = raw["image"], raw["mask"]
    return out


# ------------------------------------------------------------------------------------------ files
def list_images(folder: str) -> list[str]:
    """Sorted paths of the IMAGE_EXTENSIONS files under ``folder`` (recursive); may be empty."""
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(out)


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def read_manifest(data_dir: str) -> dict:
    """The manifest of a records directory; a clear error if there is none or it is not ours."""
    path = os.path.join(data_dir, MANIFEST_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: '{data_dir}' is not a smplr_tf records directory (make one with "
            "tfrecords_tools/make_synthetic.py or a convert_* tool)")
    with open(path) as f:
        man = json.load(f)
    if man.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{path}: schema_version {man.get('schema_version')}, this code reads {SCHEMA_VERSION}")
    return man


def split_files(data_dir: str, split: str) -> list[str]:
    """Paths of the complete shards of ``split`` listed in the manifest (a clear error if none)."""
    man = read_manifest(data_dir)
    if split not in man.get("splits", {}):
        raise SchemaError(f"{data_dir}: no split '{split}' (has {sorted(man.get('splits', {}))})")
    files = [os.path.join(data_dir, s["file"]) for s in man["splits"][split]["shards"]]
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"{f} is listed in {data_dir}/{MANIFEST_NAME} but missing")
    return files


def update_manifest(data_dir: str, split: str, shards: list[dict], **info) -> None:
    """Record the complete shards of ``split`` (list of {"file", "count"}) in the manifest, atomically."""
    path = os.path.join(data_dir, MANIFEST_NAME)
    man = {"schema_version": SCHEMA_VERSION, "splits": {}}
    if os.path.exists(path):
        with open(path) as f:
            man = json.load(f)
    man["schema_version"] = SCHEMA_VERSION
    for k, v in info.items():
        man[k] = v
    man.setdefault("splits", {})[split] = {
        "num_examples": int(sum(s["count"] for s in shards)),
        "shards": sorted(shards, key=lambda s: s["file"]),
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(man, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


@dataclass
class ShardWriter:
    """Writes one shard atomically: records go to ``<name>.partial`` and are renamed when closed cleanly.

    A crash never leaves a file with the final name; a shard only counts once the manifest lists it.
    Use as a context manager::

        with ShardWriter(path) as w:
            w.write(example_dict)
    """

    path: str
    count: int = 0

    def __enter__(self):
        import tensorflow as tf

        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._partial = self.path + ".partial"
        self._writer = tf.io.TFRecordWriter(self._partial)
        return self

    def write(self, ex: dict) -> None:
        self._writer.write(serialize_example(ex, where=f"{self.path} record {self.count}"))
        self.count += 1

    def write_serialized(self, record: bytes) -> None:
        self._writer.write(record)
        self.count += 1

    def __exit__(self, exc_type, exc, tb):
        self._writer.close()
        if exc_type is None:
            os.replace(self._partial, self.path)
        elif os.path.exists(self._partial):
            os.remove(self._partial)
        return False
