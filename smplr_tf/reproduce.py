"""Rebuild the paper's Tables 1-4 from evaluated runs, our numbers beside the published ones.

    python -m smplr_tf.reproduce --tables=1,2,3,4 --runs_dir=runs/ [--format=markdown|json] [--output=FILE]
    python -m smplr_tf.reproduce --evaluate --tables=1,2,3,4 --runs_dir=runs/   # evaluate what is trained, then print
    python -m smplr_tf.reproduce --quick [--runs_dir=runs/quick]
    python -m smplr_tf.reproduce --medium [--runs_dir=runs/medium] [--results=docs/results/medium]

Each table row reads the ``metrics.json`` (written by :mod:`smplr_tf.evaluate`) of one run directory,
``<runs_dir>/<table>/<row>/`` (see ``ROW_SPECS``); a row whose directory or metrics are missing is printed as
"not run" with the paper's numbers only. Cells read ``ours / paper`` (mm; IoU as a fraction).

``--quick`` (the README's first command) makes a small synthetic data set (bare procedural backgrounds:
``QUICK_BACKGROUND_CLUTTER``), trains every quick stage on
it (``flags/quick/*.cfg``), evaluates each one, and prints the tables (:func:`run_quick` at the end of
this module): Table 1, Table 2 on the synthetic set (its estimated-crop rows: the quick runs evaluated again with
``--crop=estimated``, with the crops' corner error) and Table 4. Re-running skips what is finished.

``--medium`` runs the same plan (:func:`run_plan`) at CPU-medium sizes on 10,000 / 500 images at the default
clutter (``flags/medium/*.cfg``, every Table 1 row including DAE_Alexnet and DAE_SHN^2d), then writes the tables,
the goals and the paper's effects one by one to ``<results>.md`` / ``.json`` (:func:`run_medium`).
"""

from __future__ import annotations

import json
import os
import dataclasses
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from absl import flags

from smplr_tf import cli

from smplr_tf import paper_results as paper

from smplr_tf.runs import FINAL_WEIGHTS, METRICS_NAME, write_json_atomic

FLAGS = flags.FLAGS


@dataclass(frozen=True)
class RowSpec:
    """Where the numbers of one table row come from.

    run: directory relative to runs_dir; key: the evaluation in metrics.json ("points", "psi", "omega",
    "all", "all_proc"); protocol: 1 or 2.
    """

    run: str
    key: str
    protocol: int = 1


# Table 1 (SURREAL validation, protocol 1). Runs named as the rows.
ALL_FIT_STEPS = 100  # fitting steps of Table 1's ALL_Fit row (evaluate --eval_fit_steps)
TABLE1_SPECS = {
    "alexnet": RowSpec("table1/alexnet", "points"),
    "shn_nl": RowSpec("table1/shn_nl", "points"),
    "shn": RowSpec("table1/shn", "points"),
    "shn_e2e": RowSpec("table1/shn_e2e", "points"),
    "shn_final": RowSpec("table1/shn_final", "points"),
    "dae_alexnet": RowSpec("table1/dae_alexnet", "points"),
    "dae_shn": RowSpec("table1/dae_shn", "points"),
    "dae_shn_2d": RowSpec("table1/dae_shn_2d", "points"),
    "psi": RowSpec("table1/psi", "psi"),
    "omega": RowSpec("table1/omega", "omega"),
    "omega_smpl": RowSpec("table1/omega_smpl", "omega"),
    "all": RowSpec("table1/all", "all"),
    "all_proc": RowSpec("table1/all", "all_proc"),
    "hmr": RowSpec("table1/hmr", "hmr"),
    "all_fit": RowSpec("table1/all", "all_fit"),  # ours, not in the paper: evaluate --eval_fit_steps
}
# Rows of ours that the paper's Table 1 lacks: (section, row key, label); the paper's cells stay empty.
TABLE1_EXTRA = (("Baseline", "hmr", "HMR (ours)"),
                # SMPLR's output refined by fitting onto the DAE output (evaluate --eval_fit_steps)
                ("ALL", "all_fit", "ALL_Fit"))

# Table 2 (Human3.6M): setting -> row -> run; both protocols read from the same evaluation.
TABLE2_SPECS = {
    "gt_crop": {
        "all": RowSpec("table2/all", "all"),
        "all_proc": RowSpec("table2/all", "all_proc"),
        "shn_final": RowSpec("table2/shn_final", "points"),
        "shn_final_e2e": RowSpec("table2/shn_e2e_final", "points"),
        "hmr": RowSpec("table2/hmr", "hmr"),
    },
    "estimated_crop": {
        "all": RowSpec("table2/all_estcrop", "all"),
        "all_proc": RowSpec("table2/all_estcrop", "all_proc"),
        "shn_final": RowSpec("table2/shn_final_estcrop", "points"),
        "shn_final_e2e": RowSpec("table2/shn_e2e_final_estcrop", "points"),
    },
}

# The published HMR row (paper.TABLE2_SMPL_BASED) printed beside our HMR run.
HMR_PUBLISHED_LABEL = "Kanazawa [9]"

# Table 3 (SURREAL test, protocol 1): surface and joints.
TABLE3_SPECS = {
    "shn_final": RowSpec("table3/shn_final", "points"),
    "shn_final_e2e": RowSpec("table3/shn_e2e_final", "points"),
    "all": RowSpec("table3/all", "all"),
    "all_proc": RowSpec("table3/all", "all_proc"),
}

# Table 4: dataset -> run of the ALL pipeline on it; the IoU of ALL_Proc.
TABLE4_SPECS = {
    "SURREAL": RowSpec("table4/surreal", "all_proc"),
    "Human3.6M": RowSpec("table4/h36m", "all_proc"),
    "UP-3D": RowSpec("table4/up3d", "all_proc"),
}


# ----------------------------------------------------------------------------------------------- reading

def read_metrics(run_dir: str):
    """The parsed metrics.json of a run directory, or None if it has none."""
    path = os.path.join(run_dir, METRICS_NAME)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e


def lookup(runs_dir: str, spec: RowSpec):
    """-> (status, evaluation dict or None, run dir). status: 'ok', 'not run', 'not evaluated'."""
    run_dir = os.path.join(runs_dir, spec.run)
    if not os.path.isdir(run_dir):
        return "not run", None, run_dir
    m = read_metrics(run_dir)
    if m is None or spec.key not in m.get("evaluations", {}):
        return "not evaluated", None, run_dir
    return "ok", m["evaluations"][spec.key], run_dir


def _p(ev, protocol, col):
    if ev is None:
        return None
    row = ev.get(f"p{protocol}") or {}
    return row.get(col)


# ----------------------------------------------------------------------------------------------- tables

def _extras(ev) -> dict:
    """What an evaluation carries beside the point errors: gender accuracy, silhouette IoU, surface error."""
    return {k: ev.get(k) for k in ("gender_accuracy", "iou", "surface_mm") if ev and ev.get(k) is not None}


def table1(runs_dir: str) -> dict:
    rows = []
    for section, key, label, values in paper.TABLE1:
        status, ev, run_dir = lookup(runs_dir, TABLE1_SPECS[key])
        ours = {c: _p(ev, 1, c) for c in paper.TABLE1_COLUMNS}
        rows.append({"section": section, "row": key, "label": label, "status": status, "run_dir": run_dir,
                     "ours": ours, "paper": dict(zip(paper.TABLE1_COLUMNS, values)),
                     "count": ev.get("count") if ev else None,
                     "data": ev.get("data") if ev else None, "extras": _extras(ev)})
    for section, key, label in TABLE1_EXTRA:
        status, ev, run_dir = lookup(runs_dir, TABLE1_SPECS[key])
        rows.append({"section": section, "row": key, "label": label, "status": status, "run_dir": run_dir,
                     "ours": {c: _p(ev, 1, c) for c in paper.TABLE1_COLUMNS},
                     "paper": dict.fromkeys(paper.TABLE1_COLUMNS), "count": ev.get("count") if ev else None,
                     "data": ev.get("data") if ev else None, "extras": _extras(ev)})
    return {"title": "Table 1: ablation, SURREAL validation, protocol 1 (mm); Jt over the 23 non-root joints",
            "columns": list(paper.TABLE1_COLUMNS), "rows": rows}


def table2(runs_dir: str) -> dict:
    rows = []
    for setting, ours_rows in paper.TABLE2_OURS.items():
        for key, (label, p1, p2) in ours_rows.items():
            status, ev, run_dir = lookup(runs_dir, TABLE2_SPECS[setting][key])
            rows.append({"setting": setting, "row": key, "label": label, "status": status, "run_dir": run_dir,
                         "ours": {"Prot. 1": _p(ev, 1, "Jt16"), "Prot. 2": _p(ev, 2, "Jt16")},
                         "ours_23_joints": {"Prot. 1": _p(ev, 1, "Jt"), "Prot. 2": _p(ev, 2, "Jt")},
                         "paper": {"Prot. 1": p1, "Prot. 2": p2},
                         "surface": ev.get("surface_mm") if ev else None,
                         "crop": (read_metrics(run_dir) or {}).get("crop") if ev else None})
    # HMR trained on the same records by stage hmr, beside HMR's published numbers
    published = {label: (a, b) for label, a, b in paper.TABLE2_SMPL_BASED}[HMR_PUBLISHED_LABEL]
    status, ev, run_dir = lookup(runs_dir, TABLE2_SPECS["gt_crop"]["hmr"])
    rows.append({"setting": "gt_crop", "row": "hmr", "label": "HMR (ours)", "status": status, "run_dir": run_dir,
                 "ours": {"Prot. 1": _p(ev, 1, "Jt16"), "Prot. 2": _p(ev, 2, "Jt16")},
                 "ours_23_joints": {"Prot. 1": _p(ev, 1, "Jt"), "Prot. 2": _p(ev, 2, "Jt")},
                 "paper": {"Prot. 1": published[0], "Prot. 2": published[1]},
                 "surface": ev.get("surface_mm") if ev else None})
    others = [{"label": l, "paper": {"Prot. 1": a, "Prot. 2": b}, "group": g}
              for g, lst in (("SMPL-based", paper.TABLE2_SMPL_BASED), ("3D pose", paper.TABLE2_POSE_ONLY))
              for l, a, b in lst]
    return {"title": "Table 2: Human3.6M MPJPE (mm) over 16 joints, protocols 1 and 2",
            "columns": ["Prot. 1", "Prot. 2"],
            "rows": rows, "published_others": others, "paper_surface": paper.TABLE2_SURFACE}


def table3(runs_dir: str) -> dict:
    rows = []
    for key, label, surf, joints, star in paper.TABLE3:
        if key in TABLE3_SPECS:
            status, ev, run_dir = lookup(runs_dir, TABLE3_SPECS[key])
        else:
            status, ev, run_dir = "published", None, None
        rows.append({"row": key, "label": label + ("*" if star else ""), "status": status, "run_dir": run_dir,
                     "ours": {"SMPL surface": ev.get("surface_mm") if ev else None,
                              "3D joints": _p(ev, 1, "Jt16")},
                     "paper": {"SMPL surface": surf, "3D joints": joints}})
    return {"title": "Table 3: SURREAL test, protocol 1 (mm); 3D joints over 16 joints",
            "columns": ["SMPL surface", "3D joints"],
            "rows": rows}


def table4(runs_dir: str) -> dict:
    rows = []
    for key, label, values in paper.TABLE4:
        row = {"row": key, "label": label, "paper": dict(zip(paper.TABLE4_DATASETS, values)), "ours": {},
               "status": "published" if key != "all_proc" else "ok", "run_dir": {}}
        if key == "all_proc":
            states = []
            for ds in paper.TABLE4_DATASETS:
                status, ev, run_dir = lookup(runs_dir, TABLE4_SPECS[ds])
                row["ours"][ds] = ev.get("iou") if ev else None
                row["run_dir"][ds] = run_dir
                states.append(status)
            row["status"] = "ok" if "ok" in states else states[0]
        rows.append(row)
    # Sec. 4.6 quotes UP-3D's SMPL surface error of ALL and ALL_Proc (no table): the same evaluation
    surface = {"paper": {"all": paper.TEXT_FACTS["up3d_surface_all_mm"],
                         "all_proc": paper.TEXT_FACTS["up3d_surface_all_proc_mm"]}, "ours": {}}
    for key in ("all", "all_proc"):
        status, ev, run_dir = lookup(runs_dir, RowSpec(TABLE4_SPECS["UP-3D"].run, key))
        surface["ours"][key] = ev.get("surface_mm") if ev else None
        surface["status"], surface["run_dir"] = status, run_dir
    return {"title": "Table 4: silhouette IoU", "columns": list(paper.TABLE4_DATASETS), "rows": rows,
            "up3d_surface": surface}


BUILDERS = {1: table1, 2: table2, 3: table3, 4: table4}


def build_tables(runs_dir: str, tables=(1, 2, 3, 4)) -> dict:
    """-> {"table1": {...}, ...}: every requested table with ours, paper and status per row."""
    return {f"table{t}": BUILDERS[t](runs_dir) for t in tables}


# ----------------------------------------------------------------------------------------------- output

def _fmt(v, iou=False):
    if v is None:
        return "-"
    return f"{v:.2f}" if iou else f"{v:.1f}"


def _cell(ours, paper_v, status, iou=False):
    if status in ("not run", "not evaluated"):
        return f"— / {_fmt(paper_v, iou)}"
    if status == "published":
        return _fmt(paper_v, iou)
    return f"{_fmt(ours, iou)} / {_fmt(paper_v, iou)}"


def to_markdown(tables: dict, ours_on: str | None = None) -> str:
    """The tables in the paper's layout; every cell ``ours / paper``. ours_on: the data our cells come from when
    it is not the paper's (e.g. "the synthetic validation set"), added to every title."""
    out = []
    for name, t in tables.items():
        iou = name == "table4"
        cols = t["columns"]
        first = ["Section", "Model"] if name == "table1" else (["Setting", "Model"] if name == "table2" else ["Model"])
        out.append(f"### {t['title']}" + (f"; ours on {ours_on}" if ours_on else "") + "\n")
        out.append("Cells: ours / paper (— : no result of ours yet, see status). "
                   + ("IoU as a fraction." if iou else "mm.") + "\n")
        out.append("| " + " | ".join(first + cols) + " | status |")
        out.append("|" + "---|" * (len(first) + len(cols) + 1))
        last_section = None
        for r in t["rows"]:
            lead = []
            if name == "table1":
                lead.append(r["section"] if r["section"] != last_section else "")
                last_section = r["section"]
            elif name == "table2":
                lead.append(r["setting"])
            lead.append(r["label"])
            cells = [_cell(r["ours"].get(c), r["paper"].get(c), r["status"], iou) for c in cols]
            status = r["status"]
            if status == "ok" and r.get("count"):
                status = f"ok (n={r['count']})"
            out.append("| " + " | ".join(lead + cells + [status]) + " |")
        if name == "table2":
            out.append("")
            out.append("Published (paper only): " + "; ".join(
                f"{o['label']} {_fmt(o['paper']['Prot. 1'])} / {_fmt(o['paper']['Prot. 2'])}"
                for o in t["published_others"]))
            surf = [f"{r['label']} {_fmt(r['surface'])}" for r in t["rows"]
                    if r["setting"] == "gt_crop" and r.get("surface") is not None]
            out.append(f"SMPL surface (paper: ALL {t['paper_surface']['all']}, ALL_Proc "
                       f"{t['paper_surface']['all_proc']} mm); ours: {', '.join(surf) if surf else 'not run'}")
            crops = [f"{r['label']} {_fmt(r['crop'].get('corner_error_px'))} px / "
                     f"{_fmt(r['crop'].get('distance_error_percent'))} %"
                     for r in t["rows"] if r["setting"] == "estimated_crop" and r.get("crop")]
            out.append("Estimated crops, corner error (pixels of the 256 crop; paper: < 5 px) / root distance error: "
                       + ("; ".join(crops) if crops else "not run"))
        if name == "table4" and t.get("up3d_surface"):
            u = t["up3d_surface"]
            cells = [f"{lab} {_cell(u['ours'].get(k), u['paper'][k], u['status'])}"
                     for k, lab in (("all", "ALL"), ("all_proc", "ALL_Proc"))]
            out.append("")
            out.append(f"UP-3D SMPL surface error, ours / paper (Sec. 4.6, mm): {'; '.join(cells)} ({u['status']})")
        out.append("")
    return "\n".join(out)


def to_json(tables: dict) -> str:
    return json.dumps(tables, indent=2, sort_keys=False)


def render(tables: dict, fmt: str = "markdown") -> str:
    if fmt == "markdown":
        return to_markdown(tables)
    if fmt == "json":
        return to_json(tables)
    raise ValueError(f"--format={fmt!r}: choose markdown or json")


def parse_tables(spec: str):
    try:
        tables = tuple(int(t) for t in str(spec).split(",") if t.strip())
    except ValueError as e:
        raise ValueError(f"--tables={spec!r}: a comma-separated list of 1, 2, 3, 4") from e
    bad = [t for t in tables if t not in BUILDERS]
    if bad or not tables:
        raise ValueError(f"--tables={spec!r}: tables must be among 1, 2, 3, 4")
    return tables


def print_tables(runs_dir: str, tables, fmt: str = "markdown", output: str | None = None) -> str:
    text = render(build_tables(runs_dir, tables), fmt)
    print(text)
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            f.write(text)
    return text


# ----------------------------------------------------------------------------------------------- --quick

DEFAULT_QUICK_DIR = os.path.join("runs", "quick")
QUICK_FLAGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags", "quick")
QUICK_TRAIN_EXAMPLES = 600
QUICK_VAL_EXAMPLES = 64
# The quick set's procedural backgrounds are a bare wall and floor (make_synthetic --background_clutter=0): on the
# default cluttered ones the quick hourglass (600 CPU steps) gets only ~12 % below the mean-pose error, on bare
# ones ~24 % (BUILD_NOTES, "Quick reproduction (CPU)"). Full-size runs use the default clutter.
QUICK_BACKGROUND_CLUTTER = 0.0


@dataclass(frozen=True)
class QuickStep:
    """One training run of --quick: flagfile name, run (below <quick>/table1/), extra flags (with {run:...})."""

    name: str
    flagfile: str
    run: str
    extra: tuple = ()


# Order: each run only needs the ones before it.
QUICK_STEPS = (
    QuickStep("SHN (volumetric hourglass)", "shn", "shn"),
    QuickStep("AlexNet baseline", "alexnet", "alexnet"),
    QuickStep("HMR baseline (direct SMPL regression)", "hmr", "hmr"),
    QuickStep("SHN_nL (joints only)", "shn_nl", "shn_nl"),
    QuickStep("SHN^final (limb heatmaps + augmentation)", "shn_final", "shn_final"),
    # The paper's DAE_noise (trained on ground truth + noise), tested on SHN estimations: its DAE_SHN row
    # (Sec. 4.4.2: 61.7 vs 61.9 mm, the same).
    QuickStep("DAE (ground truth + noise)", "dae", "dae_shn"),
    QuickStep("Psi (shape)", "smplr_shape", "psi"),
    QuickStep("Omega (pose, L_R)", "smplr_pose", "omega"),
    QuickStep("Omega_smpl (pose, L_R + L_SMPL)", "smplr_pose_smpl", "omega_smpl", ("--init_from={omega}",)),
    QuickStep("SHN_e2e (end-to-end)", "e2e", "shn_e2e",
              ("--shn_run={shn}", "--dae_run={dae_shn}", "--psi_run={psi}", "--omega_run={omega_smpl}")),
)

# Table 2's estimated-crop rows on the quick set (paper Sec. 4.6): the quick runs evaluated again with
# --crop=estimated (each hourglass, trained on ground-truth crops, estimates its own crops). No scale-augmented
# fine-tune is trained here (it would add minutes); the ground-truth-crop rows are copies of Table 1's.
# (Table 2 row dir, evaluate arguments, the quick runs it needs, Table 1 dir whose metrics are the gt-crop row.)
QUICK_ESTCROP_EVALS = (
    ("shn_final_estcrop", ("--run_dir={shn_final}",), ("shn_final",), "shn_final"),
    ("shn_e2e_final_estcrop", ("--run_dir={shn_e2e}",), ("shn_e2e",), "shn_e2e"),
    ("all_estcrop", ("--shn_run={shn}", "--dae_run={dae_shn}", "--psi_run={psi}", "--omega_run={omega_smpl}"),
     ("shn", "dae_shn", "psi", "omega_smpl"), "all"),
)
QUICK_GT_CROP_ROWS = {"shn_final": "shn_final", "shn_e2e": "shn_e2e_final", "all": "all",
                      "hmr": "hmr"}  # table1 -> table2

# (what, run evaluated, extra evaluate arguments, also copied to): every Table 1 row that --quick fills.
QUICK_EVALS = (
    ("alexnet", "alexnet", ()),
    ("hmr", "hmr", ()),
    ("shn", "shn", ()),
    ("shn_nl", "shn_nl", ()),
    ("shn_final", "shn_final", ()),
    ("dae_shn (DAE trained on noise, fed SHN)", "dae_shn", ("--eval_input=run", "--eval_input_run={shn}")),
    ("psi (fed SHN)", "psi", ("--eval_input=run", "--eval_input_run={shn}")),
    ("omega (fed SHN)", "omega", ("--eval_input=run", "--eval_input_run={shn}")),
    ("omega_smpl (fed SHN)", "omega_smpl", ("--eval_input=run", "--eval_input_run={shn}")),
    ("shn_e2e", "shn_e2e", ()),
)



@dataclass(frozen=True)
class Plan:
    """One synthetic reproduction: its data set, the runs it trains (in order), what it evaluates.

    name: "quick" or "medium"; flags_dir: its flagfiles (one per step's ``flagfile``); clutter: the procedural
    backgrounds' clutter (make_synthetic --background_clutter); steps / evals / estcrop_evals / gt_crop_rows: as
    QUICK_STEPS / QUICK_EVALS / QUICK_ESTCROP_EVALS / QUICK_GT_CROP_ROWS.
    """

    name: str
    flags_dir: str
    train_examples: int
    val_examples: int
    clutter: float
    steps: tuple
    evals: tuple
    estcrop_evals: tuple = QUICK_ESTCROP_EVALS
    gt_crop_rows: tuple = tuple(QUICK_GT_CROP_ROWS.items())
    data_workers: int = 2


QUICK_PLAN = Plan("quick", QUICK_FLAGS_DIR, QUICK_TRAIN_EXAMPLES, QUICK_VAL_EXAMPLES, QUICK_BACKGROUND_CLUTTER,
                  QUICK_STEPS, QUICK_EVALS)

# ----------------------------------------------------------------------------------------------- --medium
# The strongest evidence of learning a 2-core CPU gives in at most two hours (flags/medium/*.cfg; sizes and the
# measured step times there): every Table 1 row, on 10,000 training and 500 validation images at the default
# background clutter.
DEFAULT_MEDIUM_DIR = os.path.join("runs", "medium")
MEDIUM_FLAGS_DIR = os.path.join(os.path.dirname(QUICK_FLAGS_DIR), "medium")
MEDIUM_TRAIN_EXAMPLES = 10000
MEDIUM_VAL_EXAMPLES = 500
MEDIUM_BACKGROUND_CLUTTER = 1.0
_AFTER_DAE = [s.run for s in QUICK_STEPS].index("dae_shn") + 1
MEDIUM_STEPS = QUICK_STEPS[:_AFTER_DAE] + (
    # Table 1's DAE rows trained on what a network predicts on the training split (paper Sec. 4.4.2).
    QuickStep("DAE_Alexnet (DAE trained on AlexNet's estimations)", "dae_alexnet", "dae_alexnet",
              ("--input_run={alexnet}",)),
    QuickStep("DAE_SHN^2d (DAE lifting SHN's 2D estimations, depth 0)", "dae_shn_2d", "dae_shn_2d",
              ("--input_run={shn}",)),
) + QUICK_STEPS[_AFTER_DAE:]
MEDIUM_EVALS = QUICK_EVALS + (
    ("dae_alexnet (fed AlexNet)", "dae_alexnet", ()),
    ("dae_shn_2d (fed SHN, depth 0)", "dae_shn_2d", ()),
)
MEDIUM_PLAN = Plan("medium", MEDIUM_FLAGS_DIR, MEDIUM_TRAIN_EXAMPLES, MEDIUM_VAL_EXAMPLES,
                   MEDIUM_BACKGROUND_CLUTTER, MEDIUM_STEPS, MEDIUM_EVALS)


def _log(msg: str) -> None:
    print(f"[reproduce {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _run(cmd, desc: str, log_path: str, cwd: str | None = None) -> None:
    """Run a subprocess, its output appended to log_path; a failure raises with the log's tail. Training
    epochs are echoed with the stage's ETA (from the epochs done so far)."""
    _log(f"{desc}: {' '.join(cmd[1:])}")
    t0 = time.time()
    eta = EpochEta()
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                cwd=cwd)
        for line in proc.stdout:
            log.write(line)
            note = eta.update(line)
            if note:
                print(f"    {note}", flush=True)
            elif _interesting(line):
                print("    " + line.rstrip()[-160:], flush=True)
        rc = proc.wait()
    if rc:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-25:])
        raise RuntimeError(f"{desc} failed (exit {rc}); last lines of {log_path}:\n{tail}")
    _log(f"{desc}: done in {time.time() - t0:.0f} s")


class EpochEta:
    """Reads a training child's output; on each Keras ``Epoch n/N`` line after the first, returns
    "epoch n/N: <s> s per epoch, this stage ends in ~<m> min (<HH:MM>)", the epochs left (n - 1 done) at the mean
    time of the epochs seen so far, or the time left of a ``--max_train_seconds`` limit (the child's
    ``training stops after <s> s`` line) when that comes first ("..., time limit"). Other lines: None."""

    _EPOCH = re.compile(r"^Epoch (\d+)/(\d+)\s*$")
    _LIMIT = re.compile(r"training stops after ([0-9.eE+]+) s")

    def __init__(self, clock=time.time):
        self.clock = clock
        self.first = None  # (time, epoch) of the first epoch line
        self.limit_at = None  # clock time at which a --max_train_seconds limit ends training

    def update(self, line: str):
        lim = self._LIMIT.search(line)
        if lim:
            self.limit_at = self.clock() + float(lim.group(1))
            return None
        m = self._EPOCH.match(line.strip())
        if not m:
            return None
        n, total = int(m.group(1)), int(m.group(2))
        now = self.clock()
        if self.first is None or n <= self.first[1]:
            self.first = (now, n)
            return None
        per_epoch = (now - self.first[0]) / (n - self.first[1])
        left, why = per_epoch * (total - n + 1), ""
        if self.limit_at is not None and self.limit_at - now < left:
            left, why = max(0.0, self.limit_at - now), ", time limit"
        done_at = time.strftime("%H:%M", time.localtime(now + left))
        return (f"epoch {n}/{total}: {per_epoch:.0f} s per epoch, this stage ends in ~{left / 60:.1f} min "
                f"({done_at}{why})")


def _interesting(line: str) -> bool:
    """Progress lines worth echoing from a child (epoch summaries, evaluate results), not TF's chatter."""
    keys = ("epoch", "Epoch", "val_", "wrote", "P1 Jt", "final ", "examples in", "Error:", "error:")
    noise = ("WARNING", "cuInit", "oneDNN", "TF_ENABLE", "I0000", "W0000", "E0000")
    return any(k in line for k in keys) and not any(n in line for n in noise)


def _finished(run_dir: str) -> bool:
    try:
        with open(os.path.join(run_dir, "run.json")) as f:
            return bool(json.load(f).get("finished"))
    except (OSError, json.JSONDecodeError):
        return False


def _evaluated(run_dir: str) -> bool:
    """metrics.json newer than the run's final weights."""
    m = os.path.join(run_dir, METRICS_NAME)
    w = os.path.join(run_dir, FINAL_WEIGHTS)
    if not os.path.exists(m):
        return False
    return not os.path.exists(w) or os.path.getmtime(m) >= os.path.getmtime(w)


def _data_ready(data_dir: str, split: str, n: int, clutter: float = QUICK_BACKGROUND_CLUTTER) -> bool:
    """Whether ``split`` holds >= n examples made with this background clutter (older sets, made before the
    manifest recorded it, count as the default 1.0). A set made otherwise is an error, not silently reused:
    the runs trained on it would be mixed with new ones."""
    from smplr_tf.data import schema

    try:
        man = schema.read_manifest(data_dir)
        count = int(man["splits"][split]["num_examples"])
    except Exception:  # noqa: BLE001 - missing or partial: make it again
        return False
    made = float(man.get("sources", {}).get(split, {}).get("background_clutter", 1.0))
    if made != clutter:
        raise RuntimeError(f"{data_dir}: the '{split}' split was made with --background_clutter={made:g}, this "
                           f"reproduce --quick uses {clutter:g}; use a new --runs_dir (or delete that one)")
    return count >= n


def run_quick(quick_dir: str = DEFAULT_QUICK_DIR, fmt: str = "markdown", output: str | None = None,
              train_examples: int = QUICK_TRAIN_EXAMPLES, val_examples: int = QUICK_VAL_EXAMPLES,
              flags_dir: str = QUICK_FLAGS_DIR, smpl_dir: str = "") -> str:
    """Synthetic data -> every quick stage trained -> evaluated (Table 2's rows: again with estimated crops)
    -> Tables 1, 2 and 4 printed. Resumable."""
    plan = dataclasses.replace(QUICK_PLAN, flags_dir=flags_dir, train_examples=train_examples,
                               val_examples=val_examples)
    t_start = time.time()
    run_plan(plan, quick_dir, smpl_dir)
    print()
    print(f"reproduce --quick: synthetic data ({train_examples} train / {val_examples} val examples, bare "
          f"backgrounds, NOT SURREAL); "
          f"tiny models trained for minutes: expect errors far above the paper's.")
    text = print_tables(quick_dir, (1, 2, 4), fmt, output)
    print("Table 2 here: the synthetic val set, not Human3.6M; estimated-crop rows without the scale-augmented "
          "fine-tune. Tables 2 and 3 proper need Human3.6M / SURREAL test runs (python -m smplr_tf.reproduce "
          "--tables=1,2,3,4 --runs_dir=runs/).")
    print(f"TensorBoard logs: tensorboard --logdir {os.path.abspath(os.path.dirname(quick_dir) or '.')}   "
          f"(training: */tb/train, */tb/validation; evaluation: */tb/eval)")
    print(f"full log: {os.path.join(quick_dir, plan.name + '.log')}; total {time.time() - t_start:.0f} s")
    return text


def run_plan(plan: Plan, out_dir: str, smpl_dir: str = "") -> dict:
    """Make the plan's synthetic set, train its steps, evaluate them (ALL with ALL_Fit; Table 2's estimated-crop
    rows; Table 4's synthetic cell). Resumable: finished runs and up-to-date evaluations are skipped. Every child's
    output goes to ``<out_dir>/<plan.name>.log``; epoch lines are echoed with the stage's ETA.
    Returns {step run name: run dir} plus "all" and "data"."""
    py = sys.executable
    # Children run in the repository root: flagfiles name their bases relative to it (flags/base/...).
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.abspath(out_dir)
    smpl_dir = os.path.abspath(smpl_dir) if smpl_dir else ""
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, f"{plan.name}.log")
    data_dir = os.path.join(out_dir, "data")
    runs = {s.run: os.path.join(out_dir, "table1", s.run) for s in plan.steps}
    missing = [os.path.join(plan.flags_dir, s.flagfile + ".cfg") for s in plan.steps
               if not os.path.isfile(os.path.join(plan.flags_dir, s.flagfile + ".cfg"))]
    if missing:
        raise FileNotFoundError(f"reproduce --{plan.name} needs the {plan.name} flagfiles; missing: "
                                + ", ".join(missing))
    smpl = [f"--smpl_dir={smpl_dir}"] if smpl_dir else []
    total = 1 + len(plan.steps) + len(plan.evals) + 1 + len(plan.estcrop_evals)
    k = 0

    # 1. data
    k += 1
    for split, n, seed in (("train", plan.train_examples, 0), ("val", plan.val_examples, 1)):
        if _data_ready(data_dir, split, n, plan.clutter):
            _log(f"[{k}/{total}] synthetic {split}: {n} examples already in {data_dir}")
            continue
        _run([py, os.path.join(root, "tfrecords_tools", "make_synthetic.py"), f"--out_dir={data_dir}",
              f"--split={split}", f"--num_examples={n}", f"--seed={seed}", f"--num_workers={plan.data_workers}",
              f"--background_clutter={plan.clutter:g}"] + smpl,
             f"[{k}/{total}] synthetic {split} data ({n} examples)", log_path, cwd=root)

    # 2. training
    for step in plan.steps:
        k += 1
        run_dir = runs[step.run]
        if _finished(run_dir):
            _log(f"[{k}/{total}] {step.name}: finished already ({run_dir})")
            continue
        extra = [e.format(**runs) for e in step.extra]
        _run([py, "-m", "smplr_tf.train", f"--flagfile={os.path.join(plan.flags_dir, step.flagfile + '.cfg')}",
              f"--data_dir={data_dir}", f"--run_dir={run_dir}"] + smpl + extra,
             f"[{k}/{total}] train {step.name}", log_path, cwd=root)

    # 3. evaluation
    for what, run, extra in plan.evals:
        k += 1
        run_dir = runs[run]
        if _evaluated(run_dir):
            _log(f"[{k}/{total}] evaluate {what}: done already")
            continue
        _run([py, "-m", "smplr_tf.evaluate", f"--run_dir={run_dir}", f"--data={data_dir}", "--eval_split=val"]
             + [e.format(**runs) for e in extra], f"[{k}/{total}] evaluate {what}", log_path, cwd=root)
    k += 1
    all_dir = os.path.join(out_dir, "table1", "all")
    if not _evaluated(all_dir) or any(os.path.getmtime(os.path.join(all_dir, METRICS_NAME)) <
                                      os.path.getmtime(os.path.join(runs[r], FINAL_WEIGHTS))
                                      for r in ("shn", "dae_shn", "psi", "omega_smpl")):
        _run([py, "-m", "smplr_tf.evaluate", f"--shn_run={runs['shn']}", f"--dae_run={runs['dae_shn']}",
              f"--psi_run={runs['psi']}", f"--omega_run={runs['omega_smpl']}", f"--data={data_dir}",
              "--eval_split=val", f"--output_dir={all_dir}", f"--eval_fit_steps={ALL_FIT_STEPS}"],
             f"[{k}/{total}] evaluate ALL / ALL_Proc / ALL_Fit", log_path, cwd=root)
    else:
        _log(f"[{k}/{total}] evaluate ALL / ALL_Proc: done already")
    # Table 4 reads the ALL pipeline per data set: the synthetic val set stands in for SURREAL.
    t4 = os.path.join(out_dir, "table4", "surreal")
    os.makedirs(t4, exist_ok=True)
    shutil.copyfile(os.path.join(all_dir, METRICS_NAME), os.path.join(t4, METRICS_NAME))
    # Table 2 on the synthetic set: estimated-crop evaluations; the ground-truth-crop rows are Table 1's.
    runs_all = dict(runs, all=all_dir)
    for row, args, needs, _ in plan.estcrop_evals:
        k += 1
        row_dir = os.path.join(out_dir, "table2", row)
        if _up_to_date(row_dir, [runs[r] for r in needs]):
            _log(f"[{k}/{total}] evaluate {row} (estimated crop): done already")
            continue
        _run([py, "-m", "smplr_tf.evaluate", f"--output_dir={row_dir}"] + [a.format(**runs) for a in args]
             + [f"--data={data_dir}", "--eval_split=val", "--crop=estimated"],
             f"[{k}/{total}] evaluate {row} (estimated crop)", log_path, cwd=root)
    for src, dst in plan.gt_crop_rows:
        m = os.path.join(runs_all[src], METRICS_NAME)
        if os.path.exists(m):
            os.makedirs(os.path.join(out_dir, "table2", dst), exist_ok=True)
            shutil.copyfile(m, os.path.join(out_dir, "table2", dst, METRICS_NAME))
    return dict(runs_all, data=data_dir)


def run_medium(medium_dir: str = DEFAULT_MEDIUM_DIR, results: str = os.path.join("docs", "results", "medium"),
               plan: Plan = MEDIUM_PLAN, smpl_dir: str = "") -> dict:
    """``reproduce --medium``: the medium plan trained and evaluated (resumable), then Tables 1, 2 and 4, the
    goals and the paper's effects one by one printed and written to ``<results>.md`` and ``<results>.json``
    with the wall time, the machine and the commit. Returns the written dict."""
    t_start = time.time()
    runs = run_plan(plan, medium_dir, smpl_dir)
    prov = provenance()
    wall = _accumulate_wall(os.path.abspath(medium_dir), plan.name, time.time() - t_start, prov["commit"])
    tables = build_tables(os.path.abspath(medium_dir), (1, 2, 4))
    baseline = mean_pose_baseline(runs["data"])
    report = {
        "plan": plan.name,
        "data": {"train_examples": plan.train_examples, "val_examples": plan.val_examples,
                 "background_clutter": plan.clutter, "source": "synthetic (make_synthetic), not SURREAL"},
        "mean_pose_jt_mm": baseline,
        "goals": medium_goals(tables, baseline),
        "effects": paper_effects(tables),
        "hmr_vs_smplr": hmr_comparison(tables),
        "train_seconds": {s.run: _train_seconds(runs[s.run]) for s in plan.steps},
        "wall_seconds": wall["seconds"],
        "sessions": wall["sessions"],
        "provenance": prov,
        "tables": tables,
    }
    text = medium_markdown(report)
    print()
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(results)) or ".", exist_ok=True)
    with open(results + ".md", "w") as f:
        f.write(text)
    write_json_atomic(results + ".json", report, sort_keys=False)
    print(f"wrote {results}.md and {results}.json")
    print(f"TensorBoard, the medium runs beside the quick ones: tensorboard --logdir "
          f"{os.path.dirname(os.path.abspath(medium_dir)) or '.'}")
    return report


def _train_seconds(run_dir: str):
    """Seconds the run's last training session took (run.json), None if unknown."""
    try:
        with open(os.path.join(run_dir, "run.json")) as f:
            return json.load(f).get("train_seconds_last_session")
    except (OSError, json.JSONDecodeError):
        return None


def _accumulate_wall(out_dir: str, name: str, seconds: float, commit=None) -> dict:
    """Add this invocation (its seconds and commit) to ``<out_dir>/<name>_wall.json``: a resumed run sums its
    parts, and a report regenerated later says which commit trained and which only wrote the report.
    Returns {"seconds": total, "sessions": [{"commit", "seconds", "date_utc"}, ...]} (sessions recorded before
    commits were kept have commit None)."""
    path = os.path.join(out_dir, f"{name}_wall.json")
    state = {"seconds": 0.0, "sessions": []}
    if os.path.exists(path):
        with open(path) as f:
            state.update(json.load(f))
        if not state["sessions"] and state["seconds"]:
            state["sessions"] = [{"commit": None, "seconds": float(state["seconds"]), "date_utc": None}]
    state["sessions"].append({"commit": commit, "seconds": round(float(seconds), 1),
                              "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())})
    state["seconds"] = float(state["seconds"]) + float(seconds)
    with open(path, "w") as f:
        json.dump(state, f, indent=1)
    return state


def mean_pose_baseline(data_dir: str, train_examples: int = 2000) -> float | None:
    """Jt (mm, protocol 1, the 23 non-root joints) of predicting the mean root-relative pose of the first
    ``train_examples`` training examples for every validation example: the error of a network that learned
    nothing from the image. None when the set cannot be read."""
    import numpy as np

    from smplr_tf import metrics
    from smplr_tf.body import skeleton
    from smplr_tf.data import records, schema

    def points(split, limit=None):
        out = []
        for path, i, rec in records.iter_records(schema.split_files(data_dir, split)):
            if isinstance(rec, Exception):
                raise rec
            ex = schema.example_from_record(rec, f"{path}[{i}]")
            out.append(skeleton.points_from_smpl(np.asarray(ex["joints3d"], np.float64),
                                                 np.asarray(ex["landmarks3d"], np.float64)))
            if limit and len(out) >= limit:
                break
        return np.stack(out)

    try:
        train, val = points("train", train_examples), points("val")
    except Exception as e:  # noqa: BLE001 - reported as missing, the tables still print
        _log(f"mean-pose baseline not computed: {e}")
        return None
    mean = np.broadcast_to(train.mean(axis=0, keepdims=True), val.shape)
    return float(metrics.table1_row(mean, val, 1)["Jt"])


def _t1(tables: dict) -> dict:
    """Table 1's rows by their key (each with ours, paper, status and the evaluation's extras)."""
    return {r["row"]: r for r in tables.get("table1", {}).get("rows", [])}


def _jt(rows: dict, key: str):
    r = rows.get(key)
    return None if r is None or r["status"] != "ok" else r["ours"].get("Jt")


# The paper's effects (Table 1 and Sec. 4.4): (key, claim, row a, row b, test on (a, b), how the test reads).
PAPER_EFFECTS = (
    ("landmarks", "landmarks help the hourglass", "shn", "shn_nl", lambda a, b: a < b, "SHN < SHN_nL"),
    ("limbs_augmentation", "limbs + augmentation help", "shn_final", "shn", lambda a, b: a < b, "SHN^final < SHN"),
    ("dae_alexnet", "the DAE removes AlexNet's structured error", "dae_alexnet", "alexnet",
     lambda a, b: a <= 0.95 * b, "DAE_Alexnet <= 0.95 x Alexnet"),
    ("dae_shn", "the DAE changes SHN little", "dae_shn", "shn", lambda a, b: abs(a - b) <= 0.05 * b,
     "abs(DAE_SHN - SHN) <= 5 % of SHN"),
    ("dae_2d", "the DAE lifts 2D estimations to 3D", "dae_shn_2d", "dae_shn", lambda a, b: a <= 1.15 * b,
     "DAE_SHN^2d <= 1.15 x DAE_SHN"),
    ("l_smpl", "L_SMPL helps Omega", "omega_smpl", "omega", lambda a, b: a < b, "Omega_smpl < Omega"),
    ("end_to_end", "end-to-end training helps", "shn_e2e", "shn", lambda a, b: a < b, "SHN_e2e < SHN"),
    ("procrustes", "the Procrustes step helps ALL", "all_proc", "all", lambda a, b: a < b, "ALL_Proc < ALL"),
)


def paper_effects(tables: dict) -> list:
    """Each of the paper's effects on Table 1's Jt: reproduced / not reproduced / not run, with both numbers."""
    rows = _t1(tables)
    out = []
    for key, claim, a, b, test, reads in PAPER_EFFECTS:
        va, vb = _jt(rows, a), _jt(rows, b)
        status = "not run" if va is None or vb is None else ("reproduced" if test(va, vb) else "not reproduced")
        out.append({"effect": key, "claim": claim, "test": reads, "a": {"row": a, "Jt": va},
                    "b": {"row": b, "Jt": vb}, "status": status,
                    "paper": {"a": _paper_jt(a), "b": _paper_jt(b)}})
    return out


def _paper_jt(key: str):
    jt = paper.TABLE1_COLUMNS.index("Jt")
    for _, k, _, values in paper.TABLE1:
        if k == key:
            return values[jt]
    return None


# The medium reproduction's goals (synthetic validation set, protocol 1).
MEDIUM_SHN_VS_MEAN_POSE = 0.40
MEDIUM_ALL_VS_SHN = 1.25
MEDIUM_GENDER_ACCURACY = 0.85
MEDIUM_IOU = 0.60


def medium_goals(tables: dict, mean_pose_jt) -> list:
    """The goals of the medium reproduction, each with its measured value, its bound and met / not met."""
    rows = _t1(tables)
    shn, all_ = _jt(rows, "shn"), _jt(rows, "all")
    ev_all = lookup_eval(tables, "all")
    iou = None
    for r in tables.get("table4", {}).get("rows", []):
        if r["row"] == "all_proc":
            iou = r["ours"].get("SURREAL")
    goals = [
        ("SHN Jt <= 0.40 x the mean-pose Jt (mm)", shn,
         None if mean_pose_jt is None else MEDIUM_SHN_VS_MEAN_POSE * mean_pose_jt, "<="),
        ("ALL Jt <= 1.25 x SHN Jt (mm)", all_, None if shn is None else MEDIUM_ALL_VS_SHN * shn, "<="),
        ("gender accuracy of ALL >= 85 % (paper 89.5 %)", ev_all.get("gender_accuracy"), MEDIUM_GENDER_ACCURACY,
         ">="),
        ("silhouette IoU of ALL_Proc >= 0.60", iou, MEDIUM_IOU, ">="),
    ]
    out = []
    for what, value, bound, op in goals:
        if value is None or bound is None:
            status = "not run"
        else:
            status = "met" if (value <= bound if op == "<=" else value >= bound) else "not met"
        out.append({"goal": what, "value": value, "bound": bound, "status": status})
    return out


def lookup_eval(tables: dict, row: str) -> dict:
    """The extras (gender accuracy, IoU, surface) that a Table 1 row's evaluation carried, if any."""
    r = _t1(tables).get(row)
    return (r or {}).get("extras") or {}


def hmr_comparison(tables: dict) -> dict:
    """HMR beside SHN and ALL on Table 1's Jt (the issue of the HMR baseline asks for this, whichever wins)."""
    rows = _t1(tables)
    vals = {k: _jt(rows, k) for k in ("hmr", "shn", "all", "all_proc")}
    done = {k: v for k, v in vals.items() if v is not None}
    return {"Jt": vals, "best": min(done, key=done.get) if done else None}


def provenance() -> dict:
    """Commit (and whether the tree had changes), machine, date and command of this reproduction."""
    from smplr_tf import machine

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain")),
            "machine": machine.describe(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "command": "python -m smplr_tf.reproduce " + " ".join(sys.argv[1:])}


def _rel(a, b) -> str:
    """(a - b) / b as a signed percentage, "—" without both."""
    return "—" if a is None or b is None or not b else f"{100.0 * (a - b) / b:+.1f} %"


def medium_markdown(report: dict) -> str:
    """The medium reproduction as markdown: provenance, goals, effects, HMR, then the tables."""
    pv = report["provenance"]
    m = pv["machine"]
    f = lambda v, nd=1: "—" if v is None else f"{v:.{nd}f}"  # noqa: E731
    d = report["data"]
    lines = [
        "# Medium reproduction (synthetic data, 2-core CPU)", "",
        f"- Command: `{pv['command']}`",
        f"- Commit: `{pv['commit']}`" + (" (with uncommitted changes)" if pv["dirty"] else ""),
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['platform']}; Python {m['python']}",
        f"- Date (UTC): {pv['date_utc']}; wall time {report['wall_seconds'] / 60:.1f} min (every stage, data to "
        f"tables)",
        "- Invocations (a resumed or regenerated run lists each): " + "; ".join(
            f"{x['commit'][:10] if x['commit'] else 'commit not recorded'}: {x['seconds'] / 60:.1f} min"
            + (f" ({x['date_utc']})" if x.get("date_utc") else "") for x in report.get("sessions", [])),
        f"- Data: {d['train_examples']} training / {d['val_examples']} validation synthetic images "
        f"(background clutter {d['background_clutter']:g}); {d['source']}. Evaluated on the validation set, "
        "protocol 1 (root-relative).",
        f"- Mean-pose error (predict the mean training pose; Jt): {f(report['mean_pose_jt_mm'])} mm", "",
        "## Goals", "", "| goal | ours | bound | status |", "|---|---|---|---|"]
    for g in report["goals"]:
        nd = 3 if g["bound"] is not None and g["bound"] < 2 else 1
        lines.append(f"| {g['goal']} | {f(g['value'], nd)} | {f(g['bound'], nd)} | {g['status']} |")
    lines += ["", "## The paper's effects (Table 1, Jt in mm)", "",
              "| effect | test | ours (a / b) | ours: a vs b | paper (a / b) | paper: a vs b | status |",
              "|---|---|---|---|---|---|---|"]
    for e in report["effects"]:
        lines.append(f"| {e['claim']} | {e['test']} | {f(e['a']['Jt'])} / {f(e['b']['Jt'])} | "
                     f"{_rel(e['a']['Jt'], e['b']['Jt'])} | {f(e['paper']['a'])} / {f(e['paper']['b'])} | "
                     f"{_rel(e['paper']['a'], e['paper']['b'])} | {e['status']} |")
    h = report["hmr_vs_smplr"]["Jt"]
    ts = report.get("train_seconds") or {}
    mins = lambda r: "—" if ts.get(r) is None else f"{ts[r] / 60:.1f} min"  # noqa: E731
    lines += ["", "## HMR (ours) beside SMPLR, Jt (mm)", "",
              f"HMR {f(h['hmr'])} (trained {mins('hmr')}), SHN {f(h['shn'])} (trained {mins('shn')}), "
              f"ALL {f(h['all'])}, ALL_Proc {f(h['all_proc'])} (lowest: {report['hmr_vs_smplr']['best'] or '—'}).",
              "", "## Training time per stage", "",
              "; ".join(f"{r} {mins(r)}" for r in ts) + ".", "",
              "## Tables", "",
              "Our cells come from the synthetic validation set, the same one for every table (Table 4's SURREAL "
              "column is this set); the paper's from the data its titles name.", "",
              to_markdown(report["tables"], ours_on="the synthetic validation set")]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- --evaluate

# What `reproduce --evaluate` runs for each table: (metrics dir, "run" | "pipeline", runs, split, extra args).
# Run names follow flags/table*/ (E's flagfiles). Psi / Omega are tested on SHN estimations (Table 1, Sec.
# 4.4.3); DAE rows use what they were trained on (their --input_run). ALL uses DAE_SHN (else DAE_noise).
def evaluation_plan(runs_dir: str, tables=(1, 2, 3, 4)):
    j = lambda *p: os.path.join(runs_dir, *p)  # noqa: E731
    plan = []
    if 1 in tables:
        for row in ("alexnet", "shn_nl", "shn", "shn_final", "shn_e2e", "dae_alexnet", "dae_shn", "dae_shn_2d",
                    "hmr"):
            plan.append((j("table1", row), "run", (j("table1", row),), "val", ()))
        for row in ("psi", "omega", "omega_smpl"):
            plan.append((j("table1", row), "run", (j("table1", row),), "val",
                         ("--eval_input=run", f"--eval_input_run={j('table1', 'shn')}")))
        dae = j("table1", "dae_shn") if os.path.isdir(j("table1", "dae_shn")) else j("table1", "dae_noise")
        plan.append((j("table1", "all"), "pipeline",
                     (j("table1", "shn"), dae, j("table1", "psi"), j("table1", "omega_smpl")), "val",
                     (f"--eval_fit_steps={ALL_FIT_STEPS}",)))
    for t, name in ((2, "table2"), (3, "table3")):
        if t in tables or 4 in tables:
            if t in tables:
                for row in ("shn_final", "shn_e2e_final") + (("hmr",) if t == 2 else ()):
                    plan.append((j(name, row), "run", (j(name, row),), "test", ()))
            comps = (j(name, "shn_final"), j(name, "dae"), j(name, "psi"), j(name, "omega_smpl"))
            plan.append((j(name, "all"), "pipeline", comps, "test", ()))
    if 4 in tables:  # UP-3D: its fine-tuned SHN_e2e pipeline (flags/table4/up3d_shn_e2e_final.cfg) on its test split
        plan.append((j("table4", "up3d"), "run", (j("table4", "up3d_shn_e2e_final"),), "test",
                     (f"--output_dir={j('table4', 'up3d')}",)))
    if 2 in tables:
        # Estimated crops (paper Sec. 4.6): the scale-augmented hourglass evaluated on crops that SHN^final
        # (trained on ground-truth crops: its sizes measure the crop's scale) estimates from the 2D person box.
        est = ("--crop=estimated", f"--crop_run={j('table2', 'shn_final')}")
        for row in ("shn_final_estcrop", "shn_e2e_final_estcrop"):
            plan.append((j("table2", row), "run", (j("table2", row), j("table2", "shn_final")), "test", est))
        comps = (j("table2", "shn_final_estcrop"), j("table2", "dae"), j("table2", "psi"), j("table2", "omega_smpl"))
        plan.append((j("table2", "all_estcrop"), "pipeline", comps + (j("table2", "shn_final"),), "test", est))
    return plan


def _up_to_date(out_dir: str, inputs) -> bool:
    m = os.path.join(out_dir, METRICS_NAME)
    if not os.path.exists(m):
        return False
    newest = 0.0
    for r in inputs:
        for f in (FINAL_WEIGHTS,):
            p = os.path.join(r, f)
            if os.path.exists(p):
                newest = max(newest, os.path.getmtime(p))
    return os.path.getmtime(m) >= newest


def evaluate_all(runs_dir: str, tables=(1, 2, 3, 4), log_path: str | None = None) -> list:
    """Evaluate every trained run of the tables that has no up-to-date metrics.json (see evaluation_plan);
    runs that do not exist are skipped. Table 4 reads the ALL pipelines of Tables 3 (SURREAL) and 2
    (Human3.6M): their metrics are copied to table4/surreal and table4/h36m; UP-3D's is the fine-tuned
    table4/up3d_shn_e2e_final run evaluated on UP-3D's test split into table4/up3d. Returns the commands run."""
    py = sys.executable
    log_path = log_path or os.path.join(runs_dir, "evaluate.log")
    os.makedirs(runs_dir, exist_ok=True)
    done = []
    plan = evaluation_plan(runs_dir, tables)
    for k, (out_dir, kind, inputs, split, extra) in enumerate(plan, 1):
        missing = [r for r in inputs if not os.path.isdir(r)]
        if missing:
            _log(f"[{k}/{len(plan)}] {out_dir}: not run ({', '.join(missing)} missing)")
            continue
        if _up_to_date(out_dir, inputs):
            _log(f"[{k}/{len(plan)}] {out_dir}: evaluated already")
            continue
        if kind == "run":
            cmd = [py, "-m", "smplr_tf.evaluate", f"--run_dir={inputs[0]}", f"--eval_split={split}", *extra]
        else:  # the first four inputs: the pipeline's runs (a fifth, the crop run, only counts for freshness)
            cmd = [py, "-m", "smplr_tf.evaluate", *(f"--{n}_run={r}" for n, r in zip(("shn", "dae", "psi", "omega"),
                                                                                   inputs)),
                   f"--eval_split={split}", f"--output_dir={out_dir}", *extra]
        _run(cmd, f"[{k}/{len(plan)}] evaluate {os.path.relpath(out_dir, runs_dir)}", log_path)
        done.append(cmd)
    for src, dst in (("table3", "surreal"), ("table2", "h36m")):
        m = os.path.join(runs_dir, src, "all", METRICS_NAME)
        if 4 in tables and os.path.exists(m):
            os.makedirs(os.path.join(runs_dir, "table4", dst), exist_ok=True)
            shutil.copyfile(m, os.path.join(runs_dir, "table4", dst, METRICS_NAME))
    return done


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This command's flags on ``fv``; --smpl_dir means what it means to train. Called under ``__main__``; a flag
    that ``fv`` holds already (a second call) is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_string, "tables", "1,2,3,4", "Which tables (comma-separated).")
    define(flags.DEFINE_string, "runs_dir", "runs", "Root of the evaluated run directories (<runs_dir>/table1/shn "
           "...). With --quick / --medium: where their runs go (default runs/quick, runs/medium).")
    define(flags.DEFINE_enum, "format", "markdown", ["markdown", "json"], "Output format.")
    define(flags.DEFINE_string, "output", "", "Also write the tables to this file.")
    define(flags.DEFINE_boolean, "quick", False, "Make synthetic data, train the quick stages (flags/quick), "
           "evaluate them and print the tables.")
    define(flags.DEFINE_boolean, "evaluate", False, "First evaluate every trained run of the tables (runs named as "
           "flags/table*/) that has no up-to-date metrics.json.")
    define(flags.DEFINE_boolean, "medium", False, "Make the medium synthetic set (10,000 / 500 images), train every "
           "Table 1 stage at the medium sizes (flags/medium; at most 2 hours on a 2-core CPU), evaluate them, print "
           "the tables, goals and the paper's effects, and write them to --results (.md and .json).")
    define(flags.DEFINE_string, "results", os.path.join("docs", "results", "medium"), "--medium: where the results "
           "go (<results>.md and <results>.json).")
    define(flags.DEFINE_integer, "quick_examples", 0, "--quick: training examples made (0: the default).",
           lower_bound=0)
    define(flags.DEFINE_string, "smpl_dir", "", "--quick / --medium: official SMPL model files for the data and the "
           "runs; empty: the package's free body model.")


def main(argv):
    del argv

    if FLAGS.quick and FLAGS.medium:
        raise cli.UserError("--quick and --medium: choose one")
    if FLAGS.medium:
        run_medium(FLAGS.runs_dir if FLAGS["runs_dir"].present else DEFAULT_MEDIUM_DIR, FLAGS.results,
                   smpl_dir=FLAGS.smpl_dir)
        return
    if FLAGS.quick:
        run_quick(FLAGS.runs_dir if FLAGS["runs_dir"].present else DEFAULT_QUICK_DIR,
                  fmt=FLAGS.format, output=FLAGS.output or None,
                  train_examples=FLAGS.quick_examples or QUICK_TRAIN_EXAMPLES, smpl_dir=FLAGS.smpl_dir)
        return
    if FLAGS.evaluate:
        evaluate_all(FLAGS.runs_dir, parse_tables(FLAGS.tables))
    print_tables(FLAGS.runs_dir, parse_tables(FLAGS.tables), FLAGS.format, FLAGS.output or None)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
