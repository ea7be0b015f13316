"""Every command line in README.md parses as written: the command exists, it defines every flag the line gives
(with a value it accepts), and each flagfile the line names exists. Where a README command reads records that
another README command writes, the directory and its splits agree (the flagfiles' --data_dir / --val_split
included)."""

import os
import re
import shlex

import pytest
from absl import flags

from test_tool_flags import COMMANDS, PACKAGE_COMMANDS, ROOT, SCRIPTS, command_flags

_SCRIPT_NAMES = {path: name for name, path in SCRIPTS.items()}


def readme_commands() -> list[tuple[str, list[str], str]]:
    """(command, arguments, the README line) for every python command in the README's bash blocks."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    found = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            code = re.split(r"\s#", line, maxsplit=1)[0]
            for part in code.split("&&"):
                words = shlex.split(part.replace("[", " ").replace("]", " "))
                for i, w in enumerate(words):
                    if not re.fullmatch(r"(\S*/)?python3?", w) or i + 1 >= len(words):
                        continue
                    if words[i + 1] == "-m" and words[i + 2].startswith("smplr_tf."):
                        found.append((words[i + 2][len("smplr_tf."):], words[i + 3:], line.strip()))
                    elif words[i + 1] in _SCRIPT_NAMES:
                        found.append((_SCRIPT_NAMES[words[i + 1]], words[i + 2:], line.strip()))
                    break
    return found


COMMAND_LINES = readme_commands()


def parse(name: str, args: list[str]) -> flags.FlagValues:
    fv = command_flags(name)
    fv([name] + args)  # unknown flag, bad value or missing flagfile: an absl error
    return fv


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # as the README's commands run (flagfile paths are relative to the root)


def test_the_readme_shows_the_commands():
    shown = {name for name, _, _ in COMMAND_LINES}
    assert set(PACKAGE_COMMANDS) <= shown
    assert {"make_synthetic", "inspect_records", "convert_surreal", "subsample", "timing"} <= shown
    assert shown <= set(COMMANDS)


@pytest.mark.parametrize("name,args,line", COMMAND_LINES, ids=[c[2][:60] for c in COMMAND_LINES])
def test_readme_command_parses(name, args, line):
    parse(name, args)
    for a in args:
        if a.startswith("--flagfile="):
            assert os.path.isfile(a[len("--flagfile="):]), line


def test_records_read_are_records_written():
    """A command that reads a records directory another README command writes reads splits written there."""
    written: dict = {}
    for name, args, _ in COMMAND_LINES:
        if name in ("make_synthetic", "convert_surreal", "convert_h36m", "convert_up3d", "subsample"):
            fv = parse(name, args)
            written.setdefault(os.path.normpath(fv.out_dir), set()).add(fv.split)
    reads = []
    for name, args, line in COMMAND_LINES:
        fv = parse(name, args) if name in ("train", "evaluate", "inspect_records") else None
        if name == "train" and any(a.startswith("--flagfile=flags/table") for a in args):
            reads.append((line, fv.data_dir, {fv.train_split, fv.val_split}))
        elif name == "evaluate" and fv.data:
            reads.append((line, fv.data, {fv.eval_split}))
        elif name == "inspect_records":
            reads.append((line, fv.data_dir, set(fv.splits)))
    assert any(line.startswith("python -m smplr_tf.train") for line, _, _ in reads)
    for line, data_dir, splits in reads:
        have = written.get(os.path.normpath(data_dir))
        assert have is not None, f"{line}: no README command writes {data_dir}"
        assert splits <= have, f"{line}: reads splits {sorted(splits)} of {data_dir}; written: {sorted(have)}"
