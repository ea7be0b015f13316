"""Appearance of synthetic people and scenes: clothing / skin colours per body part, light, backgrounds,
occluders. NumPy / OpenCV only (runs in the rendering workers; never imports TensorFlow).

Body parts come from the model's skinning weights: each vertex belongs to the joint with its largest
weight (``argmax``), and each face to the part of its first vertex. Joint -> clothing region:

* skin: neck, head, wrists / hands (always); forearms with short sleeves; shanks with shorts;
* top: pelvis-up torso (spine1..3), collars, upper arms, forearms with long sleeves;
* bottom: pelvis, thighs, shanks with long trousers;
* shoes: ankles, feet.

On top of the regions, features that differ front / back and left / right (a face, a chest print, hair at
the back, back pockets, one-sided sleeves, watch, leg stripe, bag strap) are placed on template coordinates in
a body frame found from the mesh itself (:func:`face_tables`), so any SMPL-layout mesh gets them.
"""

from __future__ import annotations

import cv2
import numpy as np

from smplr_tf.data import schema

# Regions of a face.
SKIN, HEAD, TOP, SLEEVE, BOTTOM, LEG, SHOES, HAIR = range(8)
NUM_REGIONS = 8

# SMPL joint -> region (SLEEVE = forearm, LEG = shank: skin or cloth depending on the outfit).
_JOINT_REGION = {
    0: BOTTOM, 1: BOTTOM, 2: BOTTOM, 3: TOP, 4: LEG, 5: LEG, 6: TOP, 7: SHOES, 8: SHOES, 9: TOP,
    10: SHOES, 11: SHOES, 12: SKIN, 13: TOP, 14: TOP, 15: HEAD, 16: TOP, 17: TOP, 18: SLEEVE,
    19: SLEEVE, 20: SKIN, 21: SKIN, 22: SKIN, 23: SKIN,
}

# Skin tones (RGB), from light to dark; a sample interpolates between neighbours.
_SKIN_TONES = np.array([[255, 224, 196], [241, 194, 150], [224, 172, 120], [198, 134, 86], [141, 85, 46],
                        [92, 58, 36]], np.float32)



def _facing_sign(part_v: np.ndarray, v: np.ndarray) -> float:
    """+1 or -1: the template z direction the body faces. The toes lie ahead of the ankles (SMPL and the free
    model: +z); without feet, the head's mass leans forward of the neck; else +1."""
    def centre(joints):
        sel = np.isin(part_v, joints)
        return v[sel].mean(axis=0) if sel.any() else None

    for a, b in (([10, 11], [7, 8]), ([15], [12])):
        ca, cb = centre(a), centre(b)
        if ca is not None and cb is not None and abs(ca[2] - cb[2]) > 1e-3:
            return float(np.sign(ca[2] - cb[2]))
    return 1.0


def face_regions(weights: np.ndarray, faces: np.ndarray, v_template: np.ndarray) -> np.ndarray:
    """(F,) int region of every face from skinning weights (V, 24), faces (F, 3) and the template (V, 3).

    The upper part of the head (above the eyes' height on the template, back of the head lower) is HAIR.
    """
    part = np.argmax(weights, axis=1)
    region = np.vectorize(_JOINT_REGION.get)(part).astype(np.int32)
    fr = region[faces[:, 0]]
    head = fr == HEAD
    if head.any():
        s = _facing_sign(part, np.asarray(v_template, np.float64))
        c = v_template[faces].mean(axis=1)
        hv = v_template[part == 15]
        y0, y1 = hv[:, 1].min(), hv[:, 1].max()
        z_mid = np.median(s * hv[:, 2])
        h = (c[:, 1] - y0) / max(y1 - y0, 1e-6)
        hair = head & ((h > 0.72) | ((h > 0.35) & (s * c[:, 2] < z_mid - 0.02)))
        fr = np.where(hair, HAIR, fr)
    return fr


def _part_side(part_centre_x: np.ndarray) -> np.ndarray:
    """(P,) +1 / -1 / 0: the side (template x sign) of each part's centroid, 0 near the midline (< 5 cm)."""
    return np.where(np.abs(part_centre_x) < 0.05, 0, np.sign(part_centre_x)).astype(np.int8)


def face_tables(weights: np.ndarray, faces: np.ndarray, v_template: np.ndarray) -> dict:
    """Per-mesh appearance tables, computed once per body model (any mesh: only skinning parts and the template).

    weights: (V, 24) skinning weights; faces: (F, 3) outward-oriented; v_template: (V, 3) metres, +y up.
    The body frame: x across the body (metres from the midline; its sign is a side, not an anatomical claim),
    y up (metres), z towards the front. The facing direction is the template axis on which the toes lie ahead of
    the ankles (SMPL and the free model: +z); without feet, the side the head's mass leans to from the neck.

    Returns dict of arrays: ``regions`` (F,) int32 (:func:`face_regions`), ``part`` (F,) int32 joint,
    ``pos`` (F, 3) float32 face centroids in the body frame, ``rel`` (F, 3) the centroid minus its part's
    centroid, ``facing`` (F,) float32 z of the unit template normal (+1 faces the front), ``side`` (F,) int8
    side of the face's part (+1, -1, 0 on the midline), ``head_h`` (F,) float32 height within the head's
    vertices (0 chin .. 1 crown; 0 off the head), and (F,) bool masks of fixed features: ``eyes``, ``brows``,
    ``mouth``, ``nose``, ``zip`` (front midline of the torso), ``seam`` (back midline), ``back_pockets``,
    ``toe_caps``, ``soles``, ``chest`` (front torso faces at chest height), ``yoke`` (upper back).
    """
    faces = np.asarray(faces)
    v = np.asarray(v_template, np.float64)
    part_v = np.argmax(weights, axis=1)
    part = part_v[faces[:, 0]].astype(np.int32)
    regions = face_regions(weights, faces, v_template)

    s = _facing_sign(part_v, v)
    mid_x = float(np.median(v[:, 0]))
    vb = np.stack([v[:, 0] - mid_x, v[:, 1], s * v[:, 2]], axis=1)
    pos = vb[faces].mean(axis=1)
    tri = v[faces]  # outward normals on the template itself (a mirror to the body frame would flip them)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    facing = s * n[:, 2] / np.maximum(np.linalg.norm(n, axis=1), 1e-12)
    pc = np.zeros((24, 3))
    for j in range(24):
        if (part_v == j).any():
            pc[j] = vb[part_v == j].mean(axis=0)
    rel = pos - pc[part]
    side = _part_side(pc[:, 0])[part]
    x, y, z = pos.T
    F = len(faces)
    false = np.zeros(F, bool)

    on_head = (regions == HEAD) | (regions == HAIR)
    head_h = np.zeros(F)
    eyes = brows = mouth = nose = false
    if (part_v == 15).any():
        hv = vb[part_v == 15]
        y0, y1 = hv[:, 1].min(), hv[:, 1].max()
        head_h = np.where(on_head, (y - y0) / max(y1 - y0, 1e-6), 0.0)
        tip = hv[np.argmax(hv[:, 2])]  # nose tip: the head's frontmost vertex
        dy, ax = y - tip[1], np.abs(x - tip[0])
        face_front = on_head & (facing > 0.2) & (z > tip[2] - 0.06)
        eyes = face_front & (dy > 0.018) & (dy < 0.040) & (ax > 0.015) & (ax < 0.048)
        brows = face_front & (dy >= 0.045) & (dy < 0.058) & (ax > 0.012) & (ax < 0.055)
        mouth = face_front & (dy > -0.052) & (dy < -0.032) & (ax < 0.025)
        nose = on_head & (z > tip[2] - 0.025) & (dy > -0.025) & (dy < 0.03) & (ax < 0.02) & ~eyes
    torso = np.isin(part, [3, 6, 9]) & (regions == TOP)
    chest_y = pc[9, 1] if (part_v == 9).any() else 0.0
    top_y = pos[torso, 1].max() if torso.any() else 0.0
    front_torso, back_torso = torso & (facing > 0.3), torso & (facing < -0.3)
    bottom = regions == BOTTOM
    waist_y = pos[bottom, 1].max() if bottom.any() else 0.0
    feet = regions == SHOES
    sole_y = pos[feet, 1].min() if feet.any() else 0.0
    return {
        "regions": regions, "part": part, "pos": pos.astype(np.float32), "rel": rel.astype(np.float32),
        "facing": facing.astype(np.float32), "side": side, "head_h": head_h.astype(np.float32),
        "eyes": eyes, "brows": brows, "mouth": mouth, "nose": nose,
        "zip": front_torso & (np.abs(x) < 0.012),
        "seam": back_torso & (np.abs(x) < 0.008),
        "chest": front_torso & (y > chest_y - 0.08) & (y < chest_y + 0.08) & (np.abs(x) < 0.14),
        "yoke": back_torso & (y > top_y - 0.13),
        "back_pockets": bottom & (facing < -0.2) & (y > waist_y - 0.2) & (y < waist_y - 0.07)
        & (np.abs(x) > 0.035) & (np.abs(x) < 0.14),
        "toe_caps": feet & np.isin(part, [10, 11]) & (facing > -0.2),
        "soles": feet & (y < sole_y + 0.02),
    }


def _random_cloth(rng):
    """RGB in [0, 1]: saturated or muted colours, dark to light."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.0, 0.9) * 255, rng.uniform(0.15, 0.95) * 255]]],
                   np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def _contrast(rng, c):
    """A colour that stands out on ``c`` (RGB [0, 1]): a random colour pushed away from its brightness."""
    o = _random_cloth(rng)
    light = float(c.mean()) > 0.45
    return np.clip(o * 0.35 if light else 0.55 + 0.45 * o, 0.0, 1.0).astype(np.float32)


def _pattern(rng, x, y):
    """(F,) bool pattern on template coordinates (metres): none, horizontal / vertical stripes, checks or dots."""
    kind = rng.choice(5, p=[0.35, 0.25, 0.1, 0.15, 0.15])
    period = rng.uniform(0.035, 0.12)
    a, b = np.sin(y * (2 * np.pi / period)), np.sin(x * (2 * np.pi / period))
    if kind == 1:
        return a > rng.uniform(-0.3, 0.5)
    if kind == 2:
        return b > rng.uniform(-0.3, 0.5)
    if kind == 3:
        return (a > 0) ^ (b > 0)
    if kind == 4:
        return (a > 0.6) & (b > 0.6)
    return np.zeros(len(x), bool)


def sample_face_colors(rng: np.random.Generator, t: dict) -> np.ndarray:
    """Albedo (F, 3) float32 in [0, 1]: a random outfit and skin tone, asymmetric front/back and left/right.

    t: the tables of :func:`face_tables`. Front: a face (eyes, brows, mouth, a nose tone), a print on the chest,
    a zip or buttons, toe caps; back: hair down the back of the head, a yoke and a seam on the top, back pockets.
    One side (random per person): a sleeve or armband of another colour, a watch, a stripe down one leg, a bag
    strap from that shoulder. Cloth patterns (stripes, checks, dots) follow template coordinates.
    """
    reg, pos, facing, side = t["regions"], t["pos"], t["facing"], t["side"]
    x, y = pos[:, 0], pos[:, 1]
    tone = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(tone)
    skin = (_SKIN_TONES[i] * (1 - (tone - i)) + _SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] * (tone - i)) / 255.0
    hair = np.array([0.08, 0.06, 0.05]) + rng.uniform(0, 0.45) * np.array([1.0, 0.8, 0.5]) * rng.uniform(0.3, 1)
    top, bottom, shoes = _random_cloth(rng), _random_cloth(rng), _random_cloth(rng) * rng.uniform(0.3, 1.0)
    long_sleeves, long_legs = rng.uniform() < 0.6, rng.uniform() < 0.75
    table = np.stack([skin, skin, top, top if long_sleeves else skin, bottom, bottom if long_legs else skin,
                      shoes, hair]).astype(np.float32)
    cols = table[reg]
    on_top = (reg == TOP) | (long_sleeves & (reg == SLEEVE))
    on_bottom = (reg == BOTTOM) | (long_legs & (reg == LEG))
    cols[on_top & _pattern(rng, x, y)] = _contrast(rng, top) * 0.5 + top * 0.5
    cols[on_bottom & _pattern(rng, x, y) & (rng.uniform() < 0.5)] = bottom * 0.7
    # back of the top: a yoke of another shade and a seam down the spine
    cols[t["yoke"] & (rng.uniform() < 0.7)] = _contrast(rng, top) * 0.6 + top * 0.4
    cols[t["seam"]] = top * 0.35
    # front of the top: a print (box, disc or ring) on the chest, then a zip or buttons
    chest_y = float(np.median(y[t["chest"]])) if t["chest"].any() else 0.0
    cx, cy = rng.uniform(-0.05, 0.05), chest_y + rng.uniform(-0.03, 0.03)
    w = rng.uniform(0.05, 0.1)
    d = np.maximum(np.abs(x - cx), np.abs(y - cy)) if rng.uniform() < 0.5 else np.hypot(x - cx, y - cy)
    shape = (d < w) & ((d > 0.5 * w) | (rng.uniform() < 0.6))
    cols[t["chest"] & shape & (rng.uniform() < 0.9)] = _contrast(rng, top)
    closure = rng.uniform()
    if closure < 0.3:
        cols[t["zip"]] = np.array([0.75, 0.75, 0.7]) if top.mean() < 0.45 else np.array([0.12, 0.12, 0.12])
    elif closure < 0.6:
        cols[t["zip"] & (np.sin(y * (2 * np.pi / 0.07)) > 0.5)] = _contrast(rng, top)
    # head: hair down the back (length per person), a face on the front
    back_head = ((reg == HEAD) | (reg == HAIR)) & (facing < 0.1) & (t["head_h"] > rng.uniform(0.05, 0.4))
    cols[back_head] = hair
    cols[t["nose"]] = skin * np.array([0.93, 0.85, 0.83])
    cols[t["mouth"]] = skin * np.array([0.6, 0.35, 0.35])
    cols[t["eyes"]] = np.array([0.05, 0.04, 0.04])
    cols[t["brows"]] = hair * 0.6
    # feet: toe caps and soles of other colours
    if rng.uniform() < 0.8:
        cols[t["toe_caps"]] = _contrast(rng, shoes)
    cols[t["soles"]] = np.array([0.9, 0.9, 0.88]) if rng.uniform() < 0.5 else np.array([0.08, 0.08, 0.08])
    cols[t["back_pockets"] & on_bottom] = bottom * 0.55
    # one side of the person: sleeve / armband, watch, leg stripe, bag strap
    s = 1 if rng.uniform() < 0.5 else -1
    arm = np.isin(t["part"], [16, 17, 18, 19]) & (side == s)
    if rng.uniform() < 0.5:
        cols[arm & on_top] = _contrast(rng, top)
    else:
        ax = np.abs(x)
        a0 = rng.uniform(0.3, 0.5)
        cols[arm & (ax > a0) & (ax < a0 + 0.05)] = _contrast(rng, top)
    wrist = np.isin(t["part"], [20, 21]) & (side == -s) & (t["rel"][:, 0] * s > 0.0)
    cols[wrist & (rng.uniform() < 0.7)] = np.array([0.1, 0.1, 0.12]) * rng.uniform(0.5, 6)
    leg = np.isin(t["part"], [1, 2, 4, 5]) & (side == s) & on_bottom
    stripe = leg & (t["rel"][:, 0] * s > 0) & (np.abs(t["rel"][:, 2]) < 0.025)
    cols[stripe & (rng.uniform() < 0.6)] = _contrast(rng, bottom)
    if rng.uniform() < 0.5:  # strap from shoulder (s * 0.15, top) to the other hip, front and back
        y_sh, y_hip = float(y[reg == TOP].max()) if (reg == TOP).any() else 0.4, 0.0
        x0, x1 = s * 0.15, -s * 0.17
        nrm = np.hypot(y_sh - y_hip, x1 - x0)
        dist = np.abs((y_hip - y_sh) * (x - x0) - (x1 - x0) * (y - y_sh)) / nrm
        torso = np.isin(t["part"], [0, 3, 6, 9, 13, 14]) & ((reg == TOP) | (reg == BOTTOM))
        cols[torso & (dist < 0.022)] = np.array([0.25, 0.15, 0.08]) * rng.uniform(0.4, 2.0)
    cols *= rng.normal(1.0, 0.04, size=(len(cols), 1)).astype(np.float32)  # fabric / skin texture
    return np.clip(cols, 0.0, 1.0).astype(np.float32)


def sample_light(rng: np.random.Generator):
    """(light_dir (3,) camera frame towards the light: above and in front, ambient, colour (3,))."""
    d = np.array([rng.uniform(-1, 1), rng.uniform(-1.0, 0.3), -rng.uniform(0.2, 1.0)])
    return d / np.linalg.norm(d), float(rng.uniform(0.25, 0.55)), rng.uniform(0.85, 1.0, size=3)


# ----------------------------------------------------------------------------------------- backgrounds
_NOISE_BANK = None
_BANK_SIZE = 512


def gaussian_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """(H, W, 3) float32 standard normal noise (H, W <= 512): a random window of a fixed noise bank.

    Drawing 230k fresh normals costs ~7 ms; a window of a bank made once per process costs nothing and is
    deterministic given ``rng``.
    """
    global _NOISE_BANK
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(20201).standard_normal((_BANK_SIZE, _BANK_SIZE, 3), dtype=np.float32)
    h, w = shape[:2]
    y0, x0 = int(rng.integers(0, _BANK_SIZE - h + 1)), int(rng.integers(0, _BANK_SIZE - w + 1))
    return _NOISE_BANK[y0:y0 + h, x0:x0 + w]


def _smooth_noise(rng, h, w, cells, amp):
    small = (rng.standard_normal(size=(max(2, h // cells), max(2, w // cells), 3), dtype=np.float32)
             * np.float32(amp))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def procedural_background(rng: np.random.Generator, size=(240, 320), clutter: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: a random indoor/outdoor-like scene: a wall/sky gradient, a floor below a random
    horizon, random shapes (boxes, poles, ellipses, lines), smooth colour noise and a little blur.

    clutter: scales the number of shapes (1: 4-19 of them; 0: none, a bare wall and floor). With clutter 1 the
    random stream is the one this function always drew, so existing seeds give the same images."""
    H, W = size
    c1, c2, floor = (_random_cloth(rng) for _ in range(3))
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = np.repeat((c1 * (1 - y) + c2 * y).astype(np.float32), W, axis=1)
    horizon = int(rng.uniform(0.3, 0.85) * H)
    img[horizon:] = floor * (0.8 + 0.4 * y[horizon:])
    img = np.clip(img * 255, 0, 255)
    for _ in range(int(round(int(rng.integers(4, 20)) * float(clutter)))):
        col = tuple(float(c) for c in _random_cloth(rng) * 255)
        kind = rng.integers(4)
        x0, y0 = int(rng.integers(-W // 4, W)), int(rng.integers(-H // 4, H))
        sw, sh = int(rng.integers(5, W // 2)), int(rng.integers(5, H // 2))
        if kind == 0:
            cv2.rectangle(img, (x0, y0), (x0 + sw, y0 + sh), col, -1)
        elif kind == 1:
            cv2.rectangle(img, (x0, 0), (x0 + max(3, sw // 6), H), col, -1)  # pole / door frame
        elif kind == 2:
            cv2.ellipse(img, (x0, y0), (sw // 2 + 1, sh // 2 + 1), float(rng.uniform(0, 180)), 0, 360, col, -1)
        else:
            cv2.line(img, (x0, y0), (int(rng.integers(0, W)), int(rng.integers(0, H))), col,
                     int(rng.integers(1, 6)))
    img += _smooth_noise(rng, H, W, int(rng.integers(8, 40)), rng.uniform(5, 30))
    img += gaussian_noise(rng, img.shape) * np.float32(rng.uniform(0, 6))
    img = np.clip(img, 0, 255).astype(np.uint8)
    k = float(rng.uniform(0.3, 1.5))
    return cv2.GaussianBlur(img, (0, 0), k)


def list_images(folder: str) -> list[str]:
    """Sorted image paths under ``folder`` (recursive); a clear error if there are none."""
    out = schema.list_images(folder)
    if not out:
        raise FileNotFoundError(f"no images ({', '.join(schema.IMAGE_EXTENSIONS)}) found under '{folder}'")
    return out


def image_background(rng: np.random.Generator, paths: list[str], size=(240, 320)) -> np.ndarray:
    """(H, W, 3) uint8 RGB: a random crop (of the target aspect ratio, 50-100% of the image) of a random image."""
    H, W = size
    path = paths[int(rng.integers(len(paths)))]
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read background image '{path}'")
    h, w = bgr.shape[:2]
    s = rng.uniform(0.5, 1.0)
    ch = min(h, int(round(min(h, w * H / W) * s)))
    cw = min(w, int(round(ch * W / H)))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = cv2.resize(bgr[y0:y0 + ch, x0:x0 + cw], (W, H), interpolation=cv2.INTER_AREA)
    if rng.uniform() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out[..., ::-1])


def draw_occluder(rng: np.random.Generator, img: np.ndarray, body_box) -> np.ndarray:
    """Draw one random object over part of ``body_box`` (x0, y0, x1, y1) in place; return its (H, W) bool mask."""
    H, W = img.shape[:2]
    x0, y0, x1, y1 = body_box
    bw, bh = max(x1 - x0, 4.0), max(y1 - y0, 4.0)
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    rw, rh = bw * rng.uniform(0.15, 0.5), bh * rng.uniform(0.1, 0.3)
    m = np.zeros((H, W), np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        cv2.ellipse(m, (int(cx), int(cy)), (int(rw / 2) + 1, int(rh / 2) + 1), float(rng.uniform(0, 180)),
                    0, 360, 1, -1)
    elif kind == 1:
        pts = np.stack([cx + rng.uniform(-rw, rw, 6), cy + rng.uniform(-rh, rh, 6)], 1)
        cv2.fillPoly(m, [cv2.convexHull(pts.astype(np.int32))], 1)
    else:
        cv2.rectangle(m, (int(cx - rw / 2), int(cy - rh / 2)), (int(cx + rw / 2), int(cy + rh / 2)), 1, -1)
    mask = m.astype(bool)
    col = _random_cloth(rng) * 255
    tex = np.clip(col + _smooth_noise(rng, H, W, 6, 25.0), 0, 255)
    img[mask] = tex[mask].astype(np.uint8)
    return mask
