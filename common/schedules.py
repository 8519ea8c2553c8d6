"""Learning-rate schedules, chosen by name; each is a pure function of global_step.

Being pure functions of the step, a run resumed from a checkpoint follows the same curve as
an uninterrupted one.
"""
import math

import tensorflow as tf


def base_lr(params):
    """--lr, scaled linearly with the global batch when the recipe quotes it for a global
    batch of lr_batch (megvii: 0.5 at 1024); used as given when lr_batch is None (the seeds)."""
    if not params['lr_batch']:
        return params['lr']
    return params['lr'] * params['batch_size'] * params['rank_size'] / params['lr_batch']


def cosine_per_epoch(global_step, params):
    """lr * (1 + cos(pi * epoch / T_max)) / 2 with a whole-epoch staircase (the seeds' cosine).

    Past T_max epochs the rate stays at its final value instead of indexing out of range.
    """
    epoch = tf.cast(global_step // params['steps_per_epoch'], tf.float32)
    epoch = tf.minimum(epoch, float(params['T_max']))
    return base_lr(params) * 0.5 * (1.0 + tf.cos(math.pi * epoch / params['T_max']))


def linear_to_zero(global_step, params):
    """Falls linearly from the base rate at step 0 to 0 at the last step, every step (megvii)."""
    done = tf.cast(global_step, tf.float32) / params['total_steps']
    return base_lr(params) * tf.maximum(1.0 - done, 0.0)


def exponential_per_epoch(global_step, params):
    """AmoebaNet's (tensorflow/tpu): lr * lr_decay_rate ** whole epochs, counted from step 0;
    a linear warm-up from 0 replaces it during the first lr_warmup_epochs; never below 1e-4 lr.
    """
    lr = base_lr(params)
    spe = params['steps_per_epoch']
    epochs = tf.cast(global_step // spe, tf.float32)
    decayed = lr * tf.pow(params['lr_decay_rate'], epochs)
    warmup_steps = int(params['lr_warmup_epochs'] * spe)
    if warmup_steps:
        warming = lr * tf.cast(global_step, tf.float32) / warmup_steps
        decayed = tf.where(global_step < warmup_steps, warming, decayed)
    return tf.maximum(decayed, 1e-4 * lr)


SCHEDULES = {
    'exponential_per_epoch': exponential_per_epoch,
    'cosine_per_epoch': cosine_per_epoch,
    'linear_to_zero': linear_to_zero,
}


def learning_rate(global_step, params):
    return tf.identity(SCHEDULES[params['lr_schedule']](global_step, params), name='learning_rate')
