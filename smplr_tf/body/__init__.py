"""Body model: TF-native SMPL layer, model-file loading, skeleton."""
