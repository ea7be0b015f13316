"""reproduce: tables assembled from metrics.json files; --quick's order and resume logic (no training here)."""

import json
import os

import pytest

from smplr_tf import paper_results, reproduce


def _write(runs_dir, rel, evaluations):
    d = os.path.join(runs_dir, rel)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "metrics.json"), "w") as f:
        json.dump({"evaluations": evaluations}, f)


def _ev(jt, p2=None, **extra):
    cols = {c: jt + i for i, c in enumerate(paper_results.TABLE1_COLUMNS)}
    cols["Jt"] = jt
    cols["Jt16"] = jt - 0.5
    p2 = p2 if p2 is not None else jt - 1
    return dict({"count": 7, "p1": cols, "p2": dict(cols, Jt=p2, Jt16=p2 - 0.5)}, **extra)


def test_rows_come_from_their_runs(tmp_path):
    runs = str(tmp_path)
    _write(runs, "table1/shn", {"points": _ev(100.0)})
    _write(runs, "table1/all", {"all": _ev(150.0, surface_mm=200.0), "all_proc": _ev(140.0, iou=0.5)})
    os.makedirs(os.path.join(runs, "table1/dae_shn"))  # run directory without metrics
    _write(runs, "table4/surreal", {"all_proc": _ev(1.0, iou=0.61)})
    _write(runs, "table2/all", {"all": _ev(80.0, p2=60.0, surface_mm=90.0), "all_proc": _ev(75.0, p2=60.0)})
    _write(runs, "table2/hmr", {"hmr": _ev(95.0, p2=70.0, surface_mm=110.0)})
    t = reproduce.build_tables(runs, (1, 2, 3, 4))
    rows = {r["row"]: r for r in t["table1"]["rows"]}
    assert rows["shn"]["status"] == "ok" and rows["shn"]["ours"]["Jt"] == 100.0
    assert rows["shn"]["ours"]["Hd"] == 100.0  # first column
    assert rows["shn"]["paper"]["Jt"] == 59.9
    assert rows["all_proc"]["ours"]["Jt"] == 140.0 and rows["all"]["ours"]["Jt"] == 150.0
    assert rows["dae_shn"]["status"] == "not evaluated"
    assert rows["alexnet"]["status"] == "not run" and rows["alexnet"]["ours"]["Jt"] is None
    assert [r["row"] for r in t["table1"]["rows"]] == [r[1] for r in paper_results.TABLE1] + [
        r[1] for r in reproduce.TABLE1_EXTRA]
    assert t["table1"]["rows"][-1]["row"] == "all_fit"
    assert t["table1"]["rows"][-1]["status"] == "not evaluated"  # table1/all has no all_fit evaluation
    t2 = {(r["setting"], r["row"]): r for r in t["table2"]["rows"]}
    # Table 2 compares over the authors' 16 joints; the 23-joint average travels beside it
    assert t2[("gt_crop", "all")]["ours"] == {"Prot. 1": 79.5, "Prot. 2": 59.5}
    assert t2[("gt_crop", "all")]["ours_23_joints"] == {"Prot. 1": 80.0, "Prot. 2": 60.0}
    assert "16 joints" in t["table2"]["title"] and "16 joints" in t["table3"]["title"]
    assert t2[("gt_crop", "all")]["paper"] == {"Prot. 1": 67.9, "Prot. 2": 52.2}
    assert t2[("estimated_crop", "all")]["status"] == "not run"
    # our HMR run beside HMR's published numbers
    assert t2[("gt_crop", "hmr")]["ours"] == {"Prot. 1": 94.5, "Prot. 2": 69.5}
    assert t2[("gt_crop", "hmr")]["paper"] == {"Prot. 1": 87.9, "Prot. 2": 56.8}
    assert rows["hmr"]["status"] == "not run" and rows["hmr"]["paper"]["Jt"] is None
    t4 = t["table4"]["rows"][1]
    assert t4["ours"]["SURREAL"] == 0.61 and t4["ours"]["UP-3D"] is None and t4["status"] == "ok"

    md = reproduce.to_markdown(t)
    assert "|  | SHN | 100.0 / 46.2 |" in md and "| CNN | Alexnet |" in md
    assert "— / 133.0" in md  # Alexnet Jt, paper only
    assert "0.61 / 0.75" in md
    titles = [ln for ln in reproduce.to_markdown(t, ours_on="the synthetic set").splitlines() if ln.startswith("###")]
    assert len(titles) == len(t) and all(ln.endswith("; ours on the synthetic set") for ln in titles)
    assert not any("ours on" in ln for ln in md.splitlines() if ln.startswith("###"))
    back = json.loads(reproduce.to_json(t))
    assert back["table1"]["rows"][2]["ours"]["Jt"] == 100.0


def test_output_file_and_formats(tmp_path, capsys):
    out = tmp_path / "t.json"
    reproduce.print_tables(str(tmp_path / "none"), (1, 3), "json", str(out))
    data = json.loads(out.read_text())
    assert set(data) == {"table1", "table3"}
    assert all(r["status"] in ("not run", "published") for r in data["table3"]["rows"])
    with pytest.raises(ValueError):
        reproduce.render({}, "html")
    with pytest.raises(ValueError):
        reproduce.parse_tables("1,5")
    assert reproduce.parse_tables("4,1") == (4, 1)


def test_quick_resumes_without_redoing_finished_work(tmp_path, monkeypatch):
    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    for s in reproduce.QUICK_STEPS:
        (flags_dir / f"{s.flagfile}.cfg").write_text("--epochs=1\n")
    quick = tmp_path / "quick"
    calls = []

    def fake_run(cmd, desc, log_path, cwd=None):
        calls.append(cmd)
        joined = " ".join(cmd)
        if "make_synthetic" in joined:
            return
        run_dir = next(c.split("=", 1)[1] for c in cmd if c.startswith(("--run_dir=", "--output_dir=")))
        os.makedirs(run_dir, exist_ok=True)
        if "smplr_tf.train" in joined:
            open(os.path.join(run_dir, "final.weights.h5"), "w").close()
            with open(os.path.join(run_dir, "run.json"), "w") as f:
                json.dump({"finished": True}, f)
        else:
            with open(os.path.join(run_dir, "metrics.json"), "w") as f:
                json.dump({"evaluations": {"points": _ev(1.0), "all": _ev(2.0), "all_proc": _ev(3.0, iou=0.4)}}, f)

    monkeypatch.setattr(reproduce, "_run", fake_run)
    monkeypatch.setattr(reproduce, "_data_ready", lambda d, s, n, c=None: False)
    reproduce.run_quick(str(quick), flags_dir=str(flags_dir))
    trains = [c for c in calls if "smplr_tf.train" in " ".join(c)]
    assert [next(a for a in c if a.startswith("--flagfile")).split("/")[-1] for c in trains] == \
        [f"{s.flagfile}.cfg" for s in reproduce.QUICK_STEPS]
    # Later steps get the earlier runs.
    e2e = " ".join(trains[-1])
    assert f"--omega_run={quick}/table1/omega_smpl" in e2e and f"--shn_run={quick}/table1/shn" in e2e
    smpl_step = [i for i, st in enumerate(reproduce.QUICK_STEPS) if st.run == "omega_smpl"][0]
    assert f"--init_from={quick}/table1/omega" in " ".join(trains[smpl_step])
    n_first = len(calls)
    assert n_first == 2 + len(reproduce.QUICK_STEPS) + len(reproduce.QUICK_EVALS) + 1 + \
        len(reproduce.QUICK_ESTCROP_EVALS)
    est = [" ".join(c) for c in calls if "--crop=estimated" in c]
    assert len(est) == 3 and f"--output_dir={quick}/table2/all_estcrop" in est[2]
    assert f"--run_dir={quick}/table1/shn_final" in est[0] and f"--omega_run={quick}/table1/omega_smpl" in est[2]
    t2 = reproduce.build_tables(str(quick), (2,))["table2"]
    assert {(r["setting"], r["row"]) for r in t2["rows"] if r["status"] == "ok"} == {
        (s, r) for s in ("gt_crop", "estimated_crop") for r in ("all", "all_proc", "shn_final", "shn_final_e2e")}
    data_calls = [c for c in calls if any("make_synthetic" in a for a in c)]
    assert len(data_calls) == 2 and all("--background_clutter=0" in c for c in data_calls)

    calls.clear()
    monkeypatch.setattr(reproduce, "_data_ready", lambda d, s, n, c=None: True)
    reproduce.run_quick(str(quick), flags_dir=str(flags_dir))
    assert calls == []  # everything finished and evaluated: nothing is run again

    # A retrained run is evaluated again (metrics older than the weights), the rest is not.
    w = quick / "table1" / "dae_shn" / "final.weights.h5"
    m = os.path.getmtime(quick / "table1" / "dae_shn" / "metrics.json")
    os.utime(w, (m + 10, m + 10))
    reproduce.run_quick(str(quick), flags_dir=str(flags_dir))
    assert any("--run_dir=" + str(quick / "table1" / "dae_shn") in " ".join(c) for c in calls)
    assert any("--output_dir=" in " ".join(c) for c in calls)  # ALL depends on the DAE
    assert not any("smplr_tf.train" in " ".join(c) for c in calls)


def test_quick_names_missing_flagfiles(tmp_path):
    with pytest.raises(FileNotFoundError, match="shn.cfg"):
        reproduce.run_quick(str(tmp_path / "q"), flags_dir=str(tmp_path))


def test_evaluate_all_runs_what_exists_once(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for rel in ("table1/shn", "table1/psi", "table1/dae_noise", "table1/omega_smpl", "table3/shn_final"):
        (runs / rel).mkdir(parents=True)
        (runs / rel / "final.weights.h5").write_text("w")
    calls = []

    def fake_run(cmd, desc, log_path, cwd=None):
        calls.append(" ".join(cmd))
        out = next(c.split("=", 1)[1] for c in cmd if c.startswith(("--output_dir=", "--run_dir=")))
        if any(c.startswith("--output_dir=") for c in cmd):
            out = next(c.split("=", 1)[1] for c in cmd if c.startswith("--output_dir="))
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump({"evaluations": {}}, f)

    monkeypatch.setattr(reproduce, "_run", fake_run)
    reproduce.evaluate_all(str(runs), (1, 2, 3, 4))
    joined = "\n".join(calls)
    assert f"--run_dir={runs}/table1/shn --eval_split=val" in joined
    assert f"--run_dir={runs}/table1/psi --eval_split=val --eval_input=run --eval_input_run={runs}/table1/shn" in joined
    # ALL falls back to DAE_noise when there is no DAE_SHN run.
    assert f"--dae_run={runs}/table1/dae_noise" in joined and f"--output_dir={runs}/table1/all" in joined
    assert f"--run_dir={runs}/table3/shn_final --eval_split=test" in joined
    assert "table1/alexnet" not in joined and "table3/all" not in joined  # not trained: skipped
    assert len(calls) == 5  # shn, psi, omega_smpl, the ALL pipeline, table3 shn_final
    calls.clear()
    reproduce.evaluate_all(str(runs), (1, 2, 3, 4))
    assert calls == []  # all up to date


def test_quick_data_made_with_other_clutter_is_refused(tmp_path):
    from smplr_tf.data import schema

    d = str(tmp_path)
    schema.update_manifest(d, "train", [{"file": "x.tfrecord", "count": 600}])
    with pytest.raises(RuntimeError, match="background_clutter=1"):  # no record: made before, i.e. default 1
        reproduce._data_ready(d, "train", 600)
    assert reproduce._data_ready(d, "train", 600, clutter=1.0)
    assert not reproduce._data_ready(d, "val", 64, clutter=1.0)  # missing split: make it


def test_table2_estimated_crop_rows_are_evaluated_with_estimated_crops(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for rel in ("shn_final", "shn_final_estcrop", "dae", "psi", "omega_smpl"):
        (runs / "table2" / rel).mkdir(parents=True)
        (runs / "table2" / rel / "final.weights.h5").write_text("w")
    calls = []

    def fake_run(cmd, desc, log_path, cwd=None):
        calls.append(" ".join(cmd))
        out = next((c.split("=", 1)[1] for c in cmd if c.startswith("--output_dir=")), None) or \
            next(c.split("=", 1)[1] for c in cmd if c.startswith("--run_dir="))
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump({"evaluations": {"points": _ev(5.0), "all": _ev(6.0), "all_proc": _ev(7.0)},
                       "crop": {"corner_error_px": 3.5, "distance_error_percent": 1.5}}, f)

    monkeypatch.setattr(reproduce, "_run", fake_run)
    reproduce.evaluate_all(str(runs), (2,))
    est = [c for c in calls if "--crop=estimated" in c]
    crop_run = f"--crop_run={runs}/table2/shn_final"
    assert len(est) == 2 and all(crop_run in c for c in est)  # the e2e estcrop run does not exist: skipped
    assert f"--run_dir={runs}/table2/shn_final_estcrop" in est[0]
    assert f"--shn_run={runs}/table2/shn_final_estcrop" in est[1] and f"--output_dir={runs}/table2/all_estcrop" in est[1]
    text = reproduce.to_markdown(reproduce.build_tables(str(runs), (2,)))
    assert "corner error" in text and "SHN^final 3.5 px / 1.5 %" in text
