"""What a benchmark prints about the software it measured."""
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
