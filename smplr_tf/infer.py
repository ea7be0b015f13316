"""Run the trained pipeline on one image: joints, SMPL parameters, gender, mesh and an overlay.

    python -m smplr_tf.infer --run_dir=runs/table1/shn_e2e --image=crop.png --output_dir=out/
    python -m smplr_tf.infer --run_dir=runs/table2/hmr --image=crop.png --output_dir=out/   # the HMR baseline
    python -m smplr_tf.infer --shn_run=... --dae_run=... --psi_run=... --omega_run=... --image=photo.jpg \
        --bbox=120,40,300,300 --output_dir=out/
    python -m smplr_tf.infer --run_dir=runs/table1/shn_e2e --image=photo.jpg --person_box=200,60,140,380 \
        --output_dir=out/

The network needs the paper's crop: a square around the person, 2.5 m wide at the person's depth, the pelvis
in the centre. So the image must either *be* such a crop (any square image; it is resized
to the network's input size), or ``--bbox=x,y,w,h`` gives that square in a larger image (pixels; a non-square
box is grown to a square about its centre; parts outside the image are zero padded). A non-square image
without --bbox is refused with an explanation (guessing a crop would silently give wrong 3D). Or
``--person_box=x,y,w,h``, any loose box around the person (any aspect ratio): the crop is then estimated
(paper Sec. 4.6, :func:`smplr_tf.serving.estimate_crop`): a first square from the box, refined
``--crop_iterations`` times from the network's own points and a body-size prior, which also gives the
person's distance (with ``--focal_px``, or an assumed focal length of max(H, W) pixels; the crop barely depends
on it, the distance is proportional to it). With ``--tight_box`` (the box touches the body) the template-sized
predicted body is fitted into the box instead, which does not need the network's sizes to follow the crop.
The JSON's ``crop_estimate`` holds the distance and the root.

Outputs in --output_dir (named after the image):

* ``<name>.json``: ``joints`` (24, 3) SMPL joints and ``points`` (41, 3) (DAE output: joints 1..23 then
  landmarks), metres, root-relative, camera axes (x right, y down, z forward); ``betas`` (10,); ``rotmats``
  (24, 3, 3) as Omega gives them (raw, fed to SMPL); ``pose`` (72,) axis-angle of their nearest rotations;
  ``gender`` ("female" | "male") and ``gender_code`` (Psi's output, male where >= 0); the crop box used.
  An hmr run (the HMR baseline) has no DAE: ``points`` and ``points_shn`` are its SMPL points, and
  ``gender`` names its one body model (``--hmr_gender``).
* ``<name>.obj``: the SMPL mesh (root-relative metres, camera axes), and ``<name>_proc.obj`` after the
  ALL_Proc alignment onto the DAE points.
* ``<name>_overlay.png``: the crop with the mesh rendered on it and the predicted skeleton drawn; the
  projection assumes the pelvis 5 m in front of the camera with the matching focal length (the crop fixes
  only their ratio: f / z = crop size / 2.5 m).
"""

from __future__ import annotations

import json
import os

import numpy as np
from absl import flags

from smplr_tf import cli

from smplr_tf import metrics
from smplr_tf.body import skeleton
from smplr_tf.serving import ServingError as InferError
from smplr_tf.serving import load_pipeline, make_crop, parse_bbox, prepare_image, read_image  # noqa: F401
from smplr_tf.volume import CUBE_SIZE as CUBE

FLAGS = flags.FLAGS

OVERLAY_DEPTH = 5.0  # metres; any depth gives the same picture up to perspective (see module docstring)


def nearest_rotations(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) any matrices -> nearest proper rotations (SVD, det +1)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def rotations_to_axis_angle(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angle (tensorflow-graphics)."""
    from tensorflow_graphics.geometry.transformation import axis_angle

    axis, angle = axis_angle.from_rotation_matrix(np.asarray(r, np.float64))
    return (np.asarray(axis) * np.asarray(angle)).astype(np.float32)


def predict(pipe, crop: np.ndarray, input_size: int) -> dict:
    """(S, S, 3) uint8 crop -> numpy outputs of one image (batch dimension removed) + ALL_Proc mesh."""
    x = prepare_image(crop, input_size)
    out = pipe(x, training=False)
    o = {k: np.asarray(v)[0] for k, v in out.items() if k != "heatmaps"}
    joints = o["joints"]
    _, vproc = metrics.all_proc(o["smpl_points"][None], o["dae_points"][None], o["vertices"][None], joints[None, 0])
    o["vertices_rel"] = o["vertices"] - joints[0]
    o["vertices_proc"] = vproc[0]
    o["joints_rel"] = joints - joints[0]
    return o


def overlay(crop: np.ndarray, verts_rel: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The crop with the mesh (semi-transparent) and the skeleton of ``points`` (41, 3) drawn."""
    from smplr_tf import render
    from smplr_tf.data.crop import project

    size = crop.shape[0]
    f = size / CUBE * OVERLAY_DEPTH
    K = np.array([[f, 0, size / 2.0 - 0.5], [0, f, size / 2.0 - 0.5], [0, 0, 1]], np.float32)
    offset = np.array([0, 0, OVERLAY_DEPTH], np.float32)
    rgb, mask = render.rasterize(verts_rel + offset, faces, K, size=(size, size), background=crop)
    out = crop.copy()
    out[mask] = (0.35 * crop[mask] + 0.65 * rgb[mask]).astype(np.uint8)
    nodes = np.concatenate([np.zeros((1, 3)), points]) + offset
    pts2d = project(nodes, K)
    return render.draw_skeleton(out, pts2d, skeleton.TREE_PARENTS, color=(255, 40, 40), thickness=1)


def infer(image_path: str, output_dir: str, pipe, input_size: int, faces, bbox: str = "", person_box: str = "",
          focal_px: float = 0.0, crop_iterations: int = 2, tight_box: bool = False) -> dict:
    """Run on one image; write <name>.json / .obj / _proc.obj / _overlay.png. Returns the JSON dict.
    bbox: the square crop given; person_box: a loose box, the crop estimated (module docstring)."""
    import cv2

    from smplr_tf import render
    from smplr_tf.serving import estimate_crop, parse_person_box, photo_intrinsics

    img = read_image(image_path)
    estimated = None
    if person_box:
        if bbox:
            raise InferError("give --bbox (the square crop) or --person_box (a loose box; the crop is "
                             "estimated), not both")
        pbox = parse_person_box(person_box, img.shape)
        K, assumed = photo_intrinsics(img.shape, focal_px)
        crop, box, root = estimate_crop(img, pbox, pipe, input_size, K, crop_iterations, 256, tight=tight_box)
        estimated = {"distance_m": float(root[2]), "root_camera_m": [float(v) for v in root],
                     "focal_px": float(K[0, 0]), "focal_assumed": bool(assumed),
                     "person_box_xyxy": [float(b) for b in pbox], "tight_box": bool(tight_box),
                     "iterations": int(crop_iterations)}
    else:
        crop, box = make_crop(img, bbox, 256)
    o = predict(pipe, crop, input_size)
    os.makedirs(output_dir, exist_ok=True)
    name = os.path.splitext(os.path.basename(image_path))[0]
    rot = np.asarray(o["rotmats"], np.float64)
    result = {
        "image": os.path.abspath(image_path), "crop_box_xyxy": [float(b) for b in box],
        "units": "metres, root-relative, camera axes (x right, y down, z forward)",
        "joints": o["joints_rel"].tolist(), "joint_names": list(skeleton.JOINT_NAMES),
        "points": o["dae_points"].tolist(), "point_names": list(skeleton.POINT_NAMES),
        "points_shn": o["points"].tolist(),
        "betas": o["betas"].tolist(), "rotmats": rot.tolist(),
        "pose": rotations_to_axis_angle(nearest_rotations(rot)).reshape(-1).tolist(),
        "gender_code": float(o["gender"]),
        "gender": getattr(pipe, "body_gender", None) or ("male" if float(o["gender"]) >= 0 else "female"),
    }
    if estimated is not None:
        result["crop_estimate"] = estimated
    base = os.path.join(output_dir, name)
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=1)
    render.write_obj(base + ".obj", o["vertices_rel"], faces)
    render.write_obj(base + "_proc.obj", o["vertices_proc"], faces)
    ov = overlay(crop, o["vertices_rel"], faces, o["dae_points"])
    cv2.imwrite(base + "_overlay.png", np.ascontiguousarray(ov[..., ::-1]))
    result["files"] = {k: base + s for k, s in (("json", ".json"), ("obj", ".obj"), ("obj_proc", "_proc.obj"),
                                                 ("overlay", "_overlay.png"))}
    return result


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This command's flags on ``fv``. --run_dir, --shn_run ... --omega_run mean what they mean to train.
    Called under ``__main__``; a flag that ``fv`` holds already (a second call) is left as it is."""
    define = cli.flag_definer(fv)

    cli.define_pipeline_run_flags(fv)
    define(flags.DEFINE_string, "image", "", "An image file: a square crop around the person (resized to the "
           "network's input), or any image with --bbox.")
    define(flags.DEFINE_string, "bbox", "", "x,y,w,h of the person's square crop box in --image (pixels).")
    define(flags.DEFINE_string, "person_box", "", "x,y,w,h of a loose box around the person in --image (pixels, "
           "any aspect ratio): the crop is estimated (instead of --bbox).")
    define(flags.DEFINE_boolean, "tight_box", False, "--person_box touches the person (head to feet, hand to hand): "
           "fit the body into it (robust) instead of only starting from it.")
    define(flags.DEFINE_float, "focal_px", 0.0, "With --person_box: the photo's focal length in pixels (0: assume "
           "max(height, width)); sets the reported distance.", lower_bound=0.0)
    define(flags.DEFINE_integer, "crop_iterations", 2, "--crop=estimated (and infer): refinements of the crop "
           "after the first square from the person box.", lower_bound=1)
    define(flags.DEFINE_string, "output_dir", "", "Where the outputs go (<image name>.json, .obj, _overlay.png).")


def main(argv):
    del argv
    try:
        read_image(FLAGS.image)  # fail on a bad image before loading the model
        if not FLAGS.output_dir:
            raise InferError("give --output_dir=<folder for the outputs>")
        pipe, size, faces = load_pipeline(FLAGS.run_dir, FLAGS.shn_run, FLAGS.dae_run, FLAGS.psi_run,
                                          FLAGS.omega_run)
        res = infer(FLAGS.image, FLAGS.output_dir, pipe, size, faces, FLAGS.bbox, FLAGS.person_box, FLAGS.focal_px,
                    FLAGS.crop_iterations, FLAGS.tight_box)
    except InferError as e:
        raise SystemExit(f"infer: {e}")
    print(f"gender {res['gender']} ({res['gender_code']:+.2f}); betas " +
          " ".join(f"{b:+.2f}" for b in res["betas"]))
    if "crop_estimate" in res:
        e = res["crop_estimate"]
        print(f"estimated distance {e['distance_m']:.2f} m (focal length {e['focal_px']:.0f} px"
              f"{', assumed' if e['focal_assumed'] else ''}); crop box " +
              ",".join(f"{b:.1f}" for b in res["crop_box_xyxy"]))
    for k, path in res["files"].items():
        print(f"wrote {path}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
