"""Run directories saved before the redesign still load and compute what they computed then.

The fixtures (tests/fixtures/legacy_runs) were written by the earlier code: flags.txt without today's flags
(stem, batch-norm scale, init, biases, noise table, target form) and no network.json, so reloading goes through
the flags -> config mapping with the legacy values of the flags that did not exist yet.
"""

import os
import shutil

import numpy as np
import pytest

from smplr_tf import runs

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "legacy_runs")
STAGES = {"shn": "shn", "shn2d": "shn2d", "alexnet": "alexnet", "dae": "dae", "psi": "smplr_shape",
          "omega": "smplr_pose"}


@pytest.fixture(scope="module")
def reference():
    with np.load(os.path.join(HERE, "outputs.npz")) as z:
        return dict(z)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_run_saved_before_the_redesign_loads_and_computes_the_same(name, reference, tmp_path):
    run_dir = str(tmp_path / name)
    shutil.copytree(os.path.join(HERE, name), run_dir)
    assert not os.path.exists(os.path.join(run_dir, runs.NETWORK_FILE))
    stage, model, _ = runs.load_model_from_run(run_dir)
    assert stage == STAGES[name]
    out = model(reference[f"{name}/x"], training=False)
    expected = {k.split("/", 1)[1]: v for k, v in reference.items() if k.startswith(name + "/") and k != f"{name}/x"}
    got = {}
    if isinstance(out, dict):
        for k, v in out.items():
            if k == "heatmaps":
                got.update({f"heatmaps{i}": np.asarray(h) for i, h in enumerate(v)})
            else:
                got[k] = np.asarray(v)
    else:
        got["out"] = np.asarray(out)
    assert sorted(got) == sorted(expected)
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-4, atol=1e-5, err_msg=f"{name}: {k}")


def test_weights_of_another_network_are_refused(tmp_path):
    """Keras raises for some mismatches and only warns for others (the unmatched layers keep their initial
    values); loading a run refuses both instead of returning a half-initialised network."""
    run_dir = str(tmp_path / "shn")
    shutil.copytree(os.path.join(HERE, "shn"), run_dir)
    text = open(os.path.join(run_dir, runs.FLAGS_FILE)).read()
    # the same run read as if its hourglass were today's default (the code's stem, batch norms without a scale,
    # no conv biases): the file holds the other network's weights
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "w") as f:
        f.write(text + "--hg_stem=code\n--nohg_bn_scale\n--hg_init=glorot_normal\n--nohg_conv_bias\n")
    with pytest.raises(runs.RunError, match="do not fit the network|weights of another network"):
        runs.load_model_from_run(run_dir)
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "w") as f:  # only the scale of the batch norms differs
        f.write(text + "--nohg_bn_scale\n")
    with pytest.raises(runs.RunError, match="do not fit the network|weights of another network"):
        runs.load_model_from_run(run_dir)


def test_a_load_that_keras_only_warns_about_is_refused(tmp_path):
    """Keras keeps loading, with a warning, where a nested container finds nothing in the file; such a network is
    half-initialised, so load_weights_file raises. Unrelated warnings pass through."""
    import warnings

    path = tmp_path / "final.weights.h5"
    path.write_bytes(b"")

    class WarnsOnLoad:
        def __init__(self, message):
            self.message = message

        def load_weights(self, _):
            warnings.warn(self.message)

    keras_text = ("Skipping nested container at 'layers/psi': no matching group found in the saved file. Affected "
                  "layers will retain their freshly-initialized weights.")
    with pytest.raises(runs.RunError, match="do not fit the network"):
        runs.load_weights_file(WarnsOnLoad(keras_text), str(path))
    with pytest.warns(UserWarning, match="something else"):
        runs.load_weights_file(WarnsOnLoad("something else"), str(path))
