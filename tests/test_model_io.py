"""Body-model file loading: official-style chumpy pickles without chumpy, npz, and clear errors."""

import pickle
import sys

import numpy as np
import pytest

from smplr_tf.body import model_io, skeleton, testing
from smplr_tf.body.model_io import ModelFileError, ModelFileNotFoundError, find_model_files, load_model_file

FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f", "landmark_ids")


def _assert_same(a, b, fields=FIELDS):
    for k in fields:
        np.testing.assert_allclose(np.asarray(getattr(a, k), float), np.asarray(getattr(b, k), float), err_msg=k)


def test_npz_round_trip(tmp_path):
    written = testing.write_random_model(tmp_path / "m.npz", num_vertices=200, seed=2, gender="male")
    loaded = load_model_file(tmp_path / "m.npz")
    _assert_same(loaded, written)
    assert loaded.gender == "male" and loaded.path == str(tmp_path / "m.npz")
    assert loaded.v_template.dtype == np.float32 and loaded.f.dtype == np.int32
    assert loaded.kintree_table[0, 0] == -1


def test_random_model_is_well_formed():
    d = testing.random_model_data(seed=0)
    assert d.v_template.shape == (6890, 3) and d.posedirs.shape == (6890, 3, 207)
    assert d.shapedirs.shape == (6890, 3, 10) and d.J_regressor.shape == (24, 6890) and d.f.shape == (13776, 3)
    np.testing.assert_allclose(d.weights.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d.J_regressor.sum(1), 1.0, atol=1e-6)
    assert d.J_regressor.min() >= 0 and (d.J_regressor > 0).sum(1).max() <= 8
    joints = d.J_regressor @ d.v_template
    bones = np.linalg.norm(joints[1:] - joints[skeleton.JOINT_PARENTS[1:]], axis=1)
    assert bones.min() > 0.02  # a non-degenerate chain
    np.testing.assert_array_equal(d.landmark_ids, skeleton.SMPL_LANDMARK_VERTEX_IDS)


def test_official_style_pickle_loads_without_chumpy(tmp_path):
    path = tmp_path / "basicModel_f_lbs_10_207_0_v1.0.0.pkl"
    written = testing.write_official_style_pkl(path, seed=1)
    raw = path.read_bytes()
    assert b"chumpy.ch" in raw and b"chumpy.reordering" in raw and b"scipy.sparse.csc" in raw
    with pytest.raises(ModuleNotFoundError):
        __import__("chumpy")
    loaded = load_model_file(path)
    _assert_same(loaded, written)
    assert loaded.gender == "female"  # from the official name
    np.testing.assert_array_equal(loaded.landmark_ids, skeleton.SMPL_LANDMARK_VERTEX_IDS)  # none in the file
    assert loaded.kintree_table[0, 0] == -1 and loaded.extras["bs_type"] == "lrotmin"
    assert not any(m == "chumpy" or m.startswith("chumpy.") for m in sys.modules)


def test_pickle_with_more_shape_components_keeps_ten(tmp_path):
    data = testing.random_model_data(num_vertices=100, seed=3, gender="male")
    data.shapedirs = np.concatenate([data.shapedirs, np.ones((100, 3, 290), np.float32)], axis=2)
    testing.write_official_style_pkl(tmp_path / "SMPL_MALE.pkl", data=data)
    # landmark ids are only implied for 6890 vertices: the file lacks them, so loading names the key
    with pytest.raises(ModelFileError, match="landmark_ids"):
        load_model_file(tmp_path / "SMPL_MALE.pkl")
    raw = dict(np.load(_write_npz(tmp_path / "x.npz", data)))
    loaded = model_io.model_data_from_dict(raw, "x")
    np.testing.assert_array_equal(loaded.shapedirs, data.shapedirs[:, :, :10])


def _write_npz(path, data, **override):
    arrays = data.to_npz_dict()
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ModelFileNotFoundError, match="nope.pkl"):
        load_model_file(tmp_path / "nope.pkl")
    with pytest.raises(FileNotFoundError):
        load_model_file(tmp_path / "nope.npz")


@pytest.mark.parametrize("suffix", [".npz", ".pkl"])
def test_truncated_file_names_the_file(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".npz":
        testing.write_random_model(full, num_vertices=300, seed=0)
    else:
        testing.write_official_style_pkl(full, num_vertices=300, seed=0)
    cut = tmp_path / f"SMPL_FEMALE{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="SMPL_FEMALE") as e:
        load_model_file(cut)
    assert "truncated" in str(e.value) or "unreadable" in str(e.value)


def test_wrong_shape_and_missing_key_name_file_and_key(tmp_path):
    data = testing.random_model_data(num_vertices=120, seed=0)
    p = _write_npz(tmp_path / "bad_posedirs.npz", data, posedirs=data.posedirs[:, :, :206])
    with pytest.raises(ModelFileError, match=r"bad_posedirs\.npz.*'posedirs'.*207"):
        load_model_file(p)
    p = _write_npz(tmp_path / "bad_jreg.npz", data, J_regressor=data.J_regressor[:, :100])
    with pytest.raises(ModelFileError, match=r"bad_jreg\.npz.*'J_regressor'"):
        load_model_file(p)
    p = _write_npz(tmp_path / "no_weights.npz", data, weights=None)
    with pytest.raises(ModelFileError, match=r"no_weights\.npz.*'weights'.*missing"):
        load_model_file(p)
    bad_tree = data.kintree_table.copy()
    bad_tree[0, 5] = 3
    p = _write_npz(tmp_path / "bad_tree.npz", data, kintree_table=bad_tree)
    with pytest.raises(ModelFileError, match=r"'kintree_table'"):
        load_model_file(p)
    p = _write_npz(tmp_path / "bad_faces.npz", data, f=data.f + 1000)
    with pytest.raises(ModelFileError, match=r"'f'"):
        load_model_file(p)


def test_pickle_with_foreign_class_is_refused(tmp_path):
    p = tmp_path / "evil.pkl"
    with open(p, "wb") as fh:
        pickle.dump({"v_template": np.zeros((2, 3)), "x": pickle.loads}, fh, protocol=2)
    with pytest.raises(ModelFileError, match="refusing to load class"):
        load_model_file(p)


def test_find_model_files_official_names(tmp_path):
    testing.write_official_style_pkl(tmp_path / "basicModel_m_lbs_10_207_0_v1.0.0.pkl", num_vertices=50)
    testing.write_random_model(tmp_path / "smpl_female.npz", num_vertices=50)
    testing.write_random_model(tmp_path / "SMPL_NEUTRAL.npz", num_vertices=50)
    found = find_model_files(tmp_path)
    assert found == {"male": str(tmp_path / "basicModel_m_lbs_10_207_0_v1.0.0.pkl"),
                     "female": str(tmp_path / "smpl_female.npz"),
                     "neutral": str(tmp_path / "SMPL_NEUTRAL.npz")}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileNotFoundError, match="SMPL_FEMALE"):
        find_model_files(empty)
    with pytest.raises(ModelFileNotFoundError):
        find_model_files(tmp_path / "missing_dir")


def test_find_model_files_default_is_the_free_model():
    found = find_model_files()
    for g in ("female", "male", "neutral"):
        assert found[g] == str(model_io.FREE_MODEL_FILES[g])
        d = load_model_file(found[g])
        assert d.gender == g and d.landmark_ids.shape == (18,)
