"""Learning-rate schedule values and the training log line's FPS arithmetic."""
import math

import numpy as np
import pytest
import tensorflow as tf

from common import hooks, logs, runtime, schedules
from conftest import make_config

CONFIG = make_config(lr=0.1, T_max=4, batch_size=32)
RUNTIME = runtime.fixed(CONFIG, steps_per_epoch=10, total_steps=100)


def _rates(config, steps, run=RUNTIME):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        step = tf.compat.v1.placeholder(tf.int64, [])
        lr = schedules.learning_rate(step, config, run)
        return [sess.run(lr, {step: s}) for s in steps]


def cosine_lr(step, lr=0.1, t_max=4, steps_per_epoch=10):
    epoch = min(step // steps_per_epoch, t_max)
    return lr * 0.5 * (1 + math.cos(math.pi * epoch / t_max))


def test_cosine_per_epoch_values_and_tail():
    steps = [0, 9, 10, 25, 39, 40, 55, 1000]
    got = _rates(CONFIG, steps)
    np.testing.assert_allclose(got, [cosine_lr(s) for s in steps], rtol=1e-6)
    assert got[0] == pytest.approx(0.1) and got[-1] == pytest.approx(0.0, abs=1e-7)


def test_linear_to_zero_scaled_to_the_global_batch():
    """megvii: 0.5 at global batch 1024; 2 ranks x 128 = 256 gives 0.125, falling to 0."""
    config = make_config('shufflenet_v1', lr=0.5, batch_size=128)
    assert (config.lr_batch, config.lr_schedule) == (1024, 'linear_to_zero')  # the recipe's
    got = _rates(config, (0, 25, 99, 100, 150), RUNTIME._replace(rank_size=2))
    np.testing.assert_allclose(got, [0.125, 0.09375, 0.00125, 0.0, 0.0], atol=1e-7)


def test_exponential_per_epoch_with_warm_up():
    """AmoebaNet: 2.56 at global batch 1024, here 64 -> 0.16; warm-up over int(0.35 * 10) = 3
    steps from 0 (clamped at 1e-4 lr), then 0.88 per whole epoch counted from step 0."""
    config = make_config('amoebanet_d', lr=2.56, lr_decay_rate=0.88, lr_warmup_epochs=0.35,
                         batch_size=64)
    assert (config.lr_batch, config.lr_floor) == (1024, 1e-4)  # the recipe's
    got = _rates(config, [0, 1, 2, 3, 9, 10, 25, 10000])
    want = [0.16e-4, 0.16 / 3, 0.32 / 3, 0.16, 0.16, 0.16 * 0.88, 0.16 * 0.88 ** 2, 0.16e-4]
    np.testing.assert_allclose(got, want, rtol=1e-5)


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Values:
    def __init__(self, results):
        self.results = results


def _run_hook(steps_per_run, seconds_per_step, display_every, runs):
    """Drives TrainLogHook as a session would; returns the logged FPS values."""
    clock = _Clock()
    hook = hooks.TrainLogHook({}, global_batch=32 * 2, steps_per_epoch=100,
                              display_every=display_every, clock=clock)
    hook._start = hook._last = hook._latest = (0, clock.now)
    logged = []
    original = logs.log.info
    logs.log.info = lambda fmt, *args: logged.append(args)
    try:
        step = 0
        for _ in range(runs):
            step += steps_per_run
            clock.now += steps_per_run * seconds_per_step
            hook.after_run(None, _Values(dict(step=step, loss=1.0, total_loss=1.5, lr=0.1)))
        hook.end(None)
    finally:
        logs.log.info = original
    return logged


@pytest.mark.parametrize('steps_per_run', [1, 4])
def test_fps_counts_images_actually_processed(steps_per_run):
    """Global batch 64, 0.5 s per step: 128 images/s whether one Session.run covers one step
    or an NPU loop of 4 (the originals multiplied by iterations_per_loop in both cases)."""
    logged = _run_hook(steps_per_run, 0.5, display_every=8, runs=40 // steps_per_run)
    lines, summary = logged[:-1], logged[-1]
    assert [args[0] for args in lines] == [8, 16, 24, 32, 40]
    for args in lines:
        assert args[2] == pytest.approx(128.0)
        assert args[1] == pytest.approx(args[0] / 100)  # epoch = step / steps per epoch
    assert summary[0] == pytest.approx(128.0)
    assert summary[1] == 32 * 64  # images after the first displayed line


@pytest.mark.parametrize('runs, display_every, steps', [(10, 8, [8, 10]), (5, 100, [5]),
                                                        (16, 8, [8, 16])])
def test_the_last_step_of_every_run_is_logged(runs, display_every, steps):
    """Also a run shorter than display_every, and a last step between two display steps."""
    logged = _run_hook(1, 0.5, display_every=display_every, runs=runs)
    assert [args[0] for args in logged if isinstance(args[0], int)] == steps
    assert logged[-1][0] == pytest.approx(128.0)  # the summary line follows


def test_log_line_format_is_the_seeds():
    line = hooks.TRAIN_LINE % (35028, 7.0, 4289.5, 3.773, 4.477, 0.00996)
    assert line == ('step: 35028  epoch:  7.0  FPS: 4289.5  loss: 3.773  total_loss: 4.477  '
                    'lr:0.00996')


def test_warm_up_applies_to_any_schedule():
    """--lr_warmup_epochs=1 with the cosine: 0 -> lr over the first epoch (10 steps), then the
    cosine of the whole epochs as before."""
    config = make_config(lr=0.1, T_max=4, lr_warmup_epochs=1.0)
    got = _rates(config, [0, 5, 9, 10, 25])
    np.testing.assert_allclose(got, [0.0, 0.05, 0.09, cosine_lr(10), cosine_lr(25)], atol=1e-7)
