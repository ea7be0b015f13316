"""Make synthetic SURREAL-like TFRecords from the body model (no dataset needed).

    python tfrecords_tools/make_synthetic.py --out_dir=data/synthetic --split=train --num_examples=20000 \
        --num_workers=2 [--background_dir=VOC_without_people/] [--smpl_dir=path/to/SMPL]

Bodies: random pose families within joint limits, betas ~ N(0, 1), both genders, all yaws; camera 320x240,
f = 600 px, pelvis 3-7 m away; the paper's 2.5 m crop resized to 256. Deterministic for a seed (each example
has its own seed, so the output does not depend on --num_workers). See smplr_tf/synth/generate.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from absl import app, flags  # noqa: E402  (no TensorFlow at import: spawned workers re-import this file)

from smplr_tf import flags as smplr_flags  # noqa: E402  (the flags: section "records tools"; absl only)

FLAGS = smplr_flags.FLAGS


def main(argv):
    del argv
    smplr_flags.use_tool_flags("make_synthetic")
    if not FLAGS.out_dir:
        raise app.UsageError("--out_dir is required")
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
    from smplr_tf import cli

    smplr_flags.prepare_tool("make_synthetic")
    flags.mark_flag_as_required("out_dir")
    cli.run(main)
