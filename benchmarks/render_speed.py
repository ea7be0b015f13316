"""Images per second of the synthetic-data renderer and of the generator, per core.

    python benchmarks/render_speed.py [--num_images=50] [--smpl_dir=...] [--json]

Measures, on posed bodies of the body model (the free model by default):
* ``rasterize``: :func:`smplr_tf.render.rasterize` alone, 320x240 source frame (the vectorised z-buffer);
* ``painter``: a reference painter's algorithm (one ``cv2.fillPoly`` per depth-sorted front face), for comparison;
* ``worker``: the whole per-example work of a rendering worker (scene, render, occluder, crop, JPEG/PNG);
* ``generator``: ``generate_split`` end to end in one process (sampling, SMPL on TF, rendering, writing).
Every figure is single-process. Each is given per second of wall time and per CPU-second of this process (all its
threads): the second is the per-core rate and holds even when other jobs share the machine (``smpl_bodies``:
the main process's sampling + SMPL alone, whose TF ops may use several threads).
"""

import json
import os
import tempfile
import time

import numpy as np
from absl import app, flags

from smplr_tf import cli

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """This benchmark's flags on ``fv`` (--smpl_dir means what it means to train). Called under ``__main__``; a
    flag that ``fv`` holds already is left as it is."""
    define = cli.flag_definer(fv)

    define(flags.DEFINE_integer, "num_images", 40, "Images per measurement.", lower_bound=1)
    define(flags.DEFINE_string, "smpl_dir", "", "Official SMPL model files; empty: the package's free body model.")
    define(flags.DEFINE_boolean, "painter", True, "Also time the painter's-algorithm reference.")
    define(flags.DEFINE_boolean, "json", False, "Print one JSON object instead of text.")


def painter(verts, faces, K, size, colors):
    """Reference renderer: back-face cull, sort by mean depth, cv2.fillPoly per triangle far to near."""
    import cv2

    from smplr_tf import render

    H, W = size
    img = np.zeros((H, W, 3), np.uint8)
    n = render.face_normals(verts, faces)
    front = np.einsum("fk,fk->f", n, verts[faces[:, 0]]) < 0
    f = faces[front]
    uv = verts @ np.asarray(K).T
    uv = np.round(uv[:, :2] / uv[:, 2:] * 16).astype(np.int32)
    order = np.argsort(-verts[f].mean(axis=1)[:, 2])
    cols = (np.asarray(colors)[front][order] * 255).astype(int).tolist()
    tris = uv[f[order]]
    for t, c in zip(tris, cols):
        cv2.fillPoly(img, [t], c, cv2.LINE_8, 4)
    return img


class _Clock:
    """Wall and CPU (all threads of this process) time of a block: images per CPU-second is the per-core rate
    even when other jobs share the machine."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c
        return False


def _record(res, key, n, clock):
    res[f"{key}_img_per_s"] = n / clock.wall
    res[f"{key}_img_per_cpu_s"] = n / clock.cpu


def _rate(res, key, fn, items):
    with _Clock() as c:
        for it in items:
            fn(it)
    _record(res, key, len(items), c)


def main(argv):
    del argv
    import cv2

    cv2.setNumThreads(1)
    from smplr_tf import render
    from smplr_tf.synth import appearance, generate

    n = FLAGS.num_images
    source = generate.BodySource(FLAGS.smpl_dir or None, batch_size=32)
    jobs = []
    for s in range(0, n, 32):
        jobs += source.jobs(0, "bench", range(s, min(s + 32, n)))
    generate.init_worker(source.ctx)
    faces = source.ctx["faces"]
    rng = np.random.default_rng(0)
    colors = [appearance.sample_face_colors(rng, source.ctx["appearance"]) for _ in range(4)]
    K, size = generate.K_SOURCE, generate.SOURCE_SIZE
    res = {"num_vertices": int(source.num_vertices), "num_faces": int(len(faces)), "frame_hw": list(size),
           "num_images": n}
    _rate(res, "rasterize", lambda j: render.rasterize(j["verts"], faces, K, size, face_colors=colors[j["index"] % 4]),
          jobs)
    if FLAGS.painter:
        _rate(res, "painter", lambda j: painter(j["verts"].astype(np.float64), faces, K, size, colors[j["index"] % 4]),
              jobs[: max(4, n // 4)])
    _rate(res, "worker", generate.render_example, jobs)
    with tempfile.TemporaryDirectory() as d:
        # Steady state: the SMPL layer is built and traced once (as in a long run).
        generate.generate_split(d, "warmup", 4, seed=0, num_workers=0, progress=False, source=source)
        with _Clock() as c:
            generate.generate_split(d, "bench", n, seed=0, num_workers=0, progress=False, source=source)
        _record(res, "generator", n, c)
        with _Clock() as c:
            for s in range(0, n, 32):
                source.jobs(1, "bench", range(s, min(s + 32, n)))
        _record(res, "smpl_bodies", n, c)
    res["load_average_1min"] = os.getloadavg()[0]
    if FLAGS.json:
        print(json.dumps(res))
    else:
        print(f"mesh: {res['num_vertices']} vertices, {res['num_faces']} faces; frame {size[1]}x{size[0]}; "
              f"{n} images; load average {res['load_average_1min']:.1f}")
        print("  (images/s of wall time in one process; images per CPU-second, i.e. per core without other load)")
        for k in ("rasterize", "painter", "worker", "generator", "smpl_bodies"):
            if f"{k}_img_per_s" in res:
                print(f"  {k:11s} {res[f'{k}_img_per_s']:7.1f} /s wall   {res[f'{k}_img_per_cpu_s']:7.1f} /CPU-s")


if __name__ == "__main__":
    define_flags()
    app.run(main)
