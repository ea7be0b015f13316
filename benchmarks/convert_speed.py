"""SURREAL conversion speed: clips per second with 1 and 2 (or more) local worker processes.

    python benchmarks/convert_speed.py [--num_clips=400] [--frames_per_clip=100] [--worker_counts=1,2] [--json]

Writes ``--num_clips`` SURREAL clips in the dataset's exact on-disk format (the test fixture's writer: a 320x240
mp4, ``_info.mat``, ``_segm.mat``; bodies of a random model in official SMPL format), each of
``--frames_per_clip`` frames in which the body moves ~1.7 cm per frame, so that the paper's 5 cm rule keeps about
a third (real SURREAL: ~31 of 100). Then times ``convert_surreal.convert`` over all of them (with ``--smpl_dir``,
so landmarks are computed) once per worker count, after one warm-up clip in this process (TensorFlow's start and
the SMPL layer's tracing are not counted; the worker processes' start is). Reports clips/s and examples/s per
count, the speed-up over the first count, and whether every run wrote the same bytes. On a shared machine the
wall-clock speed-up depends on the other jobs; the CPU seconds of the main process and of the workers give the
speed-up the same run would have on free cores (``speedup_free_cores``: one-process CPU time over the larger of
the main process's CPU time and the total spread over the workers).
"""

import json
import os
import sys
import tempfile
import time

from absl import flags

from smplr_tf import cli

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv``. Called under ``__main__``."""
    define = cli.flag_definer(fv)
    define(flags.DEFINE_integer, "num_clips", 400, "SURREAL clips converted per measurement (worker start-up amortised "
           "over them).", lower_bound=1)
    define(flags.DEFINE_integer, "frames_per_clip", 100, "Frames per clip (SURREAL: 100).", lower_bound=2)
    define(flags.DEFINE_list, "worker_counts", ["1", "2"], "The --num_workers values timed (1: one process).")
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")


def write_clips(root: str, smpl_dir: str, n: int, frames: int) -> None:
    """n clips under root/cmu/train/run0/ (one generated, the others copies under their own names)."""
    import shutil

    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from fixtures import surreal as fx
    from fixtures.records import write_smpl_dir
    from fixtures.smpl_numpy import NumpySMPL

    import cv2

    files = write_smpl_dir(smpl_dir, genders=("female", "male"))
    offsets = tuple(0.017 * np.arange(frames))
    g = fx.write_clip(root, NumpySMPL(files["female"]), seq="01_01", clip=1, gender=0, seed=0, offsets=offsets)
    # The fixture's frames are flat grey (cheap to decode and compress); SURREAL's are textured scenes. Re-write
    # the video over a textured, slowly panning background so that decoding and JPEG cost what they do there.
    cap = cv2.VideoCapture(g["stem"] + ".mp4")
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 2.0)
    tex = cv2.addWeighted(tex, 0.7, cv2.resize(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (640, 480)),
                          0.3, 0)
    writer = cv2.VideoWriter(g["stem"] + ".tmp.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    t = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        bg = tex[t % 200: t % 200 + 240, t % 300: t % 300 + 320]
        fg = np.abs(img.astype(int) - 80).sum(-1) > 60  # the fixture's wrist dots
        writer.write(np.where(fg[..., None], img, bg))
        t += 1
    cap.release()
    writer.release()
    os.replace(g["stem"] + ".tmp.mp4", g["stem"] + ".mp4")
    for c in range(2, n + 1):
        for suffix in (".mp4", "_info.mat", "_segm.mat"):
            shutil.copy(g["stem"] + suffix, g["stem"][: -len("0001")] + f"{c:04d}" + suffix)


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished child processes (the pool's workers)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv):
    del argv
    import cv2

    cv2.setNumThreads(1)
    sys.path.insert(0, ROOT)
    os.environ["SMPLR_NO_PROGRESS"] = "1"
    from tfrecords_tools import convert_surreal

    counts = [int(c) for c in FLAGS.worker_counts]
    res = {"num_clips": FLAGS.num_clips, "frames_per_clip": FLAGS.frames_per_clip, "cpu_count": os.cpu_count(),
           "runs": []}
    with tempfile.TemporaryDirectory() as d:
        root, smpl = os.path.join(d, "data"), os.path.join(d, "smpl")
        write_clips(root, smpl, FLAGS.num_clips, FLAGS.frames_per_clip)
        convert_surreal.convert(root, os.path.join(d, "warm"), "train", smpl_dir=smpl, max_examples=1)
        digests = set()
        for w in counts:
            out = os.path.join(d, f"out{w}")
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
            st = convert_surreal.convert(root, out, "train", smpl_dir=smpl, num_workers=w)
            wall, main_cpu, work_cpu = time.perf_counter() - t0, time.process_time() - c0, _children_cpu() - k0
            blob = b"".join(open(os.path.join(out, f), "rb").read() for f in sorted(os.listdir(out))
                            if f.endswith(".tfrecord"))
            digests.add(hash(blob))
            res["runs"].append({"num_workers": w, "seconds": wall, "clips_per_s": st["clips"] / wall,
                                "examples_per_s": st["written"] / wall, "examples": st["written"],
                                "main_cpu_s": main_cpu, "workers_cpu_s": work_cpu})
    base = res["runs"][0]["clips_per_s"]
    cpu1 = res["runs"][0]["main_cpu_s"] + res["runs"][0]["workers_cpu_s"]
    for r in res["runs"]:
        r["speedup"] = r["clips_per_s"] / base
        # what w free cores would give: the run cannot be faster than its busiest process (the main one) nor
        # than its CPU work spread over w cores
        w = max(1, r["num_workers"])
        r["speedup_free_cores"] = cpu1 / max(r["main_cpu_s"], (r["main_cpu_s"] + r["workers_cpu_s"]) / w)
    res["load_average_1min"] = os.getloadavg()[0]
    res["identical_output"] = len(digests) == 1
    if FLAGS.json:
        print(json.dumps(res, indent=1, sort_keys=True))
        return
    print(f"{res['num_clips']} clips x {res['frames_per_clip']} frames, {res['cpu_count']} CPUs")
    for r in res["runs"]:
        print(f"  {r['num_workers']} worker(s): {r['clips_per_s']:.2f} clips/s, {r['examples_per_s']:.1f} "
              f"examples/s ({r['examples']} examples in {r['seconds']:.1f} s), speed-up {r['speedup']:.2f}x; "
              f"CPU s: main {r['main_cpu_s']:.1f}, workers {r['workers_cpu_s']:.1f} -> on free cores "
              f"{r['speedup_free_cores']:.2f}x")
    print(f"  load average (1 min) at the end: {res['load_average_1min']:.2f}")
    print(f"  identical output: {res['identical_output']}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
