"""Rebuild the paper's Tables 1-4 from evaluated runs, our numbers beside the published ones.

    python -m smplr_tf.reproduce --tables=1,2,3,4 --runs_dir=runs/ [--format=markdown|json] [--output=FILE]
    python -m smplr_tf.reproduce --quick [--runs_dir=runs/quick]

Each table row reads the ``metrics.json`` (written by :mod:`smplr_tf.evaluate`) of one run directory,
``<runs_dir>/<table>/<row>/`` (see ``ROW_SPECS``); a row whose directory or metrics are missing is printed as
"not run" with the paper's numbers only. Cells read ``ours / paper`` (mm; IoU as a fraction).

``--quick`` (the README's first command) makes a small synthetic data set, trains every quick stage on
it (``flags/quick/*.cfg``), evaluates each one, and prints the tables (:func:`run_quick` at the end of
this module). Re-running skips what is finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from smplr_tf import paper_results as paper

METRICS_NAME = "metrics.json"


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
}

# Table 2 (Human3.6M): setting -> row -> run; both protocols read from the same evaluation.
TABLE2_SPECS = {
    "gt_crop": {
        "all": RowSpec("table2/all", "all"),
        "all_proc": RowSpec("table2/all", "all_proc"),
        "shn_final": RowSpec("table2/shn_final", "points"),
        "shn_final_e2e": RowSpec("table2/shn_final_e2e", "points"),
    },
    "estimated_crop": {
        "all": RowSpec("table2/all_estcrop", "all"),
        "all_proc": RowSpec("table2/all_estcrop", "all_proc"),
        "shn_final": RowSpec("table2/shn_final_estcrop", "points"),
        "shn_final_e2e": RowSpec("table2/shn_final_e2e_estcrop", "points"),
    },
}

# Table 3 (SURREAL test, protocol 1): surface and joints.
TABLE3_SPECS = {
    "shn_final": RowSpec("table3/shn_final", "points"),
    "shn_final_e2e": RowSpec("table3/shn_final_e2e", "points"),
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

def table1(runs_dir: str) -> dict:
    rows = []
    for section, key, label, values in paper.TABLE1:
        status, ev, run_dir = lookup(runs_dir, TABLE1_SPECS[key])
        ours = {c: _p(ev, 1, c) for c in paper.TABLE1_COLUMNS}
        rows.append({"section": section, "row": key, "label": label, "status": status, "run_dir": run_dir,
                     "ours": ours, "paper": dict(zip(paper.TABLE1_COLUMNS, values)),
                     "count": ev.get("count") if ev else None,
                     "data": ev.get("data") if ev else None})
    return {"title": "Table 1: ablation, SURREAL validation, protocol 1 (mm)",
            "columns": list(paper.TABLE1_COLUMNS), "rows": rows}


def table2(runs_dir: str) -> dict:
    rows = []
    for setting, ours_rows in paper.TABLE2_OURS.items():
        for key, (label, p1, p2) in ours_rows.items():
            status, ev, run_dir = lookup(runs_dir, TABLE2_SPECS[setting][key])
            rows.append({"setting": setting, "row": key, "label": label, "status": status, "run_dir": run_dir,
                         "ours": {"Prot. 1": _p(ev, 1, "Jt"), "Prot. 2": _p(ev, 2, "Jt")},
                         "paper": {"Prot. 1": p1, "Prot. 2": p2},
                         "surface": ev.get("surface_mm") if ev else None})
    others = [{"label": l, "paper": {"Prot. 1": a, "Prot. 2": b}, "group": g}
              for g, lst in (("SMPL-based", paper.TABLE2_SMPL_BASED), ("3D pose", paper.TABLE2_POSE_ONLY))
              for l, a, b in lst]
    return {"title": "Table 2: Human3.6M MPJPE (mm), protocols 1 and 2", "columns": ["Prot. 1", "Prot. 2"],
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
                              "3D joints": _p(ev, 1, "Jt")},
                     "paper": {"SMPL surface": surf, "3D joints": joints}})
    return {"title": "Table 3: SURREAL test, protocol 1 (mm)", "columns": ["SMPL surface", "3D joints"],
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
    return {"title": "Table 4: silhouette IoU", "columns": list(paper.TABLE4_DATASETS), "rows": rows}


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
        return f"({status}) / {_fmt(paper_v, iou)}"
    if status == "published":
        return _fmt(paper_v, iou)
    return f"{_fmt(ours, iou)} / {_fmt(paper_v, iou)}"


def to_markdown(tables: dict) -> str:
    """The tables in the paper's layout; every cell ``ours / paper``."""
    out = []
    for name, t in tables.items():
        iou = name == "table4"
        cols = t["columns"]
        first = ["Section", "Model"] if name == "table1" else (["Setting", "Model"] if name == "table2" else ["Model"])
        out.append(f"### {t['title']}\n")
        out.append("Cells: ours / paper. " + ("Ours are fractions." if iou else "Ours in mm.") + "\n")
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


def main(argv):
    del argv
    from smplr_tf.flags import FLAGS

    if FLAGS.quick:
        run_quick(FLAGS.runs_dir if FLAGS["runs_dir"].present else DEFAULT_QUICK_DIR,
                  fmt=FLAGS.format, output=FLAGS.output)
        return
    print_tables(FLAGS.runs_dir, parse_tables(FLAGS.tables), FLAGS.format, FLAGS.output)


if __name__ == "__main__":
    from absl import app

    app.run(main)
