"""Make synthetic SURREAL-like TFRecords from the body model (no dataset needed).

    python tfrecords_tools/make_synthetic.py --out_dir=data/synthetic --split=train --num_examples=20000 \
        --num_workers=2 [--background_dir=VOC_without_people/] [--smpl_dir=path/to/SMPL]

Bodies: random pose families within joint limits, betas ~ N(0, 1), both genders, all yaws; camera 320x240,
f = 600 px, pelvis 3-7 m away; the paper's 2.5 m crop resized to 256. Deterministic for a seed (each example
has its own seed, so the output does not depend on --num_workers). See smplr_tf/synth/generate.py.
"""

import os

from absl import flags  # no TensorFlow at import: spawned workers re-import this file

from smplr_tf import cli

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv`` (--seed, --smpl_dir, --genders and --background_dir mean what they mean to
    train). Called under ``__main__``; a flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "out_dir", None, "Output records directory (shards + manifest.json).")
    define(flags.DEFINE_string, "split", "train", "The split written (e.g. train, val).")
    define(flags.DEFINE_integer, "num_examples", 1000, "Examples to write.", lower_bound=1)
    define(flags.DEFINE_integer, "seed", 0, "Random seed of the split (each example has its own seed derived from "
           "it, so the output does not depend on --num_workers).")
    define(flags.DEFINE_integer, "num_workers", max(1, (os.cpu_count() or 2) - 1),
           "Rendering processes (0 = render in the main process).", lower_bound=0)
    define(flags.DEFINE_integer, "examples_per_shard", 1000, "Examples per output shard.", lower_bound=1)
    define(flags.DEFINE_string, "background_dir", "", "Images without people (e.g. VOC) replacing the procedural "
           "backgrounds.")
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files; empty: the package's free body model.")
    define(flags.DEFINE_list, "genders", ["female", "male"], "Body models drawn from.")
    define(flags.DEFINE_integer, "smpl_batch_size", 32, "Bodies per SMPL batch in the main process.", lower_bound=1)
    define(flags.DEFINE_list, "depth_range", ["3", "7"], "min,max distance of the pelvis from the camera, metres "
           "(uniform). SURREAL's renderer uses N(8, 1) m: 6,10 gives data closer to SURREAL.")
    define(flags.DEFINE_float, "background_clutter", 1.0, "Shapes (boxes, poles, ellipses, lines) drawn on the "
           "procedural backgrounds, relative to the default 4-19 (0: a bare wall and floor, what reproduce --quick "
           "uses). No effect with --background_dir.", lower_bound=0.0, upper_bound=4.0)


def main(argv):
    del argv
    from smplr_tf.synth.generate import generate_split

    shards = generate_split(FLAGS.out_dir, FLAGS.split, FLAGS.num_examples, seed=FLAGS.seed,
                            num_workers=FLAGS.num_workers, examples_per_shard=FLAGS.examples_per_shard,
                            background_dir=FLAGS.background_dir or None, smpl_dir=FLAGS.smpl_dir or None,
                            genders=tuple(FLAGS.genders), batch_size=FLAGS.smpl_batch_size,
                            depth_range=tuple(float(z) for z in FLAGS.depth_range),
                            background_clutter=FLAGS.background_clutter)
    total = sum(s["count"] for s in shards)
    print(f"wrote {total} '{FLAGS.split}' examples in {len(shards)} shard(s) to {FLAGS.out_dir}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("out_dir")
    cli.run(main)
