"""The configuration: precedence, every resolve-time rejection, and flags that must take effect."""
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

import official
from common import (command_line, config, input_pipeline, logs, model_fn, optimizer,
                    preprocessing, run_record, runtime, schedules)
from common.errors import UsageError
from conftest import make_config
from official.amoebanet_d import model as amoebanet_model

NETWORKS = official.load_all()


def from_flags(*args):
    """The Config train.py resolves from these command-line flags."""
    command = command_line.parse(['train.py'] + list(args), NETWORKS)
    return config.resolve(official.load(command.network), command.overrides,
                          other_networks=NETWORKS)


def test_precedence_defaults_recipe_dataset_overrides():
    network = official.load('shufflenet_v1')
    base = config.resolve(network)
    assert base.T_max == config.SCHEMA_BY_NAME['T_max'].default == 150  # not in the recipe
    assert base.lr == network.recipe['lr'] == 0.5  # the recipe beats the default 0.1
    assert base.num_classes == 1000
    described = config.resolve(network, dataset={'num_classes': 10})
    assert described.num_classes == 10  # the dataset beats the default
    chosen = config.resolve(network, {'num_classes': 7, 'lr': 0.2}, dataset={'num_classes': 10})
    assert (chosen.num_classes, chosen.lr) == (7, 0.2)  # overrides beat everything
    assert chosen.network == 'shufflenet_v1'
    assert chosen.restore_exclude == ('shufflenet_v1/fc',)  # the network's classifier
    assert chosen.eval_dir == chosen.log_dir
    assert from_flags('--network=shufflenet_v1', '--lr=0.2').lr == 0.2


def test_a_checkpoints_hparams_fix_what_its_weights_need(tmp_path):
    """evaluate/export/predict take network, classes, size, preprocessing and the network's
    options from the checkpoint's hparams.json; fine-tuning takes only its preprocessing."""
    saved = dict(network='amoebanet_d', num_classes=12, image_size=96,
                 preprocessing='imagenet_mean_std', num_cells=3, moving_average_decay=0.0)
    (tmp_path / run_record.HPARAMS_FILE).write_text(json.dumps(saved))

    def resolved(*args):
        return command_line.resolve(['train.py'] + list(args), NETWORKS)[1]

    for mode in config.MODEL_MODES:
        cfg = resolved('--mode=' + mode, '--eval_dir=%s' % tmp_path)
        assert (cfg.network, cfg.num_classes, cfg.image_size, cfg.preprocessing, cfg.num_cells,
                cfg.moving_average_decay) == ('amoebanet_d', 12, 96, 'imagenet_mean_std', 3, 0.0)
    # the user's explicit choice wins where it can (another evaluation size, preprocessing)
    cfg = resolved('--mode=evaluate', '--eval_dir=%s' % tmp_path, '--image_size=128',
                   '--preprocessing=inception')
    assert (cfg.image_size, cfg.preprocessing) == (128, 'inception')
    for args, message in ((['--mode=export', '--image_size=128'], '--image_size=128 differs'),
                          (['--mode=evaluate', '--num_classes=10'], '--num_classes=10 differs'),
                          (['--mode=predict', '--network=vgg16'],
                           'holds a checkpoint of amoebanet_d')):
        with pytest.raises(UsageError, match=message):
            resolved('--eval_dir=%s' % tmp_path, *args)
    cfg = resolved('--mode=train', '--network=amoebanet_d', '--restore_path=%s' % tmp_path)
    assert (cfg.preprocessing, cfg.num_classes, cfg.image_size) == (
        'imagenet_mean_std', 1000, 224)  # the recipe's inception gave way; the rest is the run's
    assert resolved('--mode=train', '--network=amoebanet_d').preprocessing == 'inception'


def test_a_densenets_block_config_is_recorded_and_read_back(tmp_path):
    """--block_config builds DenseNet-121's design at other depths; hparams.json records it as
    a list and the modes that read the model take it back (as a tuple, like the flag's)."""
    cfg = make_config(block_config='1,2,3,4')
    assert cfg.block_config == (1, 2, 3, 4) and make_config().block_config == (6, 12, 24, 16)
    (tmp_path / run_record.HPARAMS_FILE).write_text(json.dumps(cfg.as_dict()))
    assert json.loads((tmp_path / run_record.HPARAMS_FILE).read_text())['block_config'] == [
        1, 2, 3, 4]
    _, read = command_line.resolve(['train.py', '--mode=evaluate',
                                          '--eval_dir=%s' % tmp_path], NETWORKS)
    assert read.block_config == (1, 2, 3, 4)
    with tf.Graph().as_default():
        logits, end_points = official.load('densenet121').build(
            tf.zeros([1, 32, 32, 3]), False, 10, block_config=read.block_config)
        # stem 64, then +32 per layer and halved by each transition: 96 48 112 56 152 76 204
        assert end_points['features'].shape.as_list() == [1, 204]


def test_config_is_read_only():
    cfg = make_config()
    with pytest.raises(AttributeError, match='read-only'):
        cfg.lr = 1.0
    with pytest.raises(AttributeError, match='read-only'):
        cfg.new_key = 1
    with pytest.raises(AttributeError, match='no value'):
        cfg.not_a_setting
    assert isinstance(cfg.restore_exclude, tuple)


@pytest.mark.parametrize('recipe_change, message', [
    ({'optimzer': 'momentum'}, "densenet121 recipe: unknown setting 'optimzer'"),
    ({'optimizer': 'adagrad'}, 'densenet121 recipe: optimizer=adagrad is not one of: momentum, '
                               'rmsprop, adam'),
    ({'lr_schedule': 'cosine'}, 'lr_schedule=cosine is not one of: cosine_per_epoch, '
                                'linear_to_zero, exponential_per_epoch'),
    ({'preprocessing': 'vgg'}, 'preprocessing=vgg is not one of: imagenet_mean_std'),
    ({'lr_batch': 0}, 'densenet121 recipe: lr_batch=0 is below its minimum 1'),
    ({'lr_schedule': 'exponential_per_epoch'}, 'exponential_per_epoch needs lr_decay_rate'),
])
def test_a_bad_recipe_fails_when_resolved(recipe_change, message):
    network = official.load('densenet121')
    bad = network._replace(recipe=dict(network.recipe, **recipe_change))
    with pytest.raises(UsageError) as error:
        config.resolve(bad)
    assert message in str(error.value)


@pytest.mark.parametrize('network, overrides, message', [
    ('densenet121', {'batch_size': 0}, '--batch_size=0 is below its minimum 1'),
    ('densenet121', {'lr': -0.1}, '--lr=-0.1 is below its minimum 0.0'),
    ('densenet121', {'iterations_per_loop': 0}, '--iterations_per_loop=0 is below its minimum'),
    ('densenet121', {'image_size': 24}, '--image_size=24 is too small for densenet121; use '
                                        '--image_size >= 32'),
    ('amoebanet_d', {'image_size': 64}, '--image_size=64 is too small for amoebanet_d (its '
                                        'auxiliary head\'s 5x5 pool needs a 5x5 map); use '
                                        '--image_size >= 67'),
    ('amoebanet_d', {'reduction_size': 20}, '--reduction_size=20 must be a multiple of 8'),
    ('densenet121', {'num_cells': 3}, '--num_cells does not apply to --network=densenet121 '
                                      '(only to amoebanet_d)'),
    ('densenet121', {'label_smoothing': 1.5}, '--label_smoothing=1.5 is above its maximum 1.0'),
    ('densenet121', {'batch_size': 2.5}, '--batch_size=2.5 is not an integer'),
    ('densenet121', {'use_nesterov': 'no'}, "--use_nesterov='no' is not true or false"),
    ('densenet121', {'bogus': 1}, "overrides: unknown setting 'bogus'"),
    ('densenet121', {'block_config': '1,1,1,1,1'}, '--block_config=1,1,1,1,1 must have 1 to 4 '
                                                   'values'),
    ('densenet121', {'block_config': ','}, '--block_config= must have 1 to 4 values'),
    ('densenet121', {'block_config': '6,0,24,16'}, '--block_config=0 is below its minimum 1'),
    ('densenet121', {'block_config': '6,x,24,16'}, "--block_config='x' is not a number"),
    ('densenet121', {'block_config': '6,12,24,1.5'}, "--block_config='1.5' is not an integer"),
    ('vgg16', {'block_config': '1,1,1,1'}, '--block_config does not apply to --network=vgg16 '
                                           '(only to densenet121)'),
])
def test_bad_overrides_fail_when_resolved(network, overrides, message):
    with pytest.raises(UsageError) as error:
        make_config(network, **overrides)
    assert message in str(error.value)


def test_the_schema_choices_are_the_implemented_names():
    choices = {o.name: o.choices for o in config.SCHEMA}
    assert choices['optimizer'] == ('momentum', 'rmsprop', 'adam')
    assert choices['lr_schedule'] == ('cosine_per_epoch', 'linear_to_zero',
                                      'exponential_per_epoch')
    assert choices['preprocessing'] == ('imagenet_mean_std', 'megvii_bgr', 'inception')
    for name in choices['optimizer']:
        with tf.Graph().as_default():
            assert optimizer.OPTIMIZERS[name](0.1, make_config(optimizer=name))
    for record in preprocessing.PREPROCESSINGS.values():
        assert callable(record.train) and callable(record.evaluate)
        assert len(record.mean) == len(record.scale) == 3


def test_every_recipe_resolves_and_common_names_no_network():
    for network in NETWORKS:
        assert config.resolve(network).network == network.name
    common = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'common')
    for name in os.listdir(common):
        if name.endswith('.py'):
            with open(os.path.join(common, name)) as f:
                text = f.read().lower()
            for network in NETWORKS:
                assert network.name not in text, (name, network.name)
            assert 'amoeba' not in text, name


def test_flags_come_from_the_schema_and_stray_arguments_are_errors():
    assert from_flags('--use_nesterov=false').use_nesterov is False
    with pytest.raises(UsageError, match="unexpected argument\\(s\\) 'false'"):
        from_flags('--use_nesterov', 'false')
    with pytest.raises(UsageError, match='Unknown command line flag'):
        from_flags('--lr_schedule=linear_to_zero')  # recipe-only: no flag


def _training_graph(cfg, run=None):
    """The model_fn's training graph on a fixed batch; returns the session-ready spec."""
    run = run or runtime.fixed(cfg, steps_per_epoch=10, total_steps=100)
    images = tf.constant(np.random.RandomState(0).uniform(
        -1, 1, [2, cfg.image_size, cfg.image_size, 3]).astype(np.float32))
    labels = tf.constant([1, 3], tf.int32)
    network = official.load(cfg.network)
    return network.model_fn({'image': images}, labels, tf.estimator.ModeKeys.TRAIN,
                            dict(config=cfg, runtime=run))


def _optimizer_of(cfg):
    with tf.Graph().as_default():
        return optimizer.make_optimizer(0.1, cfg, runtime.fixed(cfg))


def test_optimizer_flag_picks_the_optimizer():
    assert isinstance(_optimizer_of(from_flags('--optimizer=adam')),
                      tf.compat.v1.train.AdamOptimizer)
    assert isinstance(_optimizer_of(from_flags('--optimizer=rmsprop')),
                      tf.compat.v1.train.RMSPropOptimizer)
    with pytest.raises(UsageError, match='--optimizer=adagrad: value should be one of'):
        from_flags('--optimizer=adagrad')


def test_momentum_and_nesterov_flags_reach_the_optimizer():
    opt = _optimizer_of(from_flags('--momentum=0.5', '--use_nesterov=false'))
    assert opt._momentum == 0.5 and opt._use_nesterov is False
    opt = _optimizer_of(from_flags())
    assert opt._momentum == 0.9 and opt._use_nesterov is True


@pytest.mark.parametrize('scope, counted', [('all', 'every'), ('kernels', 'ndims>1')])
def test_weight_decay_and_its_scope_reach_the_loss(scope, counted):
    cfg = from_flags('--network=shufflenet_v2', '--image_size=32', '--num_classes=10',
                     '--weight_decay=0.01', '--weight_decay_scope=' + scope)
    with tf.Graph().as_default():
        _training_graph(cfg)
        variables = tf.compat.v1.trainable_variables()
        if counted != 'every':
            variables = [v for v in variables if v.shape.ndims > 1]
        graph = tf.compat.v1.get_default_graph()
        total = graph.get_tensor_by_name(model_fn.TRAINING_TENSORS['total_loss'])
        cross_entropy = graph.get_tensor_by_name(model_fn.TRAINING_TENSORS['loss'])
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            got, values = sess.run([total - cross_entropy, variables])
    assert got == pytest.approx(0.01 * sum((v ** 2).sum() / 2 for v in values), rel=1e-4)


def test_label_smoothing_flag_reaches_the_loss():
    for flag, smoothing in (('--label_smoothing=0.3', 0.3), ('--label_smoothing=0', 0.0)):
        cfg = from_flags(flag, '--num_classes=3')
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            loss = sess.run(model_fn._cross_entropy(
                tf.constant([0]), tf.constant([[2.0, 0.0, -1.0]]), cfg))
        targets = np.full(3, smoothing / 3) + np.eye(3)[0] * (1 - smoothing)
        log_probs = np.array([2.0, 0.0, -1.0]) - np.log(np.exp([2.0, 0.0, -1.0]).sum())
        assert loss[0] == pytest.approx(-(targets * log_probs).sum(), rel=1e-5)


def test_label_offset_flag_reaches_the_parser(demo_dir):
    """The demo stores 1..10: offset 0 keeps them, so 10 classes see label 10 as out of range,
    while 11 classes read the stored labels unchanged."""
    files = input_pipeline.find_files(demo_dir, 'validation')[:1]

    def labels(cfg):
        with tf.Graph().as_default():
            dataset = input_pipeline.eval_dataset(files, 1, preprocessing.imagenet_eval, cfg, 0, 1)
            batch = tf.compat.v1.data.make_one_shot_iterator(dataset.take(1)).get_next()
            with tf.compat.v1.Session() as sess:
                return sess.run(batch)[1]

    shifted = labels(from_flags('--num_classes=10', '--image_size=32', '--batch_size=1'))
    kept = labels(from_flags('--num_classes=11', '--image_size=32', '--batch_size=1',
                             '--label_offset=0'))
    assert kept[0] == shifted[0] + 1


def test_exponential_schedule_flags_reach_the_rate():
    cfg = from_flags('--network=amoebanet_d', '--lr_decay_rate=0.5', '--lr_warmup_epochs=0.5',
                     '--batch_size=1024')
    run = runtime.fixed(cfg, steps_per_epoch=10)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        step = tf.compat.v1.placeholder(tf.int64, [])
        lr = schedules.learning_rate(step, cfg, run)
        got = [sess.run(lr, {step: s}) for s in (1, 4, 5, 10, 25)]
    # warm-up over 5 steps to 2.56, then 0.5 per whole epoch
    np.testing.assert_allclose(got, [2.56 / 5, 2.56 * 4 / 5, 2.56, 1.28, 0.64], rtol=1e-5)


def test_drop_path_flag_turns_drop_path_on():
    for flag, present in (('--drop_path_keep_prob=0.7', True), ('--drop_path_keep_prob=1', False)):
        cfg = from_flags('--network=amoebanet_d', flag, '--num_cells=3', '--reduction_size=16')
        with tf.Graph().as_default():
            arguments = amoebanet_model.arguments(
                cfg, runtime.fixed(cfg, total_steps=100),
                tf.compat.v1.train.get_or_create_global_step(), True)
            assert (arguments['drop_path_keep_prob'] is not None) == present


@pytest.mark.parametrize('network, given', [
    ('amoebanet_d', dict(num_cells=3, reduction_size=16, drop_path_keep_prob=None)),
    ('densenet121', dict(block_config=(1, 2, 3, 4))),
    ('vgg16', dict(dropout=0.25)),
    ('shufflenet_v2', {}),
])
def test_model_fn_gives_the_build_each_option_of_the_network(network, given):
    """The registry's model_fn passes each declared option by its name (AmoebaNet's drop-path
    keep probability as its schedule's value: None outside training)."""
    record = official.load(network)
    flags = {k: ','.join(map(str, v)) if isinstance(v, tuple) else v for k, v in given.items()
             if v is not None}
    cfg = make_config(network, num_classes=10, image_size=96, drop_path_keep_prob=0.5, **flags) \
        if network == 'amoebanet_d' else make_config(network, num_classes=10, **flags)
    calls = []

    def recording_build(images, is_training, num_classes, **keywords):
        calls.append(keywords)
        return tf.zeros([1, num_classes]), {}

    built = official.model_fn_for(network, recording_build, record.options)
    with tf.Graph().as_default():
        built({'image': tf.zeros([1, 8, 8, 3])}, None, tf.estimator.ModeKeys.PREDICT,
              dict(config=cfg))
    assert calls == [given]


def test_log_name_flag_names_the_log_file(tmp_path):
    cfg = from_flags('--log_name=my_run.log', '--log_dir=' + str(tmp_path))
    logs.setup_logging(cfg.log_dir, cfg.log_name, 0)
    try:
        logs.log.info('hello')
    finally:
        for handler in logs.log.handlers:
            handler.close()
        logs.log.handlers[:] = []
    assert (tmp_path / 'my_run.log').read_text() == 'hello\n'
    assert logging.getLogger(logs.LOGGER_NAME) is logs.log


@pytest.mark.parametrize('network, size', [('densenet121', 32), ('amoebanet_d', 72)])
def test_demo_settings_come_from_the_data_and_the_network(network, size, demo_dir,
                                                          monkeypatch):
    from common import demo
    monkeypatch.setattr(demo, 'DEMO_DIR', demo_dir)
    command, cfg = command_line.resolve(['train.py', '--demo', '--network=' + network],
                                              NETWORKS)
    assert command.demo and cfg.data_dir == demo_dir
    assert cfg.num_classes == 10  # from the demo's dataset.json
    assert cfg.image_size == size  # the network's minimum, at least 32, a multiple of 8
    assert (cfg.max_epochs, cfg.T_max, cfg.lr_warmup_epochs, cfg.min_crop_area) == (
        6, 6, 1.0, 0.5)
    assert cfg.lr == official.load(network).recipe['lr'] / 2
    _, chosen = command_line.resolve(
        ['train.py', '--demo', '--network=' + network, '--num_classes=12', '--max_epochs=2'],
        NETWORKS)
    assert (chosen.num_classes, chosen.max_epochs) == (12, 2)  # flags win


@pytest.mark.parametrize('record, flags, message', [
    # no record: what it would give must be typed (a network trained at 32 px is not 224's)
    (None, ['--network=shufflenet_v2', '--num_classes=10'],
     '{d} holds no hparams.json, the record of how its checkpoints were trained: give '
     '--image_size, --preprocessing'),
    (None, [], 'give --network, --image_size, --preprocessing'),
    ('{"network": "shufflenet_v2", "image_size": "abc"}', [],
     "the checkpoint's hparams.json: image_size='abc' is not a number"),
    ('{"network": "shufflenet_v2", "num_classes": "ten"}', [],
     "the checkpoint's hparams.json: num_classes='ten' is not a number"),
    ('{"network": "shufflenet_v2", "image_size": 32', [], '{d}/hparams.json is unreadable ('),
    ('[1, 2]', [], '{d}/hparams.json is unreadable: not a JSON object'),
])
def test_a_missing_or_damaged_record_is_named(record, flags, message, tmp_path):
    """export/predict of a directory whose hparams.json is missing, damaged or holds a string
    where a number belongs: one line that says so (in-process: resolve only)."""
    directory = tmp_path / 'ckpt'
    directory.mkdir()
    (directory / 'model.ckpt-1.index').write_bytes(b'')  # checkpoints, never read here
    if record is not None:
        (directory / 'hparams.json').write_text(record)
    for mode in ('export', 'predict'):
        with pytest.raises(UsageError) as error:
            command_line.resolve(['train.py', '--mode=' + mode, '--eval_dir=%s' % directory]
                                       + flags, official.load_all())
        assert message.format(d=directory) in str(error.value)


def test_a_dataset_json_string_count_is_named(tmp_path):
    (tmp_path / 'dataset.json').write_text('{"num_classes": "ten"}')
    with pytest.raises(UsageError, match="dataset.json: num_classes='ten' is not a number"):
        command_line.resolve(['train.py', '--data_dir=%s' % tmp_path], official.load_all())
    with pytest.raises(UsageError, match="--lr='nan' is not a finite number"):
        make_config(lr='nan')


def test_export_of_a_missing_eval_dir_says_so(tmp_path):
    for mode in ('export', 'predict'):
        with pytest.raises(UsageError, match='--eval_dir=%s/nope: no such checkpoint, checkpoint '
                                             'directory or export' % tmp_path):
            command_line.resolve(['train.py', '--mode=' + mode,
                                        '--eval_dir=%s/nope' % tmp_path], official.load_all())
    with pytest.raises(UsageError, match='is not a number'):
        make_config(image_size=10 ** 400)
    with pytest.raises(UsageError, match='is not a list of at most 100'):
        make_config(data_dump_step='10\n')
