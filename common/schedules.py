"""Learning-rate schedules, chosen by name; each is a pure function of global_step.

Being pure functions of the step, a run resumed from a checkpoint follows the same curve as
an uninterrupted one.
"""
import math

import tensorflow as tf


def cosine_per_epoch(global_step, params):
    """lr * (1 + cos(pi * epoch / T_max)) / 2 with a whole-epoch staircase (the seeds' cosine).

    Past T_max epochs the rate stays at its final value instead of indexing out of range.
    """
    epoch = tf.cast(global_step // params['steps_per_epoch'], tf.float32)
    epoch = tf.minimum(epoch, float(params['T_max']))
    return params['lr'] * 0.5 * (1.0 + tf.cos(math.pi * epoch / params['T_max']))


SCHEDULES = {
    'cosine_per_epoch': cosine_per_epoch,
}


def learning_rate(global_step, params):
    return tf.identity(SCHEDULES[params['lr_schedule']](global_step, params), name='learning_rate')
