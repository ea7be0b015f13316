"""The numbers the SMPLR paper reports (Madadi et al., Pattern Recognition 2020), Tables 1-5, as data.

Printed beside our results by :mod:`smplr_tf.reproduce` and ``benchmarks/timing.py``. Never used as the
expected value of a test. ``None`` is a cell the paper leaves empty ("-"). Errors are mm, IoU a fraction,
times seconds per step.

Each row also names which of our runs produce it (``ROW_SPECS`` in :mod:`smplr_tf.reproduce`).
"""

from __future__ import annotations

# ----------------------------------------------------------------------------------------------- Table 1
# Ablation on SURREAL validation, protocol 1 (mm).
TABLE1_COLUMNS = ("Hd", "Ts", "Sr", "Ew", "Wt", "Hp", "Kn", "Ft", "Jt", "Lm", "Bn")

# (section, row key, label as printed in the paper, values in TABLE1_COLUMNS order)
TABLE1 = (
    ("CNN", "alexnet", "Alexnet", (100.0, 41.6, 99.0, 179.9, 246.9, 34.6, 138.5, 217.3, 133.0, None, 31.9)),
    ("CNN", "shn_nl", "SHN_nL", (47.5, 23.0, 44.2, 77.2, 112.0, 16.3, 61.9, 102.7, 62.8, None, 10.4)),
    ("CNN", "shn", "SHN", (46.2, 23.0, 43.0, 75.5, 110.2, 15.3, 61.2, 102.2, 59.9, 61.5, 9.3)),
    ("CNN", "shn_e2e", "SHN_e2e", (45.1, 22.2, 43.3, 74.4, 108.2, 16.0, 57.9, 94.2, 57.8, 59.6, 9.0)),
    ("CNN", "shn_final", "SHN^final", (40.8, 20.9, 38.0, 66.8, 93.4, 14.3, 55.7, 92.9, 53.0, 54.3, 9.7)),
    ("DAE", "dae_alexnet", "DAE_Alexnet", (89.3, 37.1, 87.2, 160.8, 230.8, 29.6, 131.7, 205.9, 121.5, None, 22.7)),
    ("DAE", "dae_shn", "DAE_SHN", (45.8, 22.2, 42.2, 75.4, 108.5, 14.4, 61.8, 103.2, 59.2, 61.1, 9.5)),
    ("DAE", "dae_shn_2d", "DAE_SHN^2d", (51.4, 23.1, 46.2, 83.7, 121.7, 15.1, 66.6, 115.4, 65.2, 66.1, 11.8)),
    ("SMPLR", "psi", "Psi", (16.5, 9.1, 13.8, 17.3, 19.9, 5.8, 11.7, 21.3, 14.4, 11.5, 6.6)),
    ("SMPLR", "omega", "Omega", (55.1, 22.3, 48.8, 85.8, 127.1, 13.4, 68.6, 122.3, 67.8, None, None)),
    ("SMPLR", "omega_smpl", "Omega_smpl", (50.1, 20.1, 44.9, 83.6, 123.6, 12.4, 63.9, 111.9, 63.8, None, None)),
    ("ALL", "all", "ALL", (57.9, 24.0, 52.8, 92.7, 140.4, 15.8, 67.8, 115.0, 70.8, 73.8, 8.4)),
    ("ALL", "all_proc", "ALL_Proc", (53.7, 26.1, 49.7, 86.2, 129.9, 21.6, 67.0, 109.2, 67.8, 70.6, 7.7)),
)

# Numbers quoted in the text of Sec. 4.4 (not in the table).
TEXT_FACTS = {
    "dae_noise_jt_mm": 61.7,  # DAE trained on GT + uniform noise, tested on SHN estimations
    "dae_shn_jt_mm_text": 61.9,  # the text's figure for DAE_SHN (the table says 59.2)
    "gender_accuracy": 0.895,  # Psi's gender accuracy
    "up3d_surface_all_mm": 91.0,  # "around 91mm" (Sec. 4.6)
    "up3d_surface_all_proc_mm": 87.0,  # "around 87mm"
}

# ----------------------------------------------------------------------------------------------- Table 2
# Human3.6M, MPJPE (mm), protocols 1 and 2. Our rows (ALL, ALL_Proc, SHN^final, SHN^final_e2e), in the
# two cropping settings; and the state of the art as printed.
TABLE2_OURS = {
    # setting -> row key -> (label, prot1, prot2)
    "estimated_crop": {
        "all": ("ALL", 68.7, 52.5),
        "all_proc": ("ALL_Proc", 63.5, 52.5),
        "shn_final": ("SHN^final", 62.2, 50.6),
        "shn_final_e2e": ("SHN^final_e2e", 57.4, 46.8),
    },
    "gt_crop": {
        "all": ("ALL", 67.9, 52.2),
        "all_proc": ("ALL_Proc", 62.6, 52.2),
        "shn_final": ("SHN^final", 61.3, 50.1),
        "shn_final_e2e": ("SHN^final_e2e", 56.5, 46.3),
    },
}
TABLE2_SMPL_BASED = (
    ("Bogo [2]", None, 82.3),
    ("Lassner [10]", None, 80.7),
    ("Tung [30]*", 98.4, None),
    ("Pavlakos [20]", None, 75.9),
    ("Omran [18]", None, 59.9),
    ("Kanazawa [9]", 87.9, 56.8),
)
TABLE2_POSE_ONLY = (
    ("Tome [29]", 88.4, 70.7),
    ("Pavlakos [19]", 71.9, 51.9),
    ("Zhou [36]", 64.9, None),
    ("Martinez [13]", 62.9, 47.7),
    ("Sun [26]", 59.1, 48.3),
    ("Sun [27]**", 64.1, None),
)
# Caption: SMPL surface errors on Human3.6M.
TABLE2_SURFACE = {"all": 88.2, "all_proc": 81.3}

# ----------------------------------------------------------------------------------------------- Table 3
# SURREAL test, protocol 1 (mm): (label, SMPL surface, 3D joints, joints are intermediate estimates "*").
TABLE3 = (
    ("tung", "Tung [30]", 74.5, 64.4, False),
    ("varol_ind", "Varol (independent) [31]", 74.5, 46.1, True),
    ("varol_mt", "Varol (multi-task) [31]", 65.8, 40.8, True),
    ("shn_final", "SHN^final", None, 42.8, True),
    ("shn_final_e2e", "SHN^final_e2e", None, 40.8, True),
    ("all", "ALL", 66.0, 50.6, False),
    ("all_proc", "ALL_Proc", 62.3, 48.2, False),
)
TABLE3_OURS = ("shn_final", "shn_final_e2e", "all", "all_proc")

# ----------------------------------------------------------------------------------------------- Table 4
TABLE4_DATASETS = ("SURREAL", "Human3.6M", "UP-3D")
TABLE4 = (
    ("varol_mt", "Varol (multi-task) [31]", (None, None, 0.73)),
    ("all_proc", "ALL_Proc", (0.75, 0.71, 0.77)),
)

# ----------------------------------------------------------------------------------------------- Table 5
# Seconds per step on a GTX 1080 Ti. module -> {(phase, batch): seconds}.
TABLE5_DEVICE = "NVIDIA GTX 1080 Ti"
TABLE5 = {
    "2D SHN": {("train", 6): 2.8, ("test", 6): 0.35, ("test", 1): 0.32},
    "Vol. SHN": {("train", 6): 16.8, ("test", 6): 3.1, ("test", 1): 0.36},
    "DAE": {("train", 256): 0.054, ("test", 256): 0.011, ("test", 1): 0.007},
    "SMPLR": {("train", 256): 2.5, ("test", 256): 0.87, ("test", 1): 0.32},
}
