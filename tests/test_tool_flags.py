"""Each command defines only the flags it reads, in its own ``define_flags`` called under ``__main__``.

Importing any command defines nothing (so two commands, or a command and a test, share one process without
DuplicateFlagError); a name means one thing in every command that defines it; ``--helpshort`` lists the
command's own flags; a run's flags.txt records the training flags only.
"""

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest
from absl import app, flags, logging  # noqa: F401 - absl's own flags, defined before the snapshot

import fixtures  # noqa: F401 - puts the repository root on sys.path (tfrecords_tools is not installed)

from smplr_tf import flags as sflags
from smplr_tf import runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_COMMANDS = ("train", "evaluate", "infer", "export", "reproduce", "fit")
SCRIPTS = {
    "make_synthetic": "tfrecords_tools/make_synthetic.py",
    "inspect_records": "tfrecords_tools/inspect_records.py",
    "convert_surreal": "tfrecords_tools/convert_surreal.py",
    "convert_h36m": "tfrecords_tools/convert_h36m.py",
    "convert_up3d": "tfrecords_tools/convert_up3d.py",
    "subsample": "tfrecords_tools/subsample.py",
    "merge_parts": "tfrecords_tools/merge_parts.py",
    "input_pipeline": "benchmarks/input_pipeline.py",
    "render_speed": "benchmarks/render_speed.py",
    "smpl_speed": "benchmarks/smpl_speed.py",
    "timing": "benchmarks/timing.py",
    "inference_speed": "benchmarks/inference_speed.py",
    "convert_speed": "benchmarks/convert_speed.py",
    "fit_h36m": "tfrecords_tools/fit_h36m.py",
    "fit_speed": "benchmarks/fit_speed.py",
    "gpu_memory": "benchmarks/gpu_memory.py",
    "gpu_check_report": "benchmarks/gpu_check_report.py",
}
COMMANDS = PACKAGE_COMMANDS + tuple(SCRIPTS)
# Training flags that other commands define too, with the same meaning.
REUSED_TRAINING_FLAGS = {"run_dir", "shn_run", "dae_run", "psi_run", "omega_run", "smpl_dir", "data_dir", "seed",
                         "genders", "background_dir", "batch_size", "xla", "hg_stacks", "hg_features",
                         "input_size", "mixed_precision"}


def load_command(name: str):
    """The module of a command (imported; its flags not defined)."""
    if name in PACKAGE_COMMANDS:
        return importlib.import_module(f"smplr_tf.{name}")
    spec = importlib.util.spec_from_file_location(f"_cmd_{name}", os.path.join(ROOT, SCRIPTS[name]))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def command_flags(name: str) -> flags.FlagValues:
    fv = flags.FlagValues()
    load_command(name).define_flags(fv)
    return fv


def kind(flag) -> str:
    """What a flag's value is: one word, a list, a number or a switch (an enum is a word)."""
    t = flag.flag_type()
    if "list" in t or "multi" in t:
        return "list"
    if t in ("int", "float"):
        return "number"
    return {"bool": "switch"}.get(t, "word")


def test_importing_a_command_defines_no_flag():
    before = set(flags.FLAGS)
    for name in COMMANDS:
        load_command(name)
    assert set(flags.FLAGS) == before, "a command defined flags at import"


def test_define_flags_twice_and_every_command_in_one_process():
    """A test may call a command's main twice; commands sharing a name (--run_dir ...) may share a process."""
    fv = flags.FlagValues()
    for name in COMMANDS:
        mod = load_command(name)
        mod.define_flags(fv)
        mod.define_flags(fv)
    for name in COMMANDS:
        assert set(command_flags(name)) <= set(fv)


def test_no_name_means_two_things():
    defined = {name: command_flags(name) for name in COMMANDS}
    by_flag: dict = {}
    for cmd, fv in defined.items():
        for n in fv:
            by_flag.setdefault(n, []).append((cmd, kind(fv[n])))
    mixed = {n: uses for n, uses in by_flag.items() if len({k for _, k in uses}) > 1}
    assert not mixed
    # the names that used to mean different things per tool
    assert "num" not in by_flag
    assert [c for c, _ in by_flag["max_examples"]] == ["evaluate"]
    assert [c for c, _ in by_flag["splits"]] == ["inspect_records"]
    assert "inspect_records" not in [c for c, _ in by_flag["split"]]
    # timing alone counts its steps with --warmup / --repeats
    assert [c for c, _ in by_flag["warmup"]] == ["timing"] and [c for c, _ in by_flag["repeats"]] == ["timing"]


def test_only_train_defines_the_training_sections():
    training = set(sflags.section_flag_names())
    assert set(command_flags("train")) == training
    for name in COMMANDS[1:]:
        assert not (set(command_flags(name)) & training) - REUSED_TRAINING_FLAGS, name


def test_converters_check_their_split():
    fv = command_flags("convert_h36m")
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["convert_h36m", "--split=val"])  # Human3.6M has train and test only
    fv = command_flags("convert_surreal")
    fv(["convert_surreal", "--split=val", "--max_output_examples=3"])
    assert fv.split == "val" and fv.max_output_examples == 3


def test_runs_flags_txt_records_the_training_flags_only():
    text = runs.flags_text(runs.flag_values(stage="dae", lr=0.5))
    names = {line[2:].split("=")[0] for line in text.splitlines() if line}
    names = {n[2:] if n.startswith("no") and n[2:] in sflags.section_flag_names() else n for n in names}
    assert names == set(sflags.section_flag_names())
    assert runs.parse_flags_text(text + "--eval_split=test\n--png=x.png\n").lr == 0.5  # other commands' ignored
    with pytest.raises(runs.RunError, match="old/flags.txt.*lr"):
        runs.parse_flags_text(text + "--lr=fast\n", where="old/flags.txt")


@pytest.mark.parametrize("name", COMMANDS)
def test_helpshort_lists_the_commands_own_flags(name):
    cmd = [sys.executable, "-m", f"smplr_tf.{name}"] if name in PACKAGE_COMMANDS else [
        sys.executable, os.path.join(ROOT, SCRIPTS[name])]
    r = subprocess.run(cmd + ["--helpshort"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "Try --helpfull" in r.stdout, r.stderr[-2000:]  # absl's usage text (it exits with status 1)
    listed = {line.split(":")[0].strip()[2:].replace("[no]", "") for line in r.stdout.splitlines()
              if line.startswith("  --")}
    assert listed == set(command_flags(name))
    if name == "make_synthetic":  # its own default, not another command's
        assert "(default: '1000')" in r.stdout.split("--examples_per_shard:")[1].split("--")[0]
