"""Inspect a records directory: counts, schema validation of every record, a PNG of examples.

    python tfrecords_tools/inspect_records.py --data_dir=data/synthetic --splits=train --png=train.png --png_examples=16

Prints the counts (from the manifest and from reading), validates every record with the schema's validator
(``smplr_tf.data.schema.validate_record``: the protobuf, every field and its length, no NaN / inf, flags 0 / 1,
images that decode to 256x256), checks that the 2D joints are the projection of the 3D ones where both are
known (a warning, an error with --strict), and exits with status 1 listing each bad record as
``<file> record <index>: <what>``.
``--png`` draws the first ``--png_examples`` crops with the projected skeleton (green), the landmarks (magenta,
joined to their parent joints) and the mask's outline (yellow).
"""

import os
import sys

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS

REPROJECTION_TOL_PX = 1.0  # 2D vs projected 3D: a larger gap is reported as a warning (--strict: an error)


class ReprojectionCheck:
    """Collects a warning for every example whose 2D points are not the pinhole projection of its 3D points
    (by more than REPROJECTION_TOL_PX) where both are known: e.g. a converter that kept lens distortion."""

    def __init__(self):
        self.warnings = []

    def __call__(self, ex: dict, where: str) -> None:
        if not ex["has_3d"]:
            return
        pairs = [("joints3d", "joints2d")] + ([("landmarks3d", "landmarks2d")] if ex["has_landmarks"] else [])
        for k3, k2 in pairs:
            p = ex[k3] @ ex["intrinsics"].T.astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                uv = p[:, :2] / p[:, 2:3]
            err = np.max(np.abs(uv - ex[k2])) if np.all(np.isfinite(uv)) else np.inf
            if not err <= REPROJECTION_TOL_PX:
                self.warnings.append(f"{where}: field '{k2}' is not the pinhole projection of '{k3}' by "
                                     f"'intrinsics' (max difference {err:.2f} px)")


def validate_split(data_dir: str, split: str, keep: int = 0, progress: bool = False):
    """Counts and validation of one split: (report dict, errors, examples).

    report: manifest count, count read, number of errors, ``warnings`` (list of messages: 2D points more than
    REPROJECTION_TOL_PX from the projection of the 3D ones); errors include manifest / file count mismatches.
    """
    from smplr_tf.data import schema

    man = schema.read_manifest(data_dir)
    files = schema.split_files(data_dir, split)
    entry = man["splits"][split]
    from tqdm import tqdm

    from smplr_tf.data import records

    check = ReprojectionCheck()
    errors, examples, total = [], [], 0
    bar = tqdm(total=int(entry["num_examples"]), desc=f"validating {split}", unit="rec", disable=not progress)
    for shard, path in zip(sorted(entry["shards"], key=lambda s: s["file"]), files):
        n, errs, exs = records.validate_files([path], keep=keep - len(examples), on_example=check, bar=bar)
        errors += errs
        examples += exs
        total += n
        if n != shard["count"] and not errs:
            errors.append(f"{path}: manifest lists {shard['count']} records, the file holds {n}")
    bar.close()
    if total != entry["num_examples"] and not errors:
        errors.append(f"{data_dir}: manifest says {entry['num_examples']} '{split}' examples, read {total}")
    report = {"split": split, "manifest_count": int(entry["num_examples"]), "read_count": total,
              "num_shards": len(files), "num_errors": len(errors), "warnings": check.warnings}
    return report, errors, examples


def draw_example(ex: dict, label: str = "", overlay: bool = True) -> np.ndarray:
    """One decoded example -> (256, 256, 3) uint8 RGB with skeleton, landmarks and mask outline drawn
    (``overlay`` False: the crop as it is, only the label)."""
    import cv2

    from smplr_tf import render
    from smplr_tf.body import skeleton

    img = np.ascontiguousarray(ex["image"])
    if not overlay:
        if label:
            cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        return img
    if ex.get("has_mask", 1):
        contours, _ = cv2.findContours((ex["mask"] > 127).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (255, 230, 0), 1)
    j2, l2 = ex["joints2d"], ex["landmarks2d"]
    if ex.get("has_landmarks", 1):
        pts = np.concatenate([j2, l2])
        parents = np.concatenate([np.full(24, -1), skeleton.LANDMARK_PARENTS]).astype(np.int32)
        img = render.draw_skeleton(img, pts, parents, (255, 0, 255), 1, radius=1)
    img = render.draw_skeleton(img, j2, skeleton.JOINT_PARENTS, (0, 255, 0), 1, radius=2)
    if label:
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def write_grid(examples, path: str, overlay: bool = True, tile: int = 0) -> None:
    """Tile the drawn examples into one PNG at ``path`` (``overlay``: see :func:`draw_example`; ``tile`` > 0:
    each crop resized to ``tile`` x ``tile`` pixels, e.g. for a small PNG in the docs)."""
    import cv2

    if not examples:
        raise ValueError("no valid example to draw")
    tiles = []
    for ex in examples:
        label = (f"{ex['dataset'].decode()} g{int(ex['gender'])} {ex['sequence'].decode()[:14]} "
                 f"z{float(ex['root_depth']):.1f}")
        img = draw_example(ex, label, overlay)
        tiles.append(cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA) if tile > 0 else img)
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = -(-len(tiles) // cols)
    h, w = tiles[0].shape[:2]
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, grid[..., ::-1]):
        raise OSError(f"cannot write '{path}'")


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv``. Called under ``__main__``; a flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "data_dir", None, "The records directory (shards + manifest.json).")
    define(flags.DEFINE_list, "splits", [], "Splits to check (default: every split in the manifest).")
    define(flags.DEFINE_string, "png", None, "Write a grid of examples to this PNG.")
    define(flags.DEFINE_integer, "png_examples", 16, "Examples drawn in the --png grid.", lower_bound=1)
    define(flags.DEFINE_boolean, "png_overlay", True, "Draw the skeleton, landmarks and mask outline on the "
           "--png crops (false: the images alone, to look at the appearance).")
    define(flags.DEFINE_integer, "png_tile", 0, "Size (pixels) of each --png crop; 0: as stored.", lower_bound=0)
    define(flags.DEFINE_integer, "max_errors", 20, "Errors (and warnings) printed per split (all are counted).",
           lower_bound=0)
    define(flags.DEFINE_boolean, "strict", False, "Treat warnings (2D points that are not the pinhole projection "
           "of the 3D points, e.g. lens distortion kept in a converter's 2D) as errors.")


def main(argv):
    del argv
    from smplr_tf.data import schema

    man = schema.read_manifest(FLAGS.data_dir)
    splits = [s.strip() for s in FLAGS.splits if s.strip()] or sorted(man.get("splits", {}))
    print(f"{FLAGS.data_dir}: schema v{man['schema_version']}, dataset={man.get('dataset')}, "
          f"splits={ {s: man['splits'][s]['num_examples'] for s in man.get('splits', {})} }")
    if man.get("body_model"):
        print(f"  body model: {man['body_model']}")
    bad, drawn = 0, []
    for split in splits:
        keep = max(0, FLAGS.png_examples - len(drawn))
        report, errors, examples = validate_split(FLAGS.data_dir, split, keep=keep, progress=sys.stderr.isatty())
        drawn += examples
        warnings = report["warnings"]
        if FLAGS.strict:
            errors, warnings = errors + warnings, []
        status = "OK" if not errors else f"{len(errors)} ERROR(S)"
        if warnings:
            status += f", {len(warnings)} warning(s)"
        print(f"  split '{split}': manifest {report['manifest_count']}, read {report['read_count']} in "
              f"{report['num_shards']} shard(s): validation {status}")
        for e in errors[:FLAGS.max_errors]:
            print(f"    {e}")
        for w in warnings[:FLAGS.max_errors]:
            print(f"    warning: {w}")
        bad += len(errors)
    if FLAGS.png:
        write_grid(drawn[:FLAGS.png_examples], FLAGS.png, FLAGS.png_overlay, FLAGS.png_tile)
        print(f"wrote {min(len(drawn), FLAGS.png_examples)} examples to {FLAGS.png}")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("data_dir")
    cli.run(main)
