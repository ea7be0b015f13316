"""The medium reproduction's plan run for real at tiny sizes (every stage, evaluation and the results files),
and its effects / goals logic on hand-made tables."""

import dataclasses
import json
import os

import pytest

from smplr_tf import reproduce

# Tiny overrides appended to every medium flagfile: the plan's wiring is what is tested, not learning.
TINY = """--epochs=1
--steps_per_epoch=2
--validation_steps=1
--batch_size=4
--val_batch_size=4
--input_size=64
--heatmap_size=16
--depth_bins=8
--hg_stacks=1
--hg_features=16
--hg_downsamplings=2
--alexnet_width=0.125
--alexnet_fc=32
--backbone_width=4
--hmr_units=16
--disc_pose_units=8
--dae_hidden=32
--dae_bottleneck=16
--smplr_trunk=32
--smplr_head=16
--num_train_samples=32
--num_val_samples=8
--baseline_batches=1
--tb_images=0
"""


def test_medium_plan_end_to_end_at_tiny_sizes(tmp_path, capsys, monkeypatch):
    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    for step in reproduce.MEDIUM_STEPS:
        src = os.path.join(reproduce.MEDIUM_FLAGS_DIR, f"{step.flagfile}.cfg")
        (flags_dir / f"{step.flagfile}.cfg").write_text(f"--flagfile={src}\n{TINY}")
    plan = dataclasses.replace(reproduce.MEDIUM_PLAN, flags_dir=str(flags_dir), train_examples=12, val_examples=6,
                               data_workers=0)
    results = tmp_path / "results" / "medium"
    report = reproduce.run_medium(str(tmp_path / "medium"), str(results), plan=plan)

    # Every Table 1 row of ours is filled, DAE_Alexnet and DAE_SHN^2d included.
    rows = {r["row"]: r for r in report["tables"]["table1"]["rows"]}
    assert {k for k, r in rows.items() if r["status"] != "ok"} == set()
    assert all(r["ours"]["Jt"] > 0 for r in rows.values())
    assert {e["status"] for e in report["effects"]} <= {"reproduced", "not reproduced"}
    assert [e["effect"] for e in report["effects"]] == [e[0] for e in reproduce.PAPER_EFFECTS]
    assert report["mean_pose_jt_mm"] > 0
    goals = {g["goal"]: g for g in report["goals"]}
    assert all(g["status"] in ("met", "not met") for g in goals.values())
    assert report["provenance"]["commit"] and report["wall_seconds"] > 0
    assert all(v > 0 for v in report["train_seconds"].values()) and len(report["train_seconds"]) == len(plan.steps)
    md = (tmp_path / "results" / "medium.md").read_text()
    assert "## The paper's effects" in md and "DAE_Alexnet <= 0.95 x Alexnet" in md and "Table 1" in md
    assert json.loads((tmp_path / "results" / "medium.json").read_text())["plan"] == "medium"
    out = capsys.readouterr().out
    assert "wrote" in out

    # Resumable: a second call trains and evaluates nothing again, and the wall time accumulates.
    calls = []
    monkeypatch.setattr(reproduce, "_run", lambda cmd, desc, log, cwd=None: calls.append(cmd))
    again = reproduce.run_medium(str(tmp_path / "medium"), str(results), plan=plan)
    assert calls == []
    assert again["wall_seconds"] >= report["wall_seconds"]
    assert [x["commit"] for x in again["sessions"]] == [report["provenance"]["commit"]] * 2


def _tables(jt: dict, gender=0.9, iou=0.7):
    rows = [{"row": k, "status": "ok" if v is not None else "not run", "ours": {"Jt": v},
             "extras": {"gender_accuracy": gender} if k == "all" else {}} for k, v in jt.items()]
    return {"table1": {"rows": rows}, "table4": {"rows": [{"row": "all_proc", "ours": {"SURREAL": iou}}]}}


def test_effects_and_goals_read_both_numbers():
    jt = {"shn": 100.0, "shn_nl": 110.0, "shn_final": 105.0, "alexnet": 200.0, "dae_alexnet": 189.0,
          "dae_shn": 104.0, "dae_shn_2d": 121.0, "omega": 50.0, "omega_smpl": 45.0, "shn_e2e": None,
          "all": 130.0, "all_proc": 120.0, "hmr": 150.0}
    eff = {e["effect"]: e for e in reproduce.paper_effects(_tables(jt))}
    assert eff["landmarks"]["status"] == "reproduced"
    assert eff["limbs_augmentation"]["status"] == "not reproduced"
    assert eff["dae_alexnet"]["status"] == "reproduced"  # 189 <= 0.95 * 200 = 190
    assert eff["dae_shn"]["status"] == "reproduced"  # within 5 %
    assert eff["dae_2d"]["status"] == "not reproduced"  # 121 > 1.15 * 104 = 119.6
    assert eff["end_to_end"]["status"] == "not run"
    assert eff["procrustes"]["status"] == "reproduced"
    assert eff["landmarks"]["a"]["Jt"] == 100.0 and eff["landmarks"]["b"]["Jt"] == 110.0
    assert eff["landmarks"]["paper"] == {"a": 59.9, "b": 62.8}
    goals = reproduce.medium_goals(_tables(jt, gender=0.8, iou=0.65), mean_pose_jt=300.0)
    st = [g["status"] for g in goals]
    assert st == ["met", "not met", "not met", "met"]  # 100 <= 120; 130 > 125; 0.8 < 0.85; 0.65 >= 0.6
    assert goals[0]["bound"] == pytest.approx(120.0)
    assert reproduce.hmr_comparison(_tables(jt))["best"] == "shn"


def test_wall_time_keeps_every_invocation_and_reads_the_old_record(tmp_path):
    (tmp_path / "medium_wall.json").write_text('{"seconds": 100.0}')  # written before invocations were kept
    state = reproduce._accumulate_wall(str(tmp_path), "medium", 5.0, "abc")
    assert state["seconds"] == 105.0
    assert [(x["commit"], x["seconds"]) for x in state["sessions"]] == [(None, 100.0), ("abc", 5.0)]
    md = reproduce.medium_markdown({
        "provenance": {"command": "c", "commit": "abc", "dirty": False, "date_utc": "d",
                       "machine": {"cpu": "x", "cores": 2, "memory_gib": 1, "platform": "p", "python": "3"}},
        "data": {"train_examples": 1, "val_examples": 1, "background_clutter": 1.0, "source": "s"},
        "wall_seconds": 105.0, "sessions": state["sessions"], "mean_pose_jt_mm": 1.0, "goals": [],
        "effects": reproduce.paper_effects({"table1": {"rows": []}}),
        "hmr_vs_smplr": {"Jt": dict.fromkeys(("hmr", "shn", "all", "all_proc")), "best": None},
        "train_seconds": {}, "tables": {}})
    assert "commit not recorded: 1.7 min" in md and "abc: 0.1 min" in md
    effect_rows = [ln for ln in md.splitlines() if ln.startswith("| the DAE changes SHN little")]
    assert effect_rows and effect_rows[0].count("|") == 8  # 7 cells: no '|' inside a cell


def test_epoch_eta_extrapolates_the_epochs_seen():
    t = [100.0]
    eta = reproduce.EpochEta(clock=lambda: t[0])
    assert eta.update("Epoch 1/5\n") is None  # nothing measured yet
    assert eta.update("100/100 - 40s - loss: 1.0") is None
    t[0] = 140.0
    note = eta.update("Epoch 2/5")
    assert note.startswith("epoch 2/5: 40 s per epoch") and "~2.7 min" in note  # epochs 2..5 left: 4 x 40 s
    t[0] = 200.0
    assert "50 s per epoch" in eta.update("Epoch 3/5") and "~2.5 min" in eta.update("Epoch 3/5")


def test_epoch_eta_stops_at_a_time_limit():
    t = [0.0]
    eta = reproduce.EpochEta(clock=lambda: t[0])
    assert eta.update("training stops after 300 s (--max_train_seconds)") is None
    eta.update("Epoch 1/50")
    t[0] = 60.0
    note = eta.update("Epoch 2/50")  # 49 epochs of 60 s left, but the limit ends training 240 s from now
    assert "~4.0 min" in note and note.endswith("time limit)")
    t[0] = 120.0
    note = eta.update("Epoch 3/100")
    assert "~3.0 min" in note
    late = reproduce.EpochEta(clock=lambda: t[0])
    late.update("training stops after 1e4 s")
    late.update("Epoch 1/3")
    t[0] = 180.0
    assert "time limit" not in late.update("Epoch 2/3")  # the epochs end first
