"""infer: a synthetic crop through a tiny (untrained) pipeline -> JSON, OBJ, overlay; bad inputs -> clear errors."""

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
cv2 = pytest.importorskip("cv2")

from fixtures.pipeline import TINY, make_pipeline_runs  # noqa: E402
from smplr_tf import infer, runs  # noqa: E402

@pytest.fixture(scope="module")
def setup(make_tiny_world):
    from smplr_tf.data import schema

    root, smpl_dir, data = make_tiny_world("infer", 1, seed=5)
    rec = next(iter(tf.data.TFRecordDataset(schema.split_files(str(data), "val"))))
    crop = schema.parse_example(rec)["image"].numpy()
    crop_path = str(root / "crop.png")
    cv2.imwrite(crop_path, crop[..., ::-1])
    r = make_pipeline_runs(str(root / "runs"), str(smpl_dir))
    pipe, size, faces = infer.load_pipeline("", r["shn"], r["dae"], r["psi"], r["omega"])
    return dict(root=root, crop=crop, crop_path=crop_path, pipe=pipe, size=size, faces=faces, runs=r)


def test_crop_to_json_obj_overlay(setup):
    out_dir = str(setup["root"] / "out")
    res = infer.infer(setup["crop_path"], out_dir, setup["pipe"], setup["size"], setup["faces"])
    with open(res["files"]["json"]) as f:
        j = json.load(f)
    assert np.array(j["joints"]).shape == (24, 3)
    assert np.allclose(j["joints"][0], 0.0)  # root-relative
    assert np.array(j["points"]).shape == (41, 3)
    assert len(j["betas"]) == 10 and len(j["pose"]) == 72
    assert np.array(j["rotmats"]).shape == (24, 3, 3)
    assert j["gender"] == ("male" if j["gender_code"] >= 0 else "female")
    # The pose is the axis-angle of the nearest rotations of Omega's matrices.
    from smplr_tf.body.smpl import rodrigues

    back = rodrigues(tf.constant(np.array(j["pose"], np.float32).reshape(1, 24, 3))).numpy()[0]
    np.testing.assert_allclose(back, infer.nearest_rotations(np.array(j["rotmats"])), atol=1e-4)
    with open(res["files"]["obj"]) as f:
        lines = f.read().splitlines()
    assert sum(l.startswith("v ") for l in lines) == 300
    assert sum(l.startswith("f ") for l in lines) == len(setup["faces"])
    ov = cv2.imread(res["files"]["overlay"])
    assert ov.shape == (256, 256, 3)
    assert np.abs(ov[..., ::-1].astype(int) - setup["crop"].astype(int)).sum() > 0  # something was drawn


def test_bbox_crop_equals_direct_crop(setup):
    # The crop pasted into a larger frame, with --bbox pointing at it, gives the same prediction.
    frame = np.zeros((400, 500, 3), np.uint8)
    frame[100:356, 150:406] = setup["crop"]
    crop, box = infer.make_crop(frame, "150,100,256,256")
    np.testing.assert_array_equal(box, [149.5, 99.5, 405.5, 355.5])
    np.testing.assert_array_equal(crop, setup["crop"])


def test_bad_inputs_give_clear_errors(setup, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(infer.InferError, match="empty"):
        infer.read_image(str(empty))
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(infer.InferError, match="not an image"):
        infer.read_image(str(text))
    with pytest.raises(infer.InferError, match="no such file"):
        infer.read_image(str(tmp_path / "missing.png"))
    wide = np.zeros((200, 300, 3), np.uint8)
    with pytest.raises(infer.InferError, match="not square: give --bbox"):
        infer.make_crop(wide)
    with pytest.raises(infer.InferError, match="four numbers"):
        infer.make_crop(wide, "1,2,3")
    with pytest.raises(infer.InferError, match="outside"):
        infer.make_crop(wide, "400,10,50,50")
    sq, box = infer.make_crop(wide, "10,20,100,50")  # grown to a 100 x 100 square about its centre
    np.testing.assert_array_equal(box, [9.5, -5.5, 109.5, 94.5])
    with pytest.raises(infer.InferError, match="e2e run"):
        infer.load_pipeline(setup["runs"]["dae"])


def test_e2e_run_loads_and_reproduces_its_outputs(setup):
    """An e2e network is subclassed: runs.load_model_from_run must build it before loading its weights."""
    r = setup["runs"]
    run_dir = os.path.join(str(setup["root"]), "runs", "e2e")
    os.makedirs(run_dir, exist_ok=True)
    cfg = dict(TINY, stage="e2e", smpl_dir=str(setup["root"] / "smpl"),
               shn_run=r["shn"], dae_run=r["dae"], psi_run=r["psi"], omega_run=r["omega"])
    text = "".join(f"--{k}={v}\n" for k, v in cfg.items())
    with open(os.path.join(run_dir, runs.FLAGS_FILE), "w") as f:
        f.write(text)
    model = runs.build_network(runs.parse_flags_text(text))
    image = tf.random.stateless_uniform([1, setup["size"], setup["size"], 3], seed=(3, 4))
    model(image, training=False)
    # Perturb the hourglass so that loading must restore it (not just rebuild it from the shn run).
    for v in model.hourglass.trainable_variables[:3]:
        v.assign(v + 0.5)
    want = model(image, training=False)
    model.save_weights(os.path.join(run_dir, runs.FINAL_WEIGHTS))

    stage, loaded, _ = runs.load_model_from_run(run_dir)
    assert stage == "e2e"
    got = loaded(image, training=False)
    for key in ("points", "vertices", "betas"):
        np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), atol=1e-5, err_msg=key)
    pipe, size, faces = infer.load_pipeline(run_dir, "", "", "", "")
    assert size == setup["size"] and faces.shape[1] == 3


def _record(setup):
    from smplr_tf.data import schema

    data = os.path.join(str(setup["root"]), "data")
    rec = next(iter(tf.data.TFRecordDataset(schema.split_files(data, "val"))))
    ex = schema.parse_example(rec)
    # The record's pose on the template's shape (the size prior is the template's; the shape's own effect on the
    # estimate is the prior's error, not the estimator's).
    body = setup["pipe"].smpl(tf.zeros([1, 10]), ex["pose"][None], tf.constant([1]))
    j, lm = body["joints"].numpy()[0].astype(np.float64), body["landmarks"].numpy()[0].astype(np.float64)
    root = ex["joints3d"].numpy()[0].astype(np.float64)
    return np.concatenate([j[1:], lm]) - j[:1], root, ex["intrinsics"].numpy().astype(np.float64)


def test_person_box_estimates_the_crop_and_the_distance(setup, monkeypatch):
    """A record's crop pasted into a wide photo: with a loose person box and an oracle hourglass (what a
    network trained on ground-truth crops outputs), the estimated crop is the record's and the distance its."""
    import types

    from smplr_tf import serving
    from smplr_tf.data import crop_estimate as ce
    from smplr_tf.data.crop import crop_box, project
    from smplr_tf.volume import CUBE_SIZE

    pts, root, K_crop = _record(setup)
    pts = pts * ce.body_scale(pts, ce.body_prior(setup["pipe"].smpl)[1])  # the prior's size (mean of genders)
    offset = np.array([150.0, 100.0])
    photo = np.zeros((500, 700, 3), np.uint8)
    photo[100:356, 150:406] = setup["crop"]
    K = K_crop.copy()
    K[:2, 2] += offset
    seen = []
    real = ce.crop_batch
    monkeypatch.setattr(ce, "crop_batch", lambda im, b, size=256: seen.append(np.array(b)) or real(im, b, size))

    def oracle(x, training=False):
        box = seen[-1][0]
        side = box[2] - box[0]
        uv = project(pts + root, K).astype(np.float64)
        xy = (uv - [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) * CUBE_SIZE / side
        z = pts[:, 2:] * (K[0, 0] * CUBE_SIZE / root[2]) / side
        return {"points": np.concatenate([xy, z], -1)[None]}

    nodes = np.concatenate([np.zeros((1, 3)), pts]) + root
    lo, hi = project(nodes, K).min(0), project(nodes, K).max(0)
    x, y, w, h = lo[0] - 30, lo[1] - 10, hi[0] - lo[0] + 60, hi[1] - lo[1] + 20  # loose, not square
    pbox = serving.parse_person_box(f"{x},{y},{w},{h}", photo.shape)
    pipe = types.SimpleNamespace(hourglass=oracle, smpl=setup["pipe"].smpl)
    crop, box, est = serving.estimate_crop(photo, pbox, pipe, setup["size"], K, iterations=3)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    assert abs(est[2] - root[2]) / root[2] < 0.02
    assert ce.corner_error(box, crop_box(root, K), 256) < 5.0
    seen.clear()
    _, box, est = serving.estimate_crop(photo, ce.points_box(project(nodes, K)), pipe, setup["size"], K, tight=True)
    assert abs(est[2] - root[2]) / root[2] < 0.04  # the tight-box fit (residual: see test_crop_estimate)
    assert ce.corner_error(box, crop_box(root, K), 256) < 8.0


def test_infer_with_a_person_box_writes_the_distance(setup):
    out_dir = str(setup["root"] / "out_pbox")
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[20:276, 60:316] = setup["crop"]
    path = str(setup["root"] / "photo.png")
    cv2.imwrite(path, frame[..., ::-1])
    res = infer.infer(path, out_dir, setup["pipe"], setup["size"], setup["faces"], person_box="100,20,180,256",
                      focal_px=500.0, crop_iterations=1)
    with open(res["files"]["json"]) as f:
        j = json.load(f)
    e = j["crop_estimate"]
    assert e["focal_px"] == 500.0 and not e["focal_assumed"] and e["distance_m"] == pytest.approx(e["root_camera_m"][2])
    assert os.path.exists(res["files"]["overlay"])
    with pytest.raises(infer.InferError, match="not both"):
        infer.infer(path, out_dir, setup["pipe"], setup["size"], setup["faces"], bbox="0,0,10,10", person_box="1,1,5,5")
    with pytest.raises(infer.InferError, match="outside"):
        infer.infer(path, out_dir, setup["pipe"], setup["size"], setup["faces"], person_box="900,10,50,50")
