"""Appearance of synthetic people (smplr_tf/synth/appearance.py): every face coloured, deterministic per seed,
and measurably different front vs back and left vs right, on the free body model and on a mirrored mesh."""

import numpy as np
import pytest

from smplr_tf.body import model_io
from smplr_tf.synth import appearance, generate


def _tables(flip_z=False):
    data = model_io.load_model_file(model_io.find_model_files(None)["male"])
    v = np.asarray(data.v_template, np.float64) * ([1, 1, -1] if flip_z else [1, 1, 1])
    faces = np.asarray(data.f, np.int64)[:, [0, 2, 1] if flip_z else [0, 1, 2]]  # same first vertex, outward
    assert generate.outward_faces(faces, v) is faces
    return appearance.face_tables(data.weights, faces, v)


@pytest.fixture(scope="module")
def tables():
    return _tables()


def _group_gap(cols, a, b):
    """Distance between the mean albedo (RGB) of face groups a and b (bool masks)."""
    return float(np.linalg.norm(cols[a].mean(axis=0) - cols[b].mean(axis=0)))


def test_every_face_coloured_and_deterministic(tables):
    F = len(tables["regions"])
    assert set(np.unique(tables["regions"])) <= set(range(appearance.NUM_REGIONS))
    for k, m in tables.items():
        assert len(m) == F, k
    a = appearance.sample_face_colors(np.random.default_rng(5), tables)
    assert a.shape == (F, 3) and a.dtype == np.float32 and np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, appearance.sample_face_colors(np.random.default_rng(5), tables))
    assert not np.array_equal(a, appearance.sample_face_colors(np.random.default_rng(6), tables))


def test_front_is_found_from_the_mesh(tables):
    """The facing axis comes from the toes / head, not from a fixed sign: a mesh mirrored front to back gets the
    same face features, and they sit in front (+z) of the free model's head."""
    for k in ("eyes", "mouth", "nose", "toe_caps", "back_pockets", "chest", "yoke", "zip", "seam"):
        assert tables[k].sum() >= 3, k
    head = np.isin(tables["regions"], [appearance.HEAD, appearance.HAIR])
    assert tables["pos"][tables["eyes"], 2].mean() > tables["pos"][head, 2].mean() + 0.02
    assert tables["pos"][tables["back_pockets"], 2].mean() < tables["pos"][tables["chest"], 2].mean() - 0.1
    flipped = _tables(flip_z=True)
    for k in ("eyes", "mouth", "toe_caps", "back_pockets", "chest", "yoke"):
        np.testing.assert_array_equal(flipped[k], tables[k], err_msg=k)
    np.testing.assert_allclose(flipped["facing"], tables["facing"], atol=1e-5)


def _plain_colors(rng, t):
    """Control: a symmetric recipe (one colour per region, hair as the head's skin, per-face texture): every gap
    must be ~0 for it."""
    table = rng.uniform(0, 1, size=(appearance.NUM_REGIONS, 3))
    table[appearance.HAIR] = table[appearance.HEAD]
    return table[t["regions"]] * rng.normal(1.0, 0.04, size=(len(t["regions"]), 1))


def test_front_and_back_differ(tables):
    """Mean albedo of the front-facing vs back-facing faces of the torso and of the head, over 24 people."""
    reg, part, facing = tables["regions"], tables["part"], tables["facing"]
    torso = np.isin(part, [3, 6, 9]) & (reg == appearance.TOP)
    head = np.isin(reg, [appearance.HEAD, appearance.HAIR])
    groups = [(torso & (facing > 0.3), torso & (facing < -0.3)), (head & (facing > 0.3), head & (facing < -0.3))]

    def gaps(sample):
        return np.array([[_group_gap(sample(np.random.default_rng(s), tables), *g) for g in groups]
                         for s in range(24)])

    ours, plain = gaps(appearance.sample_face_colors), gaps(_plain_colors)
    assert plain.max() < 0.01  # the test can fail: a symmetric appearance shows no gap
    assert ours[:, 0].mean() > 0.03 and ours[:, 1].mean() > 0.08
    assert np.mean(ours.max(axis=1) > 0.02) >= 0.9  # nearly every person shows it somewhere


def test_left_and_right_differ(tables):
    """Mean albedo of the arms and legs on one side vs the other, over 24 people."""
    limbs = np.isin(tables["part"], [1, 2, 4, 5, 16, 17, 18, 19, 20, 21])
    left, right = limbs & (tables["side"] > 0), limbs & (tables["side"] < 0)
    assert left.sum() > 100 and abs(int(left.sum()) - int(right.sum())) < 0.2 * left.sum()

    def gaps(sample):
        return np.array([_group_gap(sample(np.random.default_rng(s), tables), left, right) for s in range(24)])

    ours, plain = gaps(appearance.sample_face_colors), gaps(_plain_colors)
    assert plain.max() < 0.01
    assert ours.mean() > 0.02 and np.mean(ours > 0.005) >= 0.9
