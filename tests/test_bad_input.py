"""Bad input: one 'error:' line on stderr, a non-zero exit, no traceback, no checkpoint."""
import os
import shutil

import pytest

from common.errors import UsageError

from conftest import SMALL, TINY, TINY_DENSENET, checkpoint_steps, run_train


def _copy_demo(demo_dir, target, splits=('train', 'validation')):
    os.makedirs(target)
    for name in os.listdir(demo_dir):
        if name.split('-')[0] in splits:
            shutil.copy(os.path.join(demo_dir, name), target)
    return str(target)


def assert_one_error_line(result, *fragments, code=2):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    assert 'Traceback' not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _run(args, log_dir, npu=False):
    return run_train(list(args) + ['--log_dir=' + log_dir], npu=npu)


CASES = {
    'missing_data_dir': (['--data_dir={tmp}/nope'], ['does not exist']),
    'empty_data_dir': (['--data_dir={tmp}'], ['no train shards (train-*)']),
    'no_validation_shards': (['--data_dir={train_only}'], ['no validation shards']),
    'unknown_flag': (['--data_dir={demo}', '--learning_rate=1'],
                     ['Unknown command line flag', 'learning_rate']),
    'unknown_network': (['--data_dir={demo}', '--network=resnet50'],
                        ['--network=resnet50', 'densenet121']),
    'batch_larger_than_dataset': (['--data_dir={demo}', '--batch_size=2000'],
                                  ['larger than the 1438 training images']),
    'eval_dir_without_checkpoints': (['--data_dir={demo}', '--mode=evaluate',
                                      '--eval_dir={tmp}'], ['no model.ckpt-N checkpoints in']),
    'missing_restore_path': (['--data_dir={demo}', '--restore_path={tmp}/model.ckpt-5'],
                             ['--restore_path=', 'no such checkpoint']),
    'train_steps_in_train_and_evaluate': (['--data_dir={demo}', '--max_train_steps=5'],
                                          ['--max_train_steps is for --mode=train']),
    'corrupt_shard': (['--data_dir={corrupt}'], ['corrupt TFRecord file', 'train-00001-of-00004']),
    'diverging_loss': (['--data_dir={demo}', '--lr=1e30'],
                       ['the training loss became NaN (diverged); lower --lr']),
    'option_of_another_network': (['--data_dir={demo}', '--num_cells=3'],
                                  ['--num_cells does not apply to --network=densenet121']),
    'amoebanet_image_too_small': (['--data_dir={demo}', '--network=amoebanet_d'],
                                  ['--image_size=32 is too small', 'use --image_size >= 67']),
    'amoebanet_odd_reduction_size': (['--data_dir={demo}', '--network=amoebanet_d',
                                      '--reduction_size=20'], ['must be a multiple of 8']),
}


# These two start training, and are run as the user would (a process each); the others stop
# before training and go through train.main in-process (the function train.py's __main__ calls).
IN_A_PROCESS = ('corrupt_shard', 'diverging_loss')


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _main(args, capsys):
    """train.main(['train.py'] + args) in this process, as a CompletedProcess-like result."""
    import train
    capsys.readouterr()
    code = train.main(['train.py'] + list(args))
    out, err = capsys.readouterr()
    return _Result(code, out, err)


@pytest.mark.parametrize('case', sorted(CASES))
def test_start_up_errors(case, demo_dir, tmp_path, capsys):
    args, fragments = CASES[case]
    paths = dict(demo=demo_dir, tmp=str(tmp_path / 'empty'))
    os.makedirs(paths['tmp'])
    if case == 'no_validation_shards':
        paths['train_only'] = _copy_demo(demo_dir, tmp_path / 'train_only', ('train',))
    if case == 'corrupt_shard':
        paths['corrupt'] = _copy_demo(demo_dir, tmp_path / 'corrupt')
        with open(os.path.join(paths['corrupt'], 'train-00001-of-00004'), 'r+b') as f:
            f.seek(5000)
            f.write(b'\xff' * 64)  # breaks a record's CRC
    log_dir = str(tmp_path / 'out')
    # the default network at its small size, another one at full depth
    size = SMALL if any(a.startswith('--network=') for a in args) else TINY
    args = [a.format(**paths) for a in args] + size
    if case in IN_A_PROCESS:
        result = _run(args, log_dir)
    else:
        result = _main(args + ['--log_dir=' + log_dir], capsys)
    assert_one_error_line(result, *fragments, code=1 if case == 'diverging_loss' else 2)
    assert checkpoint_steps(log_dir) == []


@pytest.mark.parametrize('args, fragment', [
    (['--iterations_per_loop=7', '--max_train_steps=20', '--save_checkpoints_steps=14'],
     'training stops at step 20 (steps per epoch: 44), not a multiple of '
     '--iterations_per_loop=7; use --iterations_per_loop=5'),
    (['--iterations_per_loop=10', '--max_train_steps=20', '--save_checkpoints_steps=15'],
     '--save_checkpoints_steps=15 is not a multiple of --iterations_per_loop=10; use 10'),
])
def test_npu_loop_settings_are_checked_at_start_up(args, fragment, demo_dir, tmp_path):
    log_dir = str(tmp_path / 'out')
    result = _run(['--device=npu', '--mode=train', '--data_dir=' + demo_dir] + args + SMALL,
                  log_dir, npu=True)
    assert_one_error_line(result, fragment)
    assert not os.path.exists(os.path.join(log_dir, 'hparams.json'))


def test_npu_requested_without_npu_bridge(demo_dir, tmp_path):
    result = _run(['--device=npu', '--data_dir=' + demo_dir] + SMALL, str(tmp_path))
    assert_one_error_line(result, 'npu_bridge cannot be imported')


def test_label_outside_num_classes_stops_training(demo_dir, tmp_path):
    """Demo labels are 1..10; with --num_classes=5 the first batch fails. Nothing is saved."""
    log_dir = str(tmp_path / 'out')
    result = _run(['--mode=train', '--max_train_steps=5', '--data_dir=' + demo_dir,
                   '--num_classes=5', '--image_size=32'] + TINY_DENSENET, log_dir)
    assert_one_error_line(result, 'label out of range', 'tfrecord_tools.verify', code=1)
    assert checkpoint_steps(log_dir) == []


def test_undecodable_image_stops_training(tmp_path):
    """A well-formed record whose JPEG bytes are garbage."""
    import tensorflow as tf
    from tfrecord_tools import writer
    data_dir = str(tmp_path / 'data')
    os.makedirs(data_dir)
    for split in ('train', 'validation'):
        with tf.io.TFRecordWriter(os.path.join(data_dir, split + '-00000-of-00001')) as out:
            for i in range(40):
                example = writer.make_example(b'not a jpeg', 8, 8, 1 + i % 10, 'x', 'x', 'x.jpg')
                out.write(example.SerializeToString())
    log_dir = str(tmp_path / 'out')
    result = _run(['--mode=train', '--max_train_steps=5', '--batch_size=8',
                   '--data_dir=' + data_dir] + TINY, log_dir)
    assert_one_error_line(result, 'image/encoded is not a JPEG image', code=1)
    assert checkpoint_steps(log_dir) == []


@pytest.mark.parametrize('case', ['proc', 'file', 'log_name'])
def test_unwritable_log_dir_and_bad_log_name(case, demo_dir, tmp_path):
    existing_file = tmp_path / 'a_file'
    existing_file.write_text('x')
    log_dir, extra, fragment = {
        'proc': ('/proc/x', [], 'cannot write in --log_dir=/proc/x'),
        'file': (str(existing_file), [], 'cannot write in --log_dir=%s' % existing_file),
        'log_name': (str(tmp_path / 'out'), ['--log_name=sub/dir/x.log'],
                     '--log_name=sub/dir/x.log must be a file name'),
    }[case]
    result = _run(['--mode=train', '--max_train_steps=1', '--data_dir=' + demo_dir] + TINY
                  + extra, log_dir)
    assert_one_error_line(result, fragment)


def test_demo_builder_with_unwritable_output_dir():
    import subprocess
    import sys
    from conftest import ROOT
    result = subprocess.run([sys.executable, '-m', 'tfrecord_tools.build_demo_dataset',
                             '--output_dir=/proc/x'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert_one_error_line(result, 'cannot write --output_dir=/proc/x', code=1)


def test_help_lists_every_flag_with_the_networks_defaults():
    result = run_train(['--network=amoebanet_d', '--help'])
    assert result.returncode == 0, result.stderr
    assert '--num_cells=6\n' in result.stdout and '--lr=2.56\n' in result.stdout
    assert '--restore_exclude=amoebanet_d/final_layer,amoebanet_d/aux_head\n' in result.stdout
    short = run_train(['-h'])
    assert short.returncode == 0 and '--lr=0.1\n' in short.stdout
    assert '--num_cells' not in short.stdout  # densenet121 has no such option


def test_only_errors_raised_reading_input_point_at_the_data():
    """An InvalidArgumentError from the input (a record) names tfrecord_tools.verify; one from
    the model, a collective or the device does not (in-process: no training)."""
    import tensorflow as tf
    import train
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        labels = tf.data.Dataset.from_tensors(tf.constant(7)).map(
            lambda x: tf.debugging.assert_less(x, 5, message='label out of range') and x)
        from_input = tf.compat.v1.data.make_one_shot_iterator(labels).get_next()
        from_model = tf.reshape(tf.compat.v1.placeholder_with_default([1, 2, 3], [None]), [2])
        errors = []
        for tensor in (from_input, from_model):
            with pytest.raises(tf.errors.InvalidArgumentError) as caught:
                session.run(tensor)
            errors.append(train._op_error_line(caught.value, '/data'))
    assert errors[0].startswith('error: InvalidArgumentError: ') and (
        'tfrecord_tools.verify --data_dir=/data' in errors[0]), errors[0]
    assert errors[1].startswith('error: InvalidArgumentError: ') and (
        'verify' not in errors[1]), errors[1]


def _predict_main(tmp_path, *flags):
    """train.main in-process for --mode=predict on a record-only directory (no checkpoint:
    every case below must stop before a model is read); returns (exit code, stderr)."""
    import json
    import train
    model = tmp_path / 'model'
    model.mkdir(exist_ok=True)
    (model / 'hparams.json').write_text(json.dumps(dict(network='shufflenet_v2', num_classes=10,
                                                        image_size=32)))
    return train.main(['train.py', '--mode=predict', '--eval_dir=%s' % model] + list(flags))


@pytest.mark.parametrize('existing', ['image', 'shard', 'checkpoint_index', 'predictions'])
def test_predict_output_never_writes_over_a_file(existing, tmp_path, capsys):
    """--output is checked before anything is predicted: an image, a shard or a checkpoint is
    refused; an earlier predictions file only with --overwrite."""
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'a.jpg').write_bytes(b'\xff\xd8 not really')
    content = {'image': None, 'shard': b'\x00' * 64, 'checkpoint_index': b'\x01' * 64,
               'predictions': b'path,class_1,name_1,probability_1\nx.jpg,3,3,0.9\n'}[existing]
    output = images / 'a.jpg' if content is None else tmp_path / (
        {'shard': 'train-00000-of-00001', 'checkpoint_index': 'model.ckpt-4.index',
         'predictions': 'preds.csv'}[existing])
    if content is not None:
        output.write_bytes(content)
    before = output.read_bytes()
    code = _predict_main(tmp_path, '--images=%s' % images, '--output=%s' % output)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith('error: --output=%s ' % output)
    assert ('--overwrite' in err[0]) == (existing == 'predictions'), err[0]
    assert output.read_bytes() == before


def test_predict_reads_only_regular_files_of_bounded_size(tmp_path, monkeypatch):
    """A link to /dev/zero and a FIFO named like images are listed and skipped, never read; a
    file over the byte cap too."""
    from common import predict
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'good.jpg').write_bytes(b'\xff\xd8')
    os.symlink('/dev/zero', str(images / 'z.jpg'))
    os.mkfifo(str(images / 'x.jpg'))
    (images / 'big.png').write_bytes(b'\x00' * 2048)
    monkeypatch.setattr(predict, 'MAX_IMAGE_BYTES', 1024)
    files, skipped = predict.image_paths(str(images))
    assert files == [str(images / 'good.jpg')]
    reasons = [(os.path.basename(p), r.split(' (')[0].split(',')[0]) for p, r in skipped]
    assert reasons == [
        ('big.png', '2048 bytes'), ('x.jpg', 'not a regular file'),
        ('z.jpg', 'not a regular file')]
    assert 'a FIFO' in dict(skipped)[str(images / 'x.jpg')]
    assert 'a character device' in dict(skipped)[str(images / 'z.jpg')]
    with pytest.raises(UsageError, match='no image files there'):
        predict.image_paths(str(tmp_path / 'nothing*.jpg'))


def test_predict_refuses_an_image_above_the_pixel_limit_before_decoding(tmp_path):
    """A 20000 x 20000 PNG of a few hundred KB (1.2 GB once decoded) is refused from its
    header; --max_image_pixels raises the limit."""
    import zlib
    import struct
    from common import images, predict

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    side = 20000
    row = b'\x00' + b'\x00' * side  # filter byte, then grey pixels
    png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0))
           + chunk(b'IDAT', zlib.compress(row * side, 9)) + chunk(b'IEND', b''))
    path = tmp_path / 'bomb.png'
    path.write_bytes(png)
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(UsageError, match=r'bomb.png: 20000x20000 \(400,000,000 pixels\), above '
                                         r'the limit of 89,478,485 \(--max_image_pixels=89478485; '
                                         r'raise it'):
        predict._read(str(path), images.MAX_IMAGE_PIXELS)
    assert predict._read(str(path), side * side) == png


@pytest.mark.parametrize('content', [None, b'', b'\x0a\xff garbage'])
def test_predict_with_a_missing_empty_or_damaged_saved_model(content, tmp_path, capsys):
    import json
    import train
    export_dir = tmp_path / 'export'
    (export_dir / 'saved_model').mkdir(parents=True)
    (export_dir / 'hparams.json').write_text(json.dumps(dict(
        network='shufflenet_v2', num_classes=10, image_size=32, export={})))
    if content is not None:
        (export_dir / 'saved_model' / 'saved_model.pb').write_bytes(content)
    image = tmp_path / 'a.jpg'
    image.write_bytes(b'\xff\xd8')
    code = train.main(['train.py', '--mode=predict', '--eval_dir=%s' % export_dir,
                       '--images=%s' % image])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith('error: %s: cannot load this SavedModel (' % (
        export_dir / 'saved_model')), err[0]
