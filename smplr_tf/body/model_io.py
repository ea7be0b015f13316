"""Body-model files: official SMPL ``.pkl`` (read without chumpy), official-style and our ``.npz``.

A model file holds one gender of an SMPL-layout body model. Whatever its origin, it is loaded into a
:class:`BodyModelData` whose numpy fields are named as the keys of our ``.npz`` format:

=================  ============  ================================================================
field              shape         meaning
=================  ============  ================================================================
v_template         (V, 3) f32    rest-pose template, metres
shapedirs          (V, 3, 10)    shape blend shapes (first 10 components), metres per unit beta
posedirs           (V, 3, 207)   pose blend shapes on the 23 x 9 entries of (R_j - I), metres
J_regressor        (24, V) f32   dense joint regressor (rows sum to 1)
weights            (V, 24) f32   skinning weights (rows sum to 1)
kintree_table      (2, 24) i64   row 0: parent of each joint (-1 for the root), row 1: joint ids
f                  (F, 3) i32    triangles
landmark_ids       (18,) i32     vertex id of each SMPLR landmark (``skeleton.LANDMARK_NAMES`` order)
gender             str           female | male | neutral
=================  ============  ================================================================

Official ``.pkl`` files pickle ``chumpy`` objects (which does not install on Python 3.11) and a
``scipy.sparse`` regressor from an old scipy. :func:`load_model_file` reads them with a restricted
unpickler that maps every ``chumpy.*`` class to a small stand-in rebuilding the ndarray from the pickled
state (``x`` for ``Ch``; ``a``/``idxs``/``preferred_shape`` for ``reordering.Select``), maps
``scipy.sparse.*`` matrices to a stand-in rebuilt with today's scipy, and refuses any other class.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smplr_tf.body import skeleton

NUM_JOINTS = skeleton.NUM_JOINTS
NUM_BETAS = skeleton.NUM_BETAS
NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9  # 207
GENDERS = skeleton.GENDERS
ASSETS_DIR = Path(__file__).resolve().parent / "assets"

# Official file names per gender, in the order they are tried (matched case-insensitively; .pkl or .npz).
OFFICIAL_STEMS = {
    "female": ("basicModel_f_lbs_10_207_0_v1.0.0", "SMPL_FEMALE", "basicModel_f_lbs_10_207_0_v1.1.0"),
    "male": ("basicModel_m_lbs_10_207_0_v1.0.0", "SMPL_MALE", "basicModel_m_lbs_10_207_0_v1.1.0"),
    "neutral": ("basicModel_neutral_lbs_10_207_0_v1.0.0", "SMPL_NEUTRAL", "basicmodel_neutral_lbs_10_207_0_v1.1.0"),
}
FREE_MODEL_FILES = {g: ASSETS_DIR / f"free_{g}.npz" for g in GENDERS}


class ModelFileError(ValueError):
    """A body-model file that cannot be used: the message names the file and, where known, the key."""

    def __init__(self, path, message: str, key: str | None = None):
        self.path = str(path)
        self.key = key
        where = f"{self.path}" + (f" [key '{key}']" if key else "")
        super().__init__(f"body model file {where}: {message}")


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The body-model file (or directory) does not exist."""


@dataclass
class BodyModelData:
    """One gender of an SMPL-layout body model, as numpy arrays (see the module docstring for shapes)."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray
    landmark_ids: np.ndarray
    gender: str
    path: str = ""
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def parents(self) -> np.ndarray:
        """(24,) int32 parent joint of each joint, -1 for the root."""
        return self.kintree_table[0].astype(np.int32)

    def to_npz_dict(self) -> dict:
        """The arrays of our ``.npz`` format (``np.savez(path, **data.to_npz_dict())``)."""
        return {k: getattr(self, k) for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                                              "kintree_table", "f", "landmark_ids")} | {"gender": np.array(self.gender)}


# --------------------------------------------------------------------------------------------- pickle


class _ChumpyStandIn:
    """Takes the place of any ``chumpy`` class while unpickling; keeps the pickled state only."""

    chumpy_class = "chumpy.?"

    def __setstate__(self, state):
        self._state = state


class _SparseStandIn:
    """Takes the place of an old ``scipy.sparse`` matrix class; rebuilt with today's scipy afterwards."""

    sparse_format = "csc"

    def __setstate__(self, state):
        self._state = state


def _chumpy_class(module: str, name: str):
    return type(name, (_ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})


def _sparse_class(fmt: str):
    return type(f"{fmt}_matrix", (_SparseStandIn,), {"sparse_format": fmt})


# (module, name) pairs an official SMPL pickle may reference besides chumpy / scipy.sparse.
_ALLOWED_GLOBALS = {
    ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    ("builtins", "object"), ("__builtin__", "object"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "slice"), ("__builtin__", "complex"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how a protocol-2 pickle written by Python 3 stores bytes
}
_NUMPY_MODULE = re.compile(r"^numpy(\.core|\._core)?(\.multiarray|\.numeric)?$")


class _ModelUnpickler(pickle.Unpickler):
    """Restricted unpickler: numpy arrays, chumpy stand-ins, sparse stand-ins, a few builtins; nothing else."""

    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(module, name)
        if module == "scipy.sparse" or module.startswith("scipy.sparse."):
            m = re.fullmatch(r"(csc|csr|coo)_(matrix|array)", name)
            if m:
                return _sparse_class(m.group(1))
        if _NUMPY_MODULE.match(module) and name in ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"):
            return super().find_class(module.replace("numpy.core", "numpy._core"), name)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load class {module}.{name} (not part of an SMPL model file)")


def _materialise(value, path, key):
    """Turn chumpy / sparse stand-ins into numpy arrays (recursively); other values pass through."""
    if isinstance(value, _ChumpyStandIn):
        state = value._state
        if isinstance(state, tuple):  # (dict state, slot state)
            state = state[0]
        if not isinstance(state, dict):
            raise ModelFileError(path, f"unsupported {value.chumpy_class} state of type {type(state).__name__}", key)
        if "x" in state:
            return np.asarray(_materialise(state["x"], path, key))
        if "a" in state and "idxs" in state:  # chumpy.reordering.Select and friends
            src = np.asarray(_materialise(state["a"], path, key))
            out = src.reshape(-1)[np.asarray(state["idxs"], dtype=np.int64).reshape(-1)]
            shape = state.get("preferred_shape")
            return out.reshape(tuple(shape)) if shape is not None else out
        raise ModelFileError(path, f"unsupported {value.chumpy_class} object (state keys {sorted(state)})", key)
    if isinstance(value, _SparseStandIn):
        import scipy.sparse as sp

        st = value._state[0] if isinstance(value._state, tuple) else value._state
        try:
            shape = tuple(int(s) for s in st.get("_shape", st.get("shape")))
            if value.sparse_format == "coo":
                mat = sp.coo_matrix((st["data"], (st.get("row", st.get("rows")), st.get("col", st.get("cols")))),
                                    shape=shape)
            else:
                ctor = sp.csc_matrix if value.sparse_format == "csc" else sp.csr_matrix
                mat = ctor((np.asarray(st["data"]), np.asarray(st["indices"]), np.asarray(st["indptr"])), shape=shape)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(path, f"unreadable sparse matrix ({e})", key) from e
        return mat.toarray()
    if hasattr(value, "toarray") and hasattr(value, "tocsc"):  # a real scipy.sparse matrix
        return value.toarray()
    return value


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            raw = _ModelUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ModelFileError(path, f"not a readable SMPL pickle (truncated or corrupt?): "
                                   f"{type(e).__name__}: {e}") from e
    if not isinstance(raw, dict):
        raise ModelFileError(path, f"expected a pickled dict, got {type(raw).__name__}")
    return {str(k): _materialise(v, path, str(k)) for k, v in raw.items()}


def _load_npz(path: Path) -> dict:
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise ModelFileError(path, f"not a readable .npz archive (truncated or corrupt?): "
                                   f"{type(e).__name__}: {e}") from e
    out = {}
    with archive:
        for key in archive.files:
            try:
                out[key] = archive[key]
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
                raise ModelFileError(path, f"unreadable array ({type(e).__name__}: {e})", key) from e
    return out


# --------------------------------------------------------------------------------------------- checks


def _gender_from_name(path: Path) -> str | None:
    name = path.name.lower()
    for gender, stems in OFFICIAL_STEMS.items():
        if any(name.startswith(s.lower()) for s in stems):
            return gender
    for gender in GENDERS:  # our names, e.g. free_female.npz
        if re.search(rf"(^|[^a-z]){gender}([^a-z]|$)", name):
            return gender
    return None


def _array(raw: dict, path, key: str, dtype, ndim: int) -> np.ndarray:
    if key not in raw:
        raise ModelFileError(path, f"missing (keys present: {sorted(raw)})", key)
    try:
        arr = np.asarray(raw[key], dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ModelFileError(path, f"cannot be read as {np.dtype(dtype).name}: {e}", key) from e
    if arr.ndim != ndim:
        raise ModelFileError(path, f"expected {ndim} dimensions, got shape {arr.shape}", key)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ModelFileError(path, "contains NaN or inf", key)
    return arr


def _expect_shape(arr: np.ndarray, expected: tuple, path, key: str) -> None:
    ok = len(arr.shape) == len(expected) and all(e is None or e == s for s, e in zip(arr.shape, expected))
    if not ok:
        shown = tuple("V" if e is None else e for e in expected)
        raise ModelFileError(path, f"expected shape {shown}, got {arr.shape}", key)


def model_data_from_dict(raw: dict, path="<arrays>", gender: str | None = None) -> BodyModelData:
    """Validate a dict of arrays (our npz keys, or an official file's) into a :class:`BodyModelData`.

    Accepts shapedirs with more than 10 components (keeps the first 10), a sparse or dense J_regressor
    and an official kintree_table whose root parent is 2**32 - 1. Raises :class:`ModelFileError`.
    """
    path = str(path)
    v_template = _array(raw, path, "v_template", np.float32, 2)
    V = v_template.shape[0]
    _expect_shape(v_template, (None, 3), path, "v_template")
    if V < 1:
        raise ModelFileError(path, "has no vertices", "v_template")
    shapedirs = _array(raw, path, "shapedirs", np.float32, 3)
    if shapedirs.shape[:2] != (V, 3) or shapedirs.shape[2] < NUM_BETAS:
        raise ModelFileError(path, f"expected shape ({V}, 3, >= {NUM_BETAS}), got {shapedirs.shape}", "shapedirs")
    num_shape_components = int(shapedirs.shape[2])  # in the file (v1.1.0 files hold 300): kept in extras
    shapedirs = np.ascontiguousarray(shapedirs[:, :, :NUM_BETAS])
    posedirs = _array(raw, path, "posedirs", np.float32, 3)
    _expect_shape(posedirs, (V, 3, NUM_POSE_BASIS), path, "posedirs")
    jreg = raw.get("J_regressor")
    if jreg is not None and hasattr(jreg, "toarray"):
        raw = dict(raw, J_regressor=jreg.toarray())
    J_regressor = _array(raw, path, "J_regressor", np.float32, 2)
    _expect_shape(J_regressor, (NUM_JOINTS, V), path, "J_regressor")
    weights = _array(raw, path, "weights", np.float32, 2)
    _expect_shape(weights, (V, NUM_JOINTS), path, "weights")
    kintree = _array(raw, path, "kintree_table", np.int64, 2)
    _expect_shape(kintree, (2, NUM_JOINTS), path, "kintree_table")
    kintree = kintree.copy()
    kintree[0, 0] = -1  # official files store 2**32 - 1 for the root
    if not np.array_equal(kintree[0], skeleton.JOINT_PARENTS):
        raise ModelFileError(path, f"parents {kintree[0].tolist()} are not SMPL's kinematic tree", "kintree_table")
    f = _array(raw, path, "f", np.int64, 2)
    _expect_shape(f, (None, 3), path, "f")
    if f.size and (f.min() < 0 or f.max() >= V):
        raise ModelFileError(path, f"face indices outside [0, {V})", "f")
    if "landmark_ids" in raw:
        landmark_ids = _array(raw, path, "landmark_ids", np.int64, 1)
    elif V == 6890:
        landmark_ids = skeleton.SMPL_LANDMARK_VERTEX_IDS.astype(np.int64)
    else:
        raise ModelFileError(path, f"missing, and the official SMPL ids need 6890 vertices (this model has {V})",
                             "landmark_ids")
    _expect_shape(landmark_ids, (skeleton.NUM_LANDMARKS,), path, "landmark_ids")
    if landmark_ids.min() < 0 or landmark_ids.max() >= V:
        raise ModelFileError(path, f"vertex ids outside [0, {V})", "landmark_ids")
    if gender is None and "gender" in raw:
        g = raw["gender"]
        g = g.item() if isinstance(g, np.ndarray) else g
        gender = g.decode() if isinstance(g, bytes) else str(g)
    if gender is None:
        gender = _gender_from_name(Path(path)) or "neutral"
    gender = gender.lower()
    if gender not in GENDERS:
        raise ModelFileError(path, f"unknown gender {gender!r} (expected one of {GENDERS})", "gender")
    known = {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f",
             "landmark_ids", "gender"}
    return BodyModelData(
        v_template=v_template, shapedirs=shapedirs, posedirs=posedirs, J_regressor=J_regressor,
        weights=weights, kintree_table=kintree, f=f.astype(np.int32), landmark_ids=landmark_ids.astype(np.int32),
        gender=gender, path=path,
        extras={k: v for k, v in raw.items() if k not in known} | {"num_shape_components": num_shape_components})


def load_model_file(path, gender: str | None = None) -> BodyModelData:
    """Load one body-model file (``.pkl`` official, or ``.npz`` official-style / ours).

    gender: overrides the file's own (``gender`` key, else guessed from the official file name, else neutral).
    Raises :class:`ModelFileNotFoundError` for a missing file and :class:`ModelFileError` (naming the file and
    the key) for a truncated, corrupt or wrongly shaped one.
    """
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise ModelFileNotFoundError(path, "no such file" if not path.exists() else "not a regular file")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        raw = _load_pickle(path)
    elif suffix == ".npz":
        raw = _load_npz(path)
    else:
        raise ModelFileError(path, "expected a .pkl or .npz SMPL model file")
    return model_data_from_dict(raw, path, gender)


def find_model_files(smpl_dir=None) -> dict[str, str]:
    """Model file of each gender available: ``{"female": path, "male": path[, "neutral": path]}``.

    smpl_dir: a directory holding official files (``basicModel_{f,m}_lbs_10_207_0_v1.0.0.pkl``,
    ``SMPL_{FEMALE,MALE,NEUTRAL}.pkl`` or the same names as ``.npz``, any case), or our ``free_<gender>.npz``
    / ``<gender>.npz``. None: the free body model shipped in ``smplr_tf/body/assets``.
    Raises ModelFileNotFoundError when nothing usable is found.
    """
    if smpl_dir is None:
        found = {g: str(p) for g, p in FREE_MODEL_FILES.items() if p.is_file()}
        if not found:
            raise ModelFileNotFoundError(ASSETS_DIR, "the free body model (free_{female,male,neutral}.npz) is missing "
                                                     "from the package; pass smpl_dir= with official SMPL files")
        return found
    d = Path(os.fspath(smpl_dir)).expanduser()
    if not d.is_dir():
        raise ModelFileNotFoundError(d, "smpl_dir is not a directory")
    by_lower = {p.name.lower(): p for p in sorted(d.iterdir()) if p.is_file()}
    found = {}
    for gender in GENDERS:
        stems = OFFICIAL_STEMS[gender] + (f"free_{gender}", gender, f"smpl_{gender}")
        for stem in stems:
            hit = next((by_lower[n] for n in (f"{stem.lower()}.pkl", f"{stem.lower()}.npz") if n in by_lower), None)
            if hit is not None:
                found[gender] = str(hit)
                break
    if not found:
        expected = ", ".join(f"{s}.pkl|.npz" for g in GENDERS for s in OFFICIAL_STEMS[g][:2])
        raise ModelFileNotFoundError(d, f"no SMPL model file found; expected one of: {expected}")
    return found
