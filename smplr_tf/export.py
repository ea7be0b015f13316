"""Export the trained pipeline as a TensorFlow SavedModel: image -> joints, betas, rotations, vertices.

    python -m smplr_tf.export --run_dir=runs/table1/shn_e2e --export_dir=export/smplr
    python -m smplr_tf.export --run_dir=runs/table2/hmr --export_dir=export/hmr   # the HMR baseline, same outputs
    python -m smplr_tf.export --shn_run=... --dae_run=... --psi_run=... --omega_run=... --export_dir=...
    python -m smplr_tf.export --run_dir=... --export_dir=export/smplr --export_tflite   # + smplr.tflite

The SavedModel needs neither this package nor Keras to serve (TF Serving, ``tf.saved_model.load``).
Signature ``serving_default``: ``image`` (B, S, S, 3) float32 RGB crops in [0, 1] (the paper's 2.5 m root-centred
crop, see :mod:`smplr_tf.serving`; S = the hourglass's input size; ``smplr_tf.serving.prepare_image`` makes one
from a uint8 crop), the same input the networks take everywhere (they standardise each image themselves).
Outputs (float32, metres, root-relative, camera axes): ``joints`` (B, 24, 3), ``points`` (B, 41, 3) (DAE),
``points_shn`` (B, 41, 3), ``betas`` (B, 10), ``rotmats`` (B, 24, 3, 3), ``gender`` (B,) (Psi's code, male where
>= 0), ``vertices`` (B, V, 3) (relative to the SMPL pelvis).
The body model's constants are saved inside the SavedModel (the licence of official SMPL files applies to an
export made with them).

``--export_tflite`` also writes ``<export_dir>/smplr.tflite``: the same function for TFLite (TensorFlow's CPU
inference runtime, XNNPACK; float32, built-in ops only) at a fixed batch (``--tflite_batch``, default 1), with
the same input and output names (signature ``serving_default``); run it with :class:`smplr_tf.tflite.Runner`
or any TFLite / LiteRT interpreter. On a CPU it is the fastest exact form of the point stages (Table 5).
"""

from __future__ import annotations

import os

import numpy as np
from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS


class ExportError(ValueError):
    pass


class _Serving:
    """Holds the pipeline; ``serve`` is the traced function."""

    def __init__(self, pipe, input_size: int):
        self.pipe = pipe
        self.input_size = input_size

    def serve(self, image):
        import tensorflow as tf

        out = self.pipe(tf.cast(image, tf.float32), training=False)
        root = out["joints"][:, :1]
        return {
            "joints": out["joints"] - root,
            "points": tf.cast(out["dae_points"], tf.float32),
            "points_shn": tf.cast(out["points"], tf.float32),
            "betas": tf.cast(out["betas"], tf.float32),
            "rotmats": tf.cast(out["rotmats"], tf.float32),
            "gender": tf.cast(out["gender"], tf.float32),
            "vertices": out["vertices"] - root,
        }


def export_pipeline(pipe, input_size: int, export_dir: str) -> str:
    """Write the SavedModel of ``pipe`` (image -> dict, see module docstring) to ``export_dir``."""
    import tensorflow as tf

    module = tf.Module()
    module.pipe = pipe
    # The SMPL layer keeps its constants as tf.Variables outside layer.weights: track them explicitly.
    smpl = getattr(pipe, "smpl", None)
    if smpl is not None:
        module.smpl_constants = [v for v in vars(smpl).values() if isinstance(v, tf.Variable)]
    serving = _Serving(pipe, input_size)
    spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32, name="image")
    module.serve = tf.function(serving.serve, input_signature=[spec])
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve})
    return export_dir


TFLITE_NAME = "smplr.tflite"


def export_tflite(pipe, input_size: int, path: str, batch: int = 1) -> str:
    """Write ``pipe`` as a TFLite model (image float32 [0, 1] (batch, S, S, 3) -> the SavedModel's outputs) to
    ``path``."""
    import tensorflow as tf

    from smplr_tf import tflite

    if batch < 1:
        raise ExportError(f"export_tflite: batch must be >= 1, got {batch}")
    serving = _Serving(pipe, input_size)
    spec = tf.TensorSpec([batch, input_size, input_size, 3], tf.float32, name="image")
    blob = tflite.convert(serving.serve, [spec])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    return path


def load_exported(export_dir: str):
    """-> the serving function: f(image=float32 [0, 1] (B,S,S,3) tensor) -> dict of tensors."""
    import tensorflow as tf

    return tf.saved_model.load(export_dir).signatures["serving_default"]


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This command's flags on ``fv``. --run_dir, --shn_run ... --omega_run mean what they mean to train.
    Called under ``__main__``; a flag that ``fv`` holds already (a second call) is left as it is."""
    define = cli.flag_definer(fv)

    cli.define_pipeline_run_flags(fv)
    define(flags.DEFINE_string, "export_dir", "", "SavedModel directory to write.")
    define(flags.DEFINE_boolean, "export_tflite", False, "Also write <export_dir>/smplr.tflite, the same pipeline "
           "for TFLite (CPU, XNNPACK, float32) at a fixed batch of --tflite_batch.")
    define(flags.DEFINE_integer, "tflite_batch", 1, "--export_tflite: the TFLite model's fixed batch size.")


def main(argv):
    del argv
    from smplr_tf.serving import ServingError, load_pipeline

    if not FLAGS.export_dir:
        raise SystemExit("export: give --export_dir=<folder for the SavedModel>")
    try:
        pipe, size, _ = load_pipeline(FLAGS.run_dir, FLAGS.shn_run, FLAGS.dae_run, FLAGS.psi_run, FLAGS.omega_run)
    except ServingError as e:
        raise SystemExit(f"export: {e}")
    export_pipeline(pipe, size, FLAGS.export_dir)
    f = load_exported(FLAGS.export_dir)
    import tensorflow as tf

    out = f(image=tf.zeros([1, size, size, 3], tf.float32))
    print(f"wrote SavedModel {os.path.abspath(FLAGS.export_dir)}; serving_default outputs: "
          + ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(out.items())))
    if FLAGS.export_tflite:
        from smplr_tf import tflite

        try:
            path = export_tflite(pipe, size, os.path.join(FLAGS.export_dir, TFLITE_NAME), FLAGS.tflite_batch)
        except (ExportError, tflite.TFLiteError) as e:
            raise SystemExit(f"export: {e}")
        image = np.random.default_rng(0).uniform(size=(FLAGS.tflite_batch, size, size, 3)).astype(np.float32)
        got = tflite.Runner(path)(image=image)
        ref = f(image=tf.constant(image))
        dev = max(float(np.abs(got[k] - ref[k].numpy()).max()) for k in ("joints", "vertices", "points"))
        print(f"wrote TFLite {os.path.abspath(path)} (batch {FLAGS.tflite_batch}, "
              f"{os.path.getsize(path) / 1e6:.1f} MB); largest difference from the SavedModel on a random image: "
              f"{dev * 1000:.4f} mm")



if __name__ == "__main__":
    define_flags()
    cli.run(main)
