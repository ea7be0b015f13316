"""The learning-rate schedule against the authors' formula lr0 * (1 - 1 / (1 + exp(c - e / 12.5))) + 1e-4."""

import math

import keras
import pytest

from smplr_tf.stages.schedule import SigmoidDecay, SigmoidRamp, make_learning_rate


def _authors(lr0, c, epoch, floor=1e-4, scale=12.5):
    return lr0 * (1.0 - 1.0 / (1.0 + math.exp(c - epoch / scale))) + floor


@pytest.mark.parametrize("c", [4.0, 10.0])
@pytest.mark.parametrize("epoch", [0, 1, 12.5, 50, 75, 100, 125, 175, 199])
def test_schedule_equals_the_authors_formula(c, epoch):
    sched = SigmoidDecay(0.01, 1e-4, c, 12.5, steps_per_epoch=10)
    assert float(sched(int(round(epoch * 10)))) == pytest.approx(_authors(0.01, c, epoch), rel=1e-5)


def test_schedule_decays_with_the_published_values():
    dae = SigmoidDecay(0.01, 1e-4, 4.0, 12.5, steps_per_epoch=1)
    hg = SigmoidDecay(0.01, 1e-4, 10.0, 12.5, steps_per_epoch=1)
    # c = 4: 9.9e-3 at 0, 5.1e-3 at 50, 2.8e-4 at 100, ~1e-4 at the end
    assert float(dae(0)) == pytest.approx(9.92e-3, rel=2e-3)
    assert float(dae(50)) == pytest.approx(5.1e-3, rel=2e-3)
    assert float(dae(100)) == pytest.approx(2.8e-4, rel=5e-3)
    assert float(dae(199)) == pytest.approx(1.0e-4, rel=2e-2)
    # c = 10: flat near 0.01 to epoch ~75, half way (5.1e-3) at 125, 2.8e-4 at 175
    assert float(hg(0)) == pytest.approx(1.01e-2, rel=1e-3)
    assert float(hg(75)) > 9.8e-3
    assert float(hg(125)) == pytest.approx(5.1e-3, rel=2e-3)
    assert float(hg(175)) == pytest.approx(2.8e-4, rel=5e-3)
    values = [float(dae(e)) for e in range(0, 200, 5)]
    assert all(a > b for a, b in zip(values, values[1:]))  # a decay, not a ramp


def test_fine_tune_rate_is_doubled_by_the_floor():
    sched = SigmoidDecay(1e-4, 1e-4, 4.0, 12.5, steps_per_epoch=1)
    assert float(sched(0)) == pytest.approx(1.982e-4, rel=1e-3)
    assert float(sched(29)) == pytest.approx(1.843e-4, rel=1e-3)


def test_flags_build_the_schedule_and_the_old_name_still_loads():
    from smplr_tf.runs import flag_values

    cfg = flag_values(lr_schedule="sigmoid", lr=0.01, lr_offset=10.0)
    sched = make_learning_rate(cfg, steps_per_epoch=4)
    assert float(sched(4 * 125)) == pytest.approx(_authors(0.01, 10.0, 125), rel=1e-5)
    old = {"module": None, "class_name": "smplr_tf>SigmoidRamp", "registered_name": "smplr_tf>SigmoidRamp",
           "config": dict(peak=0.01, floor=1e-4, offset=4.0, epochs_scale=12.5, steps_per_epoch=1)}
    loaded = keras.saving.deserialize_keras_object(old)
    assert isinstance(loaded, SigmoidRamp)
    assert float(loaded(50)) == pytest.approx(_authors(0.01, 4.0, 50), rel=1e-5)


def _simulate_growing(growth, full, epochs):
    """(epoch index of every step, total steps): the authors' loop, epoch e running min(growth (e+1), full)."""
    index = []
    for e in range(epochs):
        n = min(growth * (e + 1), full)
        index += [e + i / n for i in range(n)]
    return index


@pytest.mark.parametrize("growth,full", [(500, 3000), (3, 10), (7, 7), (5, 4), (1, 1000)])
def test_growing_epochs_follow_the_authors_loop(growth, full):
    from smplr_tf.stages.schedule import fit_epochs, growing_epoch, growing_total_steps

    epochs = 12
    index = _simulate_growing(growth, full, epochs)
    assert growing_total_steps(epochs, growth, full) == len(index)
    steps = sorted(set(range(0, len(index), max(len(index) // 200, 1))) | {len(index) - 1})
    got = growing_epoch(tf_constant(steps), growth, full).numpy()
    for s, g in zip(steps, got):
        assert g == pytest.approx(index[s], abs=1e-4), (s, g, index[s])
    assert fit_epochs(epochs, full, growth) == math.ceil(len(index) / full)
    assert fit_epochs(epochs, full, 0) == epochs


def tf_constant(values):
    import tensorflow as tf

    return tf.constant(values, tf.int64)


def test_growing_schedule_equals_the_formula_at_each_epoch_start():
    from smplr_tf.runs import flag_values
    from smplr_tf.stages.schedule import growing_total_steps

    cfg = flag_values(lr_schedule="sigmoid", lr=0.01, lr_offset=10.0, epoch_growth=500)
    full = 40000  # batches in one pass
    sched = make_learning_rate(cfg, steps_per_epoch=full)
    for e in (0, 1, 10, 79, 80, 125, 199):
        start = growing_total_steps(e, 500, full)  # first step of epoch e
        assert float(sched(start)) == pytest.approx(_authors(0.01, 10.0, e), rel=1e-5)
    assert sched.get_config()["epoch_growth"] == 500
