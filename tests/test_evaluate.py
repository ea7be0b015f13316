"""evaluate: tiny runs (built, not trained) on a tiny synthetic set; results checked against independent
recomputations and exact identities."""

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from smplr_tf import evaluate, metrics, runs  # noqa: E402
from smplr_tf.body import skeleton  # noqa: E402

TINY = {
    "input_size": 32, "heatmap_size": 8, "depth_bins": 4, "hg_stacks": 1, "hg_features": 8,
    "hg_downsamplings": 1, "dae_hidden": 16, "dae_bottleneck": 8, "smplr_trunk": "16,16", "smplr_head": 8,
}
N_VAL = 10


@pytest.fixture(scope="module")
def tiny(make_tiny_world):
    root, smpl_dir, data = make_tiny_world("evaluate", N_VAL, seed=3)
    return {"root": root, "smpl_dir": smpl_dir, "data": data}


def make_run(tiny, name, stage, **extra):
    """A run directory as train.py leaves it (flags.txt + final.weights.h5), with untrained weights."""
    run_dir = os.path.join(tiny["root"], "runs", name)
    os.makedirs(run_dir, exist_ok=True)
    flags = dict(TINY, stage=stage, data_dir=tiny["data"], smpl_dir=tiny["smpl_dir"], seed=0, **extra)
    text = "".join(f"--{k}={v}\n" for k, v in flags.items())
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "w") as f:
        f.write(text)
    keras_seed = abs(hash(name)) % 1000
    tf.keras.utils.set_random_seed(keras_seed)
    model = runs.build_network(runs.parse_flags_text(text))
    return run_dir, model


def save(run_dir, model):
    model.save_weights(os.path.join(run_dir, runs.FINAL_WEIGHTS))
    with open(os.path.join(run_dir, runs.RUN_FILE), "w") as f:
        json.dump({"finished": True, "epochs_done": 1}, f)


def _records_points(data_dir, split="val"):
    """Ground-truth points read straight from the TFRecords with the protobuf API (no tf.data, no schema code)."""
    pts = []
    for name in sorted(os.listdir(data_dir)):
        if not name.startswith(split + "-"):
            continue
        for rec in tf.compat.v1.io.tf_record_iterator(os.path.join(data_dir, name)):
            ex = tf.train.Example.FromString(rec).features.feature
            j = np.array(ex["joints3d"].float_list.value).reshape(24, 3)
            lm = np.array(ex["landmarks3d"].float_list.value).reshape(18, 3)
            pts.append(np.concatenate([j[1:], lm]) - j[:1])
    return np.stack(pts)


def test_eval_dataset_points_are_the_records(tiny):
    ds = evaluate.eval_dataset(tiny["data"], "val", 4, input_size=32)
    got = np.concatenate([b["points"].numpy() for b in ds])
    np.testing.assert_allclose(got, _records_points(tiny["data"]), atol=1e-6)
    b = next(iter(ds))
    assert b["image"].shape == (4, 32, 32, 3)
    img = b["image"].numpy()  # RGB in [0, 1]: the networks standardise it themselves
    assert img.min() >= 0.0 and img.max() <= 1.0 and img.max() > 0.2


def _zero_last_dense(model, units):
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense) or l.__class__.__name__ == "Dense"]
    hits = [l for l in dense if l.units == units]
    for w in hits[-1].weights:
        w.assign(np.zeros(w.shape, np.float32))


def test_identity_dae_has_exactly_the_input_error(tiny):
    run_dir, model = make_run(tiny, "dae_identity", "dae", dae_input="noise")
    _zero_last_dense(model, 123)  # residual DAE with a zero last layer is the identity
    save(run_dir, model)
    res = evaluate.evaluate_run(run_dir, eval_input="gt", progress=False)
    ev = res["evaluations"]
    assert ev["points"]["count"] == N_VAL
    assert ev["points"]["p1"]["Jt"] == pytest.approx(0.0, abs=1e-3)
    res = evaluate.evaluate_run(run_dir, progress=False)  # auto: the run's noise
    ev = res["evaluations"]
    assert res["input"]["mode"] == "noise"
    for col in metrics.TABLE1_COLUMNS:
        assert ev["points"]["p1"][col] == pytest.approx(ev["input"]["p1"][col], abs=1e-3)
    assert 5.0 < ev["input"]["p1"]["Jt"] < 120.0  # uniform noise of 5..91 mm per coordinate


def test_omega_matches_a_direct_recomputation(tiny):
    from smplr_tf.body.smpl import SMPL, pose_to_rotmats

    run_dir, model = make_run(tiny, "omega", "smplr_pose", dae_input="gt")
    save(run_dir, model)
    res = evaluate.evaluate_run(run_dir, progress=False)
    ev = res["evaluations"]["omega"]
    # Independent path: records -> our SMPL with GT betas/gender and Omega's rotations -> PointMetrics.
    gt = _records_points(tiny["data"])
    smpl = SMPL(smpl_dir=tiny["smpl_dir"])
    ds = evaluate.eval_dataset(tiny["data"], "val", 64, with_images=False)
    b = next(iter(ds))
    rot = model(tf.constant(gt, tf.float32), training=False)["rotmats"]
    body = smpl(b["betas"], rot, gender=b["gender"])
    pts = skeleton.points_from_smpl(body["joints"].numpy(), body["landmarks"].numpy())
    acc = metrics.PointMetrics()
    acc.update(pts, gt)
    for col in ("Jt", "Lm", "Bn", "Hd"):
        assert ev["p1"][col] == pytest.approx(acc.result()["p1"][col], rel=1e-4)
    gt_body = smpl(b["betas"], pose_to_rotmats(b["pose"]), gender=b["gender"])
    gv = gt_body["vertices"].numpy() - gt_body["joints"].numpy()[:, :1]
    pv = body["vertices"].numpy() - body["joints"].numpy()[:, :1]
    assert ev["surface_mm"] == pytest.approx(1000 * np.linalg.norm(pv - gv, axis=-1).mean(), rel=1e-4)
    assert ev["iou"] is not None and 0.0 <= ev["iou"] <= 1.0 and ev["iou_count"] == N_VAL


def test_pipeline_all_and_all_proc(tiny):
    shn, m = make_run(tiny, "p_shn", "shn")
    save(shn, m)
    dae, m = make_run(tiny, "p_dae", "dae")
    save(dae, m)
    psi, m = make_run(tiny, "p_psi", "smplr_shape")
    save(psi, m)
    omega, m = make_run(tiny, "p_omega", "smplr_pose")
    save(omega, m)
    res = evaluate.evaluate_pipeline(shn, dae, psi, omega, progress=False, fit_steps=20)
    ev = res["evaluations"]
    assert set(ev) >= {"points", "dae", "all", "all_proc", "all_fit"}
    assert ev["all_fit"]["surface_count"] == N_VAL
    # Protocol 2 re-aligns to the ground truth, so the ALL_Proc similarity transform cannot change it
    # (the paper's Table 2 shows the same: ALL and ALL_Proc have equal protocol-2 errors).
    assert ev["all_proc"]["p2"]["Jt"] == pytest.approx(ev["all"]["p2"]["Jt"], rel=1e-5)
    assert ev["all"]["surface_count"] == N_VAL
    assert 0.0 <= ev["all"]["gender_accuracy"] <= 1.0
    assert 0.0 <= ev["all_proc"]["iou"] <= 1.0
    est = evaluate.evaluate_pipeline(shn, dae, psi, omega, progress=False, crop="estimated", crop_iterations=1)
    assert est["crop"]["mode"] == "estimated" and est["evaluations"]["all"]["surface_count"] == N_VAL
    # Written and read back by reproduce.
    out = os.path.join(tiny["root"], "runs_table", "table1", "all")
    evaluate.write_metrics(out, res)
    from smplr_tf import reproduce

    t = reproduce.build_tables(os.path.join(tiny["root"], "runs_table"), (1,))["table1"]
    rows = {r["row"]: r for r in t["rows"]}
    assert rows["all_proc"]["status"] == "ok"
    assert rows["all_proc"]["ours"]["Jt"] == pytest.approx(ev["all_proc"]["p1"]["Jt"])
    assert rows["all_fit"]["status"] == "ok" and rows["all_fit"]["label"] == "ALL_Fit"
    assert rows["all_fit"]["ours"]["Jt"] == pytest.approx(ev["all_fit"]["p1"]["Jt"])
    assert rows["shn"]["status"] == "not run"
    assert any(f.startswith("events.out") for f in os.listdir(os.path.join(out, "tb", "eval")))


def test_cli_errors_are_clear(tmp_path):
    from absl import flags

    fv = flags.FlagValues()
    evaluate.define_flags(fv)
    evaluate.define_flags(fv)  # a second call (a test calling main twice) defines nothing new
    fv(["evaluate", f"--run_dir={tmp_path}/nope"])
    with pytest.raises(evaluate.EvalError, match="no such directory"):
        evaluate.run_from_flags(fv)
    fv.unparse_flags()
    fv(["evaluate", "--shn_run=a"])
    with pytest.raises(evaluate.EvalError, match="all of --shn_run"):
        evaluate.run_from_flags(fv)


def test_mesh_eval_scores_points_only_where_3d_is_true():
    # UP-3D-like records: masks and SMPL fits but has_3d = 0: IoU counts, point errors do not.
    verts = np.array([[[-0.2, -0.2, 0.0], [0.2, -0.2, 0.0], [0.2, 0.2, 0.0], [-0.2, 0.2, 0.0]]] * 2)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    K = np.tile(np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]), (2, 1, 1))
    mask = np.zeros((2, 64, 64), bool)
    mask[:, 22:42, 22:42] = True
    pts = np.zeros((2, 41, 3))
    acc = evaluate.MeshEval(faces)
    acc.update(pts + 0.01, pts, verts, verts, root=np.array([[0, 0, 2.0]] * 2), K=K, mask=mask,
               has_mask=np.array([True, True]), points_ok=np.array([False, True]))
    res = acc.result()
    assert res["count"] == 1 and res["iou_count"] == 2 and res["iou"] > 0.85
    assert res["surface_mm"] == pytest.approx(0.0)


def test_metrics_json_is_strict_json_with_nan_as_null(tmp_path):
    result = {"evaluations": {"points": {"count": 3, "p1": {"Jt": float("nan"), "Lm": 12.5}, "iou": float("inf")}}}
    path = evaluate.write_metrics(str(tmp_path), result)

    def refuse(token):
        raise AssertionError(f"metrics.json holds {token}")

    with open(path) as f:
        back = json.load(f, parse_constant=refuse)
    assert back["evaluations"]["points"] == {"count": 3, "p1": {"Jt": None, "Lm": 12.5}, "iou": None}


def test_estimated_crop_evaluation_runs_and_reports_the_crop(tiny):
    run_dir, model = make_run(tiny, "estcrop_shn", "shn")
    save(run_dir, model)
    gt = evaluate.evaluate_run(run_dir, progress=False)
    est = evaluate.evaluate_run(run_dir, progress=False, crop="estimated", crop_iterations=1)
    assert "crop" not in gt
    c = est["crop"]
    assert c["mode"] == "estimated" and 0 <= c["count"] <= N_VAL
    assert c["corner_error_px"] is None or c["corner_error_px"] >= 0.0
    assert est["evaluations"]["points"]["count"] == gt["evaluations"]["points"]["count"] == N_VAL
    # Other images, so other predictions (an untrained network still sees them).
    assert est["evaluations"]["points"]["p1"]["Jt"] != pytest.approx(gt["evaluations"]["points"]["p1"]["Jt"])
    other, m = make_run(tiny, "estcrop_other", "shn")
    save(other, m)
    by_other = evaluate.evaluate_run(run_dir, progress=False, crop="estimated", crop_iterations=1, crop_run=other)
    assert by_other["crop"]["crop_run"] == other
    assert by_other["evaluations"]["points"]["p1"]["Jt"] != pytest.approx(est["evaluations"]["points"]["p1"]["Jt"])
    with pytest.raises(evaluate.EvalError, match="needs --crop=estimated"):
        evaluate.evaluate_run(run_dir, progress=False, crop_run=other)
    dae, m = make_run(tiny, "estcrop_dae", "dae")
    save(dae, m)
    with pytest.raises(evaluate.EvalError, match="image stage"):
        evaluate.evaluate_run(dae, progress=False, crop="estimated")
