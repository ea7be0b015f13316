"""The skeleton module: tree, flips, groups, bone vectors, landmark-parent derivation."""

import numpy as np
import pytest
import tensorflow as tf

from smplr_tf.body import skeleton as sk


def _swap_side(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


def test_42_node_tree_is_a_tree_rooted_at_0_with_parents_first():
    p = sk.TREE_PARENTS
    assert p.shape == (sk.NUM_NODES,) == (42,)
    assert p[0] == -1 and np.all(p[1:] >= 0)
    assert np.all(p[1:] < np.arange(1, sk.NUM_NODES))  # parents before children => acyclic, connected to 0
    # joints keep SMPL's tree; landmarks hang off joints (not off other landmarks)
    np.testing.assert_array_equal(p[1:sk.NUM_JOINTS], sk.JOINT_PARENTS[1:])
    assert np.all(p[sk.NUM_JOINTS:] < sk.NUM_JOINTS)
    np.testing.assert_array_equal(p[sk.NUM_JOINTS:], sk.LANDMARK_PARENTS)
    assert len(sk.POINT_NAMES) == sk.NUM_POINTS == 41 and len(set(sk.POINT_NAMES)) == 41


def test_flip_permutations_are_involutions_that_swap_sides():
    for perm, names in ((sk.JOINT_FLIP_PERM, sk.JOINT_NAMES), (sk.LANDMARK_FLIP_PERM, sk.LANDMARK_NAMES),
                        (sk.POINT_FLIP_PERM, sk.POINT_NAMES), (sk.LIMB_FLIP_PERM, sk.LIMB_NAMES)):
        assert sorted(perm.tolist()) == list(range(len(names)))
        np.testing.assert_array_equal(perm[perm], np.arange(len(names)))
        assert [names[i] for i in perm] == [_swap_side(n) for n in names]
    assert any(n.startswith("left_") for n in sk.POINT_NAMES)


def test_flip_is_consistent_with_the_tree():
    """Flipping a node's parent gives the flipped node's parent, so flipped bones are bones (augmentation)."""
    node_flip = np.concatenate([[0], sk.POINT_FLIP_PERM + 1])
    p = sk.TREE_PARENTS
    for i in range(1, sk.NUM_NODES):
        assert p[node_flip[i]] == node_flip[p[i]], sk.POINT_NAMES[i - 1]


def test_bone_vectors_numpy_equals_tf_and_definition():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(3, sk.NUM_POINTS, 3)).astype(np.float32)
    b_np = sk.bone_vectors(pts)
    b_tf = sk.bone_vectors(tf.constant(pts)).numpy()
    np.testing.assert_allclose(b_np, b_tf, atol=1e-6)
    nodes = np.concatenate([np.zeros((3, 1, 3), np.float32), pts], axis=1)
    for i in range(1, sk.NUM_NODES):
        np.testing.assert_allclose(b_np[:, i - 1], nodes[:, i] - nodes[:, sk.TREE_PARENTS[i]], atol=1e-6)


def test_points_from_smpl_numpy_equals_tf():
    rng = np.random.default_rng(1)
    j = rng.normal(size=(2, 24, 3)).astype(np.float32)
    lm = rng.normal(size=(2, 18, 3)).astype(np.float32)
    a = sk.points_from_smpl(j, lm)
    np.testing.assert_allclose(a, sk.points_from_smpl(tf.constant(j), tf.constant(lm)).numpy(), atol=1e-6)
    np.testing.assert_allclose(a[:, sk.JOINT_POINTS], j[:, 1:] - j[:, :1], atol=1e-6)
    np.testing.assert_allclose(a[:, sk.LANDMARK_POINTS], lm - j[:, :1], atol=1e-6)


def test_derive_landmark_parents_recovers_constructed_parents():
    rng = np.random.default_rng(2)
    joints = rng.uniform(-3.0, 3.0, (24, 3))  # far apart: only the true parent matches its distance
    true = rng.integers(0, 24, size=18)
    dirs = rng.normal(size=(18, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    landmarks = joints[true] + dirs * sk.LANDMARK_PARENT_DISTANCES[:, None]
    d = np.linalg.norm(landmarks[:, None] - joints[None], axis=-1)
    mismatch = np.abs(d - sk.LANDMARK_PARENT_DISTANCES[:, None])
    mismatch[np.arange(18), true] = np.inf
    assert mismatch.min() > 1e-3  # the construction is unambiguous
    parents, residual = sk.derive_landmark_parents(joints, landmarks)
    np.testing.assert_array_equal(parents, true)
    assert residual.max() < 1e-5
    # candidates restrict the choice: forbidding the true parent picks another joint
    cands = [[j for j in range(24) if j != true[k]] for k in range(18)]
    parents2, residual2 = sk.derive_landmark_parents(joints, landmarks, candidates=cands)
    assert np.all(parents2 != true) and np.all(residual2 > 1e-3)


def test_evaluation_groups_are_the_authors_by_joint_name():
    names = {g: tuple(sk.JOINT_NAMES[j] for j in sk.EVAL_GROUPS[g]) for g in sk.GROUP_NAMES}
    assert sk.GROUP_NAMES == ("Hd", "Ts", "Sr", "Ew", "Wt", "Hp", "Kn", "Ft")
    assert names == {
        "Hd": ("neck", "head"),
        "Ts": ("spine1", "spine2", "spine3"),
        "Sr": ("left_collar", "right_collar", "left_shoulder", "right_shoulder"),
        "Ew": ("left_elbow", "right_elbow"),
        "Wt": ("left_wrist", "right_wrist"),  # the wrists only, not the hands
        "Hp": ("left_hip", "right_hip"),
        "Kn": ("left_knee", "right_knee"),
        "Ft": ("left_ankle", "right_ankle", "left_foot", "right_foot"),
    }
    joints = [j for g in sk.GROUP_NAMES for j in sk.EVAL_GROUPS[g]]
    assert len(joints) == len(set(joints)) == 21  # disjoint; the hands (22, 23) are in no group
    assert sorted(set(range(1, 24)) - set(joints)) == [22, 23]
    for g in sk.GROUP_NAMES:
        np.testing.assert_array_equal(sk.group_point_indices(g), np.array(sk.EVAL_GROUPS[g]) - 1)


def test_the_16_joint_set():
    assert sk.EVAL_JOINTS_16 == (1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 18, 19, 20, 21)
    left_out = sorted(set(range(1, 24)) - set(sk.EVAL_JOINTS_16))
    assert [sk.JOINT_NAMES[j] for j in left_out] == [
        "spine2", "left_foot", "right_foot", "left_collar", "right_collar", "left_hand", "right_hand"]
    assert sk.JOINT_SETS == {"Jt": tuple(range(1, 24)), "Jt16": sk.EVAL_JOINTS_16}
    np.testing.assert_array_equal(sk.joint_set_point_indices("Jt16"), np.array(sk.EVAL_JOINTS_16) - 1)
    np.testing.assert_array_equal(sk.joint_set_point_indices("Jt"), np.arange(23))


def test_official_bone_template():
    t = sk.OFFICIAL_TEMPLATE_BONE_LENGTHS
    assert t.shape == (41,)
    # child joint -> length: left hip -> left knee, right collar -> right shoulder, right wrist -> right hand
    assert t[4 - 1] == pytest.approx(0.3656) and t[17 - 1] == pytest.approx(0.0955)
    assert t[23 - 1] == pytest.approx(0.0814)
    np.testing.assert_array_equal(t[23:], sk.LANDMARK_PARENT_DISTANCES)
    # left / right bones agree to 1.5 cm (a symmetric template)
    flip = sk.JOINT_FLIP_PERM[1:] - 1
    assert np.abs(t[:23] - t[:23][flip]).max() < 0.015


def test_limb_chains_follow_the_tree():
    # the authors' limbs: the arms from the collar to the hand, the legs from the hip to the foot
    names = [tuple(sk.JOINT_NAMES[j] for j in c) for c in sk.LIMB_CHAINS]
    assert names[0] == ("left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_hand")
    assert names[3] == ("right_hip", "right_knee", "right_ankle", "right_foot")
    for chain in sk.LIMB_CHAINS:
        for a, b in zip(chain[:-1], chain[1:]):
            assert sk.JOINT_PARENTS[b] == a
