"""A small mesh renderer on NumPy + OpenCV (tensorflow-graphics' rasteriser does not load on TF 2.21).

Rasterisation is a vectorised z-buffer: after back-face culling, every triangle enumerates the pixel centres of
its bounding box (triangles are grouped by box size so each group is one NumPy array), keeps the centres
inside it (barycentric test), interpolates 1/z, and ``np.minimum.at`` keeps, per pixel, the nearest triangle
(key = quantised depth << 32 | face id, so ties resolve deterministically). A body mesh of ~13k vertices in a
320x240 frame covers ~1 pixel per triangle, which makes this far faster than drawing triangles one by one
(painter's algorithm with one ``cv2.fillPoly`` call per triangle; see benchmarks/render_speed.py).
Shading is flat Lambert: ``albedo * (ambient + (1 - ambient) * max(0, n . l))`` with the face normal turned
towards the camera.

Conventions: camera frame x right, y down, z forward, metres; pixel centres at integer coordinates (as in
:mod:`smplr_tf.data.crop`); a pixel is covered when its centre lies inside the projected triangle.
Triangles with a vertex closer than ``near`` are dropped (no clipping): keep bodies in front of the camera.
"""

from __future__ import annotations

import cv2
import numpy as np

_KEY_MAX = np.iinfo(np.int64).max
_DEPTH_SCALE = 1e5  # depth quantum of the z-buffer key: 10 micrometres
_MAX_CANDIDATES = 1 << 22  # pixel candidates per chunk (memory bound)


def _project(verts, K):
    uvw = verts @ np.asarray(K, verts.dtype).T
    return uvw[:, :2] / uvw[:, 2:3]


def face_normals(verts, faces):
    """verts: (V, 3), faces: (F, 3) -> (F, 3) unnormalised normals (v1 - v0) x (v2 - v0)."""
    v0 = verts[faces[:, 0]]
    a = verts[faces[:, 1]] - v0
    b = verts[faces[:, 2]] - v0
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def rasterize_ids(verts_cam, faces, K, size, cull: bool = True, near: float = 1e-3, normals=None):
    """Visible face per pixel. verts_cam: (V, 3) metres; faces: (F, 3) int; K: (3, 3); size: (H, W).

    cull: drop triangles whose normal (v1 - v0) x (v2 - v0) points away from the camera (needs outward
    winding; closed meshes render the same without it, only slower). normals: optional precomputed
    :func:`face_normals`.
    Returns (H, W) int32 face index, -1 where no triangle covers the pixel centre.
    """
    H, W = int(size[0]), int(size[1])
    verts = np.asarray(verts_cam, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    fid = np.arange(len(faces), dtype=np.int64)
    z = verts[:, 2]
    zf = z[faces]
    keep = (zf > near).all(axis=1)
    if cull:
        n = face_normals(verts, faces) if normals is None else normals
        keep &= np.einsum("fk,fk->f", n, verts[faces[:, 0]].astype(n.dtype)) < 0.0
    faces, fid, zf = faces[keep], fid[keep], zf[keep]
    zbuf = np.full(H * W, _KEY_MAX, dtype=np.int64)
    if len(faces):
        uv = _project(verts, K)
        a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
        lo = np.maximum(np.ceil(np.minimum(np.minimum(a, b), c)), np.float32(0.0))
        hi = np.minimum(np.floor(np.maximum(np.maximum(a, b), c)), np.array([W - 1, H - 1], np.float32))
        ext = hi - lo
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        ok = (ext[:, 0] >= 0) & (ext[:, 1] >= 0) & (np.abs(area) > 1e-12)
        idx = np.nonzero(ok)[0]
        a, b, c, area, lo, ext, fid = a[idx], b[idx], c[idx], area[idx], lo[idx], ext[idx], fid[idx]
        iz = np.float32(1.0) / zf[idx]
        # Edge functions are affine in the pixel position: w_k(p) = (e0 + ex * x + ey * y) / area, evaluated
        # from the box corner ``lo`` so that a candidate only adds its integer offset.
        inv = np.float32(1.0) / area
        coef = []
        for P, Q in ((b, c), (c, a)):  # weight of a: edge b->c; weight of b: edge c->a
            ex = (P[:, 1] - Q[:, 1]) * inv
            ey = (Q[:, 0] - P[:, 0]) * inv
            e0 = ((P[:, 0] - lo[:, 0]) * (Q[:, 1] - lo[:, 1]) - (P[:, 1] - lo[:, 1]) * (Q[:, 0] - lo[:, 0])) * inv
            coef.append((e0, ex, ey))
        span = ext.max(axis=1) + 1
        s = 1
        while True:
            sel = np.nonzero((span <= s) & (span > s // 2))[0]
            if len(sel):
                step = max(1, _MAX_CANDIDATES // (s * s))
                for i in range(0, len(sel), step):
                    _raster_group(sel[i:i + step], s, coef, lo, ext, iz, fid, zbuf, W)
            if s >= max(H, W):
                break
            s *= 2
    ids = np.where(zbuf == _KEY_MAX, -1, zbuf & 0xFFFFFFFF).astype(np.int32)
    return ids.reshape(H, W)


def _raster_group(sel, s, coef, lo, ext, iz, fid, zbuf, W):
    """Z-buffer the triangles ``sel`` whose box side is at most ``s`` pixels."""
    oy, ox = np.divmod(np.arange(s * s, dtype=np.float32), np.float32(s))
    (a0, ax, ay), (b0, bx, by) = [(e0[sel, None], ex[sel, None], ey[sel, None]) for e0, ex, ey in coef]
    wa = a0 + ax * ox + ay * oy  # (n, s*s)
    wb = b0 + bx * ox + by * oy
    wc = np.float32(1.0) - wa - wb
    inside = (wa >= 0) & (wb >= 0) & (wc >= 0)
    if s > 1:
        inside &= (ox <= ext[sel, 0:1]) & (oy <= ext[sel, 1:2])
    rows, cols = np.nonzero(inside)
    if not len(rows):
        return
    f = sel[rows]
    izs = iz[f]
    wa, wb, wc = wa[rows, cols], wb[rows, cols], wc[rows, cols]
    depth = 1.0 / (wa * izs[:, 0] + wb * izs[:, 1] + wc * izs[:, 2]).astype(np.float64)  # perspective-correct
    key = (np.rint(np.minimum(depth, 9e4) * _DEPTH_SCALE).astype(np.int64) << 32) | fid[f]
    pix = (lo[f, 1] + oy[cols]) * W + (lo[f, 0] + ox[cols])
    np.minimum.at(zbuf, pix.astype(np.int64), key)


def shade_faces(verts_cam, faces, face_colors=None, light_dir=None, ambient: float = 0.35, normals=None):
    """Flat Lambert colour of every face. Returns (F, 3) float32 in [0, 1].

    face_colors: None (light grey), (3,) or (F, 3) albedo, floats in [0, 1] or uint8 0..255.
    light_dir: (3,) camera-frame direction from the surface towards the light (default: from above the
    camera, (0, -0.5, -1)). Normals are turned towards the camera (two-sided lighting).
    """
    verts = np.asarray(verts_cam, dtype=np.float64)
    faces = np.asarray(faces)
    F = len(faces)
    if face_colors is None:
        albedo = np.full((F, 3), 0.7, np.float32)
    else:
        albedo = np.asarray(face_colors)
        albedo = albedo.astype(np.float32) / 255.0 if albedo.dtype == np.uint8 else albedo.astype(np.float32)
        albedo = np.broadcast_to(albedo, (F, 3))
    l = np.asarray((0.0, -0.5, -1.0) if light_dir is None else light_dir, np.float64)
    l = l / np.linalg.norm(l)
    n = face_normals(verts, faces) if normals is None else np.array(normals, dtype=np.float64)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    towards = np.einsum("fk,fk->f", n, verts[faces[:, 0]]) > 0  # normal points away from the camera
    n[towards] *= -1.0
    lam = np.clip(n @ l, 0.0, 1.0)
    return (albedo * (ambient + (1.0 - ambient) * lam)[:, None]).astype(np.float32)


def rasterize(verts_cam, faces, K, size=(240, 320), face_colors=None, light_dir=None, background=None, *,
              ambient: float = 0.35, cull: bool = True):
    """Render a mesh. verts_cam: (V, 3) metres, camera frame; faces: (F, 3) int; K: (3, 3); size: (H, W).

    face_colors / light_dir / ambient: see :func:`shade_faces`. background: None (black) or (H, W, 3) uint8.
    Returns (rgb (H, W, 3) uint8, mask (H, W) bool: pixels covered by the mesh).
    """
    H, W = int(size[0]), int(size[1])
    verts = np.asarray(verts_cam, dtype=np.float32)
    faces = np.asarray(faces)
    normals = face_normals(verts, faces)
    ids = rasterize_ids(verts, faces, K, (H, W), cull=cull, normals=normals)
    mask = ids >= 0
    if background is None:
        rgb = np.zeros((H, W, 3), np.uint8)
    else:
        background = np.asarray(background)
        if background.shape != (H, W, 3):
            raise ValueError(f"rasterize: background shape {background.shape}, expected {(H, W, 3)}")
        rgb = background.astype(np.uint8, copy=True)
    if mask.any():
        cols = shade_faces(verts, faces, face_colors, light_dir, ambient, normals=normals)
        lut = np.clip(np.rint(cols * 255.0), 0, 255).astype(np.uint8)
        rgb[mask] = lut[ids[mask]]
    return rgb, mask


def silhouette(verts_cam, faces, K, size):
    """(H, W) bool: pixels whose centre any triangle covers (both sides; no culling)."""
    return rasterize_ids(verts_cam, faces, K, size, cull=False) >= 0


def draw_skeleton(img, pts2d, parents, color=(0, 255, 0), thickness: int = 1, radius: int | None = None):
    """Draw bones (point -> parent) and points on a copy of ``img``.

    img: (H, W, 3) uint8; pts2d: (N, 2) pixels (x, y), pixel-centre convention; parents: (N,) int, -1 for
    none; color: BGR/RGB triple as the image uses. Non-finite points are skipped. Returns the drawn image.
    """
    out = np.ascontiguousarray(np.array(img, dtype=np.uint8, copy=True))
    pts = np.asarray(pts2d, dtype=np.float64)
    parents = np.asarray(parents)
    shift = 4  # sub-pixel precision of OpenCV drawing
    q = np.round(np.nan_to_num(pts, nan=-1e6, posinf=-1e6, neginf=-1e6) * (1 << shift))
    q = np.clip(q, -1e8, 1e8).astype(np.int64)
    finite = np.all(np.isfinite(pts), axis=1)
    color = tuple(int(c) for c in color)
    r = max(1, thickness + 1) if radius is None else radius
    for i, p in enumerate(parents):
        if p >= 0 and finite[i] and finite[p]:
            cv2.line(out, tuple(map(int, q[i])), tuple(map(int, q[p])), color, thickness, cv2.LINE_AA, shift)
    for i in range(len(pts)):
        if finite[i]:
            cv2.circle(out, tuple(map(int, q[i])), r << shift, color, -1, cv2.LINE_AA, shift)
    return out


def write_obj(path, verts, faces):
    """Write a Wavefront OBJ. verts: (V, 3) float; faces: (F, 3) int, 0-based (written 1-based)."""
    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64) + 1
    with open(path, "w") as f:
        f.write("# smplr_tf mesh\n")
        np.savetxt(f, verts, fmt="v %.6f %.6f %.6f")
        np.savetxt(f, faces, fmt="f %d %d %d")
