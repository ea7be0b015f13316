"""Synthetic SURREAL-like data made from the body model (no dataset needed).

* :mod:`smplr_tf.synth.pose`: pose families within anatomical joint limits, global orientation.
* :mod:`smplr_tf.synth.appearance`: per-part clothing / skin colours, light, backgrounds, occluders.
* :mod:`smplr_tf.synth.generate`: bodies through our SMPL layer (main process), rendering and the paper's crop
  (worker processes, NumPy/OpenCV only), records written with the schema. CLI: ``tfrecords_tools/make_synthetic.py``.

Importing this package (or the three modules) never imports TensorFlow: rendering workers rely on it.
"""
