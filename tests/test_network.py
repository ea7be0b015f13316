"""Self-describing networks: every builder's network returns its arguments from get_config and is rebuilt from
it; run directories reload from network.json, and without it (older runs) from flags.txt, without importing
the training stages; the pipeline round-trips through its config; Standardize is per-image standardisation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from smplr_tf import runs  # noqa: E402
from smplr_tf.models import registry  # noqa: E402
from smplr_tf.models.inference import randomize_batch_norms  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"input_size": 32, "heatmap_size": 8, "depth_bins": 4, "hg_stacks": 2, "hg_features": 8,
        "hg_downsamplings": 1, "dae_hidden": 16, "dae_bottleneck": 8, "smplr_trunk": "16,16", "smplr_head": 8,
        "alexnet_width": 0.05, "alexnet_fc": 16}
STAGES = ("shn", "shn2d", "alexnet", "dae", "smplr_shape", "smplr_pose")
RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(2, 32, 32, 3)).astype(np.float32)
POINTS = (RNG.normal(size=(2, 41, 3)) * 0.3).astype(np.float32)


def _flat(out):
    return [np.asarray(t) for t in tf.nest.flatten(out)]


def _outputs(net, stage):
    x = IMAGES if stage in ("shn", "shn2d", "alexnet", "e2e") else POINTS
    out = net(x, training=False)
    if isinstance(out, dict) and "heatmaps" in out:  # the points and the last heatmaps are what is used
        out = {k: v for k, v in out.items() if k != "heatmaps"}
        out["last_heatmaps"] = net(x, training=False)["heatmaps"][-1]
    return _flat(out)


def _make_run(run_dir, stage, smpl_dir="", write_network=True, seed=1, **extra):
    """A run directory as train.py leaves it: flags.txt, final.weights.h5 (non-trivial batch-norm statistics)
    and, unless write_network=False (a run from before network.json), network.json. Returns the network."""
    os.makedirs(run_dir, exist_ok=True)
    text = "".join(f"--{k}={v}\n" for k, v in dict(TINY, stage=stage, smpl_dir=smpl_dir, **extra).items())
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "w") as f:
        f.write(text)
    tf.keras.utils.set_random_seed(seed)
    net = runs.build_network(runs.parse_flags_text(text))
    if stage == "e2e":
        net.build_variables()
    for part in ([net] if stage != "e2e" else [net.hourglass, net.dae, net.psi, net.omega]):
        randomize_batch_norms(part, seed=seed)
    if stage in ("smplr_shape", "smplr_pose"):  # a template that is not zero, so that it must be loaded
        net.get_layer("bone_features").template.assign(RNG.uniform(0.05, 0.5, 41).astype(np.float32))
    net.save_weights(os.path.join(run_dir, runs.FINAL_WEIGHTS))
    if write_network:
        runs.write_network_json(run_dir, net, stage)
    return net


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory):
    from smplr_tf.body.testing import write_random_model

    d = tmp_path_factory.mktemp("smpl")
    write_random_model(str(d / "female.npz"), num_vertices=120, seed=0, gender="female")
    write_random_model(str(d / "male.npz"), num_vertices=120, seed=1, gender="male")
    return str(d)


@pytest.mark.parametrize("stage", STAGES)
def test_run_reloads_from_network_json_and_from_flags_alone(tmp_path, smpl_dir, stage):
    run_dir = str(tmp_path / stage)
    net = _make_run(run_dir, stage, smpl_dir, limbs="true" if stage == "shn" else "false")
    ref = _outputs(net, stage)
    with open(os.path.join(run_dir, runs.NETWORK_FILE)) as f:
        doc = json.load(f)
    assert doc["config"] == net.get_config() and doc["stage"] == stage
    assert doc["input"] == registry.input_convention(doc["config"])
    got_stage, model, fl = runs.load_model_from_run(run_dir)
    assert got_stage == stage and model.get_config() == net.get_config()
    for a, b in zip(_outputs(model, stage), ref):
        np.testing.assert_array_equal(a, b)
    # A run from before network.json: the same network from flags.txt.
    os.remove(os.path.join(run_dir, runs.NETWORK_FILE))
    _, old, _ = runs.load_model_from_run(run_dir)
    assert old.get_config() == net.get_config()
    for a, b in zip(_outputs(old, stage), ref):
        np.testing.assert_array_equal(a, b)


def test_network_json_wins_over_flags(tmp_path):
    """The network is what network.json says, even where the flags would build another one."""
    run_dir = str(tmp_path / "dae")
    net = _make_run(run_dir, "dae")
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "a") as f:
        f.write("--dae_hidden=24\n")  # a flags.txt that no longer matches the weights
    _, model, fl = runs.load_model_from_run(run_dir)
    assert fl["dae_hidden"] == 24 and model.get_config()["hidden"] == 16
    np.testing.assert_array_equal(_outputs(model, "dae")[0], _outputs(net, "dae")[0])


def test_every_kind_round_trips_through_its_config(smpl_dir):
    import keras

    for stage in STAGES:
        cfg = registry.config_from_flags(dict(runs.flags_dict(runs.flag_values(stage=stage)), **{
            k: ([int(v) for v in str(TINY[k]).split(",")] if k == "smplr_trunk" else TINY[k]) for k in TINY}))
        net = registry.build_network(cfg)
        assert net.get_config() == json.loads(json.dumps(cfg))  # JSON-ready, and what was asked for
        again = registry.build_network(net.get_config())
        assert again.get_config() == net.get_config()
        assert [w.shape for w in again.weights] == [w.shape for w in net.weights]
        # Keras's own serialisation goes through the same builder
        back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(net))
        assert type(back) is type(net) and back.get_config() == net.get_config()


def test_pipeline_round_trips_through_get_config(tmp_path, smpl_dir):
    from smplr_tf.models.pipeline import SMPLRPipeline

    parts = {}
    for key, stage in (("shn", "shn"), ("dae", "dae"), ("psi", "smplr_shape"), ("omega", "smplr_pose")):
        parts[key] = str(tmp_path / key)
        _make_run(parts[key], stage, smpl_dir, seed=len(parts))
    pipe = runs.pipeline_from_runs(parts["shn"], parts["dae"], parts["psi"], parts["omega"])
    cfg = pipe.get_config()
    assert cfg["kind"] == "pipeline" and cfg["smpl"] == {"smpl_dir": smpl_dir, "genders": ["female", "male"]}
    assert cfg["psi"] == runs.network_config_of_run(parts["psi"])
    copy = SMPLRPipeline.from_config(json.loads(json.dumps(cfg)))
    copy.build_variables()
    pipe.build_variables()
    assert copy.get_config() == cfg
    copy.set_weights(pipe.get_weights())
    for a, b in zip(_outputs(copy, "e2e"), _outputs(pipe, "e2e")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # only the hourglass trains in the pipeline
    assert not copy.dae.trainable_weights and not copy.psi.trainable_weights and copy.hourglass.trainable_weights
    # its inference form (each part folded, the hourglass's heads merged) computes the same
    from smplr_tf.models.inference import inference_model

    fast = inference_model(pipe)
    ref, got = pipe(IMAGES, training=False), fast(IMAGES, training=False)
    for k in ("points", "dae_points", "betas", "rotmats", "vertices"):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(ref[k]), atol=1e-4, err_msg=k)


def test_e2e_run_reloads_with_and_without_network_json(tmp_path, smpl_dir):
    parts = {}
    for key, stage in (("shn", "shn"), ("dae", "dae"), ("psi", "smplr_shape"), ("omega", "smplr_pose")):
        parts[f"{key}_run"] = str(tmp_path / key)
        _make_run(parts[f"{key}_run"], stage, smpl_dir, seed=len(parts))
    e2e = str(tmp_path / "e2e")
    pipe = _make_run(e2e, "e2e", smpl_dir, seed=7, **parts)
    ref = _outputs(pipe, "e2e")
    for remove in (False, True):
        if remove:
            os.remove(os.path.join(e2e, runs.NETWORK_FILE))
        stage, model, _ = runs.load_model_from_run(e2e)
        assert stage == "e2e" and model.get_config() == pipe.get_config()
        for a, b in zip(_outputs(model, "e2e"), ref):
            np.testing.assert_array_equal(a, b)


def test_reloading_and_serving_do_not_import_the_training_stages(tmp_path, smpl_dir):
    parts = {}
    for key, stage in (("shn", "shn"), ("dae", "dae"), ("psi", "smplr_shape"), ("omega", "smplr_pose")):
        parts[key] = str(tmp_path / key)
        _make_run(parts[key], stage, smpl_dir, seed=len(parts), write_network=key != "dae")  # one old-layout run
    code = (
        "import sys\n"
        "from smplr_tf import runs, serving, evaluate, infer, export\n"
        f"p = {parts!r}\n"
        "for d in p.values():\n"
        "    runs.load_model_from_run(d)\n"
        "pipe, size, faces = serving.load_pipeline('', p['shn'], p['dae'], p['psi'], p['omega'])\n"
        "import numpy as np\n"
        "pipe(serving.prepare_image(np.zeros((48, 48, 3), np.uint8), size))\n"
        "print('STAGES', sorted(m for m in sys.modules if m.startswith('smplr_tf.stages')))\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "STAGES []" in proc.stdout


def test_standardize_is_per_image_standardization():
    import keras

    from smplr_tf.models.layers import Standardize

    x = np.concatenate([IMAGES, np.full((1, 32, 32, 3), 0.25, np.float32)])  # a flat image: std clamped
    layer = Standardize()
    np.testing.assert_allclose(layer(x), tf.image.per_image_standardization(x), atol=1e-6)
    assert not layer.weights
    out = np.asarray(layer(x))
    assert np.abs(out[:2].mean(axis=(1, 2, 3))).max() < 1e-5 and np.allclose(out[:2].std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(out[2], 0.0)
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(back, Standardize)


def test_image_networks_standardise_their_input():
    """A [0, 1] image and the same image scaled and shifted give the same output: the network standardises."""
    from smplr_tf.models.alexnet import build_alexnet
    from smplr_tf.models.hourglass import build_hourglass

    for net in (build_hourglass(num_stacks=1, features=8, input_size=32, depth_bins=2, downsamplings=1),
                build_alexnet(input_size=32, width=0.05, fc_units=8)):
        assert net.layers[1].name == "standardize"
        a, b = _flat(net(IMAGES, training=False)), _flat(net(IMAGES * 3.0 + 0.5, training=False))
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, atol=1e-4)


def test_keras_files_rebuild_through_the_builder(tmp_path):
    """model.save / keras.models.load_model work for our networks (the Lambda layers of Psi's outputs need no
    unsafe deserialisation: the builder makes them again); template weights come back."""
    import keras

    from smplr_tf.models.smplr import build_psi_net

    net = build_psi_net(trunk=(8,), head_a=(4, 4), head_b=(4,), template_lengths=np.linspace(0.1, 0.5, 41))
    path = str(tmp_path / "psi.keras")
    net.save(path)
    back = keras.models.load_model(path)
    assert back.get_config() == net.get_config()
    for a, b in zip(_flat(back(POINTS, training=False)), _flat(net(POINTS, training=False))):
        np.testing.assert_array_equal(a, b)
