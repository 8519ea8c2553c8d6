"""What AmoebaNet-D's model_fn changes in the common one (official.model_fn_for): the drop-path
schedule and the auxiliary head's loss weight (0.4, hard-coded in the reference)."""
import tensorflow as tf

AUX_LOSS_WEIGHT = 0.4


def drop_path_schedule(global_step, final_keep_prob, total_steps):
    """Falls linearly from 1 at step 0 to final_keep_prob at total_steps (the reference's v1)."""
    done = tf.minimum(1.0, tf.cast(global_step, tf.float32) / float(total_steps))
    return 1.0 - done * (1.0 - final_keep_prob)


def arguments(config, runtime, global_step, is_training):
    """The keep probability of this step, in place of the option's final value."""
    keep_prob = None
    if is_training and config.drop_path_keep_prob < 1.0:
        keep_prob = drop_path_schedule(global_step, config.drop_path_keep_prob,
                                       runtime.total_steps)
    return dict(drop_path_keep_prob=keep_prob)
