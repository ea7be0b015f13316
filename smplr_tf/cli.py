"""What every command shares: one-line errors on bad input, and helpers to define its flags.

Errors: one line on stderr naming the file, a non-zero exit, no traceback.

Each command's ``__main__`` calls :func:`run` instead of ``absl.app.run``::

    if __name__ == "__main__":
        cli.run(main)

Errors that are about the command's input, not about the code, are printed as one line ``<command>: <message>``
and end the process with exit status :data:`EXIT_BAD_INPUT` (2):

* :class:`UserError` and its subclasses (``schema.SchemaError``, ``records.RecordError``, ``runs.RunError``,
  ``callbacks.TrainingDiverged``, ...): their message is the whole story and names the file;
* ``OSError`` (a missing file or directory, a permission, a truncated HDF5 file), shown as ``<file>: <reason>``;
* ``body.model_io.ModelFileError`` (a missing or corrupt SMPL model file).

Anything else is a bug and keeps its traceback. ``--traceback`` (defined here) or the environment variable
``SMPLR_TRACEBACK=1`` keeps the traceback of the errors above too.

Flags: each command defines its own in a ``define_flags(fv)`` called under ``__main__``;
:func:`flag_definer` makes that definition idempotent (tests call it on shared FlagValues), and
:func:`define_pipeline_run_flags` gives evaluate, infer and export the same pipeline run flags.

This module imports nothing of smplr_tf at import time, so that any module may subclass :class:`UserError`.
"""

from __future__ import annotations

import os
import sys

EXIT_BAD_INPUT = 2
TRACEBACK_ENV = "SMPLR_TRACEBACK"


def _caller_module(depth: int = 2) -> str:
    """The module name absl files a flag under: the caller's, ``sys.argv[0]`` for the main program."""
    import inspect

    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back
    name = frame.f_globals.get("__name__", "")
    return sys.argv[0] if name == "__main__" else name


def flag_definer(fv, module: str | None = None):
    """``define(DEFINE_fn, name, *args, **kwargs)`` that defines flag ``name`` on FlagValues ``fv`` unless ``fv``
    holds it already (so a command's ``define_flags`` may run twice, or beside another command's), and makes
    it a key flag of the calling module (``module``), so that the command's ``--helpshort`` lists it."""
    module = module or _caller_module()

    def define(kind, name, *args, **kwargs):
        if name not in fv:
            kind(name, *args, flag_values=fv, **kwargs)
        fv.register_key_flag_for_module(module, fv[name])

    return define


def define_pipeline_run_flags(fv) -> None:
    """--run_dir (an e2e run) or --shn_run/--dae_run/--psi_run/--omega_run: the runs whose networks make the
    image -> SMPL pipeline (same names and meaning as the training flags)."""
    from absl import flags

    define = flag_definer(fv, _caller_module())
    define(flags.DEFINE_string, "run_dir", "", "An e2e run (the whole pipeline in one run), or an hmr run "
           "(the HMR baseline).")
    define(flags.DEFINE_string, "shn_run", "", "Without --run_dir: the hourglass run of the pipeline.")
    define(flags.DEFINE_string, "dae_run", "", "Without --run_dir: the DAE run.")
    define(flags.DEFINE_string, "psi_run", "", "Without --run_dir: the Psi (smplr_shape) run.")
    define(flags.DEFINE_string, "omega_run", "", "Without --run_dir: the Omega (smplr_pose) run.")


class UserError(Exception):
    """An error in what the user gave (a file, a flag, a diverged run); the message names it and what to do."""


def bad_input_types() -> tuple:
    """The exception types that :func:`run` reports in one line."""
    types = [UserError, OSError]
    try:
        from smplr_tf.body.model_io import ModelFileError

        types.append(ModelFileError)
    except ImportError:  # pragma: no cover - a broken install keeps its traceback
        pass
    return tuple(types)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; an ``OSError`` as ``<file>: <reason>``."""
    if isinstance(err, OSError) and getattr(err, "filename", None) and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def program_name(argv0: str | None = None) -> str:
    """``train`` for ``python -m smplr_tf.train`` / ``inspect_records`` for ``tfrecords_tools/inspect_records.py``."""
    name = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "smplr_tf"))
    return name[:-3] if name.endswith(".py") else name


def wants_traceback(flag_values=None) -> bool:
    """True when ``--traceback`` was given or ``SMPLR_TRACEBACK`` is set to a true value."""
    if os.environ.get(TRACEBACK_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        return bool(flag_values is not None and "traceback" in flag_values and flag_values.traceback)
    except Exception:  # noqa: BLE001  (flags not parsed yet)
        return False


def define_traceback_flag(flag_values=None) -> None:
    """Define ``--traceback`` in ``flag_values`` (absl's FLAGS by default) unless it exists."""
    from absl import flags

    fv = flag_values if flag_values is not None else flags.FLAGS
    if "traceback" not in fv:
        flags.DEFINE_boolean("traceback", False, "On bad input (a missing or corrupt file, a diverged run), print "
                             "the Python traceback as well as the one-line message (also: SMPLR_TRACEBACK=1).",
                             flag_values=fv)


def guarded(main, flag_values=None):
    """``main`` wrapped so that the errors of :func:`bad_input_types` end the process in one line (exit 2)."""

    def wrapped(argv):
        try:
            return main(argv)
        except bad_input_types() as err:
            if wants_traceback(flag_values):
                raise
            print(f"{program_name()}: {one_line(err)}", file=sys.stderr, flush=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapped


def run(main, argv=None, flag_values=None) -> None:
    """``absl.app.run(main)`` with the bad-input handling above and a ``--traceback`` flag."""
    from absl import app, flags

    fv = flag_values if flag_values is not None else flags.FLAGS
    define_traceback_flag(fv)
    app.run(guarded(main, fv), argv=argv)
