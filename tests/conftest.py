"""Shared fixtures."""

import pytest


@pytest.fixture(scope="module")
def make_tiny_world(tmp_path_factory):
    """``make(name, num_val, seed) -> (root, smpl_dir, data_dir)``: a random 300-vertex female/male body model
    and a synthetic 'val' split rendered with it, in a fresh temporary directory."""

    def make(name: str, num_val: int, seed: int):
        from smplr_tf.body.testing import write_random_model
        from smplr_tf.synth.generate import generate_split

        root = tmp_path_factory.mktemp(name)
        smpl_dir = root / "smpl"
        smpl_dir.mkdir()
        write_random_model(str(smpl_dir / "female.npz"), num_vertices=300, seed=0, gender="female")
        write_random_model(str(smpl_dir / "male.npz"), num_vertices=300, seed=1, gender="male")
        data = root / "data"
        generate_split(str(data), "val", num_val, seed=seed, smpl_dir=str(smpl_dir), progress=False)
        return root, str(smpl_dir), str(data)

    return make
