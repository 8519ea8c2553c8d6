"""What an image file declares before it is decoded: its size, checked against the pixel limit
(config.MAX_IMAGE_PIXELS, --max_image_pixels) by predict and by the TFRecord builder. A PNG of a
few hundred KB can declare 20000 x 20000 pixels, 1.2 GB once decoded."""
import contextlib

from PIL import Image

from common.config import MAX_IMAGE_PIXELS  # noqa: F401  (the limit's one home; re-exported)


class TooLarge(Exception):
    """An image whose header declares more pixels than the limit; none of it was decoded."""

    def __init__(self, width, height, limit):
        super().__init__('%dx%d (%s pixels), above the limit of %s' % (
            width, height, format(width * height, ','), format(limit, ',')))
        self.width, self.height, self.limit = width, height, limit


def check_pixels(width, height, limit):
    """Raises TooLarge when width x height exceeds limit (give it the header's size)."""
    if width * height > limit:
        raise TooLarge(width, height, limit)


@contextlib.contextmanager
def pil_limit_off():
    """PIL's own bomb check off: check_pixels replaces it, so that a raised limit is obeyed
    (the callers decode on one thread each; the setting is put back)."""
    pil_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = pil_limit
