"""The paper's crop (smplr_tf.data.crop): box geometry, intrinsics consistent with the resampled image, padding."""

import numpy as np
import pytest

from smplr_tf.data import crop

K = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])


def test_project_matches_pinhole():
    p = np.array([[0.5, -0.25, 4.0], [0.0, 0.0, 2.0]])
    uv = crop.project(p, K)
    np.testing.assert_allclose(uv, [[160 + 600 * 0.125, 120 - 600 * 0.0625], [160, 120]], atol=1e-4)


@pytest.mark.parametrize("root", [[0.0, 0.0, 5.0], [0.4, -0.2, 3.0], [-1.0, 0.7, 7.0]])
def test_box_is_the_projected_square(root):
    root = np.asarray(root)
    box = crop.crop_box(root, K)
    # Corners of the 2.5 m square perpendicular to the optical axis, centred on the root.
    corners = root + np.array([[-1.25, -1.25, 0.0], [1.25, 1.25, 0.0]])
    uv = crop.project(corners, K)
    np.testing.assert_allclose(box, uv.reshape(-1), atol=1e-3)
    assert box[2] - box[0] == pytest.approx(600 * 2.5 / root[2], rel=1e-5)


@pytest.mark.parametrize("size", [256, 64])
def test_root_lands_at_the_crop_centre(size):
    root = np.array([0.3, 0.1, 4.0])
    Kc = crop.crop_intrinsics(K, crop.crop_box(root, K), size)
    np.testing.assert_allclose(crop.project(root, Kc), [(size - 1) / 2] * 2, atol=1e-3)


def _blob(shape, centre, sigma=2.5):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma ** 2))


def _centroid(img):
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    w = img / img.sum()
    return np.array([(w * xx).sum(), (w * yy).sum()])


@pytest.mark.parametrize("seed", range(4))
def test_intrinsics_agree_with_crop_image(seed):
    """A point drawn in the source image, cropped, sits where the crop intrinsics project it."""
    rng = np.random.default_rng(seed)
    Ka = K.copy()
    Ka[1, 1] = 600.0 * rng.uniform(0.9, 1.1)  # also unequal focal lengths
    root = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(4, 8)])
    box = crop.crop_box(root, Ka)
    Kc = crop.crop_intrinsics(Ka, box, 256)
    p = root + np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-0.3, 0.3)])
    src = _blob((240, 320), crop.project(p, Ka))
    out = crop.crop_image(src.astype(np.float32), box, 256)
    np.testing.assert_allclose(_centroid(out), crop.project(p, Kc), atol=0.15)


def test_zero_padding_and_pad_image():
    img = np.full((240, 320, 3), 100, np.uint8)
    box = np.array([-160.0, 0.0, 160.0, 320.0])  # left half and bottom quarter leave the frame
    out = crop.crop_image(img, box, 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert (out[10, 10] == 0).all() and (out[10, 100] == 100).all() and (out[120, 100] == 0).all()
    pad = np.full((50, 70, 3), 200, np.uint8)
    out = crop.crop_image(img, box, 128, pad=pad)
    assert (out[10, 10] == 200).all() and (out[10, 100] == 100).all() and (out[120, 100] == 200).all()
    # The seam blends, never overshoots.
    assert out.min() >= 100 and out.max() <= 200


def test_grey_and_float_images_and_errors():
    img = np.arange(240 * 320, dtype=np.float32).reshape(240, 320)
    out = crop.crop_image(img, [0, 0, 320, 240], 32)
    assert out.shape == (32, 32) and out.dtype == np.float32
    with pytest.raises(ValueError):
        crop.crop_box([0, 0, -1.0], K)
    with pytest.raises(ValueError):
        crop.crop_image(img, [10, 10, 10, 20])
