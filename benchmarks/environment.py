"""What a benchmark prints about the software and the processor it measured."""
import os

import pkg_resources
import tensorflow as tf


def tf_distribution():
    """The installed TensorFlow build and version, e.g. 'intel-tensorflow 1.15.2'."""
    for name in ('intel-tensorflow', 'tensorflow', 'tensorflow-gpu'):
        try:
            return '%s %s' % (name, pkg_resources.get_distribution(name).version)
        except pkg_resources.DistributionNotFound:
            continue
    return 'tensorflow %s' % tf.__version__


def cpu_name():
    """The processor's model name and x86 family, e.g. 'AMD EPYC (family 26)': the same
    name covers several generations, which run the same code at different speeds."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return 'unknown processor'
    return '%s (family %s), %d cores' % (fields.get('model name', 'unknown processor'),
                                          fields.get('cpu family', '?'), os.cpu_count() or 0)
