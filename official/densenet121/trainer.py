"""DenseNet-121 trains with the common trainer: nothing differs."""
from common.trainer import run  # noqa: F401
