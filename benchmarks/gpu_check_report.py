"""The summary of a GPU check (``benchmarks/gpu_check.sh``): reads what the check wrote in its folder and writes
``summary.json``, ``summary.md`` and ``loss_curve.png`` there, then prints ``summary.md`` (one screen).

    python benchmarks/gpu_check_report.py --check_dir=runs/gpu_check

What it reads in ``--check_dir`` (each may be missing; a part that failed is reported as failed):

* ``settings.json``: the check's settings, commit and start time (written by the script);
* ``parts.tsv``: one line per part: name, exit status (or ``skipped``), seconds, note;
* ``nvidia-smi.txt``, ``tf_env.json``: the machine;
* ``timing_float32.json``, ``timing_mixed.json``, ``timing_xla.json``: ``benchmarks/timing.py --json`` (Table 5);
* ``gpu_memory.json``: ``benchmarks/gpu_memory.py --json``;
* ``shn_train/``: the training run (``log.csv``: one row per epoch; ``run.json``: the time limit, the final
  validation figures; ``flags.txt``).

The loss curve is drawn with OpenCV (no plotting library): training loss (mean over each epoch) and validation
loss against the training step at each epoch's end.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os

import numpy as np
from absl import flags

from smplr_tf import cli
from smplr_tf.runs import json_safe

FLAGS = flags.FLAGS
TIMING_VARIANTS = (("float32", "timing_float32.json"), ("mixed", "timing_mixed.json"), ("xla", "timing_xla.json"))
CURVE_COLORS = {"loss": (200, 90, 20), "val_loss": (20, 120, 240)}  # BGR: blue, orange


def _read_json(path: str):
    """The JSON object at ``path``, or None when the file is missing, empty or not JSON (a part cut short)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_parts(path: str) -> dict:
    """parts.tsv -> {name: {"status": "ok" | "failed (exit N)" | "timed out (N s)" | "skipped", "seconds": float,
    "note": str}} in the order run."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3:
                continue
            name, rc, secs = cols[:3]
            note = cols[3] if len(cols) > 3 else ""
            if rc == "0":
                status = "ok"
            elif rc == "skipped":
                status = "skipped"
            elif rc in ("124", "137"):
                status = f"timed out ({float(secs):.0f} s)"
            else:
                status = f"failed (exit {rc})"
            out[name] = {"status": status, "seconds": float(secs), "note": note}
    return out


# --------------------------------------------------------------------------------------------- Table 5
def _timing_labels() -> dict:
    """benchmarks/timing.py's module -> Table 5 label (the benchmarks are scripts, not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timing.py")
    spec = importlib.util.spec_from_file_location("_smplr_benchmark_timing", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.LABELS)


def table5_rows(timings: dict) -> list[dict]:
    """{variant: timing.py report or None} -> rows {"module", "phase", "batch", <variant>: median seconds,
    "paper_s"} joined over the variants on (module, phase, batch). A test row is timing's fastest exact form
    (its bfloat16 rows are left out); a module that failed gives ``error`` under its variant."""
    labels = _timing_labels()
    rows: dict = {}
    for variant, rep in timings.items():
        for mod in (rep or {}).get("modules", []):
            label = mod.get("label") or labels.get(mod.get("module"), mod.get("module"))
            if "error" in mod:
                key = (label, "-", 0)
                rows.setdefault(key, {"module": label, "phase": "-", "batch": None, "paper_s": None})
                rows[key][variant] = "error: " + str(mod["error"])[:80]
                continue
            for r in mod["rows"]:
                if "bf16_max_point_dev_mm" in r:
                    continue
                key = (label, r["phase"], r["batch"])
                row = rows.setdefault(key, {"module": label, "phase": r["phase"], "batch": r["batch"],
                                            "paper_s": r.get("paper_s")})
                row[variant] = r["median_s"]
                row[f"{variant}_form"] = r.get("variant", "xla" if rep.get("xla") else "graph")
    return list(rows.values())


# --------------------------------------------------------------------------------------------- training
def read_log_csv(path: str) -> dict:
    """A run's log.csv -> {column: [float per epoch]} ("epoch" included; non-numbers become NaN)."""
    cols: dict = {}
    if not os.path.exists(path):
        return cols
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                try:
                    val = float(v)
                except (TypeError, ValueError):
                    val = math.nan
                cols.setdefault(k, []).append(val)
    return cols


def _flag_value(flags_txt: str, name: str):
    try:
        with open(flags_txt) as f:
            for line in f:
                if line.startswith(f"--{name}="):
                    return line.strip().split("=", 1)[1]
    except OSError:
        pass
    return None


def training_summary(run_dir: str) -> dict | None:
    """What the time-limited training run did: {"epochs", "steps", "elapsed_s", "first_step_s" (its tracing
    included), "seconds_limit", "limit_reached", "batch_size", "steps_per_s", "images_per_s" (the steps after
    the first over their wall time, the epochs' validation included),
    "first_loss", "last_loss", "last_val_loss", "final" (run.json's final figures, mm), "curve": {name: (steps,
    values)}}; None when there is no run."""
    state = _read_json(os.path.join(run_dir, "run.json"))
    log = read_log_csv(os.path.join(run_dir, "log.csv"))
    if state is None and not log:
        return None
    state = state or {}
    limit = state.get("time_limit") or {}
    batch = _flag_value(os.path.join(run_dir, "flags.txt"), "batch_size")
    spe = _flag_value(os.path.join(run_dir, "flags.txt"), "steps_per_epoch")
    batch = int(batch) if batch else None
    spe = int(spe) if spe and int(spe) > 0 else None
    epochs = len(log.get("epoch", []))
    steps_total = limit.get("steps")
    # the training step at each epoch's end: whole epochs of steps_per_epoch, the last one cut by the time limit
    ends = [(i + 1) * spe for i in range(epochs)] if spe else list(range(1, epochs + 1))
    if steps_total and ends:
        ends[-1] = int(steps_total)
    curve = {k: (ends, log[k]) for k in ("loss", "val_loss") if k in log}
    elapsed = limit.get("elapsed_s") or state.get("train_seconds_last_session")
    first = limit.get("first_step_s")
    out = {"epochs": epochs, "steps": steps_total, "elapsed_s": elapsed, "first_step_s": first,
           "seconds_limit": limit.get("seconds"),
           "limit_reached": limit.get("reached"), "batch_size": batch, "steps_per_epoch": spe,
           "finished": state.get("finished"), "final": state.get("final") or {}, "curve": curve,
           "first_loss": log["loss"][0] if log.get("loss") else None,
           "last_loss": log["loss"][-1] if log.get("loss") else None,
           "last_val_loss": log["val_loss"][-1] if log.get("val_loss") else None}
    out["steps_per_s"] = out["images_per_s"] = None
    if steps_total and steps_total > 1 and elapsed and first is not None and elapsed > first:
        out["steps_per_s"] = (steps_total - 1) / (elapsed - first)
        out["images_per_s"] = out["steps_per_s"] * batch if batch else None
    return out


# --------------------------------------------------------------------------------------------- the curve
class PlotFrame:
    """Maps data coordinates to pixels of a plot area: x in [x0, x1] -> columns [left, right], y in [y0, y1] ->
    rows [bottom, top] (y grows upwards)."""

    def __init__(self, x0, x1, y0, y1, left, right, top, bottom):
        self.x0, self.x1 = float(x0), float(x1) if x1 > x0 else float(x0) + 1.0
        self.y0, self.y1 = float(y0), float(y1) if y1 > y0 else float(y0) + 1.0
        self.left, self.right, self.top, self.bottom = left, right, top, bottom

    def __call__(self, x, y) -> tuple[int, int]:
        """(column, row) pixel of the data point (x, y)."""
        u = self.left + (float(x) - self.x0) / (self.x1 - self.x0) * (self.right - self.left)
        v = self.bottom - (float(y) - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
        return int(round(u)), int(round(v))


def draw_curves(curves: dict, title: str, size=(900, 520)):
    """curves {name: (xs, ys)} -> (image (H, W, 3) uint8 BGR, the PlotFrame used). Each curve is a polyline with
    a dot per point in CURVE_COLORS[name] (grey otherwise); NaN points are left out; axes with 5 ticks each,
    a legend, the title on top. x: training steps; y: the loss."""
    import cv2

    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    pts = {k: [(x, y) for x, y in zip(*v) if np.isfinite(y)] for k, v in curves.items()}
    allx = [p[0] for v in pts.values() for p in v] or [0.0, 1.0]
    ally = [p[1] for v in pts.values() for p in v] or [0.0, 1.0]
    pad = 0.05 * (max(ally) - min(ally) or 1.0)
    frame = PlotFrame(min(0.0, min(allx)), max(allx), min(ally) - pad, max(ally) + pad, 80, w - 30, 50, h - 60)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.rectangle(img, (frame.left, frame.top), (frame.right, frame.bottom), black, 1)
    for i in range(5):
        xv = frame.x0 + i / 4 * (frame.x1 - frame.x0)
        yv = frame.y0 + i / 4 * (frame.y1 - frame.y0)
        u, _ = frame(xv, frame.y0)
        _, v = frame(frame.x0, yv)
        cv2.line(img, (u, frame.bottom), (u, frame.bottom + 5), black, 1)
        cv2.putText(img, f"{xv:.0f}", (u - 15, frame.bottom + 22), font, 0.45, black, 1, cv2.LINE_AA)
        cv2.line(img, (frame.left - 5, v), (frame.left, v), black, 1)
        cv2.putText(img, f"{yv:.3g}", (5, v + 5), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(img, "training step", (w // 2 - 50, h - 20), font, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(img, title, (frame.left, 30), font, 0.55, black, 1, cv2.LINE_AA)
    for i, (name, p) in enumerate(pts.items()):
        color = CURVE_COLORS.get(name, (128, 128, 128))
        pix = np.array([frame(x, y) for x, y in p], np.int32)
        if len(pix) > 1:
            cv2.polylines(img, [pix.reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
        for q in pix:
            cv2.circle(img, (int(q[0]), int(q[1])), 3, color, -1)
        ly = frame.top + 20 + 20 * i
        cv2.line(img, (frame.right - 150, ly), (frame.right - 120, ly), color, 2)
        cv2.putText(img, name, (frame.right - 112, ly + 5), font, 0.45, black, 1, cv2.LINE_AA)
    return img, frame


# --------------------------------------------------------------------------------------------- the summary
def _s(v, fmt="{:.4f}"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return fmt.format(v)


def build_summary(check_dir: str) -> dict:
    """Everything the check measured, read from ``check_dir`` (see the module docstring)."""
    settings = _read_json(os.path.join(check_dir, "settings.json")) or {}
    parts = read_parts(os.path.join(check_dir, "parts.tsv"))
    smi = ""
    if os.path.exists(os.path.join(check_dir, "nvidia-smi.txt")):
        with open(os.path.join(check_dir, "nvidia-smi.txt")) as f:
            smi = f.read().strip()
    timings = {v: _read_json(os.path.join(check_dir, name)) for v, name in TIMING_VARIANTS}
    memory = _read_json(os.path.join(check_dir, "gpu_memory.json"))
    training = training_summary(os.path.join(check_dir, "shn_train"))
    return {"settings": settings, "parts": parts, "ok": all(p["status"] in ("ok",) for p in parts.values()),
            "machine": {"nvidia_smi": smi, "tf": _read_json(os.path.join(check_dir, "tf_env.json"))},
            "timing_device": next((t["device"] for t in timings.values() if t), None),
            "table5": table5_rows(timings), "timing_ran": {v: t is not None for v, t in timings.items()},
            "memory": memory, "training": training}


def format_summary(s: dict) -> str:
    """summary.md: one screen of Markdown."""
    st, tf_env = s["settings"], s["machine"]["tf"] or {}
    lines = ["# GPU check", "",
             f"commit {st.get('commit', '?')}, started {st.get('date', '?')}, "
             f"wall {_s(st.get('wall_s'), '{:.0f}')} s; "
             f"TF {tf_env.get('tf_version', '?')}; devices: {tf_env.get('physical_devices', '?')}",
             "GPU: " + (s["machine"]["nvidia_smi"].splitlines()[0] if s["machine"]["nvidia_smi"] else "none"),
             "", "| part | status | seconds | note |", "|---|---|---|---|"]
    for name, p in s["parts"].items():
        lines.append(f"| {name} | {p['status']} | {p['seconds']:.0f} | {p['note']} |")
    lines += ["", f"## Table 5 (seconds per step; {s['timing_device'] or 'no timing ran'})", "",
              "| module | phase | batch | float32 | mixed_float16 | XLA | paper |", "|---|---|---|---|---|---|---|"]
    for r in s["table5"]:
        lines.append(f"| {r['module']} | {r['phase']} | {_s(r['batch'], '{}')} | {_s(r.get('float32'))} | "
                     f"{_s(r.get('mixed'))} | {_s(r.get('xla'))} | {_s(r.get('paper_s'), '{:.3f}')} |")
    m = s["memory"]
    lines += ["", "## Peak GPU memory, Vol. SHN training"]
    if not m:
        lines.append("not measured (see parts)")
    elif m.get("peak_gib") is None:
        lines.append(f"batch {m['batch']}: GPU figure unavailable ({m['note']}); peak RSS {m['rss_peak_mb']:.0f} MB")
    else:
        lines.append(f"batch {m['batch']}, {'small sizes' if m.get('small') else 'full size'}: "
                     f"{m['peak_gib']:.2f} GiB (goal <= {m['goal_gib']:g} GiB: "
                     f"{'met' if m['meets_goal'] else 'MISSED'})")
    t = s["training"]
    lines += ["", "## SHN training on synthetic records"]
    if not t:
        lines.append("no training run (see parts)")
    else:
        fin = t["final"]
        lines.append(f"{_s(t['elapsed_s'], '{:.0f}')} s of fit (limit {_s(t['seconds_limit'], '{:.0f}')} s), "
                     f"{_s(t['steps'], '{}')} steps at batch {_s(t['batch_size'], '{}')}; first step (tracing) "
                     f"{_s(t['first_step_s'], '{:.1f}')} s, then {_s(t['steps_per_s'], '{:.2f}')} steps/s, "
                     f"{_s(t['images_per_s'], '{:.1f}')} images/s (validation included)")
        lines.append(f"loss {_s(t['first_loss'])} (epoch 1) -> {_s(t['last_loss'])}; "
                     f"val loss {_s(t['last_val_loss'])}; {t['epochs']} epochs in loss_curve.png")
        if fin:
            lines.append("final: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(fin.items())
                                               if isinstance(v, (int, float))))
    lines += ["", "all parts ok" if s["ok"] else "SOME PARTS DID NOT COMPLETE (see the table above and logs/)"]
    return "\n".join(lines)


def write_report(check_dir: str) -> dict:
    """Write summary.json, summary.md and (with a training log) loss_curve.png into ``check_dir``; return the
    summary."""
    import cv2

    s = build_summary(check_dir)
    t = s["training"]
    if t and t["curve"]:
        img, _ = draw_curves(t["curve"], f"Vol. SHN on synthetic records: {t['steps'] or '?'} steps, "
                                         f"{_s(t['elapsed_s'], '{:.0f}')} s")
        cv2.imwrite(os.path.join(check_dir, "loss_curve.png"), img)
        s["loss_curve"] = "loss_curve.png"
    with open(os.path.join(check_dir, "summary.json"), "w") as f:
        json.dump(json_safe(s), f, indent=1, allow_nan=False)
    with open(os.path.join(check_dir, "summary.md"), "w") as f:
        f.write(format_summary(s) + "\n")
    return s


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This tool's flags on ``fv``. Called under ``__main__``; a flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)
    define(flags.DEFINE_string, "check_dir", "runs/gpu_check", "The folder benchmarks/gpu_check.sh wrote.")


def main(argv):
    del argv
    if not os.path.isdir(FLAGS.check_dir):
        raise cli.UserError(f"{FLAGS.check_dir}: no such folder (run benchmarks/gpu_check.sh first)")
    write_report(FLAGS.check_dir)
    with open(os.path.join(FLAGS.check_dir, "summary.md")) as f:
        print(f.read(), end="")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
