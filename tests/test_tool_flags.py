"""The command-line tools and benchmarks take their flags from the one flags module (smplr_tf/flags.py).

Before, each tool defined its own absl flags at import, so importing two of them (or one and smplr_tf.flags)
in one process raised DuplicateFlagError (pytest failed at collection).
"""

import importlib.util
import os
import subprocess
import sys

import pytest
from absl import app, flags, logging  # noqa: F401 - absl's own flags, defined before the snapshot

from smplr_tf import flags as smplr_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL_FILES = {
    "make_synthetic": "tfrecords_tools/make_synthetic.py",
    "inspect_records": "tfrecords_tools/inspect_records.py",
    "convert_surreal": "tfrecords_tools/convert_surreal.py",
    "convert_h36m": "tfrecords_tools/convert_h36m.py",
    "convert_up3d": "tfrecords_tools/convert_up3d.py",
    "subsample": "tfrecords_tools/subsample.py",
    "input_pipeline": "benchmarks/input_pipeline.py",
    "render_speed": "benchmarks/render_speed.py",
    "smpl_speed": "benchmarks/smpl_speed.py",
    "timing": "benchmarks/timing.py",
}


def test_every_tool_imports_in_one_process_and_defines_no_flag():
    before = set(smplr_flags.FLAGS)
    for tool, rel in TOOL_FILES.items():
        spec = importlib.util.spec_from_file_location(f"_tool_{tool}", os.path.join(ROOT, rel))
        spec.loader.exec_module(importlib.util.module_from_spec(spec))  # DuplicateFlagError before
    assert set(smplr_flags.FLAGS) == before, "a tool defined flags of its own at import"
    assert set(TOOL_FILES) == set(smplr_flags.TOOL_FLAGS)
    for tool, names in smplr_flags.TOOL_FLAGS.items():
        assert not [n for n in names if n not in smplr_flags.FLAGS], tool


def test_tool_flags_stay_out_of_runs_flags_txt():
    recorded = set(smplr_flags.section_flag_names())
    tool_only = {"out_dir", "split", "num", "json", "smpl_batch_size", "repeats", "child", "root"}
    assert not recorded & tool_only
    assert {"data_dir", "smpl_dir", "batch_size", "seed"} <= recorded  # shared flags the tools reuse


def test_tool_defaults_apply_only_where_the_command_line_is_silent():
    fv = flags.FlagValues()
    smplr_flags.define_records_tools_flags(fv)
    smplr_flags.define_benchmark_flags(fv)
    fv(["render_speed"])
    smplr_flags.use_tool_flags("render_speed", fv)
    assert fv.num == 40 and fv["num"].default == 40
    fv.unparse_flags()
    fv(["render_speed", "--num=7", "--warmup=9"])
    smplr_flags.use_tool_flags("render_speed", fv)
    smplr_flags.use_tool_flags("timing", fv)
    assert fv.num == 7 and fv.warmup == 9 and fv.repeats == 0  # given values kept, timing's repeats default
    fv.unparse_flags()
    fv(["inspect_records", "--split=train,val"])
    smplr_flags.use_tool_flags("inspect_records", fv)
    assert fv.split == "train,val"


def test_help_lists_the_tools_own_flags_with_its_defaults():
    r = subprocess.run([sys.executable, os.path.join(ROOT, TOOL_FILES["make_synthetic"]), "--helpshort"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = r.stdout + r.stderr
    for name in smplr_flags.TOOL_FLAGS["make_synthetic"]:
        assert f"--{name}:" in out, name
    assert "--stage" not in out and "--png" not in out  # other tools' / training flags stay out of --helpshort
    shard_help = out[out.index("--examples_per_shard:"):]
    assert "(default: '1000')" in shard_help.split("--genders")[0]  # make_synthetic's own default


@pytest.mark.parametrize("entry", ["train", "infer"])
def test_helpshort_of_the_package_commands(entry):
    """python -m smplr_tf.<entry> --helpshort lists that command's flags (train: every section flag), no others."""
    r = subprocess.run([sys.executable, "-m", f"smplr_tf.{entry}", "--helpshort"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = r.stdout + r.stderr
    names = smplr_flags.section_flag_names() if entry == "train" else smplr_flags.ENTRY_FLAGS[entry]
    for name in names:
        assert f"--{name}:" in out or f"--[no]{name}:" in out, name
    if entry == "train":
        assert "--image:" not in out and "--export_dir:" not in out
    else:
        assert "--stage:" not in out and "--lr:" not in out
