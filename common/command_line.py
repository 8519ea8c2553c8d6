"""The command line of train.py: its flags (one per schema option, the networks' own
options included), --help, and resolve(), which turns argv into the Config: the model a mode
reads (its hparams.json decides the network and what its weights fix) and the demo's
settings are layers of config.resolve.
"""
import collections
import glob
import os

from absl import flags

import official
from common import config, demo, records, run_directory, run_record
from common.errors import UsageError


def define_flags(flag_values, options, network_names):
    """Defines --network, --list_networks and one flag per option; flag defaults are None so
    that only what the user typed becomes an override."""
    flags.DEFINE_enum('network', network_names[0], network_names, 'Network to run.',
                      flag_values=flag_values)
    flags.DEFINE_bool('list_networks', False,
                      'Print every network with its parameter count and exit.',
                      flag_values=flag_values)
    flags.DEFINE_bool('demo', False, 'Run on the bundled demo data (built on first use) with '
                      'settings for it (common/demo.py); other flags still apply.',
                      flag_values=flag_values)
    for opt in options:
        if not opt.flag:
            continue
        default = ','.join(map(str, opt.default)) if isinstance(opt.default, tuple) else (
            opt.default)
        text = '%s (default %s)' % (opt.help, 'the recipe\'s' if default is None else default)
        kwargs = dict(flag_values=flag_values)
        if opt.kind == 'enum':
            flags.DEFINE_enum(opt.name, None, opt.choices, text, **kwargs)
        elif opt.kind in ('list', 'int_list'):
            flags.DEFINE_list(opt.name, None, text, **kwargs)
        elif opt.kind == 'bool':
            flags.DEFINE_bool(opt.name, None, text, **kwargs)
        elif opt.kind == 'str':
            flags.DEFINE_string(opt.name, None, text, **kwargs)
        else:
            define = flags.DEFINE_integer if opt.kind == 'int' else flags.DEFINE_float
            define(opt.name, None, text, lower_bound=opt.lower, upper_bound=opt.upper, **kwargs)


# network_given: whether --network was typed (else the checkpoint's network may decide).
CommandLine = collections.namedtuple('CommandLine', ['network', 'network_given', 'overrides',
                                                     'list_networks', 'demo', 'help'])
HELP_FLAGS = ('-h', '--help', '-help', '--helpfull')


def parse(argv, networks):
    """The CommandLine of argv: overrides hold the flags the user gave. Bad flags and stray
    arguments are one UsageError."""
    flag_values = flags.FlagValues()
    options = config.all_options(networks)
    define_flags(flag_values, options, [n.name for n in networks])
    wants_help = any(a in HELP_FLAGS for a in argv[1:])
    try:
        rest = flag_values([a for a in argv if a not in HELP_FLAGS])
    except flags.Error as e:
        raise UsageError(str(e)) from None
    if len(rest) > 1:  # e.g. '--use_nesterov false': the 'false' would be ignored
        raise UsageError('unexpected argument(s) %s: flags take the form --name=value'
                         % ' '.join(repr(a) for a in rest[1:]))
    overrides = {o.name: flag_values[o.name].value for o in options
                 if o.flag and flag_values[o.name].present}
    return CommandLine(flag_values.network, flag_values['network'].present, overrides,
                       flag_values.list_networks, flag_values.demo, wants_help)


def help_text(network, networks):
    """Every flag with its default for `network` (the recipe's where it sets one)."""
    defaults = config.resolve(network, other_networks=networks)
    lines = ['usage: python train.py --network=NAME [--flag=value ...]',
             '  --network: one of %s (here %s)' % (', '.join(n.name for n in networks),
                                                    network.name),
             '  --list_networks: print every network with its size and recipe, then exit',
             '  --demo: run on the bundled demo data with settings for it',
             'flags for --network=%s, with their defaults:' % network.name]
    for opt in list(config.SCHEMA) + list(network.options):
        if opt.flag:
            value = getattr(defaults, opt.name)
            if isinstance(value, tuple):
                value = ','.join(map(str, value))
            lines.append('  --%s=%s\n      %s%s' % (
                opt.name, value, opt.help,
                ' One of: %s.' % ', '.join(opt.choices) if opt.choices else ''))
    return '\n'.join(lines)


def _model_path(overrides):
    """The model this run reads: --eval_dir in the modes that use a trained model (default
    log_dir), --restore_path when fine-tuning; None else."""
    if overrides.get('mode') in config.MODEL_MODES:
        return overrides.get('eval_dir') or overrides.get('log_dir') or config.SCHEMA_BY_NAME[
            'log_dir'].default
    return overrides.get('restore_path')


def _checkpoint_hparams(path):
    """(directory, its hparams.json or None) of a model path; (None, None) for none."""
    if path is None:
        return None, None
    directory = run_directory.of(path)
    return directory, run_record.read(directory)


def _network_of(command, directory, saved, networks):
    """--network, or the checkpoint's network when it was not given; a contradiction is an
    error (the checkpoint would not fit)."""
    names = [n.name for n in networks]
    theirs = (saved or {}).get('network')
    if theirs not in names or command.overrides.get('mode') not in config.MODEL_MODES:
        return official.load(command.network)
    if command.network_given and command.network != theirs:
        raise UsageError('--network=%s, but %s holds a checkpoint of %s (its hparams.json)' % (
            command.network, directory, theirs))
    return official.load(theirs)


# What export and predict take from a checkpoint's hparams.json and cannot check against its
# weights (a network trained at 32 px exports at 224 as well).
UNCHECKABLE = ('network', 'image_size', 'preprocessing')


def _check_unrecorded(command, path, directory, saved):
    """Export and predict of checkpoints without hparams.json need those values as flags."""
    if saved is not None or command.demo or command.overrides.get('mode') not in (
            'export', 'predict'):
        return
    if not os.path.isdir(path) and not os.path.exists(path + '.index'):
        raise UsageError('--eval_dir=%s: no such checkpoint, checkpoint directory or export'
                         % path)
    if os.path.isdir(path) and not glob.glob(os.path.join(path, 'model.ckpt-*.index')):
        return  # nothing to export: said when the checkpoints are listed
    given = dict(command.overrides, network=command.network if command.network_given else None)
    missing = [name for name in UNCHECKABLE if given.get(name) is None]
    if missing:
        raise UsageError('%s holds no %s, the record of how its checkpoints were trained: give '
                         '%s' % (directory, run_record.HPARAMS_FILE,
                                 ', '.join('--%s' % name for name in missing)))


def resolve(argv, networks):
    """(CommandLine, Config) of argv, the one way an entry point resolves its configuration:
    the checkpoint's record and the demo's settings are layers of config.resolve."""
    command = parse(argv, networks)
    overrides = dict(command.overrides)
    path = _model_path(overrides)
    directory, saved = _checkpoint_hparams(path)
    _check_unrecorded(command, path, directory, saved)
    network = _network_of(command, directory, saved, networks)
    settings = demo.overrides(network) if command.demo else {}
    if overrides.get('mode') == 'evaluate' and 'eval_dir' in overrides and (
            'log_dir' not in overrides):
        # Evaluating a checkpoint directory writes its log next to the checkpoints, not to
        # a ./results created for it.
        overrides['log_dir'] = run_directory.of(overrides['eval_dir'])
    description = records.read_description(overrides.get('data_dir') or settings.get('data_dir'))
    return command, config.resolve(network, overrides, description, networks, saved, settings)
