"""Appearance of synthetic people and scenes: clothing / skin colours per body part, light, backgrounds,
occluders. NumPy / OpenCV only (runs in the rendering workers; never imports TensorFlow).

Body parts come from the model's skinning weights: each vertex belongs to the joint with its largest
weight (``argmax``), and each face to the part of its first vertex. Joint -> clothing region:

* skin: neck, head, wrists / hands (always); forearms with short sleeves; shanks with shorts;
* top: pelvis-up torso (spine1..3), collars, upper arms, forearms with long sleeves;
* bottom: pelvis, thighs, shanks with long trousers;
* shoes: ankles, feet.
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



def face_regions(weights: np.ndarray, faces: np.ndarray, v_template: np.ndarray) -> np.ndarray:
    """(F,) int region of every face from skinning weights (V, 24), faces (F, 3) and the template (V, 3).

    The upper part of the head (above the eyes' height on the template, back of the head lower) is HAIR.
    """
    part = np.argmax(weights, axis=1)
    region = np.vectorize(_JOINT_REGION.get)(part).astype(np.int32)
    fr = region[faces[:, 0]]
    head = fr == HEAD
    if head.any():
        c = v_template[faces].mean(axis=1)
        hv = v_template[part == 15]
        y0, y1 = hv[:, 1].min(), hv[:, 1].max()
        z_mid = np.median(hv[:, 2])
        h = (c[:, 1] - y0) / max(y1 - y0, 1e-6)
        hair = head & ((h > 0.72) | ((h > 0.35) & (c[:, 2] < z_mid - 0.02)))
        fr = np.where(hair, HAIR, fr)
    return fr


def _random_cloth(rng):
    """RGB in [0, 1]: saturated or muted colours, dark to light."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.0, 0.9) * 255, rng.uniform(0.15, 0.95) * 255]]],
                   np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def sample_face_colors(rng: np.random.Generator, regions: np.ndarray, template_y: np.ndarray) -> np.ndarray:
    """Albedo (F, 3) float32 in [0, 1]: a random outfit and skin tone on the face regions.

    regions: (F,) from :func:`face_regions`; template_y: (F,) height of each face on the template (metres),
    used for horizontal stripes on some tops.
    """
    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(t)
    skin = (_SKIN_TONES[i] * (1 - (t - i)) + _SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] * (t - i)) / 255.0
    hair = np.array([0.08, 0.06, 0.05]) + rng.uniform(0, 0.45) * np.array([1.0, 0.8, 0.5]) * rng.uniform(0.3, 1)
    top, bottom, shoes = _random_cloth(rng), _random_cloth(rng), _random_cloth(rng) * rng.uniform(0.3, 1.0)
    long_sleeves, long_legs = rng.uniform() < 0.6, rng.uniform() < 0.75
    table = np.stack([skin, skin, top, top if long_sleeves else skin, bottom, bottom if long_legs else skin,
                      shoes, hair]).astype(np.float32)
    cols = table[regions]
    if rng.uniform() < 0.3:  # stripes on the top
        period = rng.uniform(0.04, 0.15)
        on_top = (regions == TOP) | (long_sleeves & (regions == SLEEVE))
        stripe = (np.sin(template_y * 2 * np.pi / period) > 0) & on_top
        cols[stripe] = _random_cloth(rng)
    cols *= rng.normal(1.0, 0.04, size=(len(cols), 1)).astype(np.float32)  # fabric / skin texture
    return np.clip(cols, 0.0, 1.0)


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
