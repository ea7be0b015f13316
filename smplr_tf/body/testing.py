"""Random but well-formed body-model files, for tests (no licensed SMPL file needed).

* :func:`random_model_data` -> :class:`~smplr_tf.body.model_io.BodyModelData` in SMPL's layout (default SMPL's
  exact sizes: 6890 vertices, 24 joints, 10 betas, 207 pose-basis entries, 13776 faces).
* :func:`write_random_model` writes it as an ``.npz`` in our format.
* :func:`write_official_style_pkl` writes it as an official-looking SMPL ``.pkl``: a protocol-2 pickle of a
  dict whose arrays are wrapped in objects of classes ``chumpy.ch.Ch`` / ``chumpy.reordering.Select`` and whose
  ``J_regressor`` is an old-style ``scipy.sparse.csc.csc_matrix`` (state ``_shape``/``data``/``indices``/
  ``indptr``), which is what the official files hold. Chumpy is not needed to write or to read it.

The geometry is a crude person: 24 joints at roughly human rest positions (metres, y up, T-pose), vertices
scattered around the 23 bones, skinning weights a softmax of the distance to the joints (top 4 kept, rows sum
to 1), a sparse non-negative regressor (each joint: the 8 nearest vertices, rows sum to 1), smooth random
shape / pose blend shapes.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types

import numpy as np

from smplr_tf.body import skeleton
from smplr_tf.body.model_io import NUM_BETAS, NUM_POSE_BASIS, BodyModelData

SMPL_NUM_VERTICES = 6890
SMPL_NUM_FACES = 13776

# Rough rest-pose joint positions of an adult (metres, y up, x to the body's left), our own numbers.
_REST_JOINTS = np.array([
    [0.00, 0.00, 0.00], [0.06, -0.09, 0.00], [-0.06, -0.09, 0.00], [0.00, 0.11, -0.02],
    [0.10, -0.47, 0.00], [-0.10, -0.47, 0.00], [0.00, 0.24, 0.00], [0.09, -0.87, -0.04],
    [-0.09, -0.87, -0.04], [0.00, 0.30, 0.02], [0.11, -0.93, 0.08], [-0.11, -0.93, 0.08],
    [0.00, 0.51, -0.01], [0.07, 0.42, 0.00], [-0.07, 0.42, 0.00], [0.00, 0.58, 0.05],
    [0.17, 0.45, -0.01], [-0.17, 0.45, -0.01], [0.42, 0.43, -0.03], [-0.42, 0.43, -0.03],
    [0.67, 0.44, -0.03], [-0.67, 0.44, -0.03], [0.75, 0.43, -0.04], [-0.75, 0.43, -0.04],
], dtype=np.float64) + np.array([0.0, -0.22, 0.03])


def random_model_data(num_vertices: int = SMPL_NUM_VERTICES, seed: int = 0, gender: str = "female",
                      num_faces: int | None = None) -> BodyModelData:
    """A random body model in SMPL's layout (see the module docstring). Deterministic given the seed."""
    rng = np.random.default_rng(seed)
    V = int(num_vertices)
    if V < 3:
        raise ValueError("num_vertices must be >= 3")
    F = SMPL_NUM_FACES if num_faces is None else int(num_faces)
    if num_faces is None and V != SMPL_NUM_VERTICES:
        F = 2 * V - 4
    scale = 1.0 + (0.05 if gender == "male" else -0.03)
    joints = _REST_JOINTS * scale + rng.normal(0.0, 0.005, _REST_JOINTS.shape)
    parents = skeleton.JOINT_PARENTS
    # Vertices scattered around the bones (parent -> child segment), 2-8 cm off the axis.
    bone = rng.integers(1, skeleton.NUM_JOINTS, size=V)
    u = rng.uniform(0.0, 1.0, size=(V, 1))
    axis_pts = joints[parents[bone]] * (1 - u) + joints[bone] * u
    direction = rng.normal(size=(V, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    v_template = axis_pts + direction * rng.uniform(0.02, 0.08, size=(V, 1))
    order = np.lexsort((u[:, 0], bone))  # neighbours in index order lie close together (faces below)
    v_template = v_template[order]
    # Skinning weights: softmax of -distance / 5 cm, the 4 largest kept.
    d = np.linalg.norm(v_template[:, None, :] - joints[None, :, :], axis=-1)
    logits = -d / 0.05
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    k = min(4, skeleton.NUM_JOINTS)
    cut = np.sort(w, axis=1)[:, -k][:, None]
    w = np.where(w >= cut, w, 0.0)
    weights = w / w.sum(axis=1, keepdims=True)
    # Sparse non-negative regressor: each joint from its nearest vertices.
    n_near = min(8, V)
    J_regressor = np.zeros((skeleton.NUM_JOINTS, V))
    for j in range(skeleton.NUM_JOINTS):
        near = np.argsort(d[:, j])[:n_near]
        r = rng.uniform(0.5, 1.5, size=n_near)
        J_regressor[j, near] = r / r.sum()
    # Smooth random blend shapes: per-joint random fields blended by the skinning weights, plus a little noise.
    shapedirs = (weights @ rng.normal(0.0, 0.02, (skeleton.NUM_JOINTS, 3 * NUM_BETAS))).reshape(V, 3, NUM_BETAS)
    shapedirs += rng.normal(0.0, 0.002, shapedirs.shape)
    posedirs = (weights @ rng.normal(0.0, 0.01, (skeleton.NUM_JOINTS, 3 * NUM_POSE_BASIS))).reshape(
        V, 3, NUM_POSE_BASIS)
    posedirs += rng.normal(0.0, 0.001, posedirs.shape)
    base = (np.arange(F) * max(V - 2, 1)) // max(F, 1)
    f = np.stack([base, (base + 1) % V, (base + 2) % V], axis=1)
    if V == SMPL_NUM_VERTICES:
        landmark_ids = skeleton.SMPL_LANDMARK_VERTEX_IDS.copy()
    else:
        landmark_ids = rng.choice(V, size=skeleton.NUM_LANDMARKS, replace=V < skeleton.NUM_LANDMARKS)
    kintree = np.stack([parents, np.arange(skeleton.NUM_JOINTS)]).astype(np.int64)
    return BodyModelData(
        v_template=v_template.astype(np.float32), shapedirs=shapedirs.astype(np.float32),
        posedirs=posedirs.astype(np.float32), J_regressor=J_regressor.astype(np.float32),
        weights=weights.astype(np.float32), kintree_table=kintree, f=f.astype(np.int32),
        landmark_ids=np.asarray(landmark_ids, dtype=np.int32), gender=gender, path="<random>")


def write_random_model(path, num_vertices: int = SMPL_NUM_VERTICES, seed: int = 0, gender: str = "female",
                       num_faces: int | None = None) -> BodyModelData:
    """Write :func:`random_model_data` to ``path`` as an ``.npz`` in our format; returns the data written."""
    data = random_model_data(num_vertices, seed, gender, num_faces)
    with open(path, "wb") as fh:  # a file handle keeps numpy from appending ".npz"
        np.savez(fh, **data.to_npz_dict())
    data.path = str(path)
    return data


# ------------------------------------------------------------------------------- official-style pickle


class _FakeCh:
    """Pickles like a ``chumpy.ch.Ch``: its state is the object's __dict__ with the array under ``x``."""

    def __init__(self, x):
        self.x = np.asarray(x, dtype=np.float64)  # official files hold float64
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}

    def __getstate__(self):
        return dict(self.__dict__)


class _FakeSelect:
    """Pickles like a ``chumpy.reordering.Select``: ``a`` (a Ch), flat ``idxs`` and ``preferred_shape``."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, np.asarray(idxs, dtype=np.int64), tuple(preferred_shape)
        self._dirty_vars = set()

    def __getstate__(self):
        return dict(self.__dict__)


class _FakeCscMatrix:
    """Pickles like a scipy < 1.8 ``scipy.sparse.csc.csc_matrix`` (its __dict__ as state)."""

    def __init__(self, dense):
        import scipy.sparse as sp

        m = sp.csc_matrix(dense)
        self._shape, self.maxprint, self.format = m.shape, 50, "csc"
        self.data, self.indices, self.indptr = m.data, m.indices, m.indptr

    def __getstate__(self):
        return dict(self.__dict__)


@contextlib.contextmanager
def _fake_modules():
    """Make the fake classes importable under the module names the official files use (restored on exit)."""
    fakes = {"chumpy": {}, "chumpy.ch": {"Ch": _FakeCh}, "chumpy.reordering": {"Select": _FakeSelect},
             "scipy.sparse.csc": {"csc_matrix": _FakeCscMatrix}}
    saved = {name: sys.modules.get(name) for name in fakes}
    saved_names = {cls: (cls.__module__, cls.__qualname__) for cls in (_FakeCh, _FakeSelect, _FakeCscMatrix)}
    try:
        for name, members in fakes.items():
            mod = types.ModuleType(name)
            for attr, cls in members.items():
                setattr(mod, attr, cls)
                cls.__module__, cls.__qualname__ = name, attr
            sys.modules[name] = mod
        yield
    finally:
        for cls, (mod, qual) in saved_names.items():
            cls.__module__, cls.__qualname__ = mod, qual
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def write_official_style_pkl(path, num_vertices: int = SMPL_NUM_VERTICES, seed: int = 0, gender: str = "female",
                             num_faces: int | None = None, data: BodyModelData | None = None) -> BodyModelData:
    """Write a random model (or ``data``) as an official-looking SMPL ``.pkl``; returns the data written.

    Keys as in ``basicModel_*_lbs_10_207_0_v1.0.0.pkl``: v_template, shapedirs (a ``reordering.Select`` over a
    Ch), posedirs, weights (Ch), J_regressor (old csc_matrix), kintree_table (uint32 root parent 2**32 - 1),
    f (uint32), J, bs_style, bs_type, plus unused priors. No gender and no landmark ids are stored.
    """
    if data is None:
        data = random_model_data(num_vertices, seed, gender, num_faces)
    kintree = data.kintree_table.astype(np.int64).copy()
    kintree[0, 0] = 2 ** 32 - 1
    shp = data.shapedirs.astype(np.float64)
    payload = {
        "v_template": _FakeCh(data.v_template),
        "shapedirs": _FakeSelect(_FakeCh(shp.reshape(-1)), np.arange(shp.size), shp.shape),
        "posedirs": _FakeCh(data.posedirs),
        "weights": _FakeCh(data.weights),
        "J_regressor": _FakeCscMatrix(data.J_regressor.astype(np.float64)),
        "J_regressor_prior": _FakeCscMatrix(data.J_regressor.astype(np.float64)),
        "weights_prior": data.weights.astype(np.float64),
        "kintree_table": kintree.astype(np.uint32),
        "f": data.f.astype(np.uint32),
        "J": data.J_regressor.astype(np.float64) @ data.v_template.astype(np.float64),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "vert_sym_idxs": np.arange(data.num_vertices, dtype=np.int64),
    }
    with _fake_modules(), open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=2)
    out = BodyModelData(**{k: getattr(data, k) for k in ("v_template", "shapedirs", "posedirs", "J_regressor",
                                                         "weights", "kintree_table", "f", "landmark_ids",
                                                         "gender")}, path=str(path))
    return out
