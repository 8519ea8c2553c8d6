"""Fake NPUEstimator and NPUEstimatorSpec."""
import tensorflow as tf

from npu_bridge.estimator.npu.npu_config import NPURunConfig


class NPUEstimatorSpec(tf.estimator.EstimatorSpec):
    def __new__(cls, mode, predictions=None, loss=None, train_op=None, eval_metric_ops=None,
                export_outputs=None, training_chief_hooks=None, training_hooks=None,
                scaffold=None, evaluation_hooks=None, prediction_hooks=None, host_call=None):
        spec = super().__new__(cls, mode, predictions, loss, train_op, eval_metric_ops,
                               export_outputs, training_chief_hooks, training_hooks, scaffold,
                               evaluation_hooks, prediction_hooks)
        spec._host_call = host_call
        return spec


class _OncePerLoop(tf.estimator.SessionRunHook):
    """Shows a hook one Session.run per loop, as the device loop of the real NPUEstimator does
    (here every step still runs; the hook just sees the global step jump by the loop length)."""

    def __init__(self, hook, loop):
        self._hook, self._loop, self._runs, self._shown = hook, loop, 0, False

    def begin(self):
        self._hook.begin()

    def after_create_session(self, session, coord):
        self._hook.after_create_session(session, coord)

    def before_run(self, run_context):
        self._runs += 1
        self._shown = self._runs % self._loop == 0
        return self._hook.before_run(run_context) if self._shown else None

    def after_run(self, run_context, run_values):
        if self._shown:
            self._hook.after_run(run_context, run_values)

    def end(self, session):
        self._hook.end(session)


class NPUEstimator(tf.estimator.Estimator):
    def __init__(self, model_fn=None, model_dir=None, config=None, params=None,
                 job_start_file='', warm_start_from=None):
        if not isinstance(config, NPURunConfig):
            raise ValueError('config must be an NPURunConfig, got %r' % type(config))
        loop = config._iterations_per_loop  # pylint: disable=protected-access

        def looped_model_fn(features, labels, mode, params):
            spec = model_fn(features, labels, mode, params)
            if mode == tf.estimator.ModeKeys.TRAIN and loop > 1:
                spec = spec._replace(
                    training_hooks=[_OncePerLoop(h, loop) for h in spec.training_hooks])
            return spec

        self._job_start_file = job_start_file
        super().__init__(model_fn=looped_model_fn, model_dir=model_dir, config=config,
                         params=params, warm_start_from=warm_start_from)
