"""Reading the records of a split with tf.data, and naming the bad record when reading fails.

Reading: the shards of a split (:func:`smplr_tf.data.schema.split_files`) are read by
``tf.data.TFRecordDataset`` and interleaved one record per file in turn; every record comes tagged with its
file and its index in that file, so that checks in the graph can name both (:func:`parse_record` stops on a
NaN / inf with ``<file> record <index>`` in the message). Parsing runs in the graph. No record is validated in
Python while training: the full validation (:func:`smplr_tf.data.schema.validate_record`: the protobuf,
every field and its length, no NaN / inf, the flags, images that decode to 256 x 256) runs once per data set
in ``tfrecords_tools/inspect_records.py`` (:func:`validate_files`), and here again only when reading fails.

Failing: TF's reader names neither the file nor the record of a corrupt or truncated shard (``corrupted record
at 12345``), and a record that does not parse fails inside a map function. :func:`named_errors` catches those
errors where the data is consumed, scans the files with the full validator and raises :class:`RecordError`
naming the first bad record, e.g. ``data/train-00001-of-00004.tfrecord record 17: field 'betas' holds NaN or
inf``.

Distribution: under ``tf.distribute`` the input is split by tf.data's auto-sharding
(:func:`auto_shard_policy`): by file when the split has at least as many files as there are workers, else by
example. ``read_records(num_shards=, shard_index=)`` splits by hand, for use outside tf.distribute only.
"""

from __future__ import annotations

import contextlib
import re

import tensorflow as tf

from smplr_tf.data import schema

AUTOTUNE = tf.data.AUTOTUNE


class RecordError(schema.SchemaError):
    """A bad record; the message starts with ``<file> record <index>:``."""


# ------------------------------------------------------------------------------------------- reading
def _read_file(path):
    """(path () string, index () int64, record () string) of every record of one file, in order."""
    return tf.data.TFRecordDataset(path).enumerate().map(lambda i, r: (path, i, r))


def read_records(files, *, shuffle_files: bool = False, seed=None, cycle_length: int = 4, num_shards: int = 1,
                 shard_index: int = 0):
    """Dataset of ``(file () string, index () int64, record () string)`` interleaved over ``files``.

    files: TFRecord paths (a split's shards). shuffle_files: a new file order every epoch (``seed``).
    cycle_length: files read at once, one record from each in turn. num_shards / shard_index: keep every
    num_shards-th file (one process's part; with fewer files than shards, every num_shards-th record) --
    outside tf.distribute only: under a strategy tf.data's auto-sharding does this (see the module docstring).
    Records are not validated here: see :func:`parse_record` and :func:`named_errors`.
    """
    files = [str(f) for f in files]
    if not files:
        raise ValueError("read_records: no files")
    by_file = num_shards > 1 and len(files) >= num_shards
    if by_file:
        files = files[shard_index::num_shards]
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if shuffle_files and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(_read_file, cycle_length=max(1, min(cycle_length, len(files))), block_length=1,
                       num_parallel_calls=AUTOTUNE, deterministic=True)
    if num_shards > 1 and not by_file:
        ds = ds.shard(num_shards, shard_index)
    return ds


def parse_record(path, index, record, decode_images: bool = False) -> dict:
    """One record -> dict of tensors (:func:`smplr_tf.data.schema.parse_example`), in the graph.

    path () string, index () int64: where the record is (from :func:`read_records`), for the message of the
    check that every float field is finite (NaN / inf stop the input with ``<path> record <index>`` named).
    A missing field or an image that does not decode raises TF's own error: see :func:`named_errors`.
    """
    ex = schema.parse_example(record, decode_images=decode_images)
    floats = tf.concat([tf.reshape(ex[k], [-1]) for k in schema.FLOAT_FIELDS], axis=0)
    ok = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(floats)),
                             [path, "record", index, ": a float field holds NaN or inf"])
    with tf.control_dependencies([ok]):
        for k in schema.FLOAT_FIELDS:
            ex[k] = tf.identity(ex[k])
    return ex


def auto_shard_policy(num_files: int, num_workers: int):
    """tf.data's auto-shard policy for ``num_files`` shards read by ``num_workers`` input pipelines.

    AUTO (by file, falling back to by example when the dataset reads no files) when every worker gets at least
    one file, else DATA (every worker reads all files and keeps its share of the examples)."""
    policy = tf.data.experimental.AutoShardPolicy
    return policy.AUTO if num_files >= max(num_workers, 1) and num_files > 0 else policy.DATA


# ------------------------------------------------------------------------------------------- validation
def iter_records(files):
    """Yield ``(file, index, record bytes or an Exception)`` for every record of ``files``, in order.

    A corrupt or truncated file yields one exception at the index of the first unreadable record, then stops.
    """
    for f in files:
        i = 0
        it = iter(tf.data.TFRecordDataset(f))
        while True:
            try:
                rec = next(it)
            except StopIteration:
                break
            except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as e:
                yield f, i, e
                break
            yield f, i, rec.numpy()
            i += 1


def _op_message(err) -> str:
    """The first line of a TF error's message without TF's function-node prefix and op suffix."""
    msg = str(getattr(err, "message", err)).strip().splitlines()[0]
    msg = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", msg)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", msg).strip()


def validate_files(files, keep: int = 0, on_example=None, bar=None, max_errors: int | None = None):
    """Validate every record of ``files`` with :func:`smplr_tf.data.schema.validate_record`.

    Returns ``(num_read, errors, examples)``: errors as ``"<file> record <i>: <what>"``, the first ``keep`` good
    examples as numpy dicts (images decoded). on_example(ex, where): called for every good example (extra
    checks, e.g. warnings). bar: optional tqdm bar updated per record. max_errors: stop after that many.
    """
    errors, examples, n = [], [], 0
    for f, i, rec in iter_records(files):
        if bar is not None:
            bar.update(1)
        where = f"{f} record {i}"
        if isinstance(rec, Exception):
            msg = _op_message(rec)
            errors.append(f"{where}: unreadable, the file is corrupt or truncated ({msg})")
        else:
            n += 1
            try:
                ex = schema.validate_record(rec, where)
            except schema.SchemaError as e:
                errors.append(str(e))
            else:
                if on_example is not None:
                    on_example(ex, where)
                if len(examples) < keep:
                    examples.append(ex)
        if max_errors is not None and len(errors) >= max_errors:
            break
    return n, errors, examples


def _check_file_in_graph(path: str, level: int) -> None:
    """Read one file in TF's runtime (fast): level 0 the records only, 1 also parse them and check that the
    floats are finite, 2 also decode the images (256 x 256). Raises TF's error on the first bad record."""
    ds = tf.data.TFRecordDataset(path)
    if level >= 1:
        def check(record):
            ex = parse_record(path, tf.constant(-1, tf.int64), record, decode_images=level >= 2)
            # values of every checked tensor: nothing may be pruned or constant-folded away
            out = tf.cast(tf.reduce_sum(ex["joints3d"]), tf.int64)
            if level >= 2:
                out += tf.cast(ex["image"][0, 0, 0], tf.int64) + tf.cast(ex["mask"][0, 0], tf.int64)
            return out

        ds = ds.map(check, num_parallel_calls=AUTOTUNE)
    ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)


def first_bad_record(files) -> str | None:
    """``"<file> record <i>: <what>"`` of a record of ``files`` that fails validation, or None.

    Fast on large splits: each file is first read in TF's runtime (the records, then parsed, then with images
    decoded) to find a file that fails; only that file is scanned record by record with the full validator
    (:func:`validate_files`) to name the record."""
    files = list(files)
    for level in (0, 1, 2):
        for f in files:
            try:
                _check_file_in_graph(f, level)
            except (tf.errors.OpError, UnicodeDecodeError) as err:
                _, errors, _ = validate_files([f], max_errors=1)
                return errors[0] if errors else f"{f}: {_op_message(err)}"
    return None


@contextlib.contextmanager
def named_errors(files):
    """Around code that consumes a dataset of ``files``: a reading or parsing error becomes a RecordError.

    On ``tf.errors.DataLossError`` or ``InvalidArgumentError`` (or a ``UnicodeDecodeError`` of TF's message)
    the files are scanned (:func:`first_bad_record`); a bad record is raised as :class:`RecordError` naming its
    file and index. When every record is valid the original error is raised again (it came from elsewhere).
    """
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, UnicodeDecodeError) as err:
        # (UnicodeDecodeError: TF's message for a record that is not an Example quotes its bytes, not UTF-8)
        bad = first_bad_record(list(files))
        if bad is None:
            raise
        raise RecordError(bad) from err
