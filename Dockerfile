# Runs the zoo inside Huawei's ascend-tensorflow image (x86 or ARM), keeping the image's own
# TensorFlow 1.15 and npu_bridge: the project's TensorFlow comes only from an extra, which is
# not installed here.
#   docker build --build-arg BASE_IMAGE=<ascend-tensorflow image:tag> -t ascend-zoo .
#   docker run --device=/dev/davinci0 ... ascend-zoo bash scripts/run_1p.sh --data_dir=/data
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

WORKDIR /opt/ascend-zoo
COPY . .
# Fail the build early if the base image is not a TF 1.15 image.
RUN python3 -c "import tensorflow as tf; assert tf.__version__.startswith('1.15'), tf.__version__" \
 && python3 -m pip install --no-cache-dir -e . \
 && python3 -c "import tensorflow as tf; assert tf.__version__.startswith('1.15')"
CMD ["bash", "scripts/run_1p.sh"]
