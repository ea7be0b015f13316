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

flags.DEFINE_string("out_dir", None, "Output directory (shards + manifest.json).")
flags.DEFINE_integer("num_examples", 1000, "Number of examples to write.")
flags.DEFINE_string("split", "train", "Split name (train, val, test, ...).")
flags.DEFINE_integer("seed", 0, "Random seed; the same seed and split give the same records.")
flags.DEFINE_integer("num_workers", max(1, (os.cpu_count() or 2) - 1),
                     "Rendering processes (0 = render in the main process).")
flags.DEFINE_integer("examples_per_shard", 1000, "Examples per TFRecord shard.")
flags.DEFINE_string("background_dir", None,
                    "Folder of background images without people (e.g. VOC); default: procedural backgrounds.")
flags.DEFINE_string("smpl_dir", None, "Folder with official SMPL model files; default: the free body model.")
flags.DEFINE_list("genders", ["female", "male"], "Genders to sample uniformly (female, male, neutral).")
flags.DEFINE_integer("batch_size", 32, "Bodies per SMPL batch in the main process.")
flags.DEFINE_list("depth_range", ["3", "7"], "min,max distance of the pelvis from the camera, metres (uniform). "
                  "SURREAL's renderer uses N(8, 1) m: 6,10 gives data closer to SURREAL.")
flags.mark_flag_as_required("out_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from smplr_tf.synth.generate import generate_split

    shards = generate_split(FLAGS.out_dir, FLAGS.split, FLAGS.num_examples, seed=FLAGS.seed,
                            num_workers=FLAGS.num_workers, examples_per_shard=FLAGS.examples_per_shard,
                            background_dir=FLAGS.background_dir, smpl_dir=FLAGS.smpl_dir,
                            genders=tuple(FLAGS.genders), batch_size=FLAGS.batch_size,
                            depth_range=tuple(float(z) for z in FLAGS.depth_range))
    total = sum(s["count"] for s in shards)
    print(f"wrote {total} '{FLAGS.split}' examples in {len(shards)} shard(s) to {FLAGS.out_dir}")


if __name__ == "__main__":
    app.run(main)
