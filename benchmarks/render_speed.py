"""Images per second of the synthetic-data renderer and of the generator, per core.

    python benchmarks/render_speed.py [--num=50] [--smpl_dir=...] [--json]

Measures, on posed bodies of the body model (the free model by default):
* ``rasterize``: :func:`smplr_tf.render.rasterize` alone, 320x240 source frame (the vectorised z-buffer);
* ``painter``: a reference painter's algorithm (one ``cv2.fillPoly`` per depth-sorted front face), for comparison;
* ``worker``: the whole per-example work of a rendering worker (scene, render, occluder, crop, JPEG/PNG);
* ``generator``: ``generate_split`` end to end in one process (sampling, SMPL on TF, rendering, writing).
Every figure is single-process (one core), so it is "per core". The machine's other load shows in the numbers:
run it on an idle machine for reporting.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("num", 40, "Images per measurement.")
flags.DEFINE_string("smpl_dir", None, "Body model folder (default: the free body model).")
flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")
flags.DEFINE_bool("painter", True, "Also time the painter's-algorithm reference.")
FLAGS = flags.FLAGS


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


def _rate(fn, items):
    t = time.perf_counter()
    for it in items:
        fn(it)
    return len(items) / (time.perf_counter() - t)


def main(argv):
    del argv
    import cv2

    cv2.setNumThreads(1)
    from smplr_tf import render
    from smplr_tf.synth import appearance, generate

    n = FLAGS.num
    source = generate.BodySource(FLAGS.smpl_dir, batch_size=32)
    jobs = []
    for s in range(0, n, 32):
        jobs += source.jobs(0, "bench", range(s, min(s + 32, n)))
    generate.init_worker(source.ctx)
    faces = source.ctx["faces"]
    rng = np.random.default_rng(0)
    colors = [appearance.sample_face_colors(rng, source.ctx["regions"], source.ctx["template_y"]) for _ in range(4)]
    K, size = generate.K_SOURCE, generate.SOURCE_SIZE
    res = {"num_vertices": int(source.num_vertices), "num_faces": int(len(faces)), "frame_hw": list(size),
           "num_images": n}
    res["rasterize_img_per_s"] = _rate(
        lambda j: render.rasterize(j["verts"], faces, K, size, face_colors=colors[j["index"] % 4]), jobs)
    if FLAGS.painter:
        res["painter_img_per_s"] = _rate(lambda j: painter(j["verts"].astype(np.float64), faces, K, size,
                                                           colors[j["index"] % 4]), jobs[: max(4, n // 4)])
    res["worker_img_per_s"] = _rate(generate.render_example, jobs)
    with tempfile.TemporaryDirectory() as d:
        # Steady state: the SMPL layer is built and traced once (as in a long run).
        generate.generate_split(d, "warmup", 4, seed=0, num_workers=0, progress=False, source=source)
        t = time.perf_counter()
        generate.generate_split(d, "bench", n, seed=0, num_workers=0, progress=False, source=source)
        res["generator_img_per_s"] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for s in range(0, n, 32):
            source.jobs(1, "bench", range(s, min(s + 32, n)))
        res["smpl_bodies_per_s"] = n / (time.perf_counter() - t)
    res["load_average_1min"] = os.getloadavg()[0]
    if FLAGS.json:
        print(json.dumps(res))
    else:
        print(f"mesh: {res['num_vertices']} vertices, {res['num_faces']} faces; frame {size[1]}x{size[0]}; "
              f"{n} images; load average {res['load_average_1min']:.1f}")
        for k in ("rasterize", "painter", "worker", "generator"):
            if f"{k}_img_per_s" in res:
                print(f"  {k:10s} {res[f'{k}_img_per_s']:7.1f} images/s per core")
        print(f"  (main process: sampling + SMPL {res['smpl_bodies_per_s']:.1f} bodies/s)")


if __name__ == "__main__":
    app.run(main)
