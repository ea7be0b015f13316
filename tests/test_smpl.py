"""The TF SMPL layer against an independent implementation (body-models, NumPy) and against SMPL's algebra."""

import body_models.smpl.numpy as body_models_smpl  # the independent reference (test extra): never skipped
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from smplr_tf.body import model_io, skeleton, testing
from smplr_tf.body.smpl import SMPL, gender_index_from_sign, rodrigues, template_bone_lengths

TOL = 1e-5  # metres


@pytest.fixture(scope="module")
def random_files(tmp_path_factory):
    """Random models with SMPL's exact dimensions (6890 x 24 x 10 x 207), one per gender."""
    d = tmp_path_factory.mktemp("random_smpl")
    testing.write_random_model(d / "SMPL_FEMALE.npz", seed=0, gender="female")
    testing.write_random_model(d / "SMPL_MALE.npz", seed=1, gender="male")
    return {"female": str(d / "SMPL_FEMALE.npz"), "male": str(d / "SMPL_MALE.npz")}


@pytest.fixture(scope="module")
def layer2(random_files):
    return SMPL(model_files=random_files)


def _free_files():
    """The shipped free model; its absence is a packaging error, never a skip."""
    files = model_io.FREE_MODEL_FILES
    missing = [str(files[g]) for g in ("female", "male") if not files[g].is_file()]
    assert not missing, f"free body model missing from the package: {missing}"
    return {g: str(files[g]) for g in ("female", "male")}


def _random_params(batch, seed, scale=0.6):
    rng = np.random.default_rng(seed)
    betas = rng.normal(0.0, 1.0, (batch, 10)).astype(np.float32)
    pose = rng.normal(0.0, scale, (batch, 72)).astype(np.float32)
    pose[0, 3:6] = [0.0, 0.0, 3.1]  # one angle near pi
    return betas, pose


def _body_models_outputs(path, betas, pose, landmark_ids):
    model = body_models_smpl.SMPL(model_path=path)
    b = len(betas)
    kw = dict(pelvis_rotation=pose[:, :3], shape=betas)
    verts = np.asarray(model.forward_vertices(pose[:, 3:].reshape(b, 23, 3), **kw))
    joints = np.asarray(model.forward_skeleton(pose[:, 3:].reshape(b, 23, 3), **kw))[..., :3, 3]
    return verts, joints, verts[:, landmark_ids]


def _check_against_body_models(files, seed):
    layer = SMPL(model_files=files)
    betas, pose = _random_params(6, seed)
    gender = np.array([0, 1, 1, 0, 1, 0], np.int32)
    out = {k: v.numpy() for k, v in layer(betas, pose, gender).items()}
    for g, name in enumerate(("female", "male")):
        sel = gender == g
        ids = layer.model_data[g].landmark_ids
        verts, joints, lms = _body_models_outputs(files[name], betas[sel], pose[sel], ids)
        np.testing.assert_allclose(out["vertices"][sel], verts, atol=TOL)
        np.testing.assert_allclose(out["joints"][sel], joints, atol=TOL)
        np.testing.assert_allclose(out["landmarks"][sel], lms, atol=TOL)
    # The poses are far from the rest pose: the comparison is not a trivial one.
    assert np.abs(out["vertices"] - layer.model_data[0].v_template).max() > 0.1


def test_matches_body_models_on_random_smpl_sized_models(random_files):
    _check_against_body_models(random_files, seed=3)


def test_matches_body_models_on_free_model():
    _check_against_body_models(_free_files(), seed=4)


def _check_zero_pose_is_template(files):
    layer = SMPL(model_files=files)
    b = len(layer.genders)
    out = layer(np.zeros((b, 10), np.float32), np.zeros((b, 72), np.float32), np.arange(b))
    for g, data in enumerate(layer.model_data):
        np.testing.assert_allclose(out["vertices"][g].numpy(), data.v_template, atol=1e-6)
        np.testing.assert_allclose(out["joints"][g].numpy(), data.J_regressor @ data.v_template, atol=1e-6)
        np.testing.assert_allclose(out["landmarks"][g].numpy(), data.v_template[data.landmark_ids], atol=1e-6)


def test_zero_pose_reproduces_template_random(random_files):
    _check_zero_pose_is_template(random_files)


def test_zero_pose_reproduces_template_free_model():
    _check_zero_pose_is_template(_free_files())


def test_axis_angle_and_matrix_inputs_agree(layer2):
    betas, pose = _random_params(3, seed=5)
    mats = Rotation.from_rotvec(pose.reshape(-1, 3).astype(np.float64)).as_matrix().reshape(3, 24, 3, 3)
    g = np.array([1, 0, 1])
    a = layer2(betas, pose, g)
    m = layer2(betas, mats.astype(np.float32), g)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), m[k].numpy(), atol=2e-6)


def test_raw_matrices_are_used_as_given(layer2):
    """SMPLR feeds unconstrained 3x3 matrices: a scaled pelvis matrix must scale the body about the pelvis."""
    betas = np.zeros((1, 10), np.float32)
    mats = np.tile(np.eye(3, dtype=np.float32), (1, 24, 1, 1))
    scaled = mats.copy()
    scaled[0, 0] *= 2.0
    a = layer2(betas, mats)["vertices"].numpy()[0]
    b = layer2(betas, scaled)["vertices"].numpy()[0]
    j0 = layer2(betas, mats)["joints"].numpy()[0, 0]
    np.testing.assert_allclose(b - j0, 2.0 * (a - j0), atol=1e-5)


def test_rodrigues_matches_scipy_and_tfg():
    from tensorflow_graphics.geometry.transformation import rotation_matrix_3d

    rng = np.random.default_rng(0)
    r = rng.normal(0, 1.5, (50, 3)).astype(np.float32)
    r[0] = 0.0
    r[1] = [1e-4, -2e-4, 5e-5]
    r[2] = [0.0, np.pi - 1e-4, 0.0]
    ours = rodrigues(tf.constant(r)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(r.astype(np.float64)).as_matrix(), atol=2e-6)
    angle = np.linalg.norm(r[3:], axis=1, keepdims=True)
    tfg = rotation_matrix_3d.from_axis_angle(r[3:] / angle, angle).numpy()
    np.testing.assert_allclose(ours[3:], tfg, atol=2e-6)


def test_rodrigues_gradient_at_zero_is_the_skew_generator():
    r = tf.Variable(tf.zeros([3]))
    for i in range(3):
        with tf.GradientTape() as tape:
            rot = rodrigues(r)
            # d R / d r_i at 0 is the generator [e_i]_x; project on it
            gen = np.zeros((3, 3), np.float32)
            gen[[2, 0, 1][i], [1, 2, 0][i]] = 1.0
            gen[[1, 2, 0][i], [2, 0, 1][i]] = -1.0
            y = tf.reduce_sum(rot * gen)
        grad = tape.gradient(y, r).numpy()
        expected = np.zeros(3, np.float32)
        expected[i] = 2.0
        np.testing.assert_allclose(grad, expected, atol=1e-6)


@pytest.mark.parametrize("angle", [0.0, 1e-6, np.pi - 1e-3, np.pi, np.pi + 1e-3])
def test_layer_gradients_are_finite(layer2, angle):
    betas = tf.Variable(np.zeros((2, 10), np.float32))
    pose = np.zeros((2, 72), np.float32)
    pose[:, 3 * np.arange(24)] = angle  # every joint, about x
    pose[1, 3 * np.arange(24) + 1] = angle / 2
    pose = tf.Variable(pose)
    with tf.GradientTape() as tape:
        out = layer2(betas, pose, tf.constant([0, 1]))
        loss = sum(tf.reduce_sum(tf.square(v)) for v in out.values())
    g_betas, g_pose = tape.gradient(loss, [betas, pose])
    assert np.all(np.isfinite(g_betas.numpy())) and np.all(np.isfinite(g_pose.numpy()))
    assert np.abs(g_pose.numpy()).max() > 0


def test_tf_function_xla_and_mixed_precision_agree_with_eager(random_files):
    import keras

    layer = SMPL(model_files=random_files)
    betas, pose = _random_params(4, seed=6)
    # quantise once so that float16 inputs are the same numbers in every variant
    betas, pose = betas.astype(np.float16).astype(np.float32), pose.astype(np.float16).astype(np.float32)
    gender = tf.constant([0, 1, 0, 1])
    ref = {k: v.numpy() for k, v in layer(betas, pose, gender).items()}
    graph = tf.function(lambda b, p, g: layer(b, p, g))(betas, pose, gender)
    xla = tf.function(lambda b, p, g: layer(b, p, g), jit_compile=True)(betas, pose, gender)
    uniform = tf.function(lambda b, p, g: layer(b, p, g), jit_compile=True)(betas, pose, tf.constant([1, 1, 1, 1]))
    np.testing.assert_allclose(uniform["vertices"].numpy()[1], ref["vertices"][1], atol=1e-5)
    old = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        mixed_layer = SMPL(model_files=random_files)
        assert mixed_layer.compute_dtype == "float32"
        mixed = mixed_layer(tf.constant(betas, tf.float16), tf.constant(pose, tf.float16), gender)
    finally:
        keras.config.set_dtype_policy(old)
    for name, out in (("graph", graph), ("xla", xla), ("mixed", mixed)):
        for k in ref:
            assert out[k].dtype == tf.float32, (name, k)
            np.testing.assert_allclose(out[k].numpy(), ref[k], atol=1e-5, err_msg=f"{name} {k}")


def test_mixed_gender_batch_equals_single_gender_layers(random_files, layer2):
    betas, pose = _random_params(5, seed=7)
    gender = np.array([1, 0, 0, 1, 1], np.int32)
    mixed = layer2(betas, pose, gender)
    for g, name in enumerate(("female", "male")):
        single = SMPL(model_files={name: random_files[name]}, genders=(name,))
        sel = gender == g
        ref = single(betas[sel], pose[sel])
        for k in ref:
            np.testing.assert_allclose(mixed[k].numpy()[sel], ref[k].numpy(), atol=2e-6)
    # the default gender is index 0
    np.testing.assert_allclose(layer2(betas[:1], pose[:1])["vertices"].numpy(),
                               layer2(betas[:1], pose[:1], np.array([0]))["vertices"].numpy(), atol=0)


def test_different_skinning_and_landmarks_per_gender(tmp_path):
    """Genders whose weights / landmark ids differ take the stacked-weights path; still per-sample exact."""
    fa = testing.write_random_model(tmp_path / "f.npz", num_vertices=300, seed=10, gender="female")
    ma = testing.write_random_model(tmp_path / "m.npz", num_vertices=300, seed=11, gender="male",
                                    num_faces=fa.f.shape[0])
    ma.f = fa.f  # one mesh topology
    np.savez(tmp_path / "m.npz", **ma.to_npz_dict())
    files = {"female": str(tmp_path / "f.npz"), "male": str(tmp_path / "m.npz")}
    layer = SMPL(model_files=files)
    assert not layer._shared_weights and not layer._shared_landmarks
    betas, pose = _random_params(4, seed=8)
    gender = np.array([0, 1, 1, 0])
    out = layer(betas, pose, gender)
    for g, name in enumerate(("female", "male")):
        sel = gender == g
        verts, joints, lms = _body_models_outputs(files[name], betas[sel], pose[sel], layer.model_data[g].landmark_ids)
        np.testing.assert_allclose(out["vertices"].numpy()[sel], verts, atol=TOL)
        np.testing.assert_allclose(out["landmarks"].numpy()[sel], lms, atol=TOL)


def test_template_points_and_bone_lengths(layer2):
    pts = [layer2.template_points(g) for g in (0, 1)]
    for g, data in enumerate(layer2.model_data):
        joints = data.J_regressor @ data.v_template
        expected = skeleton.points_from_smpl(joints[None], data.v_template[data.landmark_ids][None])[0]
        np.testing.assert_allclose(pts[g], expected, atol=1e-6)
    lengths = template_bone_lengths(layer2)
    assert lengths.shape == (41,) and lengths.dtype == np.float32
    np.testing.assert_allclose(lengths, np.linalg.norm(skeleton.bone_vectors((pts[0] + pts[1]) / 2), axis=-1),
                               atol=1e-6)
    assert np.all(lengths > 0.01)


def test_gender_index_from_sign():
    g = np.array([-1.0, -0.01, 0.0, 0.3, 1.0], np.float32)
    np.testing.assert_array_equal(gender_index_from_sign(g), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(gender_index_from_sign(tf.constant(g)).numpy(), [0, 0, 1, 1, 1])


def test_keras_model_and_constants_kept_out_of_weights(layer2):
    import keras

    b_in, p_in, g_in = keras.Input((10,)), keras.Input((72,)), keras.Input((), dtype="int32")
    out = layer2(b_in, p_in, g_in)
    model = keras.Model([b_in, p_in, g_in], out["joints"])
    betas, pose = _random_params(2, seed=9)
    got = model.predict([betas, pose, np.array([0, 1], np.int32)], verbose=0)
    np.testing.assert_allclose(got, layer2(betas, pose, np.array([0, 1]))["joints"].numpy(), atol=1e-6)
    assert layer2.weights == [] and model.weights == []
    assert layer2.faces.dtype == np.int32 and layer2.num_vertices == 6890 and layer2.genders == ("female", "male")
    clone = SMPL.from_config(layer2.get_config())  # the config names the files, not the arrays
    np.testing.assert_allclose(clone(betas, pose, np.array([1, 0]))["vertices"].numpy(),
                               layer2(betas, pose, np.array([1, 0]))["vertices"].numpy(), atol=0)


def test_missing_gender_is_a_clear_error(random_files):
    with pytest.raises(FileNotFoundError, match="neutral"):
        SMPL(model_files=random_files, genders=("female", "male", "neutral"))


def test_model_without_pose_correctives_matches_body_models(tmp_path):
    """posedirs all zero (like the free model): the layer drops the pose-blend rows; results unchanged."""
    data = testing.random_model_data(num_vertices=400, seed=12, gender="male")
    data.posedirs[:] = 0.0
    path = tmp_path / "SMPL_MALE.npz"
    np.savez(path, **data.to_npz_dict())
    layer = SMPL(model_files={"male": str(path)}, genders=("male",))
    assert not layer.pose_blend
    betas, pose = _random_params(3, seed=13)
    out = layer(betas, pose)
    verts, joints, _ = _body_models_outputs(str(path), betas, pose, data.landmark_ids)
    np.testing.assert_allclose(out["vertices"].numpy(), verts, atol=TOL)
    np.testing.assert_allclose(out["joints"].numpy(), joints, atol=TOL)


def test_official_style_pickles_through_smpl_dir_match_body_models(tmp_path):
    """End to end on the on-disk structure of official files: our chumpy-free loader + layer vs body-models'."""
    testing.write_official_style_pkl(tmp_path / "basicModel_f_lbs_10_207_0_v1.0.0.pkl", seed=20, gender="female")
    testing.write_official_style_pkl(tmp_path / "basicModel_m_lbs_10_207_0_v1.0.0.pkl", seed=21, gender="male")
    layer = SMPL(smpl_dir=tmp_path)
    betas, pose = _random_params(2, seed=22)
    for g, name in enumerate(("f", "m")):
        out = layer(betas, pose, np.array([g, g]))
        path = str(tmp_path / f"basicModel_{name}_lbs_10_207_0_v1.0.0.pkl")
        verts, joints, lms = _body_models_outputs(path, betas, pose, skeleton.SMPL_LANDMARK_VERTEX_IDS)
        np.testing.assert_allclose(out["vertices"].numpy(), verts, atol=TOL)
        np.testing.assert_allclose(out["joints"].numpy(), joints, atol=TOL)
        np.testing.assert_allclose(out["landmarks"].numpy(), lms, atol=TOL)


def test_skin_vertices_equals_the_per_vertex_formula():
    """LBS (vertex-major interface over the component-major kernel) = sum_k w_vk (R_k v + t_k), looped in NumPy."""
    from smplr_tf.body.smpl import skin_vertices

    rng = np.random.default_rng(7)
    B, V, K = 2, 30, 5
    w = rng.random((V, K)).astype(np.float32)
    w /= w.sum(1, keepdims=True)
    rot = rng.normal(size=(B, K, 3, 3)).astype(np.float32)
    trans = rng.normal(size=(B, K, 3)).astype(np.float32)
    v = rng.normal(size=(B, V, 3)).astype(np.float32)
    ref = np.zeros((B, V, 3))
    for b in range(B):
        for i in range(V):
            for k in range(K):
                ref[b, i] += w[i, k] * (rot[b, k] @ v[b, i] + trans[b, k])
    np.testing.assert_allclose(skin_vertices(w, rot, trans, v).numpy(), ref, atol=1e-5)


def _points_layers(random_files, tmp_path):
    """The free model, the random SMPL-size models, and small models whose weights and landmark ids differ per
    gender (the stacked-weights path)."""
    fa = testing.write_random_model(tmp_path / "f.npz", num_vertices=300, seed=10, gender="female")
    ma = testing.write_random_model(tmp_path / "m.npz", num_vertices=300, seed=11, gender="male",
                                    num_faces=fa.f.shape[0])
    ma.f = fa.f
    np.savez(tmp_path / "m.npz", **ma.to_npz_dict())
    per_gender = SMPL(model_files={"female": str(tmp_path / "f.npz"), "male": str(tmp_path / "m.npz")})
    assert not per_gender._shared_weights and not per_gender._shared_landmarks
    return {"free": SMPL(model_files=_free_files()), "random_smpl_size": SMPL(model_files=random_files),
            "per_gender_landmarks": per_gender}


def test_points_without_the_mesh_equal_the_full_forward(random_files, tmp_path):
    """SMPL.points / joints_and_landmarks == the full forward's 41 points, for a mixed-gender batch and for each
    gender alone (the single-gender branch), with and without pose correctives, eager and under XLA."""
    betas, pose = _random_params(6, seed=21, scale=0.8)
    rotmats = rodrigues(tf.reshape(pose, [-1, 24, 3]))
    layers = _points_layers(random_files, tmp_path)
    for name, layer in layers.items():
        assert (name == "free") != layer.pose_blend  # both blend variants are covered
        for gender in (np.array([0, 1, 1, 0, 1, 0]), np.zeros(6, np.int32), np.ones(6, np.int32)):
            full = layer(betas, rotmats, gender)
            want = skeleton.points_from_smpl(full["joints"].numpy(), full["landmarks"].numpy())
            sparse = layer.joints_and_landmarks(betas, rotmats, gender)
            assert set(sparse) == {"joints", "landmarks"}
            np.testing.assert_allclose(sparse["joints"].numpy(), full["joints"].numpy(), atol=1e-6, err_msg=name)
            np.testing.assert_allclose(sparse["landmarks"].numpy(), full["landmarks"].numpy(), atol=1e-6,
                                       err_msg=name)
            got = layer.points(betas, rotmats, gender).numpy()
            assert got.shape == (6, skeleton.NUM_POINTS, 3) and got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{name} genders {gender}")
    layer, gender = layers["per_gender_landmarks"], np.array([0, 1, 1, 0, 1, 0])
    xla = tf.function(layer.points, jit_compile=True)
    np.testing.assert_allclose(xla(betas, pose, gender).numpy(), layer.points(betas, pose, gender).numpy(), atol=1e-6)


def test_points_gradients_equal_the_full_forward(layer2):
    """d(loss)/d(rotmats) and d(loss)/d(betas) through SMPL.points equal those through the full forward."""
    betas, pose = _random_params(4, seed=22, scale=0.8)
    rotmats = tf.Variable(rodrigues(tf.reshape(pose, [-1, 24, 3])))
    betas = tf.Variable(betas)
    gender = np.array([0, 1, 1, 0])
    w = tf.constant(np.random.default_rng(3).normal(size=(4, skeleton.NUM_POINTS, 3)).astype(np.float32))
    grads = []
    for points_of in (lambda: layer2.points(betas, rotmats, gender),
                      lambda: skeleton.points_from_smpl(*(lambda o: (o["joints"], o["landmarks"]))(
                          layer2(betas, rotmats, gender)))):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(w * points_of()) + tf.reduce_sum(tf.square(points_of()))
        grads.append([g.numpy() for g in tape.gradient(loss, [rotmats, betas])])
    assert np.abs(grads[1][0]).max() > 1e-2  # a real gradient, not two zeros
    np.testing.assert_allclose(grads[0][0], grads[1][0], atol=1e-5)
    np.testing.assert_allclose(grads[0][1], grads[1][1], atol=1e-5)
