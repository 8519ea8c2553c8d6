"""The training hooks: the log line (seed format) and the checkpoint saver.

FPS is images actually processed divided by wall time: the global step's advance times the
global batch. On Ascend one Session.run covers iterations_per_loop steps, and the step's
advance accounts for that by itself.
"""
import time

import tensorflow as tf

from common.logs import log

TRAIN_LINE = 'step:%6i  epoch:%5.1f  FPS:%7.1f  loss:%6.3f  total_loss:%6.3f  lr:%7.5f'
SUMMARY_LINE = 'train_performance: images/sec=%.1f images=%d seconds=%.1f'


class CheckpointSaver(tf.estimator.CheckpointSaverHook):
    """Saves model.ckpt-N every save_steps and at the end, nothing else.

    Unlike the Estimator's default it writes no graph.pbtxt, meta graph or graph summary
    (tens of MB per call for DenseNet) and no checkpoint at session start, so a run that
    fails on its first batch leaves the directory as it was. Used off Ascend; NPUEstimator
    keeps its own loop-aware saving.
    """

    def after_create_session(self, session, coord):
        self._timer.update_last_triggered_step(session.run(self._global_step_tensor))

    def _save(self, session, step):
        self._get_saver().save(session, self._save_path, global_step=step,
                               write_meta_graph=False)
        return False  # never asks to stop


class TrainLogHook(tf.estimator.SessionRunHook):
    """Logs TRAIN_LINE each time the global step passes a multiple of display_every, and at the
    run's last step."""

    def __init__(self, tensors, global_batch, steps_per_epoch, display_every, summary_dir=None,
                 clock=time.time):
        self._tensors = tensors  # step (read after the update), loss, total_loss, lr
        self._summary_dir = summary_dir  # TensorBoard scalars of each line go there
        self._global_batch = global_batch
        self._steps_per_epoch = steps_per_epoch
        self._display_every = display_every
        self._clock = clock
        self._start = self._last = self._first_display = self._latest = self._values = None

    def after_create_session(self, session, coord):
        step = session.run(tf.compat.v1.train.get_global_step())
        self._start = self._last = self._latest = (step, self._clock())

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs(self._tensors)

    def after_run(self, run_context, run_values):
        self._values = run_values.results
        step = self._values['step']
        self._latest = (step, self._clock())
        if step // self._display_every != self._last[0] // self._display_every:
            self._display()

    def _display(self):
        """The log line (and TensorBoard scalars) of the latest step."""
        values, step = self._values, self._latest[0]
        fps = self._images_per_second(self._last, self._latest)
        log.info(TRAIN_LINE, step, step / self._steps_per_epoch, fps, values['loss'],
                 values['total_loss'], values['lr'])
        if self._summary_dir:
            self._write_scalars(step, dict(loss=values['loss'], total_loss=values['total_loss'],
                                           learning_rate=values['lr'], images_per_sec=fps))
        self._last = self._latest
        if self._first_display is None:
            self._first_display = self._latest

    def _write_scalars(self, step, scalars):
        writer = tf.compat.v1.summary.FileWriterCache.get(self._summary_dir)
        writer.add_summary(tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag='train/' + k, simple_value=float(v))
            for k, v in sorted(scalars.items())]), step)
        writer.flush()

    def _images_per_second(self, begin, end):
        seconds = end[1] - begin[1]
        return (end[0] - begin[0]) * self._global_batch / seconds if seconds > 0 else 0.0

    def end(self, session):
        # The last step of every run is logged, also when it is not a multiple of
        # display_every (a run shorter than display_every would log nothing at all).
        if self._latest[0] > self._last[0]:
            self._display()
        # Steady state: from the first displayed line on, when there is a later one.
        begin = self._first_display
        if begin is None or begin[0] == self._latest[0]:
            begin = self._start
        if self._latest[0] > begin[0]:
            log.info(SUMMARY_LINE, self._images_per_second(begin, self._latest),
                     (self._latest[0] - begin[0]) * self._global_batch,
                     self._latest[1] - begin[1])
