"""AmoebaNet-D trains with the common trainer: its options are checked when the configuration
is resolved (hyper_param.OPTIONS, amoebanet_d.MIN_IMAGE_SIZE)."""
from common.trainer import run  # noqa: F401
