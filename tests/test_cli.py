"""Bad input ends a command in one line on stderr naming the file, a non-zero exit and no traceback (smplr_tf.cli).

Each case runs the command as a user would (a subprocess); ``--traceback`` / SMPLR_TRACEBACK=1 brings the
traceback back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAE = ["--stage=dae", "--epochs=1", "--steps_per_epoch=2", "--batch_size=8", "--num_train_samples=16",
       "--num_val_samples=8", "--dae_hidden=16", "--dae_bottleneck=8", "--verbose=0", "--tb_hparams=false"]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("SMPLR_TRACEBACK", None)
    env.update(extra)
    return env


def _run(args, **env):
    cmd = [sys.executable] + (["-m"] + args if not args[0].endswith(".py") else args)
    return subprocess.run(cmd, cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=300)


def _message_lines(stderr):
    """stderr without the log lines of TF and absl (``I1130 ...``, ``E0000 ...``) and progress bars (tqdm)."""
    return [line for line in re.split(r"[\r\n]+", stderr) if line.strip()
            and not re.match(r"^[IWEF]\d{4} ", line)
            and not line.startswith("WARNING: All log messages before absl::InitializeLog()")
            and not re.search(r"\d+\w* \[\d\d:\d\d", line)]


def assert_one_line(r, *needles):
    lines = _message_lines(r.stderr)
    assert r.returncode != 0, r.stdout[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(lines) == 1, r.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_missing_smpl_dir(tmp_path):
    missing = str(tmp_path / "no_smpl")
    r = _run(["smplr_tf.train", f"--run_dir={tmp_path / 'run'}", f"--smpl_dir={missing}"] + DAE)
    assert_one_line(r, missing)
    assert r.returncode == 2


def test_corrupt_smpl_model_file(tmp_path):
    d = tmp_path / "smpl"
    d.mkdir()
    for gender in ("female", "male"):
        (d / f"{gender}.npz").write_bytes(b"PK\x03\x04 this is not a whole archive")
    r = _run(["smplr_tf.train", f"--run_dir={tmp_path / 'run'}", f"--smpl_dir={d}"] + DAE)
    assert_one_line(r, str(d / "female.npz"), "corrupt")


def test_missing_data_dir(tmp_path):
    missing = str(tmp_path / "no_data")
    r = _run(["smplr_tf.train", f"--run_dir={tmp_path / 'run'}", f"--data_dir={missing}"] + DAE)
    assert_one_line(r, missing)


def _split_with_a_corrupt_record(tmp_path):
    """Records (train, val: 16 each) where train's record 5 has a flipped payload byte; -> (dir, train shard)."""
    from smplr_tf.data import schema
    from tests.fixtures.records import make_example

    d = str(tmp_path / "records")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        name = schema.shard_name(split, 0, 1)
        with schema.ShardWriter(os.path.join(d, name)) as w:
            for i in range(16):
                w.write(make_example(rng, i))
        schema.update_manifest(d, split, [{"file": name, "count": 16}])
    path = os.path.join(d, schema.shard_name("train", 0, 1))
    data = bytearray(open(path, "rb").read())
    off = 0
    for _ in range(5):  # skip 5 records: flip a byte inside the payload of record 5 (its CRC fails)
        off += 16 + int.from_bytes(data[off:off + 8], "little")
    data[off + 12 + 200] ^= 0xFF
    open(path, "wb").write(bytes(data))
    return d, path


def test_corrupt_record_names_file_and_record(tmp_path):
    d, path = _split_with_a_corrupt_record(tmp_path)
    r = _run(["smplr_tf.train", f"--run_dir={tmp_path / 'run'}", f"--data_dir={d}", "--val_split=val"] + DAE)
    assert_one_line(r, f"{path} record 5", "corrupt")


def test_evaluate_on_a_corrupt_record_names_file_and_record(tmp_path):
    from smplr_tf import runs

    d, path = _split_with_a_corrupt_record(tmp_path)
    run_dir = tmp_path / "dae"
    run_dir.mkdir()
    cfg = runs.flag_values(stage="dae", dae_hidden=16, dae_bottleneck=8)
    (run_dir / runs.FLAGS_FILE).write_text(runs.flags_text(cfg))
    runs.build_network(cfg).save_weights(str(run_dir / runs.FINAL_WEIGHTS))
    r = _run(["smplr_tf.evaluate", f"--run_dir={run_dir}", f"--data={d}", "--eval_split=train", "--eval_input=gt",
              "--eval_batch_size=4"])
    assert_one_line(r, f"{path} record 5", "corrupt")


def test_truncated_weights_file(tmp_path):
    from smplr_tf import runs

    run_dir = tmp_path / "dae"
    run_dir.mkdir()
    cfg = runs.flag_values(stage="dae", dae_hidden=16, dae_bottleneck=8)
    (run_dir / runs.FLAGS_FILE).write_text(runs.flags_text(cfg))
    net = runs.build_network(cfg)
    weights = str(run_dir / runs.FINAL_WEIGHTS)
    net.save_weights(weights)
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[: len(data) // 2])
    r = _run(["smplr_tf.evaluate", f"--run_dir={run_dir}", f"--data={tmp_path}"])
    assert_one_line(r, weights, "truncated or corrupt")
    # asked for, the traceback comes back
    r = _run(["smplr_tf.evaluate", f"--run_dir={run_dir}", f"--data={tmp_path}"], SMPLR_TRACEBACK="1")
    assert r.returncode != 0 and "Traceback" in r.stderr and weights in r.stderr


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 not really a JPEG"])
def test_unreadable_image(tmp_path, content):
    image = tmp_path / "photo.jpg"
    image.write_bytes(content)
    r = _run(["smplr_tf.infer", f"--image={image}", f"--output_dir={tmp_path / 'out'}"])
    assert_one_line(r, str(image))


def test_tool_missing_data_dir_and_traceback_flag(tmp_path):
    missing = str(tmp_path / "nothing")
    tool = os.path.join(ROOT, "tfrecords_tools", "inspect_records.py")
    r = _run([tool, f"--data_dir={missing}"])
    assert_one_line(r, missing)
    r = _run([tool, f"--data_dir={missing}", "--traceback"])
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_one_line_formats():
    from smplr_tf import cli

    assert cli.one_line(FileNotFoundError(2, "No such file or directory", "/x/y")) == \
        "/x/y: No such file or directory"
    assert cli.one_line(cli.UserError("first\n  second")) == "first second"
    assert cli.program_name("/a/b/smplr_tf/train.py") == "train"
