"""Image preprocessing, chosen by name (PREPROCESSINGS: one record each); networks never copy
these functions.

Every train function takes (encoded_jpeg, bboxes [N, 4] ymin/xmin/ymax/xmax, size,
min_area=its recipe's smallest crop area) and decodes only the crop; every eval function takes
(decoded uint8 RGB image [H, W, 3], size), so that the evaluation pipeline (JPEG records) and
an exported model (JPEG or PNG bytes, decode_image) share it. Both return float32
[size, size, 3].
"""
import collections

import tensorflow as tf

MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
EVAL_CROP_FRACTION = 0.875  # 224 of 256


def distorted_bbox_crop(encoded, bboxes, size, area_range=(0.08, 1.0),
                        aspect_ratio_range=(3. / 4., 4. / 3.), min_object_covered=0.1,
                        max_attempts=10):
    """Random crop around the record's boxes (the whole image when it has none), resized."""
    bboxes = tf.cond(tf.equal(tf.shape(bboxes)[0], 0),
                     lambda: tf.constant([[0.0, 0.0, 1.0, 1.0]]), lambda: bboxes)
    # TF 1.15 passes seed 0 (= unseeded) to this kernel unless told otherwise: hand it the
    # graph-derived seeds so that --seed makes crops repeatable.
    seed, seed2 = tf.compat.v1.random.get_seed(None)
    begin, crop_size, _ = tf.compat.v1.image.sample_distorted_bounding_box(
        tf.image.extract_jpeg_shape(encoded), bounding_boxes=tf.expand_dims(bboxes, 0),
        seed=seed, seed2=seed2, min_object_covered=min_object_covered,
        aspect_ratio_range=aspect_ratio_range, area_range=area_range,
        max_attempts=max_attempts, use_image_if_no_bounding_boxes=True)
    offset_y, offset_x, _ = tf.unstack(begin)
    height, width, _ = tf.unstack(crop_size)
    window = tf.stack([offset_y, offset_x, height, width])
    image = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    return tf.compat.v1.image.resize_bilinear(tf.expand_dims(image, 0), [size, size])[0]


def resize_shorter_and_center_crop(image, size, crop_fraction=EVAL_CROP_FRACTION):
    """Resizes the shorter side to size / crop_fraction, keeping the aspect ratio, then crops
    the centre; anti-aliased like PIL, which the reference evaluations use.

    Computes only the crop: the resize kernel (tf.image.resize's own, 'triangle' with
    antialias) runs on the whole image but is shifted so that only the size x size centre
    is produced: the values of resizing everything and cropping (to float rounding, under
    0.005 on the 0..255 scale), without computing the pixels the crop drops.
    """
    shape = tf.shape(image)[:2]
    scale = tf.round(size / crop_fraction) / tf.cast(tf.reduce_min(shape), tf.float32)
    new_shape = tf.cast(tf.round(tf.cast(shape, tf.float32) * scale), tf.int32)
    corner = (new_shape - size) // 2  # top, left of the crop in the resized image
    resized = tf.raw_ops.ScaleAndTranslate(
        images=tf.expand_dims(image, 0), size=[size, size],
        scale=tf.cast(new_shape, tf.float32) / tf.cast(shape, tf.float32),
        translation=-tf.cast(corner, tf.float32), kernel_type='triangle', antialias=True)
    return tf.reshape(resized, [size, size, 3])


def normalize_mean_std(image):
    """RGB in 0..255 [..., width, 3] -> per-channel standardized (ImageNet statistics).

    As image * (1 / std) - mean / std with the constants repeated along a row: Eigen
    broadcasts a 3-vector over an image slowly (0.85 core-ms per 224x224 image, 0.3 this way).
    """
    row = tf.stack([tf.shape(image)[-2], 1])
    scale = tf.tile([[1.0 / s for s in STD_RGB]], row)
    offset = tf.tile([[-m / s for m, s in zip(MEAN_RGB, STD_RGB)]], row)
    return tf.cast(image, tf.float32) * scale + offset


def imagenet_train(encoded, bboxes, size, min_area=0.08):
    image = distorted_bbox_crop(encoded, bboxes, size, area_range=(min_area, 1.0))
    image = tf.image.random_flip_left_right(image)  # decided per image, at run time
    return normalize_mean_std(image)


def imagenet_eval(image, size):
    return normalize_mean_std(resize_shorter_and_center_crop(image, size))


def color_jitter(image, strength):
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s], in that
    order, on RGB in 0..255 (torchvision's ColorJitter draws the order at random)."""
    def factor():
        return tf.random.uniform([], 1.0 - strength, 1.0 + strength)

    image = image * factor()
    mean = tf.reduce_mean(tf.image.rgb_to_grayscale(image))
    image = (image - mean) * factor() + mean
    gray = tf.image.rgb_to_grayscale(image)
    image = (image - gray) * factor() + gray
    return tf.clip_by_value(image, 0.0, 255.0)


def to_bgr(image):
    """megvii's networks take BGR in 0..255, without mean/std normalization."""
    return tf.reverse(tf.cast(image, tf.float32), axis=[-1])


def megvii_train(encoded, bboxes, size, min_area=0.08):
    image = tf.image.random_flip_left_right(
        distorted_bbox_crop(encoded, bboxes, size, area_range=(min_area, 1.0)))
    return to_bgr(color_jitter(image, 0.4))


def megvii_eval(image, size):
    return to_bgr(resize_shorter_and_center_crop(image, size))


def fast_color_distortion(image):
    """tensorflow/tpu's fast colour distortion on RGB in [0, 1]: one brightness offset of up to
    32/255 and chroma (Cb, Cr) offsets of up to 0.1, converted to RGB offsets; then clipped."""
    brightness = tf.random.uniform([], -32. / 255., 32. / 255.)
    cb = tf.random.uniform([], -0.1, 0.1)
    cr = tf.random.uniform([], -0.1, 0.1)
    offsets = tf.stack([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb]) + brightness
    return tf.clip_by_value(image + offsets, 0.0, 1.0)


def to_minus_one_one(image):
    """[0, 1] -> [-1, 1], the inception networks' input range."""
    return (image - 0.5) * 2.0


def inception_train(encoded, bboxes, size, min_area=0.1):
    """The reference crops without the record's boxes (the whole image is the object), areas
    10-100%, 100 attempts; then flip and fast colour distortion."""
    del bboxes
    image = distorted_bbox_crop(encoded, tf.zeros([0, 4]), size, area_range=(min_area, 1.0),
                                max_attempts=100) / 255.0
    image = tf.image.random_flip_left_right(image)
    return to_minus_one_one(fast_color_distortion(image))


def inception_eval(image, size):
    """Central 87.5% of the image (aspect ratio not kept), bilinear resize."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = tf.image.central_crop(image, EVAL_CROP_FRACTION)
    image = tf.compat.v1.image.resize_bilinear(tf.expand_dims(image, 0), [size, size])[0]
    return to_minus_one_one(image)


# A preprocessing: its training and evaluation functions, and the normalization its evaluation
# ends with, as a device applies it to RGB uint8 pixels (Ascend's AIPP, common/export.py):
# out = (pixel - mean) * scale, channel by channel after swapping R and B when swap_rb.
Preprocessing = collections.namedtuple('Preprocessing', ['train', 'evaluate', 'swap_rb', 'mean',
                                                         'scale'])
PREPROCESSINGS = {
    'imagenet_mean_std': Preprocessing(imagenet_train, imagenet_eval, False, MEAN_RGB,
                                       tuple(1.0 / s for s in STD_RGB)),
    'megvii_bgr': Preprocessing(megvii_train, megvii_eval, True, (0.0, 0.0, 0.0),
                                (1.0, 1.0, 1.0)),
    'inception': Preprocessing(inception_train, inception_eval, False, (127.5, 127.5, 127.5),
                               (1 / 127.5, 1 / 127.5, 1 / 127.5)),
}
