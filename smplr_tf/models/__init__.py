"""Networks of the SMPLR pipeline (Keras 3, TF backend): the one definition of each.

* :mod:`~smplr_tf.models.hourglass`: ``build_hourglass`` (volumetric / 2D stacked hourglass)
* :mod:`~smplr_tf.models.alexnet`: ``build_alexnet`` (direct 3D regression baseline)
* :mod:`~smplr_tf.models.dae`: ``build_dae`` (denoising autoencoder)
* :mod:`~smplr_tf.models.smplr`: ``build_psi_net``, ``build_omega_net`` (points -> bone features -> Psi / Omega),
  ``BoneFeatures``, ``bone_features``
* :mod:`~smplr_tf.models.pipeline`: ``SMPLRPipeline`` (image -> hourglass -> DAE -> Psi / Omega -> SMPL)
* :mod:`~smplr_tf.models.network`: ``Network``, the functional model every builder returns, whose
  ``get_config()`` is its builder's arguments; :mod:`~smplr_tf.models.registry`: config -> network
  (``build_network``) and training flags -> config (``config_from_flags``)
* :mod:`~smplr_tf.models.layers`: ``Standardize`` (the image networks' first layer), ``ChannelAffine``
* :mod:`~smplr_tf.models.softargmax`: ``soft_argmax_3d``, ``soft_argmax_2d``, ``peak_2d``, ``SoftArgmax``
* :mod:`~smplr_tf.models.inference`: ``fold_batch_norm``, ``hourglass_inference_model``, ``inference_model``

Image networks take (B, S, S, 3) float32 RGB in [0, 1] and standardise each image themselves; point networks
take (B, P, 3) root-relative metres. Submodules are imported on use (``from smplr_tf.models.hourglass import
build_hourglass``) so that importing the package does not import TensorFlow.
"""
