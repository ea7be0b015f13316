"""The HMR baseline (stage hmr): network shapes and geometry, the discriminator learning the pose prior, and
the stage trained end to end on a handful of crops (overfits them, its iterations refine, it reloads and is
evaluated into the same metrics as the other runs). Tiny sizes: the tiny backbone on 32-64 px crops."""

from __future__ import annotations

import numpy as np
import pytest

TINY = dict(input_size=32, backbone="tiny", backbone_width=4, regressor_units=16, dropout=0.0)


def _rotation(rng, n):
    """(n, 3, 3) uniformly random rotations (QR of Gaussian matrices, det fixed to +1)."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q.astype(np.float32)


def test_network_shapes_config_round_trip_and_projection():
    import tensorflow as tf

    from smplr_tf.body import skeleton
    from smplr_tf.models import registry
    from smplr_tf.models.hmr import PARAM_DIM, build_hmr, rot6d_to_matrix, split_params

    net = build_hmr(iterations=3, **TINY)
    img = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    out = net(img, training=False)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"points": (2, 41, 3), "points2d": (2, 41, 2), "rotmats": (2, 24, 3, 3), "betas": (2, 10),
                      "camera": (2, 3), "vertices": (2, net.get_layer("smpl").num_vertices, 3),
                      "joints": (2, 24, 3), "landmarks": (2, 18, 3), "iter_params": (2, 3, PARAM_DIM)}
    # the outputs are the last iteration's parameters through SMPL
    rot6d, betas, cam = split_params(out["iter_params"][:, -1])
    np.testing.assert_allclose(rot6d_to_matrix(rot6d), out["rotmats"], atol=1e-5)
    np.testing.assert_allclose(betas, out["betas"], atol=1e-6)
    body = net.get_layer("smpl")(out["betas"], out["rotmats"])
    pts = skeleton.points_from_smpl(np.asarray(body["joints"]), np.asarray(body["landmarks"]))
    np.testing.assert_allclose(out["points"], pts, atol=1e-5)
    # weak perspective into the 32 px crop, written out by hand
    c = np.asarray(out["camera"])
    uv = (c[:, None, :1] * pts[..., :2] + c[:, None, 1:] + 1.0) * 16.0
    np.testing.assert_allclose(out["points2d"], uv, atol=1e-4)
    # config -> the same network (weights apart)
    cfg = net.get_config()
    again = registry.build_network(cfg)
    assert again.get_config() == cfg and registry.input_size_of(again) == 32
    again.set_weights(net.get_weights())
    np.testing.assert_allclose(again(img)["points"], out["points"], atol=1e-5)
    assert len(tf.nest.flatten(out)) == 9


def test_resnet50_backbone_builds_and_reloads_and_weights_are_checked(tmp_path):
    from smplr_tf.models import registry
    from smplr_tf.models.hmr import build_hmr

    net = build_hmr(input_size=32, backbone="resnet50", backbone_weights="none", regressor_units=8)
    assert 23_000_000 < net.count_params() < 24_000_000  # ResNet-50 without its top: 23.6 M
    img = np.random.default_rng(3).random((1, 32, 32, 3)).astype(np.float32)
    path = str(tmp_path / "w.weights.h5")
    net.save_weights(path)
    again = registry.build_network(net.get_config())
    again.load_weights(path)
    np.testing.assert_allclose(again(img)["points"], net(img)["points"], atol=1e-5)
    with pytest.raises(ValueError, match="resnet50 backbone only"):
        build_hmr(backbone_weights="imagenet", **TINY)
    with pytest.raises(ValueError, match="backbone must be"):
        build_hmr(input_size=32, backbone="vgg")


def test_rot6d_gives_rotations_and_inverts_the_matrix_form():
    from smplr_tf.models.hmr import matrix_to_rot6d, mean_params, rot6d_to_matrix

    rng = np.random.default_rng(1)
    r = np.asarray(rot6d_to_matrix(rng.normal(size=(50, 6)).astype(np.float32)))
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    q = _rotation(rng, 50)
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(q)), q, atol=1e-5)
    # the starting root turns SMPL's y-up body upright in the camera frame (y down): diag(1, -1, -1)
    np.testing.assert_allclose(rot6d_to_matrix(mean_params()[None, :6]), [np.diag([1.0, -1.0, -1.0])], atol=1e-6)


def test_discriminator_separates_real_from_random_parameters_after_a_few_steps():
    import keras
    import tensorflow as tf

    from smplr_tf.body.smpl import pose_to_rotmats
    from smplr_tf.data.points import sample_params_numpy
    from smplr_tf.models.hmr import build_hmr_discriminator
    from smplr_tf.stages.hmr import adversarial_terms

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    disc = build_hmr_discriminator(joint_units=16, pose_units=64)
    opt = keras.optimizers.Adam(3e-3)

    def real(seed, n=32):
        pose, betas, _ = sample_params_numpy(seed, n)
        return np.asarray(pose_to_rotmats(pose)), betas

    def fake(n=32):
        return _rotation(rng, n * 24).reshape(n, 24, 3, 3), rng.normal(0, 3.0, (n, 10)).astype(np.float32)

    for step in range(100):
        (rr, rb), (fr, fb) = real(step), fake()
        with tf.GradientTape() as tape:
            _, d_loss = adversarial_terms(disc, tf.constant(fr), tf.constant(fb), tf.constant(rr), tf.constant(rb))
        opt.apply_gradients(zip(tape.gradient(d_loss, disc.trainable_variables), disc.trainable_variables))
    (rr, rb), (fr, fb) = real(1000, 64), fake(64)  # unseen samples
    d_real, d_fake = np.asarray(disc([rr[:, 1:], rb])), np.asarray(disc([fr[:, 1:], fb]))
    assert np.all(d_real.mean(axis=0) > d_fake.mean(axis=0) + 0.1)  # every joint, the pose and the shape
    s_real, s_fake = d_real.mean(axis=1), d_fake.mean(axis=1)
    print(f"discriminator: real {s_real.mean():.2f}, random {s_fake.mean():.2f}")
    # least squares targets 1 (real) and 0 (fake): every unseen sample lands on its side of 0.5
    assert (s_real > 0.5).mean() > 0.95 and (s_fake < 0.5).mean() > 0.95


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from smplr_tf.synth.generate import generate_split

    d = str(tmp_path_factory.mktemp("hmr_records"))
    generate_split(d, "val", 8, seed=1, examples_per_shard=8, progress=False)
    return d


def test_stage_overfits_a_handful_of_crops_its_iterations_refine_and_it_is_evaluated(tmp_path, records):
    from smplr_tf import evaluate, runs, train
    from smplr_tf.models.hmr import rot6d_to_matrix, split_params

    run_dir = str(tmp_path / "hmr")
    cfg = runs.flag_values(
        stage="hmr", run_dir=run_dir, data_dir=records, train_split="val", val_split="val", epochs=10,
        steps_per_epoch=20, validation_steps=1, batch_size=8, input_size=64, backbone="tiny", backbone_width=8,
        hmr_units=128, hmr_dropout=0.0, hmr_3d_weight=100.0, hmr_adv_weight=0.1, disc_pose_units=32, lr=3e-3,
        verbose=0, tb_images=0, baseline_batches=1, seed=0, bn_momentum=0.9, deterministic=False)
    f = train.train(cfg)["final"]
    print(f"hmr on its 8 training crops: {f['val_mpjpe_mm']:.1f} mm vs mean pose {f['val_mean_pose_mpjpe_mm']:.1f} mm")
    assert f["val_mpjpe_mm"] < 0.25 * f["val_mean_pose_mpjpe_mm"]

    # reloads from its run directory without the training code; the iterations refine on that batch
    stage, net, _ = runs.load_model_from_run(run_dir)
    assert stage == "hmr"
    ds = evaluate.eval_dataset(records, "val", 8, 64)
    batch = next(iter(ds))
    out = net(batch["image"], training=False)
    smpl = net.get_layer("smpl")
    from smplr_tf.body import skeleton

    errors, joints_err = [], None
    for t in range(out["iter_params"].shape[1]):
        rot6d, betas, _ = split_params(out["iter_params"][:, t])
        body = smpl(betas, rot6d_to_matrix(rot6d))
        pts = skeleton.points_from_smpl(body["joints"], body["landmarks"])
        d = np.linalg.norm(np.asarray(pts) - np.asarray(batch["points"]), axis=-1) * 1000
        errors.append(float(d.mean()))
        joints_err = float(d[:, :23].mean())  # the 23 non-root joints, last iteration
    print("mean point error per iteration (mm):", [round(e, 1) for e in errors])
    assert errors[2] < errors[0]

    # evaluated into the same metrics as ALL (points by protocol 1 and 2, surface, IoU)
    res = evaluate.evaluate_run(run_dir, progress=False)
    ev = res["evaluations"]["hmr"]
    assert ev["count"] == 8 and ev["surface_mm"] is not None and ev["iou"] is not None
    assert ev["p1"]["Jt"] == pytest.approx(joints_err, rel=1e-3)
    assert ev["p2"]["Jt"] <= ev["p1"]["Jt"] + 1e-6  # Procrustes can only lower it

    # served like the pipeline: infer writes its outputs, export's SavedModel computes the same points
    from smplr_tf import export, infer, serving

    pipe, size, faces = serving.load_pipeline(run_dir)
    assert size == 64 and faces.shape[1] == 3 and pipe.body_gender == "neutral"
    crop = (np.asarray(batch["image"][0]) * 255).astype(np.uint8)
    import cv2

    cv2.imwrite(str(tmp_path / "crop.png"), crop[..., ::-1])
    res = infer.infer(str(tmp_path / "crop.png"), str(tmp_path / "out"), pipe, size, faces)
    assert res["gender"] == "neutral" and np.asarray(res["points"]).shape == (41, 3)
    export.export_pipeline(pipe, size, str(tmp_path / "export"))
    served = export.load_exported(str(tmp_path / "export"))(image=batch["image"])
    np.testing.assert_allclose(served["points"], out["points"], atol=1e-4)
