"""Body model: TF-native SMPL layer, model-file loading, skeleton.

Modules (imported explicitly, so that NumPy-only users such as the converters never pull in TensorFlow):

* ``skeleton``  joint / landmark names and indices, the 42-node tree, flips, evaluation groups (NumPy only).
* ``model_io``  ``load_model_file`` (official ``.pkl`` without chumpy, ``.npz``), ``find_model_files`` (NumPy).
* ``smpl``      the ``SMPL`` Keras layer and its pure functions (TensorFlow).
* ``testing``   random well-formed model files for tests (NumPy).
"""
