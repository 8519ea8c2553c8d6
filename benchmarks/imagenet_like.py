"""A benchmark dataset of ImageNet-like JPEGs: crops and rescales of scikit-image's colour
sample photos, about 500x375 with ImageNet's mix of aspect ratios, quality 90; written both
as plain JPEG files (for a PIL loader) and as TFRecords in the zoo's format.

    python -m benchmarks.imagenet_like --output_dir=DIR [--count=300]
"""
import io
import os
import sys

import numpy as np
from absl import app, flags
from PIL import Image

from common import records
from tfrecord_tools import writer

JPEG_QUALITY = 90
LONGER_SIDE = (400, 500)  # ImageNet's typical 500x375 / 375x500, and some smaller
ASPECT_RATIOS = (4 / 3, 3 / 4, 1.0, 3 / 2, 2 / 3)
NUM_CLASSES = 10
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field',
          'immunohistochemistry')
JPEG_DIR = 'jpeg'


def _photos():
    from skimage import data
    photos = []
    for name in PHOTOS:
        try:
            photos.append(getattr(data, name)())
        except Exception:
            continue  # a sample that needs a download: the others suffice
    return photos


def _image(photos, rng):
    """A random crop of a sample photo, rescaled to an ImageNet-like size and aspect."""
    photo = photos[rng.randint(len(photos))]
    height, width = photo.shape[:2]
    aspect = ASPECT_RATIOS[rng.randint(len(ASPECT_RATIOS))]
    crop_h = int(min(height, width / aspect) * rng.uniform(0.6, 1.0))
    crop_w = int(crop_h * aspect)
    top, left = rng.randint(height - crop_h + 1), rng.randint(width - crop_w + 1)
    image = Image.fromarray(photo[top:top + crop_h, left:left + crop_w])
    longer = rng.randint(*LONGER_SIDE) + 1
    scale = longer / max(crop_h, crop_w)
    return image.resize((max(1, round(crop_w * scale)), max(1, round(crop_h * scale))),
                        Image.BICUBIC)


def build(output_dir, count=300, seed=0):
    """Writes DIR/jpeg/*.jpg and train/validation TFRecords of the same images; returns the
    list of JPEG paths."""
    rng = np.random.RandomState(seed)
    photos = _photos()
    jpeg_dir = os.path.join(output_dir, JPEG_DIR)
    os.makedirs(jpeg_dir, exist_ok=True)
    paths, items = [], []
    for index in range(count):
        out = io.BytesIO()
        image = _image(photos, rng)
        image.save(out, format='JPEG', quality=JPEG_QUALITY)
        path = os.path.join(jpeg_dir, '%05d.jpg' % index)
        with open(path, 'wb') as f:
            f.write(out.getvalue())
        paths.append(path)
        label = index % NUM_CLASSES
        items.append((out.getvalue(), image.size, label, index))

    def encode(item):
        jpeg, (width, height), label, index = item
        return writer.make_example(jpeg, height, width, records.FIRST_LABEL + label,
                                   'class_%d' % label, 'class %d' % label, '%05d.jpg' % index)

    counts = {}
    for split in records.SPLITS:
        counts[split], _ = writer.write_split(items, encode, output_dir, split, 2)
    writer.write_description(output_dir, counts, ['class_%d' % i for i in range(NUM_CLASSES)])
    return paths


def main(argv):
    del argv
    paths = build(flags.FLAGS.output_dir, flags.FLAGS.count)
    print('wrote %d JPEGs and their TFRecords to %s' % (len(paths), flags.FLAGS.output_dir))
    return 0


if __name__ == '__main__':
    flags.DEFINE_string('output_dir', None, 'Where to write.', required=True)
    flags.DEFINE_integer('count', 300, 'Number of images.', lower_bound=1)
    sys.exit(app.run(main))
