"""Gather the parts of a converter run split over machines (``--num_shards N --shard_index k``) into one
records directory.

Usage (from the repository root), once every part has finished::

    python tfrecords_tools/merge_parts.py --out_dir data/surreal --split train

Each part wrote a complete records directory ``<out_dir>/parts/<split>-KKKKK-of-NNNNN``. This moves their
shards into ``out_dir`` as ``<split>-%05d-of-%05d.tfrecord`` in part order (the record order of one run over
every input), writes the manifest with the parts' counters summed (float summaries per part), and removes the
part folders. A missing or unfinished part stops it with an error naming the part; nothing is moved then.
"""

from __future__ import annotations

import json

from absl import flags

from smplr_tf import cli

try:
    from tfrecords_tools import _common
except ImportError:  # run as a script (python tfrecords_tools/<name>.py): its own folder is first on sys.path
    import _common

FLAGS = flags.FLAGS


class MergeError(cli.UserError):
    """A part is missing, unfinished or of another --num_shards."""


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv``. Called under ``__main__``."""
    define = cli.flag_definer(fv)
    define(flags.DEFINE_string, "out_dir", None, "Output records directory (shards + manifest.json).")
    define(flags.DEFINE_string, "split", "train", "The split merged.")
    define(flags.DEFINE_boolean, "keep_parts", False, "Keep the emptied part folders and their manifests.")


def main(argv):
    del argv
    try:
        stats = _common.merge_parts(FLAGS.out_dir, FLAGS.split, remove_parts=not FLAGS.keep_parts)
    except ValueError as e:
        raise MergeError(str(e)) from e
    print(json.dumps({f"stats_{FLAGS.split}": stats}, indent=1, sort_keys=True))


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["out_dir"])
    cli.run(main)
