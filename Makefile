# The two commands of README.md. Both create .venv (Python 3.7) on first use.
#   make demo   trains and evaluates DenseNet-121 on the bundled demo data
#   make test   runs the test suite (CI runs make lint first)
# TF_EXTRA picks the TensorFlow build: intel (default, fastest on CPU), stock or gpu (README).
VENV := .venv
TF_EXTRA ?= intel
STAMP := $(VENV)/.installed-$(TF_EXTRA)

$(STAMP): setup.py scripts/make_venv.sh
	bash scripts/make_venv.sh $(VENV) $(TF_EXTRA)
	touch $@

demo: $(STAMP)
	PYTHON=$(CURDIR)/$(VENV)/bin/python bash scripts/run_1p.sh

# The multi-device tests need Horovod, built against the TensorFlow above (about 5 minutes).
HOROVOD_STAMP := $(VENV)/.installed-horovod-$(TF_EXTRA)
$(HOROVOD_STAMP): $(STAMP)
	HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
	$(VENV)/bin/pip install -q --no-cache-dir -e '.[horovod]'
	touch $@

# ONNX export (tf2onnx, onnxruntime) is optional for users; the tests cover it.
ONNX_STAMP := $(VENV)/.installed-onnx-$(TF_EXTRA)
$(ONNX_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[onnx]'
	touch $@

test: $(HOROVOD_STAMP) $(ONNX_STAMP)
	$(VENV)/bin/python -m pytest -q --durations=10 tests

# The linter (.flake8 holds its settings and the reasons for what it ignores); CI runs it first.
lint: $(STAMP)
	$(VENV)/bin/flake8

.PHONY: demo test lint
