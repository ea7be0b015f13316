"""The UP-3D recipe (paper Sec. 4.6, Table 4): two record directories mixed in one input with chosen proportions,
UP-3D's fits as 3D truth, a DAE that lifts depth-0 points, the neutral SMPL model, and the whole chain on
synthetic stand-ins (fine-tune from an SHN_e2e run, evaluate, Table 4's UP-3D cell and surface errors)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from fixtures.records import make_example, write_split


def _up3d_like(ex):
    """A record as UP-3D has them: neutral gender, SMPL fits, no measured 3D."""
    return dict(ex, gender=2, has_3d=0, has_smpl=1, dataset="up3d")


@pytest.fixture(scope="module")
def two_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("mix")
    rng = np.random.default_rng(5)
    main, mix = str(base / "main"), str(base / "mix")
    write_split(main, "train", n=6, shards=2, seed=1)
    write_split(mix, "train", shards=3, examples=[_up3d_like(make_example(rng, i)) for i in range(18)])
    return main, mix


def _sources(ds, batches):
    """1 where an example came from the UP-3D-like directory (no usable 3D target), 0 from the other."""
    out = []
    for _, t in ds.take(batches):
        out.append((np.asarray(t["mask_valid"]).sum(-1) == 0).astype(int))
    return np.concatenate(out)


def _mixed(main, mix, seed, fraction, **kw):
    from smplr_tf.data.pipeline import hourglass_dataset

    return hourglass_dataset(main, "train", 60, input_size=32, heatmap_size=8, depth_bins=4, shuffle=True,
                             repeat=True, seed=seed, targets_on_device=True, mix_data_dir=mix,
                             mix_fraction=fraction, **kw)


def test_mixing_draws_the_chosen_share_repeatably(two_dirs):
    from smplr_tf.data.pipeline import mix_weights

    main, mix = two_dirs
    src = _sources(_mixed(main, mix, 3, 0.25), 14)  # 840 draws: binomial sd 1.5 %
    assert abs(src.mean() - 0.25) < 0.05
    np.testing.assert_array_equal(src[:300], _sources(_mixed(main, mix, 3, 0.25), 5))  # same seed, same stream
    assert not np.array_equal(src[:300], _sources(_mixed(main, mix, 4, 0.25), 5))
    # 0: in proportion to the sizes (6 and 18 records)
    assert mix_weights(main, mix, "train", 0.0) == pytest.approx((0.25, 0.75))
    assert abs(_sources(_mixed(main, mix, 3, 0.0), 8).mean() - 0.75) < 0.07  # 480 draws: sd 2 %
    with pytest.raises(ValueError, match="mix_fraction"):
        mix_weights(main, mix, "train", 1.0)


def test_fits_count_as_3d_only_when_asked(two_dirs):
    main, mix = two_dirs
    ds = _mixed(main, mix, 3, 0.5, fits_as_3d=True)
    _, t = next(iter(ds))
    m = np.asarray(t["mask_valid"])
    assert (m.sum(-1) > 0).all()  # every example, UP-3D-like ones included, has 3D targets


def test_pipeline_feeds_the_dae_depth0_and_uses_the_neutral_model():
    from smplr_tf.body.smpl import SMPL, template_bone_lengths
    from smplr_tf.body.testing import random_model_data
    from smplr_tf.models.dae import build_dae
    from smplr_tf.models.hourglass import build_hourglass
    from smplr_tf.models.pipeline import SMPLRPipeline
    from smplr_tf.models.smplr import build_omega_net, build_psi_net

    models = {g: random_model_data(num_vertices=200, seed=i, gender=g)
              for i, g in enumerate(("female", "male", "neutral"))}
    smpl = SMPL(models=models, genders=("female", "male", "neutral"))
    tmpl = template_bone_lengths(smpl)
    hg = build_hourglass(input_size=32, depth_bins=4, num_stacks=1, features=8, downsamplings=1)
    dae = build_dae(hidden=16, bottleneck=8)
    sizes = dict(trunk=(16, 16), head_a=(8,), head_b=(8,))
    psi, omega = build_psi_net(template_lengths=tmpl, **sizes), build_omega_net(template_lengths=tmpl, **sizes)
    pipe = SMPLRPipeline(hg, dae, psi, omega, smpl, dae_depth0=True, smpl_gender="neutral")
    img = tf.random.stateless_uniform([2, 32, 32, 3], seed=[0, 2])
    out = pipe(img)
    pts = np.asarray(out["points"]).copy()
    pts[..., 2] = 0.0
    np.testing.assert_allclose(np.asarray(out["dae_points"]), np.asarray(dae(pts, training=False)), atol=1e-5)
    assert np.asarray(out["gender_index"]).tolist() == [2, 2]
    ref = smpl(out["betas"], out["rotmats"], gender=np.array([2, 2]))
    np.testing.assert_allclose(np.asarray(out["vertices"]), np.asarray(ref["vertices"]), atol=1e-5)
    back = SMPLRPipeline.from_config(pipe.get_config())
    assert back.dae_depth0 and back.smpl_gender == "neutral"
    with pytest.raises(ValueError, match="neutral"):
        SMPLRPipeline(hg, dae, psi, omega, SMPL(models=models),
                      smpl_gender="neutral")


def _cfg(**kw):
    from smplr_tf import runs

    base = dict(verbose=0, tb_images=0, baseline_batches=1, seed=0, bn_momentum=0.9, deterministic=False)
    base.update(kw)
    return runs.flag_values(**base)


def test_up3d_recipe_end_to_end_on_synthetic_stand_ins(tmp_path):
    """SURREAL and UP-3D stand-ins -> component runs (a depth-0 DAE) -> a SURREAL SHN_e2e run -> the UP-3D
    fine-tuning from it on the mixed input with the neutral model -> evaluate -> Table 4's UP-3D cells."""
    from smplr_tf import evaluate, reproduce, runs, train

    surreal, up3d = str(tmp_path / "surreal"), str(tmp_path / "up3d")
    write_split(surreal, "train", n=8, shards=2, seed=0)
    write_split(surreal, "val", n=4, shards=1, seed=1)
    rng = np.random.default_rng(2)
    write_split(up3d, "train", shards=1, examples=[_up3d_like(make_example(rng, i)) for i in range(8)])
    write_split(up3d, "test", shards=1, examples=[_up3d_like(make_example(rng, i)) for i in range(4)])

    tiny = dict(input_size=32, heatmap_size=8, depth_bins=4, hg_stacks=1, hg_features=8, hg_downsamplings=1,
                dae_hidden=16, dae_bottleneck=8, smplr_trunk=["16", "16"], smplr_head=8)
    parts = {}
    for key, stage, extra in (("shn", "shn", dict(data_dir=surreal)),
                              ("dae", "dae", dict(data_dir=up3d, dae_input="depth0",
                                                  genders=["female", "male", "neutral"])),
                              ("psi", "smplr_shape", dict(data_dir=surreal)),
                              ("omega", "smplr_pose", dict(data_dir=surreal))):
        d = str(tmp_path / key)
        cfg = _cfg(stage=stage, run_dir=d, **extra, **tiny)
        runs.prepare_run_dir(d, cfg)
        net = runs.build_network(cfg)
        net.save_weights(os.path.join(d, runs.FINAL_WEIGHTS))
        runs.write_network_json(d, net, stage)
        parts[f"{key}_run"] = d
    # the SURREAL SHN_e2e run that the recipe fine-tunes: its hourglass differs from --shn_run's
    surreal_e2e = str(tmp_path / "surreal_e2e")
    cfg = _cfg(stage="e2e", run_dir=surreal_e2e, data_dir=surreal, **parts, **tiny)
    runs.prepare_run_dir(surreal_e2e, cfg)
    src = runs.pipeline_from_runs(parts["shn_run"], parts["dae_run"], parts["psi_run"], parts["omega_run"])
    rng = np.random.default_rng(0)
    src.hourglass.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in src.hourglass.get_weights()])
    src.build_variables()
    src.save_weights(os.path.join(surreal_e2e, runs.FINAL_WEIGHTS))
    runs.write_network_json(surreal_e2e, src, "e2e")

    runs_dir = str(tmp_path / "runs")
    run = os.path.join(runs_dir, "table4", "up3d_shn_e2e_final")
    train.train(_cfg(stage="e2e", run_dir=run, data_dir=up3d, val_split="test", mix_data_dir=surreal,
                     mix_fraction=0.5, fits_as_3d=True, smpl_gender="neutral", init_from=surreal_e2e,
                     genders=["female", "male", "neutral"], epochs=1, steps_per_epoch=2, validation_steps=1,
                     batch_size=4, lr=0.0, **parts, **tiny))
    stage, pipe, _ = runs.load_model_from_run(run)
    assert stage == "e2e" and pipe.dae_depth0 and pipe.smpl_gender == "neutral"
    # lr 0: SHN_e2e's hourglass as loaded (batch-norm statistics move in training; the weights do not)
    for a, b in zip(pipe.hourglass.trainable_weights, src.hourglass.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    for a, b in zip(pipe.dae.weights, runs.load_model_from_run(parts["dae_run"])[1].weights):  # the depth-0 DAE
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # an shn run as --init_from: its hourglass, nothing else
    from smplr_tf.stages.e2e import E2eStage

    e2e_stage = E2eStage(_cfg(stage="e2e", data_dir=up3d, **parts, **tiny))
    fresh = e2e_stage.build_network()
    fresh.hourglass.set_weights([w + 1.0 for w in fresh.hourglass.get_weights()])
    e2e_stage.load_init_weights(fresh, parts["shn_run"])
    for a, b in zip(fresh.hourglass.weights, runs.load_model_from_run(parts["shn_run"])[1].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="e2e or shn run"):
        e2e_stage.load_init_weights(fresh, parts["dae_run"])

    result = evaluate.evaluate_run(run, split="test", batch_size=4, progress=False)
    evaluate.write_metrics(os.path.join(runs_dir, "table4", "up3d"), result)
    ev = result["evaluations"]
    assert ev["all_proc"]["iou_count"] == 4 and ev["all"]["surface_count"] == 4  # neutral truth is scored
    t4 = reproduce.table4(runs_dir)
    cell = [r for r in t4["rows"] if r["row"] == "all_proc"][0]
    assert cell["ours"]["UP-3D"] == pytest.approx(ev["all_proc"]["iou"])
    u = t4["up3d_surface"]
    assert u["ours"]["all"] == pytest.approx(ev["all"]["surface_mm"]) and u["paper"] == {"all": 91.0, "all_proc": 87.0}
    assert u["ours"]["all_proc"] == pytest.approx(ev["all_proc"]["surface_mm"])
    assert "UP-3D SMPL surface error" in reproduce.to_markdown({"table4": t4})
    plan = reproduce.evaluation_plan(runs_dir, (4,))
    assert (os.path.join(runs_dir, "table4", "up3d"), "run", (run,), "test",
            (f"--output_dir={os.path.join(runs_dir, 'table4', 'up3d')}",)) in plan
