"""The demo run: the bundled demo data (scikit-learn's digits, built on first use) and settings
chosen for it. Its class count comes from the data's own description, its image size from the
network's minimum; the ImageNet recipes are untouched."""
import os

from common import records

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'demo_data')
MIN_DEMO_IMAGE_SIZE = 32


def data_dir():
    """The demo data directory, built there on first use."""
    if not os.path.exists(os.path.join(DEMO_DIR, records.DESCRIPTION_FILE)):
        from tfrecord_tools import build_demo_dataset  # pylint: disable=import-outside-toplevel
        build_demo_dataset.build(DEMO_DIR)
    return DEMO_DIR


def image_size(network):
    """The network's smallest size, rounded up to a multiple of 8, and at least 32 px."""
    return max(MIN_DEMO_IMAGE_SIZE, -(-network.min_image_size // 8) * 8)


def overrides(network):
    """The demo's settings, below what the user gives on the command line."""
    return dict(data_dir=data_dir(), image_size=image_size(network), max_epochs=4,
                epochs_between_evals=2, display_every=10)
