"""Evaluate a trained run (or a pipeline of runs) with the paper's metrics; write metrics.json + TensorBoard.

    python -m smplr_tf.evaluate --run_dir=runs/table1/shn [--data=data/synthetic --eval_split=val]
    python -m smplr_tf.evaluate --run_dir=runs/table1/dae_shn --eval_input=run --eval_input_run=runs/table1/shn
    python -m smplr_tf.evaluate --shn_run=... --dae_run=... --psi_run=... --omega_run=... --output_dir=runs/table1/all

What is evaluated, per stage (keys of ``metrics.json["evaluations"]``; metric definitions in
:mod:`smplr_tf.metrics`):

* shn, alexnet: ``points`` = the CNN's points (Table 1 CNN rows). shn2d: ``points_xy`` = the 2D model's x, y
  (its z is set to the ground truth's, so the errors are x-y errors only).
* dae: ``points`` = DAE output; ``input`` = its input (what the DAE improved on).
* smplr_shape (Psi): ``psi`` = SMPL(predicted betas and gender, ground-truth rotations): points, surface,
  gender accuracy, IoU. smplr_pose (Omega): ``omega`` = SMPL(ground-truth betas and gender, predicted
  rotations). Inputs of dae / smplr_*: see ``--eval_input``.
* hmr (the HMR baseline): ``hmr`` = its SMPL output (points, surface, IoU; no gender: one body model).
* e2e run, or a pipeline of four runs (--shn_run --dae_run --psi_run --omega_run): ``points`` (SHN),
  ``dae`` (DAE output), ``all`` (SMPL output: points, surface, gender, IoU) and ``all_proc`` (the SMPL
  output aligned onto SMPLR's own input JL = the DAE output, no ground truth; paper Sec. 4.5).

Crops (``--crop``): ``gt`` (default) feeds the records' images, the paper's crop from the ground-truth root and
focal length. ``estimated`` (image stages and pipelines; paper Sec. 4.6, Table 2's estimated-crop rows) re-crops
each record image from its person box (the tight box of the projected ground-truth points) with
:func:`smplr_tf.data.crop_estimate.estimate_crops` (no ground-truth depth: the hourglass's own points, brought
to the template's size, fitted into the box give the distance), then evaluates on that crop; ``metrics.json["crop"]`` holds the corner
error (pixels of the 256 crop) and the root-distance error. Predictions are scored as the network gives them
(x, y about the crop centre, in the crop's scale): what is lost to the estimated crop is in the errors.
``--crop_run``: the hourglass that estimates the crop, when it is not the evaluated one (the paper evaluates
SHN^final fine-tuned with random scaling, ``--aug_scale``, on crops that a network trained on ground-truth
crops estimates: a scale-augmented network's sizes no longer follow the crop, so it cannot measure the crop).

Ground truth: the records' joints3d / landmarks3d (root-relative) for points; SMPL(pose, betas, gender) of
the records for meshes (records with has_smpl); the records' masks for IoU (has_mask), the predicted mesh
placed at the ground-truth root and projected with the crop's intrinsics.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import flags

from smplr_tf import cli

from smplr_tf import metrics, runs
from smplr_tf.body import skeleton
from smplr_tf.models.registry import input_size_of

FLAGS = flags.FLAGS
IMAGE_STAGES = ("shn", "shn2d", "alexnet", "e2e", "hmr")
POINT_STAGES = ("dae", "smplr_shape", "smplr_pose")


class EvalError(cli.UserError, ValueError):
    """An evaluation that cannot run as asked; the message says what is missing."""


# ------------------------------------------------------------------------------------------------ data

def eval_dataset(data_dir: str, split: str, batch_size: int, input_size: int = 256, with_images: bool = True,
                 max_examples: int = 0, require_smpl: bool = False, require_3d: bool = True):
    """Records -> batches of dicts (numpy-able tensors), in record order, no augmentation.

    Keys: ``image`` (B,S,S,3) float32 RGB in [0, 1] as the networks take it (only with_images), ``points`` (B,41,3) root-relative
    metres, ``pose`` (B,72), ``betas`` (B,10), ``gender`` (B,), ``root`` (B,3) camera-frame pelvis,
    ``intrinsics`` (B,3,3), ``mask`` (B,256,256) bool, ``has_smpl``, ``has_mask``, ``has_landmarks``, ``has_3d``
    (B,). require_3d: keep only records with true 3D (has_3d); pipelines keep all (UP-3D has SMPL fits and
    masks but has_3d = 0) and score points only where has_3d.
    """
    import tensorflow as tf

    from smplr_tf.data import pipeline, schema

    files = schema.split_files(data_dir, split)
    ds = pipeline.read_records(files)

    def parse(f, i, r):
        ex = schema.parse_example(r, decode_images=False)
        j3, l3 = ex["joints3d"], ex["landmarks3d"]
        out = {
            "points": skeleton.points_from_smpl(j3, l3),
            "pose": ex["pose"], "betas": ex["betas"], "gender": tf.cast(ex["gender"], tf.int32),
            "root": j3[0], "intrinsics": ex["intrinsics"],
            "has_smpl": ex["has_smpl"], "has_mask": ex["has_mask"], "has_landmarks": ex["has_landmarks"],
            "has_3d": ex["has_3d"],
            "mask": tf.ensure_shape(tf.io.decode_png(ex["mask"], channels=1)[..., 0],
                                    (schema.IMAGE_SIZE, schema.IMAGE_SIZE)) > 127,
        }
        if with_images:
            image = tf.io.decode_jpeg(ex["image"], channels=3)
            image = tf.ensure_shape(image, (schema.IMAGE_SIZE, schema.IMAGE_SIZE, 3))
            image = tf.cast(image, tf.float32) * (1.0 / 255.0)
            if input_size != schema.IMAGE_SIZE:
                image = tf.image.resize(image[None], (input_size, input_size), antialias=True)[0]
            out["image"] = image
        return out

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if require_3d:
        ds = ds.filter(lambda d: d["has_3d"] > 0)
    if require_smpl:
        ds = ds.filter(lambda d: d["has_smpl"] > 0)
    if max_examples:
        ds = ds.take(int(max_examples))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# ------------------------------------------------------------------------------------------------ crops

class EstimatedCrop:
    """``--crop=estimated``: re-crops the batches' record images with the hourglass's own estimate.

    hourglass: image (B, S', S', 3) float32 [0, 1] -> points (B, 41, 3) or a dict with "points", the network
    that estimates the crop, S' = hourglass_size; smpl: the body model of the size prior
    (``crop_estimate.body_prior``); input_size: S of the evaluated network. Call with a batch of
    :func:`eval_dataset` read at 256 (``image`` (B, 256, 256, 3), ``points``, ``root``, ``intrinsics``) ->
    (B, S, S, 3) float32 images of the estimated crops. :meth:`result` -> the crop summary for metrics.json.
    """

    def __init__(self, hourglass, smpl, input_size: int, iterations: int = 2, hourglass_size: int = 0,
                 crop_run: str = ""):
        from smplr_tf.data import crop_estimate

        self.hourglass = hourglass
        self.input_size = int(input_size)
        self.hourglass_size = int(hourglass_size or input_size)
        self.crop_run = crop_run
        self.iterations = int(iterations)
        self.coeffs, self.lengths = crop_estimate.body_prior(smpl)
        self.corner = metrics.MeanMetric()
        self.distance = metrics.MeanMetric()

    @staticmethod
    def _resize(crops, size):
        import tensorflow as tf

        if crops.shape[1] == size:
            return crops
        return tf.image.resize(crops, (size, size), antialias=True).numpy()

    def __call__(self, batch) -> np.ndarray:
        from smplr_tf.data import crop_estimate
        from smplr_tf.data.crop import crop_box, project

        images, K = _np(batch["image"]), _np(batch["intrinsics"]).astype(np.float64)
        root = _np(batch["root"]).astype(np.float64)
        nodes = np.concatenate([np.zeros_like(_np(batch["points"])[:, :1]), _np(batch["points"])], axis=1)
        person = [crop_estimate.points_box(project(n + r, k)) for n, r, k in zip(nodes, root, K)]

        def predict(crops):
            return _np(_points_of(self.hourglass(self._resize(crops, self.hourglass_size), training=False)))

        crops, boxes, roots = crop_estimate.estimate_crops(predict, images, K, person, self.coeffs, self.lengths,
                                                           self.iterations, images.shape[1], tight=True)
        for b, r, est, k in zip(boxes, root, roots, K):
            if np.isfinite(est).all():
                self.corner.update([crop_estimate.corner_error(b, crop_box(r, k), 256)])
                self.distance.update([100.0 * abs(est[2] - r[2]) / r[2]])
            else:
                self.corner.update([np.nan])
        return self._resize(crops, self.input_size)

    def result(self) -> dict:
        return {"mode": "estimated", "iterations": self.iterations, "corner_error_px": self.corner.result(),
                "distance_error_percent": self.distance.result(), "count": self.distance.count,
                "person_box": "ground-truth 2D box", "crop_run": self.crop_run or "the evaluated network"}


def _crop_estimator(crop: str, crop_run: str, iterations: int, hourglass, smpl, input_size: int):
    """The :class:`EstimatedCrop` of ``--crop`` (None for gt): ``crop_run``'s hourglass (an shn, alexnet or e2e
    run) estimates the crop when given, else ``hourglass`` (the evaluated network's)."""
    if crop != "estimated":
        if crop_run:
            raise EvalError("--crop_run needs --crop=estimated")
        return None
    size = input_size
    if crop_run:
        if not os.path.isdir(crop_run):
            raise EvalError(f"--crop_run={crop_run}: no such directory")
        stage, model, _ = runs.load_model_from_run(crop_run)
        if stage not in ("shn", "alexnet", "e2e"):
            raise EvalError(f"--crop_run={crop_run} is a '{stage}' run; the crop needs an shn, alexnet or e2e run")
        hourglass, size = (model.hourglass if stage == "e2e" else model), input_size_of(model)
    return EstimatedCrop(hourglass, smpl, input_size, iterations, size, crop_run)


# ------------------------------------------------------------------------------------------------ accumulators

class MeshEval:
    """Points (protocols 1/2), surface error, gender accuracy and IoU of one mesh-producing evaluation."""

    def __init__(self, faces=None, iou: bool = True):
        self.points = metrics.PointMetrics()
        self.surface = metrics.MeanMetric()
        self.gender = metrics.MeanMetric()
        self.iou = metrics.MeanMetric()
        self.faces = faces
        self.do_iou = iou and faces is not None

    def update(self, pred_points, gt_points, pred_verts_rel=None, gt_verts_rel=None, surface_ok=None,
               pred_gender=None, gt_gender=None, gender_ok=None, root=None, K=None, mask=None, has_mask=None,
               points_ok=None):
        """pred_verts_rel / gt_verts_rel: (B,V,3) relative to each mesh's own pelvis (metres); *_ok (B,) bool:
        which samples count for that metric (None: all)."""
        if points_ok is None:
            self.points.update(pred_points, gt_points)
        elif np.any(points_ok):
            self.points.update(np.asarray(pred_points)[points_ok], np.asarray(gt_points)[points_ok])
        if pred_verts_rel is not None and gt_verts_rel is not None:
            e = metrics.surface_errors(pred_verts_rel, np.zeros((len(pred_verts_rel), 3)), gt_verts_rel,
                                       np.zeros((len(gt_verts_rel), 3)))
            if surface_ok is not None:
                e = np.where(surface_ok, e, np.nan)
            self.surface.update(e)
        if pred_gender is not None and gt_gender is not None:
            c = metrics.gender_correct(pred_gender, gt_gender)
            if gender_ok is not None:
                c = np.where(gender_ok, c, np.nan)
            self.gender.update(c)
        if self.do_iou and pred_verts_rel is not None and mask is not None:
            for b in range(len(pred_verts_rel)):
                if has_mask is not None and not has_mask[b]:
                    continue
                verts_cam = pred_verts_rel[b] + root[b][None]
                self.iou.update([metrics.silhouette_iou(verts_cam, self.faces, K[b], mask[b])])

    def result(self) -> dict:
        out = self.points.result()
        s = self.surface.result()
        out["surface_mm"] = None if s is None else s * metrics.MM
        out["surface_count"] = self.surface.count
        out["gender_accuracy"] = self.gender.result()
        out["iou"] = self.iou.result()
        out["iou_count"] = self.iou.count
        return out


# ------------------------------------------------------------------------------------------------ helpers

def _np(x):
    return np.asarray(x)


def _points_of(out):
    return out["points"] if isinstance(out, dict) else out


class _Inputs:
    """Input points of a dae / smplr run: ground truth (+ noise / depth 0) or another run's predictions."""

    def __init__(self, mode: str, input_run: str = "", num_points: int = 41, seed: int = 1234):
        self.mode = mode
        self.num_points = num_points
        self.seed = seed
        self.model = None
        self.stage = None
        self.input_size = 256
        self.depth0 = False
        self.chain = None
        if mode == "run":
            from smplr_tf import runs

            if not input_run:
                raise EvalError("--eval_input=run needs --eval_input_run (or the run's --input_run)")
            self.stage, self.model, fl = runs.load_model_from_run(input_run)
            if self.stage == "dae":
                # A DAE run fed by its own input: chain (its input run -> DAE).
                inner = fl.get("input_run") or ""
                self.chain = _Inputs("run" if inner else "noise", inner, num_points, seed)
                self.input_size = self.chain.input_size
            elif self.stage not in ("shn", "alexnet", "e2e"):
                raise EvalError(f"input run {input_run} is a '{self.stage}' run; expected shn, alexnet, e2e or dae")
            else:
                self.input_size = input_size_of(self.model)
            p = int(fl.get("num_points", 41))
            if p != num_points:
                raise EvalError(f"input run {input_run} gives {p} points; the evaluated run takes {num_points}")

    @property
    def needs_images(self) -> bool:
        return self.mode == "run" and (self.chain is None or self.chain.needs_images)

    def __call__(self, batch, k: int) -> np.ndarray:
        gt = _np(batch["points"])[:, : self.num_points]
        if self.mode == "gt":
            return gt
        if self.mode in ("noise", "depth0"):
            from smplr_tf.data import noise as noise_lib

            mode = "uniform" if self.mode == "noise" else "depth0"
            return _np(noise_lib.apply_noise(gt.astype(np.float32), mode, seed=(self.seed, k)))
        if self.chain is not None:
            return _np(self.model(self.chain(batch, k), training=False))
        out = self.model(batch["image"], training=False)
        pts = _np(_points_of(out))  # e2e: its hourglass's points (SHN_e2e)
        if self.depth0:
            pts = pts.copy()
            pts[..., 2] = 0.0
        return pts


def _auto_input(fl: dict, override: str, override_run: str):
    """(mode, input_run) for a dae / smplr run from its training flags and the evaluation flags."""
    if override != "auto":
        return override, override_run or fl.get("input_run", "")
    if override_run:
        return "run", override_run
    mode = fl.get("dae_input", "noise")
    return mode, fl.get("input_run", "") if mode == "run" else ""


# ------------------------------------------------------------------------------------------------ evaluation

def evaluate_run(run_dir: str, data_dir: str = "", split: str = "val", batch_size: int = 16,
                 max_examples: int = 0, eval_input: str = "auto", eval_input_run: str = "", iou: bool = True,
                 progress: bool = True, crop: str = "gt", crop_iterations: int = 2, crop_run: str = "") -> dict:
    """Evaluate one run directory. Returns the metrics dict (also what evaluate writes). crop: "gt" |
    "estimated" (image stages and e2e; see the module docstring); crop_run: the run whose hourglass estimates
    the crop (default: the evaluated network)."""
    from smplr_tf import runs

    stage, model, fl = runs.load_model_from_run(run_dir)
    data_dir = data_dir or fl.get("data_dir", "")
    if not data_dir:
        raise EvalError(f"{run_dir}: no --data given and the run has no --data_dir")
    from smplr_tf.data import records, schema

    with records.named_errors(schema.split_files(data_dir, split)):  # a bad record: its file and index
        return _evaluate_run(run_dir, stage, model, fl, data_dir, split, batch_size, max_examples, eval_input,
                             eval_input_run, iou, progress, crop, crop_iterations, crop_run)


def _evaluate_run(run_dir, stage, model, fl, data_dir, split, batch_size, max_examples, eval_input,
                  eval_input_run, iou, progress, crop="gt", crop_iterations=2, crop_run="") -> dict:
    from smplr_tf import runs
    from smplr_tf.models import registry
    from smplr_tf.models.pipeline import build_smpl

    cropper = None
    if crop == "estimated":
        if stage not in ("shn", "alexnet", "e2e"):
            raise EvalError(f"--crop=estimated needs an image stage with 3D points (shn, alexnet, e2e, or a "
                            f"pipeline); {run_dir} is a '{stage}' run")
        smpl = model.smpl if stage == "e2e" else build_smpl(registry.smpl_config_from_flags(fl))
        cropper = _crop_estimator(crop, crop_run, crop_iterations, model.hourglass if stage == "e2e" else model,
                                  smpl, input_size_of(model))
    elif crop_run:
        raise EvalError("--crop_run needs --crop=estimated")

    result = {"run_dir": run_dir, "stage": stage, "data": data_dir, "split": split,
              "weights": runs.weights_path(run_dir, "auto")}
    num_points = int(fl.get("num_points", 41))
    if stage in ("shn", "shn2d", "alexnet"):
        evals = _eval_image_model(model, stage, dict(fl, input_size=input_size_of(model)), data_dir, split,
                                  batch_size, max_examples, progress, cropper)
    elif stage in POINT_STAGES:
        mode, in_run = _auto_input(fl, eval_input, eval_input_run)
        inputs = _Inputs(mode, in_run, num_points if stage == "dae" else skeleton.NUM_POINTS)
        inputs.depth0 = mode == "run" and bool(fl.get("input_depth0"))
        result["input"] = {"mode": mode, "run": in_run}
        evals = _eval_point_model(model, stage, fl, inputs, data_dir, split, batch_size, max_examples, iou,
                                  progress)
    elif stage == "hmr":
        evals = _eval_hmr(model, input_size_of(model), data_dir, split, batch_size, max_examples, iou, progress)
    elif stage == "e2e":
        evals = _eval_pipeline(model, model.smpl, input_size_of(model),
                               data_dir, split, batch_size, max_examples, iou, progress, cropper)
    else:
        raise EvalError(f"{run_dir}: stage '{stage}' cannot be evaluated")
    result["evaluations"] = evals
    if cropper is not None:
        result["crop"] = cropper.result()
    return result


def evaluate_pipeline(shn_run, dae_run, psi_run, omega_run, data_dir: str = "", split: str = "val",
                      batch_size: int = 16, max_examples: int = 0, iou: bool = True, progress: bool = True,
                      crop: str = "gt", crop_iterations: int = 2, crop_run: str = "", fit_steps: int = 0) -> dict:
    """ALL and ALL_Proc of four trained runs (hourglass -> DAE -> Psi, Omega -> SMPL). crop: "gt" |
    "estimated", crop_run: see :func:`evaluate_run`; with ``fit_steps`` > 0 also ALL_Fit (the SMPL output
    refined by that many fitting steps onto the DAE output, no ground truth)."""
    from smplr_tf import runs

    pipe = runs.pipeline_from_runs(shn_run, dae_run, psi_run, omega_run)
    fl = runs.flags_dict(runs.read_flags(shn_run))
    data_dir = data_dir or fl.get("data_dir", "")
    if not data_dir:
        raise EvalError("no --data given and the hourglass run has no --data_dir")
    from smplr_tf.data import records, schema

    with records.named_errors(schema.split_files(data_dir, split)):  # a bad record: its file and index
        cropper = _crop_estimator(crop, crop_run, crop_iterations, pipe.hourglass, pipe.smpl, pipe.input_size)
        evals = _eval_pipeline(pipe, pipe.smpl, pipe.input_size,
                               data_dir, split, batch_size, max_examples, iou, progress, cropper=cropper,
                               fit_steps=fit_steps)
    out = {"runs": {"shn": shn_run, "dae": dae_run, "psi": psi_run, "omega": omega_run}, "stage": "pipeline",
           "data": data_dir, "split": split, "evaluations": evals}
    if cropper is not None:
        out["crop"] = cropper.result()
    return out


def _progress(ds, desc, progress):
    if not progress:
        return ds
    from tqdm import tqdm

    return tqdm(ds, desc=desc, unit="batch")


def _eval_image_model(model, stage, fl, data_dir, split, batch_size, max_examples, progress, cropper=None):
    p = int(fl.get("num_points", 41))
    ds = eval_dataset(data_dir, split, batch_size, 256 if cropper else int(fl.get("input_size", 256)), True,
                      max_examples)
    acc = metrics.PointMetrics()
    for batch in _progress(ds, f"evaluating {stage}", progress):
        images = cropper(batch) if cropper else batch["image"]
        pred = _np(_points_of(model(images, training=False)))
        gt = _np(batch["points"])[:, :p]
        if stage == "shn2d":
            pred = np.concatenate([pred[..., :2], gt[..., 2:]], axis=-1)
        acc.update(pred, gt)
    key = "points_xy" if stage == "shn2d" else "points"
    return {key: acc.result()}


def _gt_body(smpl, batch):
    """Ground-truth SMPL mesh relative to its pelvis, and which samples have one: ((B,V,3), (B,) bool)."""
    from smplr_tf.body.smpl import pose_to_rotmats

    g = _np(batch["gender"]).astype(np.int32)
    ok = (_np(batch["has_smpl"]) > 0) & (g < len(smpl.genders))
    rot = pose_to_rotmats(batch["pose"])
    body = smpl(batch["betas"], rot, gender=np.minimum(g, len(smpl.genders) - 1))
    verts = _np(body["vertices"]) - _np(body["joints"])[:, :1]
    return verts, ok, _np(rot)


def _eval_point_model(model, stage, fl, inputs, data_dir, split, batch_size, max_examples, iou, progress):
    from smplr_tf.models import registry
    from smplr_tf.models.pipeline import build_smpl

    need_smpl = stage != "dae"
    ds = eval_dataset(data_dir, split, batch_size, inputs.input_size, inputs.needs_images, max_examples,
                      require_smpl=need_smpl)
    if stage == "dae":
        out_acc, in_acc = metrics.PointMetrics(), metrics.PointMetrics()
        for k, batch in enumerate(_progress(ds, "evaluating dae", progress)):
            x = inputs(batch, k)
            pred = _np(model(x, training=False))
            gt = _np(batch["points"])[:, : pred.shape[1]]
            out_acc.update(pred, gt)
            in_acc.update(x, gt)
        return {"points": out_acc.result(), "input": in_acc.result()}

    smpl = build_smpl(registry.smpl_config_from_flags(fl))
    key = "psi" if stage == "smplr_shape" else "omega"
    acc = MeshEval(smpl.faces, iou)
    in_acc = metrics.PointMetrics()
    for k, batch in enumerate(_progress(ds, f"evaluating {key}", progress)):
        x = inputs(batch, k)
        out = model(x, training=False)
        gt_verts, ok, gt_rot = _gt_body(smpl, batch)
        g = np.minimum(_np(batch["gender"]).astype(np.int32), len(smpl.genders) - 1)
        if key == "psi":
            from smplr_tf.body.smpl import gender_index_from_sign

            gidx = gender_index_from_sign(_np(out["gender"]))
            body = smpl(out["betas"], gt_rot, gender=gidx)
            pred_gender = _np(out["gender"])
        else:
            body = smpl(batch["betas"], out["rotmats"], gender=g)
            pred_gender = None
        joints, lms, verts = _np(body["joints"]), _np(body["landmarks"]), _np(body["vertices"])
        pts = skeleton.points_from_smpl(joints, lms)
        acc.update(pts, _np(batch["points"]), verts - joints[:, :1], gt_verts, ok,
                   pred_gender, _np(batch["gender"]), ok if pred_gender is not None else None,
                   _np(batch["root"]), _np(batch["intrinsics"]), _np(batch["mask"]), _np(batch["has_mask"]) > 0)
        in_acc.update(x, _np(batch["points"]))
    return {key: acc.result(), "input": in_acc.result()}


def _eval_pipeline(pipe, smpl, input_size, data_dir, split, batch_size, max_examples, iou, progress, cropper=None,
                   fit_steps=0):
    ds = eval_dataset(data_dir, split, batch_size, 256 if cropper else input_size, True, max_examples,
                      require_3d=False)
    acc = {"points": metrics.PointMetrics(), "dae": metrics.PointMetrics()}
    mesh = {"all": MeshEval(smpl.faces, iou), "all_proc": MeshEval(smpl.faces, iou)}
    refiner = None
    if fit_steps > 0:
        from smplr_tf import fitting

        refiner = fitting.OutputRefiner(smpl, fit_steps, batch_size)
        mesh["all_fit"] = MeshEval(smpl.faces, iou)
    for batch in _progress(ds, "evaluating pipeline", progress):
        out = pipe(cropper(batch) if cropper else batch["image"], training=False)
        gt = _np(batch["points"])
        has3d = _np(batch["has_3d"]) > 0
        if has3d.any():
            acc["points"].update(_np(out["points"])[has3d], gt[has3d])
            acc["dae"].update(_np(out["dae_points"])[has3d], gt[has3d])
        gt_verts, ok, _ = _gt_body(smpl, batch)
        joints = _np(out["joints"])
        verts_rel = _np(out["vertices"]) - joints[:, :1]
        smpl_pts = _np(out["smpl_points"])
        common = dict(pred_gender=_np(out["gender"]), gt_gender=_np(batch["gender"]), gender_ok=ok,
                      root=_np(batch["root"]), K=_np(batch["intrinsics"]), mask=_np(batch["mask"]),
                      has_mask=_np(batch["has_mask"]) > 0, points_ok=has3d)
        mesh["all"].update(smpl_pts, gt, verts_rel, gt_verts, ok, **common)
        p_pts, p_verts = metrics.all_proc(smpl_pts, _np(out["dae_points"]), _np(out["vertices"]), joints[:, 0])
        mesh["all_proc"].update(p_pts, gt, p_verts, gt_verts, ok, **common)
        if refiner is not None:  # ALL_Fit
            gidx = _np(out["gender_index"])
            pose, betas = refiner.refine(_np(out["dae_points"]), _np(out["rotmats"]), _np(out["betas"]), gidx)
            body = smpl(betas, pose, gender=gidx)
            fj, fl, fv = _np(body["joints"]), _np(body["landmarks"]), _np(body["vertices"])
            mesh["all_fit"].update(skeleton.points_from_smpl(fj, fl), gt, fv - fj[:, :1], gt_verts, ok, **common)
    res = {k: v.result() for k, v in acc.items()}
    res.update({k: v.result() for k, v in mesh.items()})
    return res


def _eval_hmr(model, input_size, data_dir, split, batch_size, max_examples, iou, progress):
    """An HMR network (smplr_tf.models.hmr): its SMPL points (where has_3d), its mesh against the records' SMPL
    mesh (where has_smpl) and its silhouette IoU (where has_mask), as ALL is scored."""
    from smplr_tf.models.hmr import hmr_faces
    from smplr_tf.models.pipeline import build_smpl

    cfg = model.get_config()
    smpl = build_smpl({"smpl_dir": cfg.get("smpl_dir"), "genders": list(skeleton.BODY_GENDERS)})
    ds = eval_dataset(data_dir, split, batch_size, input_size, True, max_examples, require_3d=False)
    acc = MeshEval(hmr_faces(model), iou)
    for batch in _progress(ds, "evaluating hmr", progress):
        out = model(batch["image"], training=False)
        gt_verts, ok, _ = _gt_body(smpl, batch)
        joints = _np(out["joints"])
        acc.update(_np(out["points"]), _np(batch["points"]), _np(out["vertices"]) - joints[:, :1], gt_verts, ok,
                   root=_np(batch["root"]), K=_np(batch["intrinsics"]), mask=_np(batch["mask"]),
                   has_mask=_np(batch["has_mask"]) > 0, points_ok=_np(batch["has_3d"]) > 0)
    return {"hmr": acc.result()}


# ------------------------------------------------------------------------------------------------ output

def write_metrics(out_dir: str, result: dict, tag: str = "", step: int | None = None) -> str:
    """metrics.json (+ metrics-<tag>.json) in out_dir and TensorBoard scalars under out_dir/tb/eval."""
    os.makedirs(out_dir, exist_ok=True)
    result = dict(result, written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    paths = [os.path.join(out_dir, runs.METRICS_NAME)] + ([os.path.join(out_dir, f"metrics-{tag}.json")] if tag else [])
    for path in paths:
        runs.write_json_atomic(path, result, sort_keys=False)  # strict JSON: a NaN is written as null
    write_tensorboard(os.path.join(out_dir, "tb", "eval" + (f"_{tag}" if tag else "")), result, step or 0)
    return paths[0]


def scalars(result: dict) -> dict:
    """Flat {name: value} of the numbers worth plotting: eval/<key>/p1_Jt, .../surface_mm, ..."""
    out = {}
    for key, ev in result.get("evaluations", {}).items():
        for p in ("p1", "p2"):
            for col, v in (ev.get(p) or {}).items():
                if v is not None:
                    out[f"eval/{key}/{p}_{col}"] = float(v)
        for extra in ("surface_mm", "gender_accuracy", "iou"):
            if ev.get(extra) is not None:
                out[f"eval/{key}/{extra}"] = float(ev[extra])
    return out


def write_tensorboard(logdir: str, result: dict, step: int = 0) -> None:
    import tensorflow as tf

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for name, v in scalars(result).items():
            tf.summary.scalar(name, v, step=step)
        tf.summary.text("eval/summary", json.dumps({k: v for k, v in result.items() if k != "evaluations"}),
                        step=step)
    writer.flush()
    writer.close()


def summary_lines(result: dict) -> list[str]:
    lines = []
    for key, ev in result["evaluations"].items():
        p1, p2 = ev.get("p1") or {}, ev.get("p2") or {}
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        s = f"{key:10s} n={ev.get('count', 0):5d}  P1 Jt {f(p1.get('Jt'))} (23 joints) Jt16 {f(p1.get('Jt16'))} " \
            f"Lm {f(p1.get('Lm'))} Bn {f(p1.get('Bn'))}  P2 Jt {f(p2.get('Jt'))} Jt16 {f(p2.get('Jt16'))} mm"
        if ev.get("surface_mm") is not None:
            s += f"  surface {ev['surface_mm']:.1f} mm"
        if ev.get("gender_accuracy") is not None:
            s += f"  gender {100 * ev['gender_accuracy']:.1f}%"
        if ev.get("iou") is not None:
            s += f"  IoU {ev['iou']:.3f}"
        lines.append(s)
    return lines


def run_from_flags(FLAGS) -> dict:
    pipeline = [FLAGS.shn_run, FLAGS.dae_run, FLAGS.psi_run, FLAGS.omega_run]
    common = dict(split=FLAGS.eval_split, batch_size=FLAGS.eval_batch_size, max_examples=FLAGS.max_examples,
                  iou=FLAGS.eval_iou, crop=FLAGS.crop, crop_iterations=FLAGS.crop_iterations, crop_run=FLAGS.crop_run)
    if any(pipeline) and not FLAGS.run_dir:
        if not all(pipeline):
            raise EvalError("a pipeline evaluation needs all of --shn_run --dae_run --psi_run --omega_run")
        if not FLAGS.output_dir:
            raise EvalError("a pipeline evaluation needs --output_dir (where metrics.json goes)")
        result = evaluate_pipeline(*pipeline, data_dir=FLAGS.data, fit_steps=FLAGS.eval_fit_steps, **common)
        out_dir = FLAGS.output_dir
        step = 0
    else:
        if not FLAGS.run_dir:
            raise EvalError("give --run_dir=<a trained run>, or the four --shn_run --dae_run --psi_run --omega_run "
                            "with --output_dir")
        if not os.path.isdir(FLAGS.run_dir):
            raise EvalError(f"--run_dir={FLAGS.run_dir}: no such directory")
        result = evaluate_run(FLAGS.run_dir, FLAGS.data, eval_input=FLAGS.eval_input,
                              eval_input_run=FLAGS.eval_input_run, **common)
        out_dir = FLAGS.output_dir or FLAGS.run_dir
        from smplr_tf import runs

        step = int((runs.read_run_json(FLAGS.run_dir) or {}).get("epochs_done", 0) or 0)
    path = write_metrics(out_dir, result, FLAGS.eval_tag, step)
    for line in summary_lines(result):
        print(line)
    if result.get("crop"):
        c = result["crop"]
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"estimated crop: corner error {f(c['corner_error_px'])} px of 256, root distance error "
              f"{f(c['distance_error_percent'])} % (n={c['count']})")
    print(f"wrote {path}; TensorBoard: tensorboard --logdir {os.path.join(out_dir, 'tb')}")
    return result


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This command's flags on ``fv``. --run_dir, --shn_run ... --omega_run mean what they mean to train.
    Called under ``__main__``; a flag that ``fv`` holds already (a second call) is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "run_dir", "", "The trained run to evaluate (any stage); metrics.json goes there "
           "unless --output_dir.")
    cli.define_pipeline_run_flags(fv)  # --shn_run ... --omega_run: a pipeline evaluation
    define(flags.DEFINE_string, "data", "", "TFRecords directory to evaluate on (default: the run's --data_dir).")
    define(flags.DEFINE_string, "eval_split", "val", "Split of --data evaluated.")
    define(flags.DEFINE_integer, "eval_batch_size", 16, "Batch size.", lower_bound=1)
    define(flags.DEFINE_integer, "max_examples", 0, "Evaluate at most this many examples (0: all).", lower_bound=0)
    define(flags.DEFINE_enum, "eval_input", "auto", ["auto", "gt", "noise", "depth0", "run"],
           "dae / smplr_* runs: their input points. auto: what the run trained on (--dae_input / --input_run of "
           "its flags.txt); gt; gt + uniform noise; gt with depth 0; the predictions of --eval_input_run.")
    define(flags.DEFINE_string, "eval_input_run", "", "The shn / alexnet / dae run whose predictions feed the "
           "evaluated run (--eval_input=run; auto uses the run's --input_run).")
    define(flags.DEFINE_string, "output_dir", "", "Where metrics.json and tb/ go: required for a pipeline "
           "evaluation; default the --run_dir.")
    define(flags.DEFINE_string, "eval_tag", "", "Also write metrics-<tag>.json (e.g. one per data set).")
    define(flags.DEFINE_integer, "eval_fit_steps", 0, "Pipeline evaluation: also ALL_Fit, the SMPL output refined "
           "by this many fitting steps onto the DAE output (0: no ALL_Fit).", lower_bound=0)
    define(flags.DEFINE_boolean, "eval_iou", True, "Silhouette IoU of meshes where records have masks.")
    define(flags.DEFINE_enum, "crop", "gt", ["gt", "estimated"], "Image stages and pipelines: gt = the records' "
           "crops (ground-truth root and focal length); estimated = re-crop each record from its 2D person box "
           "with the network's own distance estimate (paper Sec. 4.6, Table 2).")
    define(flags.DEFINE_integer, "crop_iterations", 2, "--crop=estimated (and infer): refinements of the crop "
           "after the first square from the person box.", lower_bound=1)
    define(flags.DEFINE_string, "crop_run", "", "--crop=estimated: the shn / alexnet / e2e run whose hourglass "
           "estimates the crop (default: the evaluated network). A network fine-tuned with --aug_scale gives metres "
           "whatever the crop's scale, so it cannot measure that scale itself: estimate with the one trained on "
           "ground-truth crops (Table 2: runs/table2/shn_final).")


def main(argv):
    del argv
    run_from_flags(FLAGS)  # an EvalError (a UserError) ends in one line through cli.run


if __name__ == "__main__":
    define_flags()
    cli.run(main)
