"""export: a tiny pipeline saved as a SavedModel, reloaded without Keras objects, gives the same outputs."""

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fixtures.pipeline import make_pipeline_runs  # noqa: E402
from smplr_tf import export, infer  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    """(pipeline, input size) from tiny trained-format runs on a random 200-vertex two-gender body model."""
    from smplr_tf.body.testing import write_random_model

    tmp = tmp_path_factory.mktemp("export_pipe")
    smpl_dir = tmp / "smpl"
    smpl_dir.mkdir()
    write_random_model(str(smpl_dir / "female.npz"), num_vertices=200, seed=0, gender="female")
    write_random_model(str(smpl_dir / "male.npz"), num_vertices=200, seed=1, gender="male")
    r = make_pipeline_runs(str(tmp / "runs"), str(smpl_dir))
    pipe, size, _ = infer.load_pipeline("", r["shn"], r["dae"], r["psi"], r["omega"])
    return pipe, size


def test_savedmodel_roundtrip(tmp_path, tiny_pipeline):
    pipe, size = tiny_pipeline
    out_dir = str(tmp_path / "saved")
    export.export_pipeline(pipe, size, out_dir)
    assert os.path.exists(os.path.join(out_dir, "saved_model.pb"))
    serve = export.load_exported(out_dir)

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, size, size, 3)).astype(np.float32)  # [0, 1], as every network takes
    got = serve(image=tf.constant(images))
    ref = pipe(images, training=False)
    root = ref["joints"].numpy()[:, :1]
    np.testing.assert_allclose(got["joints"].numpy(), ref["joints"].numpy() - root, atol=1e-5)
    np.testing.assert_allclose(got["vertices"].numpy(), ref["vertices"].numpy() - root, atol=1e-5)
    np.testing.assert_allclose(got["betas"].numpy(), ref["betas"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["rotmats"].numpy(), ref["rotmats"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["points"].numpy(), ref["dae_points"].numpy(), atol=1e-5)
    assert got["vertices"].shape == (2, 200, 3)
    # Batch size is free.
    assert serve(image=tf.constant(images[:1]))["joints"].shape == (1, 24, 3)


def test_tflite_export_matches_savedmodel(tmp_path, tiny_pipeline):
    from smplr_tf import tflite

    pipe, size = tiny_pipeline
    saved = str(tmp_path / "saved")
    export.export_pipeline(pipe, size, saved)
    path = export.export_tflite(pipe, size, os.path.join(saved, export.TFLITE_NAME), batch=2)
    run = tflite.Runner(path)
    assert run.input_specs == {"image": ((2, size, size, 3), np.dtype("float32"))}
    images = np.random.default_rng(5).uniform(size=(2, size, size, 3)).astype(np.float32)
    got = run(image=images)
    ref = export.load_exported(saved)(image=tf.constant(images))
    assert sorted(got) == sorted(ref)
    for k in ("joints", "vertices", "points", "points_shn", "betas", "rotmats", "gender"):
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=2e-5, err_msg=k)
    with pytest.raises(export.ExportError, match="batch must be >= 1"):
        export.export_tflite(pipe, size, str(tmp_path / "x.tflite"), batch=0)
