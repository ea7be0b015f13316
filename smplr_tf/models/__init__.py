"""Networks of the SMPLR pipeline (Keras 3 functional models, TF backend).

* :mod:`~smplr_tf.models.hourglass`: ``build_hourglass`` (volumetric / 2D stacked hourglass)
* :mod:`~smplr_tf.models.softargmax`: ``soft_argmax_3d``, ``soft_argmax_2d``, ``SoftArgmax`` layer
* :mod:`~smplr_tf.models.alexnet`: ``build_alexnet`` (direct 3D regression baseline)
* :mod:`~smplr_tf.models.dae`: ``build_dae`` (denoising autoencoder)
* :mod:`~smplr_tf.models.smplr`: ``build_psi``, ``build_omega``, ``bone_features``, ``SMPLR``, ``build_smplr``
* :mod:`~smplr_tf.models.inference`: ``fold_batch_norm``, ``hourglass_inference_model``, ``inference_model``

Submodules are imported on use (``from smplr_tf.models.hourglass import build_hourglass``) so that importing
the package does not import TensorFlow.
"""
