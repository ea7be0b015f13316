"""The estimated crop: the paper's 2.5 m crop without the ground-truth root depth (paper Sec. 4.6).

The paper crops with the ground-truth focal length and root position, and for Table 2's "estimated crop" rows
estimates the focal length and the person's distance "following Sarandi et al. 2018" (the volumetric-heatmap
method of the ECCV 2018 PoseTrack challenge: 2D image coordinates plus metric root-relative depths, the absolute
root position found by least squares on the perspective projection). Here:

* :func:`solve_root`: 2D image points + the same points' root-relative 3D (metres) + intrinsics -> the root in
  the camera frame, by linear least squares on the projection. For point ``i`` (3D ``p_i`` relative to the root
  ``t``, pixel ``(u_i, v_i)``), ``u_i - cx = fx (t_x + p_ix) / (t_z + p_iz)`` is linear in ``t``:
  ``fx t_x - (u_i - cx) t_z = (u_i - cx) p_iz - fx p_ix`` (and the same for y).
* :func:`solve_root_and_focal`: the same with the focal length unknown (one ``f`` for x and y, principal point
  known): unknowns ``f, f t_x, f t_y, t_z``; ``f p_ix + (f t_x) - (u_i - cx) t_z = (u_i - cx) p_iz``. Only
  the depth spread of the body separates ``f`` from ``t_z`` (a far, flat body fixes only their ratio), so it
  needs 2D that are a true perspective image (ground truth, a 2D detector), not 2D derived from the 3D.
* :func:`solve_root_from_box`: a tight 2D box of the body + its root-relative 3D (metres) -> the root: the
  extreme points tied to the box's edges (Table 2's protocol gives the ground-truth 2D box).
* :func:`initial_box`: a loose person box (any aspect ratio) -> a first square crop.
* :func:`refine_box`: the network's points in a crop -> the root and the next crop (one iteration). The
  hourglass predicts, per point, (x, y) relative to the crop *centre* (it places points where it sees them) and
  z relative to the root, all in the crop's metres (``CUBE_SIZE`` across the crop), so its sizes follow the
  crop's scale. We therefore (1) find the pelvis from the hips and spine1 (they move rigidly with the pelvis:
  :func:`pelvis_coefficients`), (2) take the 2D image points from the prediction through the crop box (weak
  perspective inside the crop), (3) bring the 3D to metres with a body-size prior: the ratio of the template's
  bone lengths to the predicted ones, and (4) :func:`solve_root`. A person whose size differs from the
  template's by ``r`` gets a distance off by ``r`` (a 1.6 m person against a 1.75 m template: 9 %): the
  random-scale augmentation (``--aug_scale``) trains the network to absorb that residual scale. With a tight
  person box, (2) and (4) become :func:`solve_root_from_box` on the template-sized body, which does not need
  the network's sizes to follow the crop (short trainings predict a mean-sized body whatever the crop).
* :func:`corner_error`: the crop corners' distance to the ground truth's, in pixels of the output crop.

Conventions: pixel centres are integers and boxes are outer edges ``x0, y0, x1, y1`` (:mod:`smplr_tf.data.crop`).
"""

from __future__ import annotations

import numpy as np

from smplr_tf.data.crop import crop_box, project
from smplr_tf.volume import CUBE_SIZE

# A loose person box's longer side is taken to span this many metres for the first crop (our choice: a standing
# adult plus some margin); the refinement corrects it.
BOX_EXTENT_M = 2.0


def solve_root(points2d, points3d_rel, K, weights=None) -> np.ndarray:
    """Root position from 2D-3D correspondences, linear least squares on the projection.

    points2d: (N, 2) image pixels. points3d_rel: (N, 3) metres relative to the root, camera axes (include the
    root itself as a zero row when its pixel is known). K: (3, 3) intrinsics, zero skew. weights: (N,) or None.
    Returns (3,) float64 root in the camera frame, metres.
    """
    uv = np.asarray(points2d, np.float64).reshape(-1, 2)
    p = np.asarray(points3d_rel, np.float64).reshape(-1, 3)
    K = np.asarray(K, np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    n = len(p)
    A = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    A[:n, 0], A[:n, 2], b[:n] = fx, -du, du * p[:, 2] - fx * p[:, 0]
    A[n:, 1], A[n:, 2], b[n:] = fy, -dv, dv * p[:, 2] - fy * p[:, 1]
    if weights is not None:
        w = np.sqrt(np.tile(np.asarray(weights, np.float64).reshape(-1), 2))
        A, b = A * w[:, None], b * w
    return np.linalg.lstsq(A, b, rcond=None)[0]


def solve_root_from_box(points3d_rel, box, K, root_guess, steps: int = 4) -> np.ndarray:
    """Root position from a tight 2D box around the body and its root-relative 3D points (metres).

    points3d_rel: (N, 3) metres; box: (4,) x0, y0, x1, y1 outer edges of the box of the points' pixels
    (:func:`points_box` with no margin); K: (3, 3); root_guess: (3,) metres, z > 0. The points that project
    leftmost / rightmost / highest / lowest from the current root are tied to the box's edges (one coordinate
    each: 4 equations of :func:`solve_root`'s form, 3 unknowns), solved, and the extremes re-chosen ``steps``
    times. Returns (3,) float64.
    """
    p = np.asarray(points3d_rel, np.float64).reshape(-1, 3)
    K = np.asarray(K, np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    x0, y0, x1, y1 = [float(v) for v in box]
    root = np.asarray(root_guess, np.float64).reshape(3)
    for _ in range(int(steps)):
        uv = project(p + root, K)
        il, ir, it, ib = np.argmin(uv[:, 0]), np.argmax(uv[:, 0]), np.argmin(uv[:, 1]), np.argmax(uv[:, 1])
        A, b = [], []
        for i, u in ((il, x0 + 0.5), (ir, x1 - 0.5)):  # extreme pixel centres lie half a pixel inside the edges
            A.append([fx, 0.0, -(u - cx)])
            b.append((u - cx) * p[i, 2] - fx * p[i, 0])
        for i, v in ((it, y0 + 0.5), (ib, y1 - 0.5)):
            A.append([0.0, fy, -(v - cy)])
            b.append((v - cy) * p[i, 2] - fy * p[i, 1])
        root = np.linalg.lstsq(np.array(A), np.array(b), rcond=None)[0]
        if not root[2] > 0:
            raise ValueError(f"solve_root_from_box: the root lies behind the camera (z = {root[2]:.3g} m)")
    return root


def solve_root_and_focal(points2d, points3d_rel, principal_point):
    """Root and focal length (fx = fy) from 2D-3D correspondences with the focal length unknown.

    points2d: (N, 2) pixels; points3d_rel: (N, 3) metres, root-relative; principal_point: (2,) pixels.
    Returns (root (3,) float64 metres camera frame, f float pixels). Needs a true perspective 2D (see the module
    docstring); a non-positive solution raises ValueError.
    """
    uv = np.asarray(points2d, np.float64).reshape(-1, 2)
    p = np.asarray(points3d_rel, np.float64).reshape(-1, 3)
    du, dv = uv[:, 0] - principal_point[0], uv[:, 1] - principal_point[1]
    n = len(p)
    A = np.zeros((2 * n, 4))  # unknowns f, f*tx, f*ty, tz
    b = np.concatenate([du * p[:, 2], dv * p[:, 2]])
    A[:n, 0], A[:n, 1], A[:n, 3] = p[:, 0], 1.0, -du
    A[n:, 0], A[n:, 2], A[n:, 3] = p[:, 1], 1.0, -dv
    f, ftx, fty, tz = np.linalg.lstsq(A, b, rcond=None)[0]
    if not (f > 0 and tz > 0):
        raise ValueError(f"solve_root_and_focal: degenerate solution f={f:.3g}, z={tz:.3g} (a flat or far body "
                         "does not separate focal length from distance)")
    return np.array([ftx / f, fty / f, tz]), float(f)


def initial_box(person_box, extent_m: float = BOX_EXTENT_M, cube: float = CUBE_SIZE) -> np.ndarray:
    """A loose person box -> a first square crop box.

    person_box: (4,) x0, y0, x1, y1 pixels (outer edges), any aspect ratio. The square is centred on the box and
    its side is ``max(w, h) * cube / extent_m`` (the box's longer side taken as ``extent_m`` metres).
    Returns (4,) float32 square box.
    """
    x0, y0, x1, y1 = [float(v) for v in person_box]
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"person box {person_box} is empty")
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    half = max(x1 - x0, y1 - y0) * cube / extent_m / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


def points_box(points2d, margin: float = 0.0) -> np.ndarray:
    """(N, 2) pixels -> (4,) float32 tight box x0, y0, x1, y1 (outer edges: +-0.5 px), grown by ``margin`` of
    its size on each side."""
    pts = np.asarray(points2d, np.float64).reshape(-1, 2)
    lo, hi = pts.min(axis=0) - 0.5, pts.max(axis=0) + 0.5
    pad = (hi - lo) * margin
    return np.concatenate([lo - pad, hi + pad]).astype(np.float32)


def pelvis_coefficients(template_points) -> np.ndarray:
    """(41, 3) root-relative rest points of a body model (``SMPL.template_points``) -> (3,) coefficients ``c``
    with pelvis = hip_mid + c0 (spine1 - hip_mid) + c1 (l_hip - r_hip) + c2 (e0 x e1).

    The hips and spine1 are the pelvis's children: their offsets from it turn with the pelvis only, so the
    combination holds for any pose of a body with that template (shape changes move it by millimetres)."""
    t = np.asarray(template_points, np.float64)
    basis = _pelvis_basis(t[None])[0]  # (3, 3) columns e0, e1, e2
    hip_mid = (t[0] + t[1]) / 2.0
    return np.linalg.solve(basis, -hip_mid)


def _pelvis_basis(points):
    """(B, 41, 3) -> (B, 3, 3) with columns spine1 - hip_mid, l_hip - r_hip, and their cross product."""
    hip_mid = (points[:, 0] + points[:, 1]) / 2.0
    e0 = points[:, 2] - hip_mid
    e1 = points[:, 0] - points[:, 1]
    e2 = np.cross(e0, e1)
    return np.stack([e0, e1, e2], axis=-1)


def pelvis_from_points(points, coeffs) -> np.ndarray:
    """(B, 41, 3) or (41, 3) points (any common origin) -> (B, 3) or (3,) pelvis in the same frame."""
    p = np.asarray(points, np.float64)
    single = p.ndim == 2
    p = p[None] if single else p
    hip_mid = (p[:, 0] + p[:, 1]) / 2.0
    out = hip_mid + np.einsum("bij,j->bi", _pelvis_basis(p), np.asarray(coeffs, np.float64))
    return out[0] if single else out


def body_scale(points_rel, template_bone_lengths) -> float:
    """Metric scale of a predicted body: sum of the template's joint bone lengths over the prediction's.

    points_rel: (41, 3) root-relative (any unit); template_bone_lengths: (41,) metres (the 23 joint bones are
    used: the landmarks' short bones add noise, not information)."""
    from smplr_tf.body import skeleton

    lengths = np.linalg.norm(skeleton.bone_vectors(np.asarray(points_rel, np.float64)), axis=-1)
    j = skeleton.NUM_JOINTS - 1
    return float(np.sum(np.asarray(template_bone_lengths)[:j]) / max(np.sum(lengths[:j]), 1e-9))


def refine_box(points_crop, box, K, pelvis_coeffs, template_bone_lengths=None, cube: float = CUBE_SIZE,
               refine_steps: int = 3, person_box=None):
    """One refinement step: the network's points in the crop ``box`` -> (root (3,) metres, next box (4,)).

    points_crop: (41, 3) the hourglass's output on that crop (metres of the crop's cube: x, y about the crop
    centre, z about the root). box: (4,) the crop's square in the image (pixels, outer edges). K: (3, 3) image
    intrinsics. pelvis_coeffs: :func:`pelvis_coefficients`. template_bone_lengths: (41,) metres, the body-size
    prior (None: keep the crop's scale, only re-centre). refine_steps: back-projection passes that undo the
    crop's weak perspective (with the prior only). person_box: (4,) a *tight* box of the body's pixels (the
    ground-truth 2D box of Table 2's protocol, or a box drawn to touch the body): the distance and position
    then come from fitting the template-sized predicted body into that box (:func:`solve_root_from_box`), not
    from where the points fall in the crop: it does not depend on the network following the crop's scale
    (a network that keeps predicting a mean-sized body, as short trainings do, makes the crop-only estimate
    drift further with every iteration). Needs template_bone_lengths. Returns the root (camera frame, metres) and the
    paper's crop around it (:func:`smplr_tf.data.crop.crop_box`).
    """
    pts = np.asarray(points_crop, np.float64).reshape(-1, 3)
    x0, y0, x1, y1 = [float(v) for v in box]
    pelvis = pelvis_from_points(pts, pelvis_coeffs)
    nodes = np.concatenate([pelvis[None], pts])  # the pelvis and the 41 points, crop metres
    # Crop metres -> image pixels (the crop's outer edges are +-cube/2 about its centre).
    uv = np.stack([x0 + (nodes[:, 0] / cube + 0.5) * (x1 - x0), y0 + (nodes[:, 1] / cube + 0.5) * (y1 - y0)], -1)
    rel = nodes - pelvis[None]
    if template_bone_lengths is not None:
        rel = rel * body_scale(rel[1:], template_bone_lengths)
    root = solve_root(uv, rel, K)
    if person_box is not None:
        if template_bone_lengths is None:
            raise ValueError("refine_box: a person_box fit needs template_bone_lengths")
        metric = rel * body_scale(rel[1:], template_bone_lengths)
        guess = root if root[2] > 0 else np.array([0.0, 0.0, float(np.asarray(K)[0, 0]) * cube / (x1 - x0)])
        root = solve_root_from_box(metric, person_box, K, guess)
        # The crop's x, y are image-plane offsets (a limb nearer the camera looks longer): back-project each
        # pixel at its depth, bring the body to the template's size again and re-fit the box.
        rays = np.concatenate([uv, np.ones((len(uv), 1))], axis=-1) @ np.linalg.inv(np.asarray(K, np.float64)).T
        for _ in range(refine_steps):
            cam = rays * (root[2] + metric[:, 2:3])
            metric = (cam - cam[:1]) * body_scale((cam - cam[:1])[1:], template_bone_lengths)
            root = solve_root_from_box(metric, person_box, K, root)
        return root, crop_box(root, K, cube)
    if template_bone_lengths is not None:
        # The crop's x, y are image-plane offsets (a point nearer the camera looks bigger): back-project each
        # pixel at its depth, re-measure the body against the template, solve again (converges in ~3 steps).
        Kinv = np.linalg.inv(np.asarray(K, np.float64))
        rays = np.concatenate([uv, np.ones((len(uv), 1))], axis=-1) @ Kinv.T  # (N, 3), z = 1
        for _ in range(refine_steps):
            cam = rays * (root[2] + rel[:, 2:3])
            rel = cam - cam[:1]
            rel = rel * body_scale(rel[1:], template_bone_lengths)
            root = solve_root(uv, rel, K)
    if not root[2] > 0:
        raise ValueError(f"refine_box: the estimated root lies behind the camera (z = {root[2]:.3g} m)")
    return root, crop_box(root, K, cube)


def corner_error(box, box_true, size: int = 256) -> float:
    """Mean distance (pixels of a ``size`` crop) between the four corners of ``box`` and of ``box_true``
    (both (4,) pixels): the image distance scaled by ``size`` / the true box's width."""
    b, t = np.asarray(box, np.float64), np.asarray(box_true, np.float64)
    corners = lambda q: np.array([[q[0], q[1]], [q[2], q[1]], [q[0], q[3]], [q[2], q[3]]])  # noqa: E731
    d = np.linalg.norm(corners(b) - corners(t), axis=-1)
    return float(np.mean(d) * size / (t[2] - t[0]))


def body_prior(smpl_layer):
    """A body model (``smplr_tf.body.smpl.SMPL``) -> (pelvis coefficients (3,), template bone lengths (41,)
    metres): the neutral template if the layer has one, else the mean of its genders' templates."""
    from smplr_tf.body.smpl import template_bone_lengths

    genders = list(smpl_layer.genders)
    use = [genders.index("neutral")] if "neutral" in genders else list(range(len(genders)))
    template = np.mean([smpl_layer.template_points(i) for i in use], axis=0)
    return pelvis_coefficients(template), template_bone_lengths(smpl_layer)


def crop_batch(images, boxes, size: int = 256) -> np.ndarray:
    """(B, H, W, 3) float32 images + (B, 4) boxes -> (B, size, size, 3) float32 crops (zeros outside)."""
    from smplr_tf.data.crop import crop_image

    return np.stack([crop_image(np.asarray(im, np.float32), b, size) for im, b in zip(images, boxes)])


def estimate_crops(predict_points, images, intrinsics, person_boxes, pelvis_coeffs, template_bone_lengths,
                   iterations: int = 2, size: int = 256, tight: bool = False):
    """The estimated crop of each image: first square from the person box, then ``iterations`` refinements.

    predict_points: (B, size, size, 3) float32 RGB in [0, 1] -> (B, 41, 3) the hourglass's points (crop metres).
    images: (B, H, W, 3) float32 in [0, 1] (or a list of differently sized images); intrinsics: (B, 3, 3);
    person_boxes: (B, 4) pixels, any aspect ratio; tight: the boxes touch the body (fit them: see
    :func:`refine_box`'s person_box), else they only place the first square. Returns (crops (B, size, size, 3) float32 of the final boxes,
    boxes (B, 4) float32, roots (B, 3) float64 metres camera frame; NaN for an image whose refinement failed,
    which then keeps its previous box).
    """
    boxes = np.stack([initial_box(b) for b in person_boxes]).astype(np.float32)
    roots = np.full((len(boxes), 3), np.nan)
    for _ in range(int(iterations)):
        pts = np.asarray(predict_points(crop_batch(images, boxes, size)))
        for i in range(len(boxes)):
            try:
                roots[i], boxes[i] = refine_box(pts[i], boxes[i], intrinsics[i], pelvis_coeffs,
                                                template_bone_lengths,
                                                person_box=person_boxes[i] if tight else None)
            except (ValueError, np.linalg.LinAlgError):
                roots[i] = np.nan
    return crop_batch(images, boxes, size), boxes, roots
