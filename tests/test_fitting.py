"""SMPL fitting on synthetic data: bodies of the free model and of a random SMPL-size model, posed by an
independent numpy SMPL, mapped to a Human3.6M-like 32-joint skeleton with noise -> fit_h36m recovers the joints
and bones; the back-bend range holds; the fitted fits_dir converts with convert_h36m."""

import json
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fixtures import h36m as fx
from fixtures.records import write_smpl_dir
from fixtures.smpl_numpy import NumpySMPL

from smplr_tf import fitting, procrustes
from smplr_tf.body import skeleton
from smplr_tf.body.model_io import find_model_files, load_model_file
from tfrecords_tools import convert_h36m, fit_h36m

os.environ.setdefault("SMPLR_NO_PROGRESS", "1")
NOISE_M = 0.003


def make_sequence(model, n, seed):
    """A varied sequence in the z-up world: (pose, betas, trans, clean SMPL joints (n, 24, 3), mocap (n, 32, 3)
    with noise on the mapped joints)."""
    rng = np.random.default_rng(seed)
    betas = rng.normal(0, 1, 10)
    up = Rotation.from_rotvec([np.pi / 2, 0, 0])
    pose = np.zeros((n, 72))
    joints = np.zeros((n, 24, 3))
    trans = np.zeros((n, 3))
    mocap = np.zeros((n, 32, 3))
    for f in range(n):
        pose[f, :3] = (Rotation.from_rotvec([0, 0, rng.uniform(-np.pi, np.pi)]) * up).as_rotvec()
        pose[f, 3:] = rng.normal(0, 0.2, 69)
        pose[f, 3 * np.array(fitting.SPINE_JOINTS)[:, None] + np.arange(3)] = rng.uniform(-0.3, 0.3, (3, 3))
        J, _, _ = model.forward(pose[f], betas)
        trans[f] = rng.normal(0, 1, 3) + [0, 0, 1] - J[0]
        joints[f] = J + trans[f]
        mocap[f] = joints[f, 0] + rng.normal(0, 0.05, (32, 3))
        for sj, hj in fx.SMPL_TO_H36M.items():
            mocap[f, hj] = joints[f, sj] + rng.normal(0, NOISE_M, 3)
    return {"pose": pose, "betas": betas, "trans": trans, "joints": joints, "mocap": mocap}


def rest_bones(model, betas, bones):
    J, _, _ = model.forward(np.zeros(72), betas)
    return np.array([np.linalg.norm(J[b] - J[a]) for a, b in bones])


@pytest.mark.parametrize("which", ["free", "random"])
def test_fit_h36m_recovers_joints_and_bones_and_converts(which, tmp_path):
    if which == "free":
        path, smpl_dir = find_model_files()["female"], None
    else:
        path = write_smpl_dir(str(tmp_path / "smpl"), genders=("female",))["female"]
        smpl_dir = str(tmp_path / "smpl")
    model = NumpySMPL(path)
    root, fits = str(tmp_path / "h36m"), str(tmp_path / "fits")
    seqs = {"Directions 1": make_sequence(model, 30, 1), "Walking": make_sequence(model, 20, 2)}
    seqs["Walking"]["betas"] = seqs["Directions 1"]["betas"]  # one subject, one shape
    seqs["Walking"] = make_sequence_with(model, seqs["Walking"])
    for action, s in seqs.items():
        fx.write_mocap(root, "S1", action, s["mocap"], "cdf")
    stats = fit_h36m.fit_tree(root, fits, smpl_dir, subjects=("S1",), every=2, weights=(), steps=300,
                              batch_size=64, xla=False)
    assert stats["sequences"] == 2 and stats["frames"] == 15 + 10
    with open(os.path.join(fits, "S1", "shape.json")) as f:
        shape = json.load(f)
    bones = shape["bones"]
    true_len = rest_bones(model, seqs["Walking"]["betas"], bones)
    fit_len = rest_bones(model, np.array(shape["betas"]), bones)
    assert np.abs(fit_len - true_len).max() < 0.005, (fit_len - true_len) * 1000
    mapped = sorted(fx.SMPL_TO_H36M)
    for action, s in seqs.items():
        z = np.load(os.path.join(fits, "S1", action + ".npz"))
        assert str(z["gender"]) == "female" and z["pose"].shape == (len(s["mocap"]), 72)
        frames = np.arange(0, len(s["mocap"]), 2)
        assert np.isnan(z["pose"][1::2]).all() and not np.isnan(z["pose"][frames]).any()
        J = np.stack([model.forward(z["pose"][f], z["betas"])[0] + z["trans"][f] for f in frames])
        err = np.linalg.norm(J[:, mapped] - s["joints"][frames][:, mapped], axis=-1)
        assert err.mean() < 0.010, err.mean()
        # the fitted bones, frame by frame, have the true lengths
        for a, b in bones:
            d = np.linalg.norm(J[:, b] - J[:, a], axis=-1) - np.linalg.norm(
                s["joints"][frames][:, b] - s["joints"][frames][:, a], axis=-1)
            assert np.abs(d).max() < 0.005
    manifest = json.load(open(os.path.join(fits, "manifest.json")))
    assert len(manifest["sequences"]) == 2
    assert all(q["mapped_joint_mm_mean"] < 10 for q in manifest["sequences"])
    # resumable: nothing left to fit
    again = fit_h36m.fit_tree(root, fits, smpl_dir, subjects=("S1",), every=2, weights=(), steps=5,
                              batch_size=64, xla=False)
    assert again["sequences"] == 0 and again["skipped"] == 2
    if which == "random":  # the fits convert: SMPL on the fits lies on the mocap
        s = seqs["Walking"]
        cam = lambda X: np.stack([X[..., 0], -(X[..., 2] - 1.0), X[..., 1] + 4.5], -1)  # noqa: E731
        fx.write_video(root, "S1", "Walking", 0, cam(s["mocap"]))
        ext = {(1, c): (0.0,) * 6 for c in range(4)}
        ext[(1, 0)] = (np.pi / 2, 0.0, 0.0, 0.0, -4500.0, 1000.0)
        fx.write_metadata_xml(os.path.join(root, "metadata.xml"), ext)
        os.remove(os.path.join(root, "S1", "MyPoseFeatures", "D3_Positions", "Directions 1.cdf"))
        out = convert_h36m.convert(root, str(tmp_path / "rec"), "train", smpl_dir, fits, every=2,
                                   subjects=("S1",))
        assert out["with_fits"] == 1 and out["written"] == 10
        assert out["fit_vs_mocap_mm_mean"] < 15


def make_sequence_with(model, s):
    """Re-pose ``s``'s mocap with its (replaced) betas."""
    for f in range(len(s["pose"])):
        J, _, _ = model.forward(s["pose"][f], s["betas"])
        s["joints"][f] = J + s["trans"][f]
        for sj, hj in fx.SMPL_TO_H36M.items():
            s["mocap"][f, hj] = s["joints"][f, sj]
    return s


def test_back_bend_penalty_keeps_the_fit_in_range():
    data = load_model_file(find_model_files()["male"], gender="male")
    rng = np.random.default_rng(3)
    pose = rng.normal(0, 0.1, (8, 72)).astype(np.float32)
    spine = 3 * np.array(fitting.SPINE_JOINTS)[:, None] + np.arange(3)
    pose[:, spine] = 0.8 * np.sign(rng.normal(size=(8, 3, 3)))  # every back component far out of range
    model = fitting.PointModel(data)
    target = model(np.zeros((8, 10), np.float32), fitting.rodrigues(pose.reshape(8, 24, 3))).numpy()
    limit = 0.3
    fit = fitting.Fitter(data, batch_size=8, steps=200, priors=fitting.Priors(back_limit=limit, back_weight=10.0),
                         xla=False).fit(target, fixed_betas=np.zeros(10))
    assert np.abs(fit["pose"][:, spine]).max() < limit + 0.03
    free = fitting.Fitter(data, batch_size=8, steps=200, priors=fitting.Priors(back_limit=10.0), xla=False).fit(
        target, fixed_betas=np.zeros(10))
    assert np.abs(free["pose"][:, spine]).max() > limit + 0.2  # without the range the data pull it out
    assert fitting.back_bend_excess(pose, limit).numpy().max() == pytest.approx(0.5, abs=1e-6)


def test_point_model_matches_numpy_smpl_and_fits_41_points(tmp_path):
    path = write_smpl_dir(str(tmp_path), genders=("male",))["male"]  # pose correctives on (random posedirs)
    ref, data = NumpySMPL(path), load_model_file(path)
    rng = np.random.default_rng(0)
    pose, betas = rng.normal(0, 0.3, (4, 72)), rng.normal(0, 1, (4, 10))
    pts = fitting.PointModel(data)(betas.astype(np.float32),
                                   fitting.rodrigues(pose.reshape(4, 24, 3).astype(np.float32))).numpy()
    for i in range(4):
        J, _, L = ref.forward(pose[i], betas[i])
        np.testing.assert_allclose(pts[i], np.concatenate([J, L]), atol=2e-5)
    # all 24 joints + 18 landmarks, shape free: recovered to a few mm from a zero start
    target = pts + rng.normal(0, 1, (4, 1, 3)).astype(np.float32)
    fit = fitting.Fitter(data, batch_size=4, steps=400, learning_rate=0.1, xla=False).fit(target)
    assert np.median(fit["error"]) < 0.008, fit["error"]
    assert fit["points"].shape == (4, skeleton.NUM_NODES, 3)


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(3, 10, 3))
    R = Rotation.random(3, random_state=1).as_matrix()
    t = rng.normal(size=(3, 3))
    Rf, tf_ = procrustes.kabsch(src, np.einsum("bij,bqj->bqi", R, src) + t[:, None], np.ones((3, 10)))
    np.testing.assert_allclose(Rf, R, atol=1e-9)
    np.testing.assert_allclose(tf_, t, atol=1e-9)


def free_points(n, seed, gender="neutral"):
    """(n, 41) SMPLR points of random free-model bodies, root-relative, and their joints (n, 24, 3)."""
    from smplr_tf.body.smpl import SMPL

    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.2, (n, 72)).astype(np.float32)
    betas = rng.normal(0, 1, (n, 10)).astype(np.float32)
    body = SMPL(genders=(gender,))(betas, pose)
    J, L = body["joints"].numpy(), body["landmarks"].numpy()
    pts = np.concatenate([J[:, 1:], L], 1) - J[:, :1]
    return pts, J - J[:, :1]


def test_points_to_smpl_fits_41_points_without_networks():
    pts, J = free_points(3, 7)
    out = fitting.points_to_smpl(pts, xla=False)  # 6 Gauss-Newton iterations
    assert out["vertices"].shape == (3, out["vertices"].shape[1], 3) and list(out["gender"]) == ["neutral"] * 3
    err = np.linalg.norm(out["joints"] - J, axis=-1).mean()
    assert err < 0.01, err
    np.testing.assert_allclose(out["error"], np.sqrt(np.mean(np.sum(
        (np.concatenate([out["joints"][:, 1:], out["landmarks"]], 1) - pts) ** 2, -1), 1)), atol=1e-4)


def test_points_to_smpl_with_psi_omega_and_refinement():
    from smplr_tf.models.smplr import build_omega_net, build_psi_net

    pts, J = free_points(4, 8)
    psi = build_psi_net(trunk=(32,), head_a=(16,), head_b=(16,))
    omega = build_omega_net(trunk=(32,), head_a=(16,), head_b=(16,))
    alone = fitting.points_to_smpl(pts, psi, omega, steps=0, xla=False, canonical=False)
    shape = psi(pts)
    np.testing.assert_allclose(alone["betas"], shape["betas"].numpy(), atol=1e-6)  # Psi's answer, untouched
    codes = shape["gender"].numpy()
    assert list(alone["gender"]) == ["male" if c >= 0 else "female" for c in codes]
    R = Rotation.from_rotvec(alone["pose"].reshape(-1, 3)).as_matrix()
    u, _, vt = np.linalg.svd(omega(pts)["rotmats"].numpy().reshape(-1, 3, 3))  # nearest rotations of Omega's
    fix = np.ones((len(u), 3))
    fix[:, 2] = np.sign(np.linalg.det(u @ vt))
    np.testing.assert_allclose(R, np.einsum("nij,nj,njk->nik", u, fix, vt), atol=1e-4)
    for solver, steps in (("gauss_newton", 20), ("adam", 200)):  # untrained networks: a far start
        refined = fitting.points_to_smpl(pts, psi, omega, steps=steps, xla=False, solver=solver)
        assert refined["error"].mean() < 0.5 * alone["error"].mean(), solver


def test_canonical_rotation_is_the_body_frame_and_follows_the_input_rotation():
    """The rest body in the camera frame (SMPL's y up turned to y down, facing the camera) is already canonical;
    a rotated copy Q p of any body gets R Q^T, so its turned points are those of p."""
    from smplr_tf.body.smpl import SMPL

    layer = SMPL(genders=("neutral",))
    rest = layer(np.zeros((1, 10), np.float32), np.r_[np.pi, 0, 0, np.zeros(69)].astype(np.float32)[None])
    J, L = rest["joints"].numpy(), rest["landmarks"].numpy()
    rest_pts = np.concatenate([J[:, 1:], L], 1) - J[:, :1]
    R0 = fitting.canonical_rotation(rest_pts)[0]
    # left = +x exactly (the rest body is symmetric); its torso leans by a few degrees at most
    np.testing.assert_allclose(R0[:, 0], [1, 0, 0], atol=1e-5)
    assert np.degrees(Rotation.from_matrix(R0).magnitude()) < 10
    pts, _ = free_points(5, 3)
    Q = Rotation.random(5, random_state=4).as_matrix()
    R = fitting.canonical_rotation(pts)
    Rq = fitting.canonical_rotation(np.einsum("bij,bpj->bpi", Q, pts))
    np.testing.assert_allclose(np.einsum("bij,bjk->bik", R, np.transpose(R, (0, 2, 1))), np.tile(np.eye(3), (5, 1, 1)),
                               atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    np.testing.assert_allclose(Rq, np.einsum("bij,bkj->bik", R, Q), atol=1e-9)
    # the turned torso points up (-y in the camera frame)
    Jc = np.einsum("bij,bpj->bpi", R, pts[:, :23])
    up = Jc[:, [11, 15, 16]].mean(1) - Jc[:, [0, 1]].mean(1)
    np.testing.assert_allclose(up / np.linalg.norm(up, axis=-1, keepdims=True), np.tile([0, -1, 0], (5, 1)),
                               atol=1e-9)


def test_psi_omega_start_is_rotation_equivariant():
    """Canonical: a rotated copy of the points gives the same betas, gender and body pose and the rotated global
    rotation; without it the networks see the points as given."""
    from smplr_tf.models.smplr import build_omega_net, build_psi_net

    pts, _ = free_points(4, 5)
    psi = build_psi_net(trunk=(32,), head_a=(16,), head_b=(16,))
    omega = build_omega_net(trunk=(32,), head_a=(16,), head_b=(16,))
    Q = Rotation.random(4, random_state=6).as_matrix()
    turned = np.einsum("bij,bpj->bpi", Q, pts).astype(np.float32)
    a = fitting.psi_omega_start(pts, psi, omega)
    b = fitting.psi_omega_start(turned, psi, omega)
    np.testing.assert_allclose(b["betas"], a["betas"], atol=1e-4)
    np.testing.assert_allclose(b["gender_code"], a["gender_code"], atol=1e-4)
    np.testing.assert_allclose(b["pose"][:, 3:], a["pose"][:, 3:], atol=1e-3)
    Ga = Rotation.from_rotvec(a["pose"][:, :3]).as_matrix()
    Gb = Rotation.from_rotvec(b["pose"][:, :3]).as_matrix()
    np.testing.assert_allclose(Gb, np.einsum("bij,bjk->bik", Q, Ga), atol=1e-3)
    raw = fitting.psi_omega_start(turned, psi, omega, canonical=False)
    np.testing.assert_allclose(raw["betas"], psi(turned)["betas"].numpy(), atol=1e-6)
    np.testing.assert_allclose(raw["pose"], fitting.rotmats_to_axis_angle(omega(turned)["rotmats"]), atol=1e-6)


def test_refinement_from_a_near_start_recovers_the_body():
    """Stand-ins for trained Psi / Omega: the true betas and rotations with noise (0.1 rad, 0.3 betas)."""
    from smplr_tf.body.smpl import SMPL

    rng = np.random.default_rng(9)
    pose = rng.normal(0, 0.2, (4, 72)).astype(np.float32)
    betas = rng.normal(0, 1, (4, 10)).astype(np.float32)
    body = SMPL(genders=("male",))(betas, pose)
    J, L = body["joints"].numpy(), body["landmarks"].numpy()
    pts = np.concatenate([J[:, 1:], L], 1) - J[:, :1]
    noisy = Rotation.from_rotvec((pose + rng.normal(0, 0.1, pose.shape)).reshape(-1, 3)).as_matrix()

    def psi(points, training=False):
        return {"betas": betas + rng.normal(0, 0.3, betas.shape), "gender": np.ones(4)}

    def omega(points, training=False):
        return {"rotmats": noisy.reshape(4, 24, 3, 3)}

    # the stand-ins answer in the points' own frame: no canonical turn
    alone = fitting.points_to_smpl(pts, psi, omega, steps=0, xla=False, canonical=False)
    for solver, steps in (("gauss_newton", 3), ("adam", 150)):
        refined = fitting.points_to_smpl(pts, psi, omega, steps=steps, xla=False, canonical=False, solver=solver)
        assert list(refined["gender"]) == ["male"] * 4
        err = np.linalg.norm(refined["joints"] - (J - J[:, :1]), axis=-1).mean()
        assert err < 0.01 and refined["error"].mean() < 0.1 * alone["error"].mean(), (solver, err, alone["error"])


def test_fit_command_writes_npz_and_obj(tmp_path):
    import subprocess
    import sys

    _, J = free_points(2, 4)
    np.save(tmp_path / "joints.npy", J)  # (2, 24, 3)
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "smplr_tf.fit", f"--points={tmp_path / 'joints.npy'}",
           f"--output_dir={tmp_path / 'out'}", "--noxla"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    z = np.load(tmp_path / "out" / "smpl.npz")
    assert z["pose"].shape == (2, 72) and z["vertices"].shape[0] == 2
    assert np.linalg.norm(z["joints"] - J, axis=-1).mean() < 0.01
    assert (tmp_path / "out" / "body_1.obj").exists()
    bad = subprocess.run(cmd[:3] + [f"--points={tmp_path / 'missing.npy'}", f"--output_dir={tmp_path}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("fit: ")
    assert "missing.npy" in bad.stderr and "Traceback" not in bad.stderr


def test_output_refiner_moves_each_gender_onto_its_points():
    """ALL_Fit's refinement: per sample gender, SMPLR's pose / betas (here: the truth with noise) fitted onto
    the input points; the refined bodies lie much closer to the points than the start."""
    from smplr_tf.body.smpl import SMPL

    smpl = SMPL(genders=("female", "male"))
    rng = np.random.default_rng(11)
    pose = rng.normal(0, 0.2, (6, 72)).astype(np.float32)
    betas = rng.normal(0, 1, (6, 10)).astype(np.float32)
    g = np.array([0, 1, 0, 1, 1, 0])
    body = smpl(betas, pose, gender=g)
    pts = skeleton.points_from_smpl(body["joints"].numpy(), body["landmarks"].numpy())
    start_pose = pose + rng.normal(0, 0.08, pose.shape).astype(np.float32)
    start_betas = betas + rng.normal(0, 0.3, betas.shape).astype(np.float32)

    def err(p, b):
        o = smpl(b, p, gender=g)
        return np.linalg.norm(skeleton.points_from_smpl(o["joints"].numpy(), o["landmarks"].numpy()) - pts,
                              axis=-1).mean()

    refiner = fitting.OutputRefiner(smpl, steps=100, batch_size=4, xla=False)
    new_pose, new_betas = refiner.refine(pts, start_pose, start_betas, g)
    assert err(new_pose, new_betas) < 0.25 * err(start_pose, start_betas)
    assert sorted(refiner._fitters) == [0, 1]


def test_scan_fit_recovers_the_mesh():
    """A synthetic scan: the true mesh (random betas, a mild pose), 3000 of its vertices with 2 mm noise, shifted;
    the fitted mesh lies within 15 mm of the truth (mean vertex distance). 800 of the points are used."""
    data = load_model_file(find_model_files()["female"], gender="female")
    ref = NumpySMPL(find_model_files()["female"])
    rng = np.random.default_rng(4)
    betas = rng.normal(0, 1, 10)
    pose = np.concatenate([[0, 0, 0], rng.normal(0, 0.1, 69)])
    _, V, _ = ref.forward(pose, betas)
    shift = np.array([0.3, -0.2, 2.0])
    scan = V[rng.choice(len(V), 3000, replace=False)] + rng.normal(0, 0.002, (3000, 3)) + shift
    fit = fitting.fit_scan(data, scan, steps=160, max_scan_points=800)
    err = np.linalg.norm(fit["vertices"] - (V + shift), axis=-1).mean()
    assert err < 0.015, err
    assert fit["scan_to_mesh_mm"] < 10


def test_fit_h36m_takes_the_shape_from_a_scan_when_there_is_one(tmp_path):
    data = load_model_file(find_model_files()["female"], gender="female")
    ref = NumpySMPL(find_model_files()["female"])
    _, V, _ = ref.forward(np.zeros(72), np.full(10, 0.5))
    np.save(tmp_path / "S1.npy", V[::7])
    jmap = fit_h36m.joint_map(())
    mocap = np.zeros((3, 32, 3))
    path = str(tmp_path / "shape.json")
    betas = fit_h36m.subject_shape(data, [mocap], jmap, path, scan_path=str(tmp_path / "S1.npy"), scan_steps=3)
    info = json.load(open(path))
    assert info["source"] == "scan" and np.allclose(info["betas"], betas)
    again = fit_h36m.subject_shape(data, [mocap], jmap, path)  # resumed: read back, not refitted
    np.testing.assert_allclose(again, betas)
    assert fit_h36m.find_scan(str(tmp_path), "S1") == str(tmp_path / "S1.npy")
    assert fit_h36m.find_scan(str(tmp_path), "S5") is None


def _gn_fitter(B, xla=False, path=None):
    data = load_model_file(path or find_model_files()["female"], gender="female")
    jmap = fitting.JointMap.smpl_points(list(range(1, 24)) + list(range(24, 42)))
    return data, fitting.GaussNewtonFitter(data, jmap, batch_size=B, xla=xla)


@pytest.mark.parametrize("which", ["free", "random"])
def test_gauss_newton_jacobian_matches_autodiff(which, tmp_path):
    """The analytic Jacobian of the 42 body points in (joint-subtree rotations, betas, translation) equals
    TensorFlow's autodiff of the same parameterisation: the free model (no pose blend shapes on the landmarks)
    and a random SMPL-size model (with them)."""
    import tensorflow as tf

    from smplr_tf.body.smpl import rodrigues

    B = 3
    path = None if which == "free" else write_smpl_dir(str(tmp_path / "smpl"), genders=("female",))["female"]
    data, f = _gn_fitter(B, path=path)
    assert f.model._pose_blend == (which == "random")
    rng = np.random.default_rng(2)
    rot = rodrigues(tf.constant(rng.normal(0, 0.4, (B, 24, 3)), tf.float32))
    betas = tf.constant(rng.normal(0, 1, (B, 10)), tf.float32)
    trans = tf.constant(rng.normal(0, 1, (B, 3)), tf.float32)
    _, joints, g_rot, u = f._forward(rot, betas, trans)
    analytic = f._jacobian(joints, g_rot, u, rot).numpy()  # (B, 42, 3, 85)
    x = tf.zeros([B, 85])
    g_par = tf.concat([tf.eye(3, batch_shape=[B])[:, None], tf.gather(g_rot, f._parents[1:], axis=1)], 1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        local = tf.einsum("bkdc,bkd->bkc", g_par, tf.reshape(x[:, :72], [B, 24, 3]))
        pts = f._forward(tf.matmul(rodrigues(local), rot), betas + x[:, 72:82], trans + x[:, 82:])[0]
        flat = tf.reshape(pts, [B, -1])
    auto = tape.batch_jacobian(flat, x).numpy().reshape(B, 42, 3, 85)
    np.testing.assert_allclose(analytic, auto, atol=2e-5)
    assert np.abs(auto[:, :, :, :72]).max() > 0.1 and np.abs(auto[:, :, :, 72:82]).max() > 0.01  # not trivial


@pytest.mark.parametrize("which", ["free", "random"])
def test_gauss_newton_fits_41_points_as_well_as_adam_in_a_few_iterations(which, tmp_path):
    """From the zero pose (Kabsch start), 6 Gauss-Newton iterations reach an objective no higher than 300 Adam
    steps, and the true joints within 5 mm (10 mm with the random model's large pose blend shapes); fixed betas
    stay fixed. Bodies posed by the independent numpy SMPL."""
    path = find_model_files()["female"] if which == "free" else write_smpl_dir(
        str(tmp_path / "smpl"), genders=("female",))["female"]
    model = NumpySMPL(path)
    rng = np.random.default_rng(11)
    pose = rng.normal(0, 0.2, (4, 72)).astype(np.float32)
    pose[:, :3] = Rotation.random(4, random_state=3).as_rotvec()
    betas = rng.normal(0, 1, (4, 10)).astype(np.float32)
    data, gn = _gn_fitter(4, path=path, xla=which == "free")  # the XLA path once
    J = np.zeros((4, 24, 3))
    pts = np.zeros((4, 41, 3), np.float32)
    for i in range(4):
        Ji, Vi, _ = model.forward(pose[i], betas[i])
        J[i] = Ji - Ji[0]
        pts[i] = np.concatenate([Ji[1:], Vi[data.landmark_ids]]) - Ji[0]
    res = gn.fit(pts)
    adam = fitting.Fitter(data, gn.joint_map, batch_size=4, steps=300, learning_rate=0.1, xla=False).fit(pts)

    def objective(r):
        return np.mean(r["error"] ** 2) + fitting.Priors().betas_weight * np.mean(np.sum(r["betas"] ** 2, 1))

    assert objective(res) <= 1.01 * objective(adam), (objective(res), objective(adam))
    joints = res["points"][:, :24] - res["points"][:, :1]
    err = np.linalg.norm(joints - J, axis=-1).mean()
    assert err < (0.005 if which == "free" else 0.01), err
    fixed = gn.fit(pts[:3], fixed_betas=betas[:3])  # 3 of a batch of 4: a padded chunk
    np.testing.assert_allclose(fixed["betas"], betas[:3], atol=1e-6)
    assert len(fixed["pose"]) == 3 and fixed["error"].max() < 0.006, fixed["error"]
    with pytest.raises(ValueError, match="shared"):
        gn.fit(pts, shared_betas=True)
