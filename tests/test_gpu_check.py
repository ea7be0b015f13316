"""benchmarks/gpu_check.sh: run end to end at tiny sizes on the CPU (every part, the same code paths as on a GPU),
its failure handling, and the summary it writes (benchmarks/gpu_check_report.py)."""

import csv
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")
PARTS = ["machine", "data_train", "data_val", "memory", "timing_float32", "timing_mixed", "timing_xla", "train"]

# Tiny sizes: the quick hourglass on 16 synthetic crops, Table 5's small DAE, the small hourglass's memory.
TINY = {
    "GPU_CHECK_BUDGET_SECONDS": "900", "GPU_CHECK_TRAIN_SECONDS": "6", "GPU_CHECK_TRAIN_RESERVE_SECONDS": "0",
    "GPU_CHECK_MIN_TRAIN_SECONDS": "1", "GPU_CHECK_NUM_TRAIN": "16", "GPU_CHECK_NUM_VAL": "8",
    "GPU_CHECK_WORKERS": "1", "GPU_CHECK_FLAGFILE": "flags/quick/shn.cfg", "GPU_CHECK_STEPS_PER_EPOCH": "2",
    "GPU_CHECK_VALIDATION_STEPS": "1",
    "GPU_CHECK_TRAIN_FLAGS": "--batch_size=4 --val_batch_size=4 --epochs=500 --tb_images=0 --baseline_batches=2 "
                             "--nodeterministic --notb_hparams",
    "GPU_CHECK_MEMORY_FLAGS": "--small --memory_steps=2",
    "GPU_CHECK_TIMING_FLAGS": "--small --modules=dae --phases=train --repeats=2 --warmup=1 --budget_s=0.5 "
                              "--no_tflite --no_bf16 --peak_sizes=128",
}


def _report_module():
    spec = importlib.util.spec_from_file_location("_gpu_check_report",
                                                  os.path.join(ROOT, "benchmarks", "gpu_check_report.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(out, **env_over):
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", **TINY)
    env.update(env_over)
    return subprocess.run(["bash", SCRIPT, str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _json(path):
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------- end to end
def test_gpu_check_runs_every_part_tiny_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    r = _run(out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "# GPU check" in r.stdout and "all parts ok" in r.stdout
    for name in ("settings.json", "parts.tsv", "tf_env.json", "gpu_memory.json", "timing_float32.json",
                 "timing_mixed.json", "timing_xla.json", "summary.json", "summary.md", "loss_curve.png",
                 "shn_train/log.csv", "shn_train/run.json", "shn_train/final.weights.h5", "data/manifest.json"):
        assert (out / name).exists(), name
    for part in PARTS:
        assert (out / "logs" / f"{part}.log").exists(), part

    s = _json(out / "summary.json")
    assert list(s["parts"]) == PARTS and all(p["status"] == "ok" for p in s["parts"].values())
    assert s["ok"] is True and s["settings"]["num_train"] == 16 and len(s["settings"]["commit"]) >= 7
    assert any(d.startswith("CPU:") for d in s["machine"]["tf"]["physical_devices"])

    # Table 5: the three variants ran, each as asked (timing's own report says which)
    t = {v: _json(out / f"timing_{v}.json") for v in ("float32", "mixed", "xla")}
    assert (t["float32"]["mixed_precision"], t["float32"]["xla"]) == (False, False)
    assert t["mixed"]["mixed_precision"] is True and t["xla"]["xla"] is True
    row = s["table5"][0]
    assert (row["module"], row["phase"], row["batch"]) == ("DAE", "train", 32)
    assert all(0 < row[v] < 5 for v in ("float32", "mixed", "xla"))

    # memory: no GPU here, so the GPU figure is unavailable and the process's RSS is given instead
    m = _json(out / "gpu_memory.json")
    assert m["gpu"] is False and m["peak_gib"] is None and m["meets_goal"] is None and "no GPU" in m["note"]
    assert m["batch"] == 2 and m["steps"] == 2 and 100 < m["rss_peak_mb"] < 20000

    # training: ended by the time limit, its final report written, its curve drawn from log.csv
    run = _json(out / "shn_train" / "run.json")
    assert run["finished"] is True and run["time_limit"]["reached"] is True
    assert run["time_limit"]["seconds"] == 6.0 and run["time_limit"]["elapsed_s"] >= 6.0
    tr = s["training"]
    assert tr["steps"] == run["time_limit"]["steps"] >= 2 and tr["batch_size"] == 4
    with open(out / "shn_train" / "log.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert tr["curve"]["loss"][1] == pytest.approx(losses) and tr["last_loss"] == pytest.approx(losses[-1])
    assert tr["curve"]["loss"][0][-1] == tr["steps"]  # the last point sits at the last step
    assert tr["final"]["val_mpjpe_mm"] > 0 and tr["final"]["val_mean_pose_mpjpe_mm"] > 0
    import cv2

    img = cv2.imread(str(out / "loss_curve.png"))
    assert img is not None and img.shape == (520, 900, 3)
    md = (out / "summary.md").read_text()
    assert "| train | ok |" in md and "GPU figure unavailable" in md and "val_mpjpe_mm" in md


def test_a_failed_optional_part_is_reported_and_the_check_exits_1(tmp_path):
    out = tmp_path / "check"
    r = _run(out, GPU_CHECK_NUM_TRAIN="2", GPU_CHECK_NUM_VAL="1",
             GPU_CHECK_MEMORY_FLAGS="--memory_steps=0",  # refused by the flag's bound: the part fails at once
             GPU_CHECK_TIMING_FLAGS="--repeats=-1", GPU_CHECK_MIN_TRAIN_SECONDS="100000")
    assert r.returncode == 1, r.stderr[-3000:]
    s = _json(out / "summary.json")
    st = {k: v["status"] for k, v in s["parts"].items()}
    assert st["data_val"] == "ok" and st["memory"].startswith("failed (exit")
    assert all(st[f"timing_{v}"].startswith("failed") for v in ("float32", "mixed", "xla"))
    assert st["train"] == "skipped" and s["ok"] is False and s["training"] is None
    assert "SOME PARTS DID NOT COMPLETE" in r.stdout and "memory FAILED" in r.stderr


def test_a_failed_required_part_stops_the_check(tmp_path):
    out = tmp_path / "check"
    r = _run(out, GPU_CHECK_NUM_TRAIN="0")  # make_synthetic refuses 0 examples
    assert r.returncode == 1
    s = _json(out / "summary.json")
    assert list(s["parts"]) == ["machine", "data_train"] and s["parts"]["data_train"]["status"] == "failed (exit 1)"
    assert "required part data_train failed" in r.stderr and not (out / "gpu_memory.json").exists()


# --------------------------------------------------------------------------------------------- the summary
def test_parts_and_table5_rows_join_the_variants():
    rep = _report_module()
    timing = lambda mp, xla, t: {"device": "d", "xla": xla, "mixed_precision": mp, "modules": [  # noqa: E731
        {"module": "dae", "label": "DAE", "rows": [
            {"phase": "train", "batch": 256, "median_s": t, "paper_s": 0.01},
            {"phase": "test", "batch": 1, "variant": "graph", "median_s": t / 10, "paper_s": 0.002},
            {"phase": "test", "batch": 1, "variant": "bf16", "median_s": 1e-9, "bf16_max_point_dev_mm": 3.0}]},
        {"module": "smplr", "error": "boom"}]}
    rows = rep.table5_rows({"float32": timing(False, False, 0.4), "mixed": timing(True, False, 0.2),
                            "xla": None})
    by = {(r["module"], r["phase"], r["batch"]): r for r in rows}
    assert by[("DAE", "train", 256)]["float32"] == 0.4 and by[("DAE", "train", 256)]["mixed"] == 0.2
    assert by[("DAE", "test", 1)]["float32"] == pytest.approx(0.04)  # the bf16 row is left out
    assert "xla" not in by[("DAE", "train", 256)] and by[("SMPLR", "-", None)]["float32"] == "error: boom"


def test_read_parts_statuses(tmp_path):
    rep = _report_module()
    p = tmp_path / "parts.tsv"
    p.write_text("a\t0\t3\t\nb\t1\t4\t\nc\t124\t150\t\nd\tskipped\t0\t12 s left\n")
    st = rep.read_parts(str(p))
    assert [v["status"] for v in st.values()] == ["ok", "failed (exit 1)", "timed out (150 s)", "skipped"]
    assert st["d"]["note"] == "12 s left" and st["c"]["seconds"] == 150.0


def test_training_summary_throughput_and_curve_steps(tmp_path):
    rep = _report_module()
    run = tmp_path / "shn_train"
    run.mkdir()
    (run / "flags.txt").write_text("--batch_size=6\n--steps_per_epoch=100\n")
    (run / "log.csv").write_text("epoch,loss,val_loss\n0,9.0,8.5\n1,7.0,7.5\n2,6.0,6.8\n")
    (run / "run.json").write_text(json.dumps({"finished": True, "final": {"val_mpjpe_mm": 90.0}, "time_limit": {
        "seconds": 60.0, "reached": True, "steps": 251, "elapsed_s": 60.0, "first_step_s": 10.0}}))
    t = rep.training_summary(str(run))
    assert t["curve"]["loss"] == ([100, 200, 251], [9.0, 7.0, 6.0])  # the last epoch cut at step 251
    assert t["steps_per_s"] == pytest.approx(250 / 50.0) and t["images_per_s"] == pytest.approx(30.0)
    assert (t["first_loss"], t["last_loss"], t["last_val_loss"]) == (9.0, 6.0, 6.8)
    assert rep.training_summary(str(tmp_path / "none")) is None


def test_draw_curves_puts_each_point_where_the_frame_maps_it():
    rep = _report_module()
    curves = {"loss": ([100, 200, 300], [9.0, 5.0, 4.0]), "val_loss": ([100, 200, 300], [8.0, float("nan"), 6.0])}
    img, frame = rep.draw_curves(curves, "t", size=(640, 400))
    assert img.shape == (400, 640, 3) and img.dtype == np.uint8
    for name, (xs, ys) in curves.items():
        color = rep.CURVE_COLORS[name]
        for x, y in zip(xs, ys):
            if np.isfinite(y):
                u, v = frame(x, y)
                assert frame.left <= u <= frame.right and frame.top <= v <= frame.bottom
                assert tuple(int(c) for c in img[v, u]) == color, (name, x, y)
    # y grows upwards: the larger loss is drawn higher (smaller row)
    assert frame(100, 9.0)[1] < frame(300, 4.0)[1] and frame(100, 9.0)[0] < frame(300, 4.0)[0]
