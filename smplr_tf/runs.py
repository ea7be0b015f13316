"""Run directories: where a training run keeps its flags, state, checkpoints, TensorBoard logs and weights.

Layout of ``<run_dir>/``::

    flags.txt            every flag of smplr_tf.flags' sections, one ``--name=value`` a line (a flagfile)
    run.json             {"stage", "finished", "epochs", "epochs_done", "last": {...}, "final": {...},
                         "last_stop": {...} after a run stopped on a NaN / inf}
    log.csv              one line per epoch: the losses and validation metrics (keras CSVLogger)
    metrics.json         what smplr_tf.evaluate measured (once evaluated)
    checkpoints/         the network's weights after the last epochs: epoch_003.weights.h5 ...
    backup/              keras BackupAndRestore state (trainer + optimizer) while a run is unfinished
    tb/                  TensorBoard: tb/train, tb/validation (scalars), tb/images, hparams in tb/
    final.weights.h5     the trained network (what load_model_from_run loads)
    network.json         what builds that network: {"format", "stage", "input", "config"}, the config being
                         the network's get_config() (smplr_tf.models.registry); runs trained before it
                         existed are rebuilt from flags.txt

A run is resumed by running the same command again (with, at most, the flags of RESUME_FREE_FLAGS changed,
e.g. a lower --lr after a diverged run); a finished run is never started again unless ``--overwrite`` is given.
The JSON files hold no NaN / Infinity tokens: :func:`write_json_atomic` writes a non-finite number as null.
"""

from __future__ import annotations

import json
import math
import os
import shutil

from absl import flags

from smplr_tf import flags as sflags
from smplr_tf.cli import UserError

FLAGS_FILE = "flags.txt"
RUN_FILE = "run.json"
FINAL_WEIGHTS = "final.weights.h5"
METRICS_NAME = "metrics.json"
LOG_CSV = "log.csv"
NETWORK_FILE = "network.json"
NETWORK_FORMAT = 1
CHECKPOINTS = "checkpoints"
BACKUP = "backup"
TB = "tb"

# Flags that may change between the first start and a resume of the same run.
RESUME_FREE_FLAGS = frozenset({"overwrite", "verbose", "epochs", "log_example_ids", "run_dir", "runs_root",
                               "distribution", "tb_images", "xla", "lr", "clipnorm", "max_train_seconds"})


class RunError(UserError, RuntimeError):
    """A run directory that cannot be used as asked (finished, other flags, missing files)."""


# --------------------------------------------------------------------------------------------- flags
def resolve_run_dir(cfg) -> str:
    """The run directory of ``cfg``: --run_dir, else <runs_root>/<run_name or stage>."""
    if cfg.run_dir:
        return cfg.run_dir
    return os.path.join(cfg.runs_root, cfg.run_name or cfg.stage)


def flags_text(cfg) -> str:
    """The training flags of ``cfg`` (a FlagValues holding them) as a flagfile: ``--name=value`` lines, sorted by
    name (absl's ``flags_into_string``; flags whose value is None are left out)."""
    fv = sflags.new_flag_values()
    for name in fv:
        if name in cfg:
            fv[name].value = cfg[name].value
    return fv.flags_into_string()


def parse_flags_text(text: str, where: str = "flags.txt"):
    """A flagfile's text -> a fresh, parsed FlagValues with every training flag (absl parses the lines).

    Blank lines and ``#`` / ``//`` comments are skipped, as in any absl flagfile; flags this version does not
    define (an older or newer run's) are ignored, so every run's flags.txt reads. A flag of
    ``smplr_tf.flags.LEGACY_FLAG_VALUES`` that the text does not name takes its legacy value (what runs did
    before the flag existed), not today's default. A line that is not a flag, or a value a flag does not
    accept, raises RunError naming ``where``."""
    fv = sflags.new_flag_values()
    args = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue
        if not line.startswith("--"):
            raise RunError(f"{where}: cannot read line {raw!r}")
        args.append(line)
    try:
        fv([where] + args, known_only=True)
    except flags.Error as e:
        raise RunError(f"{where}: {e}") from None
    for name, value in sflags.LEGACY_FLAG_VALUES.items():
        if name in fv and not fv[name].present:
            fv[name].value = value
    return fv


def flag_values(**overrides):
    """A fresh, parsed FlagValues with the defaults of every section and ``overrides`` (name=value) applied;
    what tests and scripts pass to smplr_tf.train.train()."""
    fv = sflags.new_flag_values()
    fv.mark_as_parsed()
    for name, value in overrides.items():
        if name not in fv:
            raise KeyError(f"unknown flag {name!r}")
        fv[name].value = value
        fv[name].present = 1
    return fv


def read_flags(run_dir: str):
    """The FlagValues a run was trained with (from its flags.txt)."""
    path = os.path.join(run_dir, FLAGS_FILE)
    if not os.path.exists(path):
        raise RunError(f"{path} not found: '{run_dir}' is not a smplr_tf run directory "
                       "(train one with python -m smplr_tf.train)")
    with open(path) as f:
        return parse_flags_text(f.read(), where=path)


def flags_dict(fv) -> dict:
    """name -> value of the smplr_tf section flags of a FlagValues."""
    return {n: fv[n].value for n in sflags.section_flag_names() if n in fv}


# --------------------------------------------------------------------------------------------- state
def read_run_json(run_dir: str) -> dict | None:
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def json_safe(obj):
    """``obj`` with every float NaN / inf replaced by None and numpy scalars / arrays made plain Python
    (JSON has no NaN: a NaN token breaks strict readers)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalar or array
        return json_safe(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json_atomic(path: str, obj, indent: int = 2, sort_keys: bool = True) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a temporary file, then a rename), non-finite numbers as
    null (:func:`json_safe`); strict JSON (``allow_nan=False``). The one JSON writer of run directories."""
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=sort_keys, allow_nan=False, default=float)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def update_run_json(run_dir: str, **fields) -> dict:
    state = read_run_json(run_dir) or {}
    state.update(fields)
    write_json_atomic(os.path.join(run_dir, RUN_FILE), state)
    return state


def prepare_run_dir(run_dir: str, cfg, write: bool = True) -> str:
    """Make ``run_dir`` ready for ``cfg``; return "new" or "resume".

    * no run there: create it, write flags.txt and run.json (finished false);
    * an unfinished run with the same flags (up to RESUME_FREE_FLAGS): "resume" (BackupAndRestore continues);
    * a finished run: RunError unless cfg.overwrite (then the directory is emptied and started again);
    * an unfinished run with other flags: RunError naming the differences, unless cfg.overwrite.
    ``write=False`` (non-chief workers) only checks.
    """
    state = read_run_json(run_dir)
    flags_path = os.path.join(run_dir, FLAGS_FILE)
    never_trained = (state is not None and not state.get("finished") and not state.get("epochs_done")
                     and not os.path.isdir(os.path.join(run_dir, BACKUP)))
    if never_trained and write:  # a start that failed before its first epoch (e.g. a wrong --data_dir)
        _clear_run_dir(run_dir)
        state = None
    if state is not None or os.path.exists(flags_path):
        if cfg.overwrite:
            if write:
                _clear_run_dir(run_dir)
        else:
            if state and state.get("finished"):
                final = state.get("final", {})
                raise RunError(
                    f"{run_dir} holds a finished '{state.get('stage')}' run ({state.get('epochs_done')} epochs, "
                    f"final {final}). Refusing to overwrite it: pass --overwrite to train it again, or choose "
                    "another --run_dir / --run_name.")
            if os.path.exists(flags_path):
                old = read_flags(run_dir)
                diff = [n for n in sflags.section_flag_names()
                        if n in cfg and n in old and n not in RESUME_FREE_FLAGS
                        and old[n].value != cfg[n].value]
                if diff:
                    shown = ", ".join(f"{n}: {old[n].value!r} -> {cfg[n].value!r}" for n in diff[:8])
                    raise RunError(f"{run_dir} holds an unfinished run with other flags ({shown}). Resume it with "
                                   "the same flags, or pass --overwrite to start again.")
            return "resume"
    if write:
        os.makedirs(run_dir, exist_ok=True)
        with open(flags_path + ".tmp", "w") as f:
            f.write(flags_text(cfg))
        os.replace(flags_path + ".tmp", flags_path)
        update_run_json(run_dir, stage=cfg.stage, finished=False, epochs=int(cfg.epochs), epochs_done=0)
    return "new"


def _clear_run_dir(run_dir: str) -> None:
    for name in (FLAGS_FILE, RUN_FILE, FINAL_WEIGHTS, NETWORK_FILE, METRICS_NAME, LOG_CSV):
        p = os.path.join(run_dir, name)
        if os.path.exists(p):
            os.remove(p)
    for name in (CHECKPOINTS, BACKUP, TB, "inputs", ".workers"):
        p = os.path.join(run_dir, name)
        if os.path.isdir(p):
            shutil.rmtree(p)


# --------------------------------------------------------------------------------------------- weights
def weights_path(run_dir: str, which: str = "final") -> str:
    """Path of a run's network weights: "final" (final.weights.h5), "latest" (last checkpoint), or
    "auto" (final if the run finished, else the latest checkpoint)."""
    final = os.path.join(run_dir, FINAL_WEIGHTS)
    if which in ("final", "auto") and os.path.exists(final):
        return final
    if which in ("latest", "auto"):
        ckpt_dir = os.path.join(run_dir, CHECKPOINTS)
        ckpts = sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".weights.h5")) if os.path.isdir(
            ckpt_dir) else []
        if ckpts:
            return os.path.join(ckpt_dir, ckpts[-1])
    raise RunError(f"{run_dir}: no {'final weights' if which == 'final' else 'weights'} found "
                   f"({FINAL_WEIGHTS} or {CHECKPOINTS}/*.weights.h5); has the run trained?")


def build_network(cfg):
    """The (untrained) network of the run described by ``cfg`` (FlagValues, or a dict as flags_dict gives):
    built from smplr_tf.models' flags -> config mapping; an e2e run's pipeline from its four component runs
    (their weights loaded)."""
    from smplr_tf.models import registry

    stage = cfg["stage"] if isinstance(cfg, dict) else cfg.stage
    if stage == "e2e":
        get = (lambda n: cfg[n]) if isinstance(cfg, dict) else (lambda n: getattr(cfg, n))
        return pipeline_from_runs(get("shn_run"), get("dae_run"), get("psi_run"), get("omega_run"))
    return registry.build_network(registry.config_from_flags(cfg, stage))


def write_network_json(run_dir: str, net, stage: str) -> str:
    """Write ``<run_dir>/network.json``: the config that rebuilds ``net`` and what it takes as input."""
    from smplr_tf.models import registry

    config = registry.network_config(net)
    doc = {"format": NETWORK_FORMAT, "stage": stage, "input": registry.input_convention(config), "config": config}
    path = os.path.join(run_dir, NETWORK_FILE)
    write_json_atomic(path, doc)
    return path


def read_network_json(run_dir: str) -> dict | None:
    """The contents of ``<run_dir>/network.json`` (None for a run that has none: trained before it existed)."""
    path = os.path.join(run_dir, NETWORK_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: cannot read it ({e})") from e
    if not isinstance(doc, dict) or "config" not in doc:
        raise RunError(f"{path}: not a network description (no 'config')")
    if int(doc.get("format", 0)) > NETWORK_FORMAT:
        raise RunError(f"{path}: format {doc.get('format')} is newer than this smplr_tf reads ({NETWORK_FORMAT})")
    return doc


def network_config_of_run(run_dir: str) -> dict:
    """The network config of a run: from its network.json, else (older runs) from its flags.txt."""
    from smplr_tf.models import registry

    doc = read_network_json(run_dir)
    if doc is not None:
        return doc["config"]
    fv = read_flags(run_dir)
    if fv.stage == "e2e":
        return _pipeline_config_of_runs(fv.shn_run, fv.dae_run, fv.psi_run, fv.omega_run,
                                        smpl_gender=str(getattr(fv, "smpl_gender", "psi") or "psi"))
    return registry.config_from_flags(fv)


_PIPELINE_PARTS = (("hourglass", "shn", ("shn",)), ("dae", "dae", ("dae",)), ("psi", "psi", ("smplr_shape",)),
                   ("omega", "omega", ("smplr_pose",)))


def _check_part_runs(runs_by_key: dict) -> None:
    for key, flag, stages in _PIPELINE_PARTS:
        run_dir = runs_by_key[key]
        if not run_dir:
            raise RunError(f"the pipeline needs --{flag}_run")
        stage = read_flags(run_dir).stage
        if stage not in stages:
            raise RunError(f"{run_dir} is a '{stage}' run, expected '{stages[0]}' (--{flag}_run)")


def dae_takes_depth0(dae_run: str) -> bool:
    """Whether a DAE run lifts 2D points (trained with --dae_input=depth0, or on --input_depth0 predictions):
    a pipeline then feeds it the hourglass's points with depth 0."""
    fl = flags_dict(read_flags(dae_run))
    return fl.get("dae_input") == "depth0" or bool(fl.get("input_depth0"))


def _smpl_config_for(psi_run: str, smpl_gender: str) -> dict:
    """The Psi run's body model (--smpl_dir, --genders), with the neutral model added for smpl_gender=neutral."""
    from smplr_tf.models import registry

    cfg = registry.smpl_config_from_flags(read_flags(psi_run))
    if smpl_gender == "neutral" and "neutral" not in cfg["genders"]:
        cfg = dict(cfg, genders=list(cfg["genders"]) + ["neutral"])
    return cfg


def _pipeline_config_of_runs(shn_run, dae_run, psi_run, omega_run, smpl_gender: str = "psi") -> dict:
    from smplr_tf.models import registry

    by_key = dict(hourglass=shn_run, dae=dae_run, psi=psi_run, omega=omega_run)
    _check_part_runs(by_key)
    parts = {k: network_config_of_run(d) for k, d in by_key.items()}
    return registry.pipeline_config(smpl=_smpl_config_for(psi_run, smpl_gender), dae_depth0=dae_takes_depth0(dae_run),
                                    smpl_gender=smpl_gender, **parts)


def pipeline_from_runs(shn_run: str, dae_run: str, psi_run: str, omega_run: str, load_weights: bool = True,
                       smpl_layer=None, smpl_gender: str = "psi"):
    """The :class:`~smplr_tf.models.pipeline.SMPLRPipeline` of four trained runs (hourglass, DAE, Psi, Omega;
    their weights loaded unless load_weights=False; the final weights, else the latest checkpoint). The body
    model is the Psi run's (--smpl_dir, --genders; plus its neutral model for smpl_gender="neutral") unless
    ``smpl_layer`` is given. A DAE trained on depth-0 inputs is fed the hourglass's points with depth 0
    (:func:`dae_takes_depth0`). Table 1's "ALL" row, the e2e stage's starting point, and what infer / export
    serve."""
    from smplr_tf.models import registry
    from smplr_tf.models.pipeline import SMPLRPipeline, build_smpl

    by_key = dict(hourglass=shn_run, dae=dae_run, psi=psi_run, omega=omega_run)
    _check_part_runs(by_key)
    parts = {}
    for key, run_dir in by_key.items():
        net = registry.build_network(network_config_of_run(run_dir))
        if load_weights:
            load_weights_file(net, weights_path(run_dir, "auto"))
        parts[key] = net
    smpl = smpl_layer if smpl_layer is not None else build_smpl(_smpl_config_for(psi_run, smpl_gender))
    return SMPLRPipeline(smpl=smpl, dae_depth0=dae_takes_depth0(dae_run), smpl_gender=smpl_gender, **parts)


def load_model_from_run(run_dir: str, which: str = "auto"):
    """Rebuild a run's network and load its weights; no training code is imported.

    The network is built from the run's network.json; a run without one (trained before it existed) is
    rebuilt from its flags.txt (an e2e run: from its four component runs' descriptions).
    Returns ``(stage: str, model: keras.Model, flags: dict)``. What the model maps, per stage (images are
    float32 RGB in [0, 1], standardised inside the network; points in metres, root-relative):

    * shn: image (B,S,S,3) -> {"heatmaps": [per stack (B,64,64,16,C)], "points": (B,P,3) metres}
    * shn2d: image -> {"heatmaps": [(B,64,64,C)], "points": (B,P,2) metres of the cube plane}
    * alexnet: image -> (B,P,3) metres
    * dae: points (B,P,3) -> (B,P,3) metres
    * smplr_shape (Psi): points (B,41,3) -> {"betas": (B,10), "gender": (B,) in ~[-1,1]}
    * smplr_pose (Omega): points (B,41,3) -> {"rotmats": (B,24,3,3)}
    * e2e: image -> {"heatmaps", "points" (hourglass), "dae_points", "rotmats", "betas", "gender",
      "gender_index", "vertices", "joints", "landmarks", "smpl_points"} (see smplr_tf.models.pipeline)
    """
    from smplr_tf.models import registry

    fv = read_flags(run_dir)
    model = registry.build_network(network_config_of_run(run_dir))
    if hasattr(model, "build_variables"):  # a subclassed pipeline has variables only after a first call
        model.build_variables()
    load_weights_file(model, weights_path(run_dir, which))
    return fv.stage, model, flags_dict(fv)


def load_weights_into(model, run_dir: str) -> str:
    """Load ``run_dir``'s weights (final, else the latest checkpoint) into ``model``; returns the path."""
    path = weights_path(run_dir, "auto")
    load_weights_file(model, path)
    return path


def load_weights_file(model, path: str) -> None:
    """``model.load_weights(path)``; a missing, truncated or corrupt file, or one that holds another network,
    raises RunError naming ``path``."""
    import warnings

    if not os.path.isfile(path):
        raise RunError(f"{path}: no such weights file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (OSError, ValueError, KeyError) as e:
            reason = " ".join(str(e).split())[:300]
            raise RunError(f"{path}: cannot load the network weights (truncated or corrupt file, or the weights of "
                           f"another network): {reason}") from e
    # Keras only warns when parts of the network find nothing to load and keep their initial values: for a
    # trained run that is another network's file (or a config that does not match it), never a usable model.
    partial = [str(w.message) for w in caught if any(k in str(w.message) for k in _PARTIAL_LOAD_WARNINGS)]
    for w in caught:
        if str(w.message) not in partial:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if partial:
        reason = " ".join(partial[0].split())[:300]
        raise RunError(f"{path}: these weights do not fit the network built for this run (another network's "
                       f"file, or a network.json / flags.txt that does not match it): {reason}")


# Keras 3 warnings (keras.saving) that mean that some weights were not loaded.
_PARTIAL_LOAD_WARNINGS = ("could not be loaded", "Skipping nested container", "freshly-initialized")
