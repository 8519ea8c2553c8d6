"""Installs the zoo. TensorFlow comes from an extra so that the Ascend image keeps its own."""
from setuptools import find_packages, setup

setup(
    name='ascend-imagenet-zoo',
    version='0.1.0',
    description='TF 1.15 Estimator ImageNet classifiers for Ascend 910, GPU and CPU',
    python_requires='>=3.7,<3.8',
    packages=find_packages(include=['common', 'common.*', 'official', 'official.*',
                                    'tfrecord_tools', 'benchmarks']),
    py_modules=['train', 'import_weights'],
    install_requires=[
        'absl-py',
        'numpy',
        'protobuf<3.21',
        'Pillow',  # re-encoding PNG/CMYK/grayscale images in tfrecord_tools
    ],
    extras_require={
        # The CPU default is intel (oneDNN), 2.2x stock TF on DenseNet-121 training:
        # README, "Choosing the CPU TensorFlow".
        'intel': ['intel-tensorflow==1.15.2', 'h5py<3'],
        'stock': ['tensorflow==1.15.5', 'h5py<3'],
        'gpu': ['tensorflow-gpu==1.15.5', 'h5py<3'],
        'demo': ['scikit-learn==1.0.2'],
        # flake8 3.9 is the last that installs beside TensorFlow 1.15's Markdown on Python 3.7
        # (importlib-metadata: Markdown wants >= 4.4, flake8 3.9 reads entry points as < 5 has).
        'test': ['pytest>=7,<8', 'scikit-learn==1.0.2', 'scikit-image==0.19.3', 'flake8==3.9.2',
                 'importlib-metadata>=4.4,<5'],
        'horovod': ['horovod==0.28.1'],
        # --mode=export's ONNX format: the last tf2onnx for TF 1.x, the newest onnxruntime
        # that takes TF 1.15's numpy, and packaging, which tf2onnx imports without declaring.
        'onnx': ['tf2onnx==1.16.1', 'onnx==1.14.1', 'onnxruntime==1.10.0', 'packaging'],
    },
)
