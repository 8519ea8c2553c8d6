"""Learning-rate schedules, chosen by name; each is a pure function of global_step.

Being pure functions of the step, a run resumed from a checkpoint follows the same curve as
an uninterrupted one.
"""
import math

import tensorflow as tf


def base_lr(config, runtime):
    """--lr, scaled linearly with the global batch when the recipe quotes it for a global
    batch of lr_batch (megvii: 0.5 at 1024); used as given when lr_batch is None (the seeds)."""
    if not config.lr_batch:
        return config.lr
    return config.lr * config.batch_size * runtime.rank_size / config.lr_batch


def cosine_per_epoch(global_step, config, runtime):
    """lr * (1 + cos(pi * epoch / T_max)) / 2 with a whole-epoch staircase (the seeds' cosine).

    Past T_max epochs the rate stays at its final value instead of indexing out of range.
    """
    epoch = tf.cast(global_step // runtime.steps_per_epoch, tf.float32)
    epoch = tf.minimum(epoch, float(config.T_max))
    return base_lr(config, runtime) * 0.5 * (1.0 + tf.cos(math.pi * epoch / config.T_max))


def linear_to_zero(global_step, config, runtime):
    """Falls linearly from the base rate at step 0 to 0 at the last step, every step (megvii)."""
    done = tf.cast(global_step, tf.float32) / runtime.total_steps
    return base_lr(config, runtime) * tf.maximum(1.0 - done, 0.0)


def exponential_per_epoch(global_step, config, runtime):
    """tensorflow/tpu's: lr * lr_decay_rate ** whole epochs, counted from step 0."""
    epochs = tf.cast(global_step // runtime.steps_per_epoch, tf.float32)
    return base_lr(config, runtime) * tf.pow(config.lr_decay_rate, epochs)


SCHEDULES = {
    'cosine_per_epoch': cosine_per_epoch,
    'linear_to_zero': linear_to_zero,
    'exponential_per_epoch': exponential_per_epoch,
}


def learning_rate(global_step, config, runtime):
    """The schedule's rate; a linear warm-up from 0 replaces it during the first
    lr_warmup_epochs (tensorflow/tpu's); never below lr_floor times the base rate."""
    lr = SCHEDULES[config.lr_schedule](global_step, config, runtime)
    warmup_steps = int(config.lr_warmup_epochs * runtime.steps_per_epoch)
    if warmup_steps:
        warming = base_lr(config, runtime) * tf.cast(global_step, tf.float32) / warmup_steps
        lr = tf.where(global_step < warmup_steps, warming, lr)
    if config.lr_floor:
        lr = tf.maximum(lr, config.lr_floor * base_lr(config, runtime))
    return tf.identity(lr, name='learning_rate')
