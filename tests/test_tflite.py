"""smplr_tf.tflite: the TFLite forms of the DAE, the SMPL layer and SMPLR compute what the Keras models compute."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from smplr_tf import tflite  # noqa: E402
from smplr_tf.body.smpl import SMPL  # noqa: E402
from smplr_tf.body.testing import write_random_model  # noqa: E402


@pytest.fixture(scope="module")
def smpl2(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl_tflite")
    write_random_model(str(d / "female.npz"), num_vertices=150, seed=3, gender="female")
    write_random_model(str(d / "male.npz"), num_vertices=150, seed=4, gender="male")
    return SMPL(smpl_dir=str(d))


def test_dae_matches_keras():
    from smplr_tf.models.dae import build_dae
    from smplr_tf.models.inference import inference_model, randomize_batch_norms

    model = build_dae(hidden=48, bottleneck=24)
    randomize_batch_norms(model, seed=1)
    net = inference_model(model)
    x = np.random.default_rng(0).normal(scale=0.4, size=(5, 41, 3)).astype(np.float32)
    run = tflite.Runner(tflite.convert(lambda p: {"denoised": net(p)},
                                       [tf.TensorSpec((5, 41, 3), tf.float32, name="points")]))
    assert run.input_specs == {"points": ((5, 41, 3), np.dtype("float32"))}
    assert run.output_names == ["denoised"]
    got = run(points=x)["denoised"]
    np.testing.assert_allclose(got, model(x, training=False).numpy(), atol=2e-6)


@pytest.mark.parametrize("genders", [[1, 1, 1], [0, 1, 0]], ids=["one_gender", "mixed_genders"])
def test_smpl_layer_matches_eager(smpl2, genders):
    """The single-gender batch takes the nested conds, the mixed one the masked sum: both convert and agree."""
    rng = np.random.default_rng(1)
    betas = rng.normal(size=(3, 10)).astype(np.float32)
    pose = rng.normal(scale=0.5, size=(3, 72)).astype(np.float32)
    gender = np.asarray(genders, np.int32)
    specs = [tf.TensorSpec((3, 10), tf.float32, name="betas"), tf.TensorSpec((3, 72), tf.float32, name="pose"),
             tf.TensorSpec((3,), tf.int32, name="gender")]
    run = tflite.Runner(tflite.convert(lambda b, p, g: smpl2(b, p, g), specs))
    got = run(betas=betas, pose=pose, gender=gender)
    ref = smpl2(betas, pose, gender)
    assert sorted(got) == ["joints", "landmarks", "vertices"]
    for k in got:
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=2e-6, err_msg=k)


def test_smplr_matches_keras(smpl2):
    from smplr_tf.body.smpl import template_bone_lengths
    from smplr_tf.models.inference import inference_model
    from smplr_tf.models.pipeline import smpl_from_points
    from smplr_tf.models.smplr import build_omega_net, build_psi_net

    sizes = dict(trunk=(32, 32, 16), head_a=(8, 8), head_b=(8,), template_lengths=template_bone_lengths(smpl2))
    psi, omega = build_psi_net(**sizes), build_omega_net(**sizes)
    pts = np.random.default_rng(2).normal(scale=0.3, size=(2, 41, 3)).astype(np.float32)
    fpsi, fomega = inference_model(psi), inference_model(omega)
    run = tflite.Runner(tflite.convert(lambda p: smpl_from_points(fpsi, fomega, smpl2, p),
                                       [tf.TensorSpec((2, 41, 3), tf.float32, name="points")]))
    got = run(points=pts)
    ref = smpl_from_points(psi, omega, smpl2, pts)
    for k in ("vertices", "joints", "betas", "rotmats", "smpl_points"):
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=5e-6, err_msg=k)


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a name"):
        tflite.convert(lambda x: x + 1.0, [tf.TensorSpec((1, 3), tf.float32)])
    with pytest.raises(ValueError, match="fixed shape"):
        tflite.convert(lambda x: x + 1.0, [tf.TensorSpec((None, 3), tf.float32, name="x")])
    run = tflite.Runner(tflite.convert(lambda x: {"y": 2.0 * x}, [tf.TensorSpec((1, 3), tf.float32, name="x")]))
    np.testing.assert_array_equal(run(x=np.ones((1, 3), np.float32))["y"], [[2.0, 2.0, 2.0]])
    with pytest.raises(tflite.TFLiteError, match=r"shape \(2, 3\).*\(1, 3\)"):
        run(x=np.ones((2, 3), np.float32))
    with pytest.raises(tflite.TFLiteError, match=r"needs inputs \['x'\]"):
        run(z=np.ones((1, 3), np.float32))
    with pytest.raises(tflite.TFLiteError, match="no TFLite model at"):
        tflite.Runner(str(tmp_path / "missing.tflite"))
