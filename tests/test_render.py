"""The NumPy/OpenCV renderer (smplr_tf.render) against analytic areas and an independent painter's renderer."""

import os

import cv2
import numpy as np
import pytest

from smplr_tf import render

K = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])


def _square(side, z, centre=(0.0, 0.0)):
    """A square facing the camera (outward normal towards -z), two triangles."""
    h = side / 2
    cx, cy = centre
    v = np.array([[cx - h, cy - h, z], [cx + h, cy - h, z], [cx + h, cy + h, z], [cx - h, cy + h, z]])
    f = np.array([[0, 2, 1], [0, 3, 2]])
    return v, f


def _cube(side, rot, t):
    s = side / 2
    v = np.array([[x, y, z] for x in (-s, s) for y in (-s, s) for z in (-s, s)])
    f = []
    # Outward-wound quads of the cube.
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    for a, b, c, d in quads:
        f += [(a, b, c), (a, c, d)]
    return v @ rot.T + t, np.array(f)


def _rot(rx, ry):
    Rx = cv2.Rodrigues(np.array([rx, 0.0, 0.0]))[0]
    Ry = cv2.Rodrigues(np.array([0.0, ry, 0.0]))[0]
    return Rx @ Ry


def _uv_sphere(radii, centre, nlat=24, nlon=48):
    th = np.linspace(0, np.pi, nlat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, nlon, endpoint=False)
    v = [[0, 0, 1]] + [[np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)] for t in th for p in ph]
    v.append([0, 0, -1])
    f = [[0, 1 + (j + 1) % nlon, 1 + j] for j in range(nlon)]
    for i in range(nlat - 2):
        for j in range(nlon):
            a, b = 1 + i * nlon + j, 1 + i * nlon + (j + 1) % nlon
            f += [[a, b, a + nlon], [b, b + nlon, a + nlon]]
    last, base = len(v) - 1, 1 + (nlat - 2) * nlon
    f += [[base + j, base + (j + 1) % nlon, last] for j in range(nlon)]
    f = np.array(f)[:, ::-1]  # outward winding (checked by the signed volume in the test)
    return np.array(v) * radii + centre, f


def _signed_volume(v, f):
    return np.einsum("fk,fk->f", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6


def test_square_silhouette_area():
    v, f = _square(0.5, 3.0)
    m = render.silhouette(v, f, K, (240, 320))
    side_px = 600 * 0.5 / 3.0  # 100 px
    assert abs(m.sum() - side_px ** 2) <= 4 * side_px
    ys, xs = np.nonzero(m)
    assert abs(xs.mean() - 160) < 0.6 and abs(ys.mean() - 120) < 0.6


@pytest.mark.parametrize("angles", [(0.3, 0.5), (-0.7, 1.1), (1.2, -0.4)])
def test_cube_silhouette_is_the_hull_of_its_projection(angles):
    v, f = _cube(0.8, _rot(*angles), np.array([0.1, -0.05, 4.0]))
    m = render.silhouette(v, f, K, (240, 320))
    uv = (v @ K.T)[:, :2] / v[:, 2:]
    hull = cv2.convexHull(uv.astype(np.float32))
    area = cv2.contourArea(hull)
    perim = cv2.arcLength(hull, True)
    assert abs(m.sum() - area) <= perim * 0.75
    # Culled rendering of a closed, outward-wound mesh covers the same pixels.
    _, mask = render.rasterize(v, f, K, (240, 320))
    assert (mask != m).sum() <= 0.01 * m.sum()


def test_backface_culling():
    v, f = _square(0.5, 3.0)
    _, mask = render.rasterize(v, f[:, ::-1], K, (240, 320))
    assert not mask.any()
    _, mask = render.rasterize(v, f[:, ::-1], K, (240, 320), cull=False)
    assert mask.sum() > 9000


def test_nearer_triangle_wins_whatever_the_order():
    v1, f1 = _square(0.6, 3.0)
    v2, f2 = _square(0.6, 2.5, centre=(0.2, 0.0))
    v = np.concatenate([v1, v2])
    colors = np.array([[255, 0, 0]] * 2 + [[0, 0, 255]] * 2, np.uint8)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        f = np.concatenate([f1, f2 + 4])[order]
        rgb, _ = render.rasterize(v, f, K, (240, 320), face_colors=colors[order], light_dir=(0, 0, -1), ambient=0.0)
        x_overlap = int(160 + 600 * 0.1 / 2.5)  # inside both squares, where the nearer (blue) covers
        assert tuple(rgb[120, x_overlap]) == (0, 0, 255)
        assert tuple(rgb[120, 160 - 50]) == (255, 0, 0)  # only the far square


def test_lambert_shading():
    v, f = _square(0.5, 3.0)
    for angle in (0.0, np.pi / 3):
        light = (0.0, np.sin(angle), -np.cos(angle))
        rgb, mask = render.rasterize(v, f, K, (240, 320), face_colors=np.array([200, 100, 50], np.uint8),
                                     light_dir=light, ambient=0.2)
        expected = np.array([200, 100, 50]) * (0.2 + 0.8 * np.cos(angle))
        np.testing.assert_allclose(rgb[mask].mean(0), expected, atol=1.0)
    bg = np.full((240, 320, 3), 7, np.uint8)
    rgb, mask = render.rasterize(v, f, K, (240, 320), background=bg)
    assert (rgb[~mask] == 7).all()


def _painter(verts, faces, size):
    """Independent reference: back-to-front cv2.fillPoly per triangle, face index as colour."""
    H, W = size
    out = np.full((H, W), -1, np.int32)
    uv = (verts @ K.T)[:, :2] / verts[:, 2:]
    depth = verts[faces].mean(1)[:, 2]
    for i in np.argsort(-depth):
        pts = np.round(uv[faces[i]] * 256).astype(np.int32)
        cv2.fillPoly(out, [pts], int(i), lineType=cv2.LINE_8, shift=8)
    return out


def test_matches_painters_algorithm_on_a_sphere():
    v, f = _uv_sphere(np.array([0.4, 0.8, 0.3]), np.array([0.1, 0.0, 4.0]))
    assert _signed_volume(v - v.mean(0), f) > 0
    ids = render.rasterize_ids(v, f, K, (240, 320))
    ref = _painter(v, f, (240, 320))
    assert ((ids >= 0) != (ref >= 0)).mean() < 0.01
    both = (ids >= 0) & (ref >= 0)
    # Visible faces agree except on pixels along shared edges (fillPoly's coverage rule differs from the
    # pixel-centre rule), where the two choices are neighbouring faces.
    a, b = ids[both], ref[both]
    assert (a == b).mean() > 0.6
    diff = a != b
    share = [len(set(f[i]) & set(f[j])) > 0 for i, j in zip(a[diff], b[diff])]
    assert np.mean(share) > 0.97
    n = render.face_normals(v, f)
    assert (np.einsum("fk,fk->f", n[ids[both]], v[f[ids[both], 0]]) < 0).all()  # only front faces seen


def test_draw_skeleton_draws_and_leaves_input():
    img = np.zeros((64, 64, 3), np.uint8)
    pts = np.array([[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [np.nan, 3.0]])
    out = render.draw_skeleton(img, pts, np.array([-1, 0, 1, 2]), (0, 255, 0))
    assert img.max() == 0
    assert out[10, 30, 1] > 0 and out[30, 50, 1] > 0 and out[10, 10, 1] > 0
    assert out[30, 20].max() == 0  # no bone from 0 to 2
    assert out[..., 0].max() == 0 and out[..., 2].max() == 0


def test_write_obj_round_trip(tmp_path):
    v, f = _cube(1.0, np.eye(3), np.zeros(3))
    path = os.path.join(tmp_path, "cube.obj")
    render.write_obj(path, v, f)
    lines = open(path).read().splitlines()
    vs = np.array([list(map(float, l.split()[1:])) for l in lines if l.startswith("v ")])
    fs = np.array([list(map(int, l.split()[1:])) for l in lines if l.startswith("f ")])
    np.testing.assert_allclose(vs, v, atol=1e-6)
    np.testing.assert_array_equal(fs - 1, f)
