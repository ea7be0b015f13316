"""Serving: what infer, export and evaluate share to run a trained pipeline on images.

* :func:`read_image`: an image file -> (H, W, 3) uint8 RGB, with one clear error per kind of bad file;
* :func:`parse_bbox` / :func:`make_crop`: the paper's crop (a square around the person, 2.5 m wide at the
  person's depth, pelvis in the centre) out of a larger image;
* :func:`parse_person_box` / :func:`photo_intrinsics` / :func:`estimate_crop`: that crop estimated from a loose
  person box (paper Sec. 4.6; :mod:`smplr_tf.data.crop_estimate`);
* :func:`prepare_image`: a uint8 crop -> the network input, (1, S, S, 3) float32 RGB in [0, 1] (the networks
  standardise each image themselves);
* :func:`load_pipeline`: an e2e run, or four component runs -> the :class:`~smplr_tf.models.pipeline.SMPLRPipeline`;
  an hmr run -> :func:`hmr_serving` (the HMR baseline with the pipeline's outputs).

Errors the user can fix raise :class:`ServingError` with a message that says what to do.
"""

from __future__ import annotations

import os

import numpy as np


class ServingError(ValueError):
    """A bad input (file, image, box) or model; the message says what to do."""


# ------------------------------------------------------------------------------------------------ image

def read_image(path: str) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB; clear errors for missing, empty or non-image files."""
    import cv2

    if not path:
        raise ServingError("give --image=<path to an image>")
    if not os.path.exists(path):
        raise ServingError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ServingError(f"{path}: is a directory, expected an image file")
    if os.path.getsize(path) == 0:
        raise ServingError(f"{path}: the file is empty")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ServingError(f"{path}: not an image OpenCV can read (JPEG, PNG, BMP, TIFF, WebP ...)")
    return img[..., ::-1].copy()


def _parse_xywh(text: str, flag: str):
    """'x,y,w,h' (pixels) of flag --``flag`` -> four floats, width and height positive; ServingError else."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError as e:
        raise ServingError(f"--{flag}={text!r}: expected four numbers x,y,w,h (pixels)") from e
    if w <= 0 or h <= 0:
        raise ServingError(f"--{flag}={text!r}: width and height must be positive")
    return x, y, w, h


def _check_overlaps(box, flag: str, text: str, image_shape) -> None:
    """ServingError when the box (x0, y0, x1, y1 outer edges) lies wholly outside an (H, W, ...) image."""
    h, w = image_shape[:2]
    if box[2] <= -0.5 or box[3] <= -0.5 or box[0] >= w - 0.5 or box[1] >= h - 0.5:
        raise ServingError(f"--{flag}={text}: the box lies outside the {w}x{h} image")


def parse_bbox(text: str):
    """'x,y,w,h' -> (x0, y0, x1, y1) square box (grown about its centre if w != h).

    x, y: column and row of the box's top-left pixel; w, h: its size in pixels. The result is in the outer-edge
    convention of :mod:`smplr_tf.data.crop` (pixel i spans [i - 0.5, i + 0.5]), so pixels x .. x + w - 1 are
    exactly the crop when w is the output size.
    """
    x, y, w, h = _parse_xywh(text, "bbox")
    side = max(w, h)
    cx, cy = x - 0.5 + w / 2.0, y - 0.5 + h / 2.0
    return np.array([cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0], np.float32)


def make_crop(img: np.ndarray, bbox: str = "", size: int = 256):
    """-> (crop (size, size, 3) uint8, box (4,) x0,y0,x1,y1 in the image). See the module docstring."""
    from smplr_tf.data.crop import crop_image

    h, w = img.shape[:2]
    if bbox:
        box = parse_bbox(bbox)
        _check_overlaps(box, "bbox", bbox, img.shape)
    else:
        if h != w:
            raise ServingError(
                f"the image is {w}x{h}, not square: give --bbox=x,y,w,h, the square around the person "
                f"(2.5 m wide at the person's depth, pelvis at its centre), or pass a square crop such as "
                f"the 256x256 crops of the records")
        box = np.array([-0.5, -0.5, w - 0.5, h - 0.5], np.float32)
    return crop_image(img, box, size), box


def parse_person_box(text: str, image_shape) -> np.ndarray:
    """'x,y,w,h' (a loose box around the person, any aspect ratio, pixels) -> (4,) float32 x0, y0, x1, y1 outer
    edges (pixels x .. x + w - 1 inside). image_shape: (H, W, ...) of the image it must overlap."""
    x, y, w, h = _parse_xywh(text, "person_box")
    box = np.array([x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5], np.float32)
    _check_overlaps(box, "person_box", text, image_shape)
    return box


def photo_intrinsics(image_shape, focal_px: float = 0.0):
    """(3, 3) float64 intrinsics of a photo: principal point at the image centre, focal ``focal_px`` pixels, or
    when 0 the assumed ``max(H, W)`` (a ~53 degree field of view across the longer side). -> (K, assumed)."""
    hh, ww = image_shape[:2]
    f = float(focal_px) if focal_px > 0 else float(max(hh, ww))
    K = np.array([[f, 0.0, (ww - 1) / 2.0], [0.0, f, (hh - 1) / 2.0], [0.0, 0.0, 1.0]])
    return K, not focal_px > 0


def estimate_crop(img: np.ndarray, person_box, pipe, input_size: int, K, iterations: int = 2, size: int = 256,
                  tight: bool = False):
    """The paper's crop of a photo without its depth: :func:`smplr_tf.data.crop_estimate.estimate_crops` run with
    the pipeline's hourglass and its body model's size prior.

    img: (H, W, 3) uint8 RGB; person_box: (4,) pixels (:func:`parse_person_box`); pipe: an
    :class:`~smplr_tf.models.pipeline.SMPLRPipeline`; K: (3, 3) (:func:`photo_intrinsics`); tight: the box
    touches the body (head to feet, hand to hand): the template-sized body is fitted into it (robust to a network
    whose sizes do not follow the crop), else the box only places the first square.
    Returns (crop (size, size, 3) uint8, box (4,) float32, root (3,) metres camera frame). The box barely
    depends on the focal length (distance and focal length scale together); the distance is proportional to it.
    """
    import tensorflow as tf

    from smplr_tf.data import crop_estimate
    from smplr_tf.data.crop import crop_image

    coeffs, lengths = crop_estimate.body_prior(pipe.smpl)

    def predict(crops):
        x = tf.convert_to_tensor(crops, tf.float32)
        if x.shape[1] != input_size:
            x = tf.image.resize(x, (input_size, input_size), antialias=True)
        out = pipe.hourglass(x, training=False)
        return np.asarray(out["points"] if isinstance(out, dict) else out)

    rgb = img.astype(np.float32) * (1.0 / 255.0)
    _, boxes, roots = crop_estimate.estimate_crops(predict, [rgb], np.asarray(K)[None], [person_box], coeffs,
                                                   lengths, iterations, size, tight=tight)
    if not np.isfinite(roots[0]).all():
        raise ServingError("the crop estimate failed (the network's points give no distance in front of the "
                           "camera): give --bbox, the square crop, instead")
    return crop_image(img, boxes[0], size), boxes[0], roots[0]


def prepare_image(rgb_uint8: np.ndarray, input_size: int = 256) -> np.ndarray:
    """(H, W, 3) uint8 RGB crop -> (1, S, S, 3) float32 RGB in [0, 1], resized (antialiased) to S = input_size
    exactly as the training pipeline resizes its crops."""
    import tensorflow as tf

    image = tf.cast(tf.convert_to_tensor(rgb_uint8), tf.float32) * (1.0 / 255.0)
    if image.shape[0] != input_size or image.shape[1] != input_size:
        image = tf.image.resize(image[None], (input_size, input_size), antialias=True)[0]
    return image[None].numpy()


# ------------------------------------------------------------------------------------------------ model

GENDER_CODES = {"female": -1.0, "male": 1.0, "neutral": 0.0}


def hmr_serving(net):
    """An HMR network (:func:`smplr_tf.models.hmr.build_hmr`) as infer and export take a pipeline: image ->
    its outputs plus the pipeline's keys, ``dae_points`` and ``smpl_points`` = its SMPL points (it has no DAE)
    and ``gender`` (B,) = the code of its one body model (female -1, male +1, neutral 0). The returned model's
    ``smpl`` is the body model, ``body_gender`` its name, ``input_size`` S."""
    import keras
    import tensorflow as tf

    class HmrServing(keras.Model):
        def __init__(self, hmr):
            super().__init__(name="hmr_serving")
            self.hmr = hmr
            self.smpl = hmr.get_layer("smpl")
            self.body_gender = str(hmr.get_config()["body_gender"])
            self.input_size = int(hmr.get_config()["input_size"])

        def call(self, image, training=False):
            out = dict(self.hmr(image, training=training))
            out["dae_points"] = out["smpl_points"] = out["points"]
            code = GENDER_CODES[self.body_gender]
            out["gender"] = tf.fill(tf.shape(out["betas"])[:1], tf.constant(code, out["betas"].dtype))
            return out

    return HmrServing(net)


def load_pipeline(run_dir: str = "", shn_run: str = "", dae_run: str = "", psi_run: str = "",
                  omega_run: str = ""):
    """-> (pipeline model image -> dict, input_size S, faces (F, 3) int). An e2e run (``run_dir``), or the
    four component runs (weights: final, else the latest checkpoint)."""
    from smplr_tf import runs

    if run_dir and not any([shn_run, dae_run, psi_run, omega_run]):
        if not os.path.isdir(run_dir):
            raise ServingError(f"--run_dir={run_dir}: no such directory")
        try:
            stage, model, _ = runs.load_model_from_run(run_dir)
        except runs.RunError as e:
            raise ServingError(str(e)) from e
        if stage == "hmr":
            from smplr_tf.models.hmr import hmr_faces
            from smplr_tf.models.registry import input_size_of

            return hmr_serving(model), input_size_of(model), hmr_faces(model)
        if stage != "e2e":
            raise ServingError(f"--run_dir={run_dir} is a '{stage}' run; the whole pipeline is needed: an e2e run, "
                               f"an hmr run, or --shn_run --dae_run --psi_run --omega_run")
        return model, model.input_size, np.asarray(model.smpl.faces)
    if not all([shn_run, dae_run, psi_run, omega_run]):
        raise ServingError("give --run_dir=<an e2e run>, or all four of --shn_run --dae_run --psi_run --omega_run")
    for r in (shn_run, dae_run, psi_run, omega_run):
        if not os.path.isdir(r):
            raise ServingError(f"{r}: no such run directory")
    try:
        pipe = runs.pipeline_from_runs(shn_run, dae_run, psi_run, omega_run)
    except runs.RunError as e:
        raise ServingError(str(e)) from e
    return pipe, pipe.input_size, np.asarray(pipe.smpl.faces)
