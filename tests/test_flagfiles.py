"""The experiment flagfiles (flags/**/*.cfg): every one resolves to training flags only; table rows share bases
through nested ``--flagfile`` lines whose paths are relative to the repository root (absl opens them from the
working directory, so the commands run from the root, as the README's do)."""

import glob
import os

import pytest
from absl import flags

from smplr_tf import flags as sflags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "flags", "**", "*.cfg"), recursive=True))
BASES = [p for p in ALL if p.startswith(os.path.join("flags", "base") + os.sep)]
ROWS = [p for p in ALL if p not in BASES]
TABLE_ROWS = [p for p in ROWS if p.split(os.sep)[1].startswith("table")]
HOURGLASS = ("input_size", "heatmap_size", "depth_bins", "hg_stacks", "hg_features", "hg_downsamplings",
             "hg_dropout", "heatmap_loss", "batch_size", "val_batch_size", "epochs", "validation_steps", "lr",
             "lr_schedule")


def resolve(path: str) -> flags.FlagValues:
    """The training flags a flagfile gives, read as ``python -m smplr_tf.train --flagfile=<path>`` reads it."""
    fv = sflags.new_flag_values()
    fv(["train", f"--flagfile={path}"])  # an unknown flag raises
    return fv


def includes(path: str) -> list[str]:
    with open(os.path.join(ROOT, path)) as f:
        return [line.strip()[len("--flagfile="):] for line in f if line.strip().startswith("--flagfile=")]


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", ROWS)
def test_every_row_resolves_to_training_flags(path):
    fv = resolve(path)
    assert fv.stage in sflags.STAGES
    if path in TABLE_ROWS:  # the run is named after the row
        table, name = path.split(os.sep)[1:]
        assert fv.run_name == f"{table}/{name[:-len('.cfg')]}"


def test_includes_are_bases_relative_to_the_root_and_every_base_is_used():
    used = set()
    for path in ALL:
        for inc in includes(path):
            assert inc in BASES, (path, inc)
            used.add(inc)
    assert used == set(BASES)
    assert all(includes(p) for p in TABLE_ROWS)  # table rows share their bases rather than repeat them


def test_a_row_overrides_its_base_and_the_command_line_overrides_the_row():
    fv = resolve(os.path.join("flags", "table2", "psi.cfg"))
    assert fv.data_dir == "data/surreal" and fv.val_split == "test"  # table2 base, data_dir set after it
    fv = sflags.new_flag_values()
    fv(["train", "--flagfile=flags/table1/shn.cfg", "--data_dir=elsewhere"])
    assert fv.data_dir == "elsewhere" and fv.hg_stacks == 5


def test_full_size_hourglass_rows_train_the_same_hourglass():
    rows = [p for p in TABLE_ROWS if resolve(p).stage == "shn" and not resolve(p).init_from]
    assert len(rows) == 5
    first = resolve(rows[0])
    for p in rows[1:]:
        fv = resolve(p)
        assert {n: fv[n].value for n in HOURGLASS} == {n: first[n].value for n in HOURGLASS}, p
    # Fine-tunes (Table 2's estimated-crop SHN^final) keep the network of the row they start from.
    tunes = [p for p in TABLE_ROWS if resolve(p).stage == "shn" and resolve(p).init_from]
    assert tunes == [os.path.join("flags", "table2", "shn_final_estcrop.cfg")]
    fv = resolve(tunes[0])
    base = resolve(os.path.join("flags", fv.init_from.split("/", 1)[1] + ".cfg"))
    assert fv.aug_scale > 0 and fv.augment and fv.limbs
    assert {n: fv[n].value for n in HOURGLASS[:6]} == {n: base[n].value for n in HOURGLASS[:6]}


def test_an_include_is_opened_from_the_working_directory(tmp_path, monkeypatch):
    """Why the README runs commands from the repository root: absl does not resolve a nested --flagfile
    relative to the including file."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(flags.CantOpenFlagFileError):
        resolve(os.path.join(ROOT, "flags", "table1", "shn.cfg"))


def test_medium_hourglass_rows_train_the_same_hourglass_for_the_same_steps():
    """The medium effects compare SHN, SHN_nL and SHN^final: same network size, schedule and number of steps."""
    names = ("shn", "shn_nl", "shn_final")
    fvs = [resolve(os.path.join("flags", "medium", f"{n}.cfg")) for n in names]
    keys = HOURGLASS + ("steps_per_epoch", "lr_epochs", "lr_offset", "epoch_growth", "hg_stem")
    for fv, n in zip(fvs[1:], names[1:]):
        assert {k: fv[k].value for k in keys} == {k: fvs[0][k].value for k in keys}, n
    assert int(fvs[0].num_points) == 41 and int(fvs[1].num_points) == 23 and fvs[2].limbs and fvs[2].augment
